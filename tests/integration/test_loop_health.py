"""Loop health between stalls (issue 13), standalone: `loopstall top` points at a gevent client
reading a chunked response one byte per recv as churning, at a saturated asyncio loop as
saturated, and shows an idle loop near 0 % — in batch mode (tables) and in its terminal view
under tmux (keys change the sort, q quits). The capture summary has the same utilisation."""
import re
import subprocess

import pytest

from conftest import PY, Workload
from harness.tmux import Tmux

COLS = ("PID", "SERVICE", "LOOP", "ITER/S", "UTIL%", "CPU%", "BLK%", "RUNQ%", "P99_MS<=", "STALL/M", "READS/IT",
        "B/READ")


def parse_tables(text):
    """Each batch table as {pid: {column: value, "now": rest}}."""
    tables = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        head = next((i for i, l in enumerate(lines) if l.split()[:2] == ["PID", "SERVICE"]), None)
        if head is None:
            continue
        rows = {}
        for line in lines[head + 1:]:
            cols = line.split(None, len(COLS))
            if len(cols) < len(COLS):
                continue
            row = dict(zip(COLS, cols))
            row["now"] = cols[len(COLS)] if len(cols) > len(COLS) else ""
            rows[int(row["PID"])] = row
        tables.append((lines[0], rows))
    return tables


@pytest.fixture(scope="module")
def loops(bpf_ready):
    """The byte reader (a few KB/s, read one byte per recv), a saturated loop, an idle loop."""
    started = {
        "reader": Workload("gevent_byte_reader.py", "--seconds", 60, "--chunk", 64, "--gap", 0.005, interp=PY),
        "busy": Workload("asyncio_duty.py", "--duty", 1.0, "--burn-ms", 5, "--seconds", 60, interp=PY),
        "idle": Workload("asyncio_duty.py", "--duty", 0, "--seconds", 60, interp=PY),
    }
    yield started
    for w in started.values():
        w.kill()


def run_top(binary, *args, timeout=40):
    r = subprocess.run([binary, "top", "--standalone", "--batch", *map(str, args)], capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_top_batch_names_the_churning_saturated_and_idle_loops(bpf_ready, loops):
    pids = {name: w.pid for name, w in loops.items()}
    out = run_top(bpf_ready, "--count", 4, "--interval", 1.5, "--sort", "churn",
                  *[a for p in pids.values() for a in ("--pid", p)])
    tables = parse_tables(out)
    assert len(tables) == 4, out
    title, last = tables[-1]
    print(out[-2000:])
    assert set(last) == set(pids.values()), out  # --pid keeps only those, the idle one included
    assert "sorted by churn" in out.splitlines()[1]
    reader, busy, idle = last[pids["reader"]], last[pids["busy"]], last[pids["idle"]]
    # Sorted by churn: the reader first.
    assert list(last)[0] == pids["reader"], out
    assert reader["LOOP"] == "gevent" and busy["LOOP"] == "asyncio" and idle["LOOP"] == "asyncio"
    # Churn: every recv returns one byte, many per iteration; flagged in the NOW column.
    assert float(reader["B/READ"]) <= 1.5, reader
    assert float(reader["READS/IT"]) >= 5, reader
    assert reader["now"].startswith("CHURN:"), reader
    assert reader["STALL/M"] == "0.0", reader  # busy with tiny iterations, never stalled
    # Saturation: the 5 ms callbacks run back to back.
    assert float(busy["UTIL%"]) >= 80, busy
    assert float(busy["ITER/S"]) >= 20, busy
    assert "SATURATED" in busy["now"], busy
    assert busy["B/READ"] == "-", busy  # it reads no socket
    # Idle: listed although it never leaves epoll_wait.
    assert float(idle["UTIL%"]) <= 5, idle
    assert float(idle["ITER/S"]) <= 2, idle
    assert idle["now"] == "", idle
    assert "churning" in title and "1 churning" in title, title


def test_top_terminal_view_under_tmux(bpf_ready, loops):
    pids = [w.pid for w in loops.values()]
    cmd = f"{bpf_ready} top --standalone --interval 1 " + " ".join(f"--pid {p}" for p in pids) + \
        "; echo TOP_EXITED $?; sleep 30"
    with Tmux(cmd, width=200, height=30, prefix="lstop") as t:
        rows = lambda text: [l for l in text.splitlines() if re.match(r"^\s*\d+ ", l)]  # noqa: E731
        text = t.wait_pane(lambda p: "sorted by util" in p and len(rows(p)) == 3 and "SATURATED" in p, 30,
                           "three rows with the saturated loop")
        print(text)
        assert "loopstall top" in text and "standalone" in text
        assert rows(text)[0].split()[0] == str(loops["busy"].pid), text  # sorted by utilisation
        t.send_keys("c")
        text = t.wait_pane(lambda p: "sorted by churn" in p, 10, "the churn sort after pressing c")
        assert rows(text)[0].split()[0] == str(loops["reader"].pid), text
        assert "CHURN:" in rows(text)[0], text
        t.send_keys("n")
        text = t.wait_pane(lambda p: "sorted by pid" in p, 10, "the pid sort after pressing n")
        shown = [int(r.split()[0]) for r in rows(text)]
        assert shown == sorted(shown), text
        t.send_keys("q")
        text = t.wait_pane(lambda p: "TOP_EXITED" in p, 10, "top exiting on q")
        assert "TOP_EXITED 0" in text, text


def test_capture_summary_shows_utilisation_and_churn(bpf_ready, loops):
    pids = {name: w.pid for name, w in loops.items()}
    r = subprocess.run([bpf_ready, "capture", "--standalone", "--format", "text", "--duration", "3",
                        *[a for p in pids.values() for a in ("--pid", str(p))]],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    head = next(l for l in r.stdout.splitlines() if l.split()[:3] == ["PID", "COMM", "LOOP"])
    cols = head.split()
    rows = {int(l.split()[0]): dict(zip(cols, l.split())) for l in r.stdout.splitlines()
            if re.match(r"^\s*\d+ ", l) and len(l.split()) == len(cols)}
    print(r.stdout)
    assert set(pids.values()) <= set(rows), r.stdout
    assert float(rows[pids["busy"]]["BUSY%"]) >= 80, r.stdout
    assert float(rows[pids["idle"]]["BUSY%"]) <= 5, r.stdout
    assert float(rows[pids["reader"]]["B/READ"]) <= 1.5, r.stdout
