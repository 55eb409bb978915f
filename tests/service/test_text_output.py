"""Text output of a capture through loopstalld: the daemon lays the text out for the client's own
output (its terminal or not), so a hung loop is a status line in place on a terminal and a line of
its own in a file, as in a standalone capture (tests/integration/test_text_output.py)."""
import os
import signal
import time

import service_harness as h
from harness.text_output import stall_lines, summary_rows
from harness.tmux import Tmux
from service_harness import Daemon, Workload

ONGOING_BOUND_S = 5 + 1.5  # the daemon's ongoing reports: at the threshold, then every 5 s


def test_hung_loop_into_a_file_through_the_daemon(bpf, tmp):
    d = Daemon(tmp)
    out = tmp / "stalls.txt"
    cap = h.Proc([h.LOOPSTALL, "capture", "--socket", d.sock, "--format", "text", "--output", out, "--duration",
                  14], name="capture")
    cap.wait_line(lambda l: "through loopstalld" in l, 10)
    w = Workload("gevent_stall.py", "sleep", "--ms", 8000, "--warmup", 0.5, "--after", 0.5)
    start = int(w.wait_line(lambda l: l.startswith("STALL_START "), 10, "out").split()[1])
    h.wait_for(lambda: any(s.ongoing for s in stall_lines(out.read_text(), w.pid)), ONGOING_BOUND_S + 1,
               what="an ONGOING line in the file", describe=cap.describe)
    late_s = (time.time_ns() - start) / 1e9
    print(f"ongoing line in the file {late_s:.2f} s after the loop hung")
    assert late_s <= ONGOING_BOUND_S, out.read_text()
    assert cap.wait(30) == 0, cap.describe()
    text = out.read_text()
    print(text)
    assert "\r" not in text and "\x1b" not in text, repr(text)  # no terminal control off a terminal
    mine = stall_lines(text, w.pid)
    assert mine and mine[-1].ms >= 7900 and not mine[-1].ongoing, text
    assert all(s.ongoing for s in mine[:-1]), text
    assert "blocking_sleep (gevent_stall.py:" in mine[-1].line, text
    row = summary_rows(text)[w.pid]
    assert row["CULPRIT"] == "blocking_sleep (gevent_stall.py)" and row["SERVICE"] != "-", row


def test_hung_loop_on_a_terminal_through_the_daemon(bpf, tmp):
    d = Daemon(tmp)
    go = tmp / "go"
    w = Workload("gevent_stall.py", "sleep", "--ms", 7000, "--go-file", go, "--warmup", 0.3, "--after", 0.5)
    cmd = (f"{h.LOOPSTALL} capture --socket {d.sock} --format text --pid {w.pid}; echo CAPTURE_EXITED $?; "
           "sleep 30")
    with Tmux(cmd, width=200, prefix="lstextd") as t:
        t.wait_pane(lambda p: "through loopstalld" in p, 15, "the capture through the daemon")
        go.write_text(str(time.time()))
        pane = t.wait_pane(lambda p: any(s.ongoing and s.ms >= 5000 for s in stall_lines(p, w.pid)), 15,
                           "the status line updated to 5 s")
        print(pane)
        ongoing = [l for l in pane.splitlines() if " ONGOING " in l]
        assert len(ongoing) == 1 and len(ongoing[0]) < 200, f"one status line, updated in place:\n{pane}"
        pane = t.wait_pane(lambda p: any(s.ms >= 6900 and not s.ongoing for s in stall_lines(p, w.pid)), 10,
                           "the final line")
        assert " ONGOING " not in pane and len(stall_lines(pane, w.pid)) == 1, pane
        t.send_keys("C-c")
        pane = t.wait_pane(lambda p: "CAPTURE_EXITED" in p, 15, "the capture exiting on Ctrl-C")
        print(pane)
        assert "CAPTURE_EXITED 0" in pane, pane
        assert summary_rows(pane)[w.pid]["CULPRIT"] == "blocking_sleep (gevent_stall.py)", pane


def test_a_loop_killed_mid_stall_is_not_listed_as_still_going_on(bpf, tmp):
    """A process killed inside a stall sends no final report. The correlator forgets such a stall
    after 2 s; the text output kept it (one report per killed process for the capture's life) and
    printed it at the end as a stall still going on, however long dead its process was. Killed
    1.5 s into a stall (no ongoing line off a terminal yet), the capture ends over 11 s later: no
    line for it, though the daemon saw the stall (its ongoing event is in the daemon's log)."""
    d = Daemon(tmp)
    out = tmp / "stalls.txt"
    cap = h.Proc([h.LOOPSTALL, "capture", "--socket", d.sock, "--format", "text", "--output", out, "--duration",
                  22], name="capture")
    cap.wait_line(lambda l: "through loopstalld" in l, 10)
    w = Workload("gevent_stall.py", "sleep", "--ms", 60000, "--warmup", 0.5)
    w.wait_line(lambda l: l.startswith("STALL_START "), 10, "out")
    time.sleep(1.5)
    os.kill(w.pid, signal.SIGKILL)
    killed = time.monotonic()
    w.wait(10)
    h.wait_for(lambda: [e for e in d.events() if e["pid"] == w.pid and e["ongoing"]], 10,
               what="the daemon's ongoing event of the killed loop", describe=d.describe)
    assert cap.wait(40) == 0, cap.describe()
    assert time.monotonic() - killed > 12, "the capture ended too soon after the kill to tell"
    text = out.read_text()
    print(text)
    assert not stall_lines(text, w.pid), f"pid {w.pid} died mid-stall long before the end:\n{text}"
