"""loopstall never watches its own processes, and classifies a process by the code it runs.

loopstalld reads the stacks of the processes it watches: it maps their libpython and gevent's
modules read-only for symbols and unwind tables. A classifier that looked at every mapping once
listed loopstalld as a gevent loop. Here a daemon is baited into mapping exactly those files, then
two standalone captures run beside it (text without and JSON with --all-loops): neither lists the
daemon, itself or the other capture, while a real gevent workload is listed.
"""
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BIN, Capture, Proc, skip_or_fail, workload

PYENV_311 = sorted(Path(os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))).glob(
    "versions/3.11.*/bin/python3.11"))
LOOPSTALLD = Path(os.environ.get("LOOPSTALLD_BIN", str(BIN.parent / "loopstalld")))
ROW = re.compile(r"^\s*(\d+) (\S+)\s+(\S+)\s+(\d+)\s")  # the summary's PID COMM LOOP ITERATIONS


def read_only_maps(pid):
    """Paths the process maps without running them."""
    out = set()
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and "x" not in parts[1]:
                out.add(parts[5].strip())
    return out


def final_events(path, pid):
    if not path.exists():
        return []
    evs = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
    return [e for e in evs if e["pid"] == pid and not e["ongoing"]]


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}", pytrace=False)
        time.sleep(0.1)


def test_loopstall_processes_are_never_loops(bpf_ready, tmp_path):
    if not (LOOPSTALLD.is_file() and os.access(LOOPSTALLD, os.X_OK)):
        skip_or_fail(f"loopstalld not found at {LOOPSTALLD} (set LOOPSTALLD_BIN)")
    if not PYENV_311:
        skip_or_fail("no pyenv python3.11 (a shared libpython) to bait the daemon with")
    run_dir = Path(tempfile.mkdtemp(prefix="ls-self-", dir="/tmp"))  # unix socket paths must stay short
    events = tmp_path / "events.jsonl"
    daemon = Proc([LOOPSTALLD, "--control-socket", run_dir / "control.sock", "--metrics-listen", "127.0.0.1:0",
                   "--events", events], name="loopstalld")
    procs = [daemon]
    try:
        daemon.wait_line(lambda l: l.startswith("loopstalld: ready"), 30, "err")
        # The bait: the daemon reads the stacks of an interpreter with a shared libpython and of a
        # gevent process. They keep running so the daemon keeps what it mapped for them.
        bait = [workload("asyncio_sleep.py", "--ms", 300, "--after", 60, interp=str(PYENV_311[-1])),
                workload("gevent_stall.py", "cpu", "--ms", 300, "--after", 60)]
        procs += bait
        for b in bait:
            wait(lambda: final_events(events, b.pid), 15, f"the daemon's report of {b.name}")
        mapped = read_only_maps(daemon.pid)
        assert any("libpython3" in m for m in mapped) and any("/gevent/" in m for m in mapped), \
            f"the bait did not work: loopstalld maps no libpython/gevent file read-only:\n{sorted(mapped)}"

        text = Capture(bpf_ready, ["--standalone"], fmt="text")
        js = Capture(bpf_ready, ["--standalone", "--all-loops"], fmt="json")
        procs += [text, js]
        w = workload("gevent_stall.py", "cpu", "--ms", 300, "--after", 0.5)
        procs.append(w)
        assert w.wait(30) == 0, w.describe()
        for c in (text, js):
            c.stop()
    finally:
        for p in procs:
            p.kill()
        shutil.rmtree(run_dir, ignore_errors=True)

    ours = {daemon.pid: "loopstalld", text.pid: "text capture", js.pid: "json capture"}
    lines = [l for _, l in text.out]
    starts = [i for i, l in enumerate(lines) if l.startswith("--- summary:")]
    assert len(starts) == 1, f"one summary expected:\n" + "\n".join(lines)
    summary = lines[starts[0]:]
    rows = {int(m.group(1)): m for m in map(ROW.match, summary) if m}
    shown = "\n".join(summary)
    print(shown)
    for pid, what in ours.items():
        assert pid not in rows, f"{what} (pid {pid}) listed as a loop in the summary:\n{shown}"
    assert w.pid in rows and rows[w.pid].group(3) == "gevent", f"gevent workload not listed as gevent:\n{shown}"
    assert int(rows[w.pid].group(4)) > 10, f"the workload's hub ticks every 10 ms:\n{shown}"

    evs = js.events()
    for pid, what in ours.items():
        assert not [e for e in evs if e["pid"] == pid], f"{what} (pid {pid}) reported as a loop:\n{evs}"
    finals = [e for e in evs if e["pid"] == w.pid and not e["ongoing"]]
    assert len(finals) == 1 and finals[0]["loop"] == "gevent", f"the gevent stall, as gevent:\n{evs}"
