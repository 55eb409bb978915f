"""The control socket: root only; `loopstall capture` through the daemon equals a standalone one."""
import json
import os
import re
import signal
import stat
import subprocess
import time

import pytest

import service_harness as h
from service_harness import Daemon, Proc, Workload

NOBODY = 65534
CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(3)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("REFUSED", e.errno, e.strerror)
    sys.exit(0)
try:
    s.sendall(b'{"cmd":"status"}\n')
    data = s.recv(65536)
except socket.timeout:
    print("TIMEOUT")
    sys.exit(0)
except OSError as e:
    print("CLOSED", e.errno, e.strerror)
    sys.exit(0)
print("ANSWER " + data.decode(errors="replace") if data else "CLOSED eof")
"""


def as_nobody(sock):
    if not os.path.exists("/usr/bin/setpriv"):
        h.skip_or_fail("setpriv (util-linux) is needed to run a non-root client")
    r = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                        h.PY, "-c", CLIENT, str(sock)], capture_output=True, text=True, timeout=15)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_control_socket_is_root_only(bpf, tmp):
    d = Daemon(tmp)
    st_dir, st_sock = os.stat(d.sock.parent), os.stat(d.sock)
    assert stat.S_ISSOCK(st_sock.st_mode)
    assert stat.S_IMODE(st_sock.st_mode) == 0o600, oct(st_sock.st_mode)
    assert stat.S_IMODE(st_dir.st_mode) == 0o700, oct(st_dir.st_mode)
    assert st_sock.st_uid == 0 and st_dir.st_uid == 0

    # An unprivileged user cannot even reach it.
    out = as_nobody(d.sock)
    assert out.startswith("REFUSED"), out

    # Even with the modes opened up (a mistake), the daemon answers only root (SO_PEERCRED).
    os.chmod(tmp, 0o755)
    os.chmod(d.sock.parent, 0o755)
    os.chmod(d.sock, 0o666)
    out = as_nobody(d.sock)
    assert out.startswith("CLOSED"), f"a non-root client got: {out}"

    # Root still gets its status, and the daemon is fine.
    r = h.run_cli(["status", "--socket", d.sock])
    assert r.returncode == 0 and "loopstalld" in r.stdout, r.stderr
    assert d.alive()


class CaptureProc(Proc):
    def __init__(self, args, ready_timeout=30):
        super().__init__([h.LOOPSTALL, "capture", "--format", "json", *args], name="loopstall capture")
        try:
            self.ready_line = self.wait_line(lambda l: l.startswith("loopstall: ready"), ready_timeout)
        except BaseException:
            self.kill()
            raise

    def stop(self):
        self.signal(signal.SIGINT)
        rc = self.wait(15)
        self.join_output()
        assert rc == 0, f"capture exited {rc} after SIGINT\n{self.describe()}"
        events = []
        for _, line in self.out:
            try:
                ev = json.loads(line)
            except ValueError:
                pytest.fail(f"non-JSON line on stdout in json mode: {line!r}\n{self.describe()}", pytrace=False)
            h.validate_event(ev)
            events.append(ev)
        return events


STALL_ID = re.compile(r"^(\d+)-([0-9a-f]+)$")


def test_capture_through_daemon_equals_standalone(bpf, tmp):
    d = Daemon(tmp)
    via = CaptureProc(["--socket", d.sock])
    assert "through loopstalld" in via.ready_line, via.ready_line
    alone = CaptureProc(["--standalone", "--socket", d.sock])
    assert "BPF programs attached" in alone.ready_line, alone.ready_line

    w = Workload("gevent_stall.py", "sleep", "--ms", 300, "--warmup", 0.5, "--after", 0.5)
    d.wait_final_event(w.pid)
    w.finish()
    time.sleep(0.5)
    ev_via = [e for e in via.stop() if e["pid"] == w.pid]
    ev_alone = [e for e in alone.stop() if e["pid"] == w.pid]
    ev_log = [e for e in d.events() if e["pid"] == w.pid]
    show = "\n".join(["via daemon:", *map(json.dumps, ev_via), "standalone:", *map(json.dumps, ev_alone)])

    # Same reports: an early ongoing one, then the final one.
    assert [e["ongoing"] for e in ev_via] == [e["ongoing"] for e in ev_alone], show
    assert ev_via and ev_via[-1]["ongoing"] is False and any(e["ongoing"] for e in ev_via), show
    for a, b in zip(ev_via, ev_alone):
        for k in ("type", "pid", "tid", "comm", "exe", "service", "loop", "python_version", "threshold_ms",
                  "ongoing"):
            assert a[k] == b[k], f"{k}: {a[k]!r} vs {b[k]!r}\n{show}"
        ma, mb = STALL_ID.match(a["stall_id"]), STALL_ID.match(b["stall_id"])
        assert ma and mb and ma.group(1) == mb.group(1) == str(a["tid"]), show
        # Same scheme (tid-iteration start): the starts seen by the two BPF engines are microseconds apart.
        assert abs(int(ma.group(2), 16) - int(mb.group(2), 16)) < 1_000_000, show
        assert abs(a["start_unix_ns"] - b["start_unix_ns"]) < 2_000_000, show
    fa, fb = ev_via[-1], ev_alone[-1]
    assert abs(fa["duration_ms"] - fb["duration_ms"]) <= 0.05 * max(fa["duration_ms"], fb["duration_ms"]), show
    assert fa["cause"] == fb["cause"] == "blocking_syscall", show
    assert [s["name"] for s in fa["syscalls"]] == [s["name"] for s in fb["syscalls"]], show
    assert fa["syscalls"] and fa["syscalls"][0]["name"] == "clock_nanosleep", show
    for k in ("on_cpu", "blocked", "runqueue"):
        assert abs(fa["breakdown_ms"][k] - fb["breakdown_ms"][k]) <= max(5.0, 0.05 * fa["duration_ms"]), show
    # The capture through the daemon shares the daemon's engine: same ids as its event log.
    assert [e["stall_id"] for e in ev_log if not e["ongoing"]] == [fa["stall_id"]], \
        show + "\nlog:\n" + "\n".join(map(json.dumps, ev_log))
    assert d.alive()


def saved_records(path):
    import gzip
    with gzip.open(path, "rt") as f:
        return [json.loads(l) for l in f]


def test_capture_save_through_daemon_writes_the_standalone_file(bpf, tmp):
    """`loopstall capture --save FILE` through the daemon: the same capture file a standalone capture
    writes (header, stalls, loops with their counters, end), and `loopstall report FILE` shows the stall."""
    d = Daemon(tmp)
    via_file, alone_file = tmp / "via.lsc", tmp / "alone.lsc"
    via = CaptureProc(["--socket", d.sock, "--save", via_file])
    assert "through loopstalld" in via.ready_line, via.ready_line
    alone = CaptureProc(["--standalone", "--socket", d.sock, "--save", alone_file])

    w = Workload("gevent_stall.py", "sleep", "--ms", 300, "--warmup", 0.5, "--after", 0.5)
    d.wait_final_event(w.pid)
    w.finish()
    time.sleep(0.5)
    via.stop()
    alone.stop()

    recs = {"via": saved_records(via_file), "alone": saved_records(alone_file)}
    show = "\n".join(f"{k}:\n" + "\n".join(map(json.dumps, v)) for k, v in recs.items())
    for name, r in recs.items():
        assert [x["record"] for x in r[:1]] == ["header"] and r[-1]["record"] == "end", show
        hdr = r[0]
        assert hdr["format"] == "loopstall-capture" and hdr["version"] == 1 and hdr["threshold_ms"] == 100, show
        assert "--save" in hdr["command_line"], show
        assert hdr["start_unix_ns"] <= r[-1]["end_unix_ns"], show
    # The same records of the workload's loop: its stall (the final report) and its counters.
    stalls = {k: [x["event"] for x in v if x["record"] == "stall" and x["event"]["pid"] == w.pid]
              for k, v in recs.items()}
    loops = {k: [x for x in v if x["record"] == "loop" and x["pid"] == w.pid] for k, v in recs.items()}
    assert len(stalls["via"]) == len(stalls["alone"]) == 1, show
    a, b = stalls["via"][0], stalls["alone"][0]
    assert a["ongoing"] is False and b["ongoing"] is False, show
    for k in ("pid", "tid", "comm", "service", "loop", "cause"):
        assert a[k] == b[k], f"{k}: {a[k]!r} vs {b[k]!r}\n{show}"
    assert abs(a["duration_ms"] - b["duration_ms"]) <= 0.05 * max(a["duration_ms"], b["duration_ms"]), show
    assert len(loops["via"]) == len(loops["alone"]) == 1, show
    la, lb = loops["via"][0], loops["alone"][0]
    assert la["loop"] == lb["loop"] == "gevent" and la["iterations"] > 0, show
    assert abs(la["iterations"] - lb["iterations"]) <= max(3, 0.1 * lb["iterations"]), show
    assert sum(la["hist_log2_us"]) > 0, show
    # Nothing of the capture file leaks into what is shown.
    assert not any("\x1e" in line for _, line in via.out), via.describe()

    rep = h.run_cli(["report", via_file, "--format", "json"])
    assert rep.returncode == 0, rep.stderr
    js = json.loads(rep.stdout)
    mine = [l for l in js["loops"] if l["pid"] == w.pid]
    assert mine and mine[0]["stalls"] == 1 and abs(mine[0]["stalled_ms"] - 300) <= 60, js["loops"]
    text = h.run_cli(["report", via_file])
    assert text.returncode == 0 and "clock_nanosleep" in text.stdout, text.stdout + text.stderr
    assert d.alive()


def test_capture_save_through_daemon_to_an_unwritable_path_is_an_error(bpf, tmp):
    d = Daemon(tmp)
    r = h.run_cli(["capture", "--socket", d.sock, "--duration", "1", "--save", tmp / "no" / "such" / "c.lsc"])
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "cannot write capture file" in r.stderr, r.stderr
    assert d.status()["control"]["captures"] == 0
