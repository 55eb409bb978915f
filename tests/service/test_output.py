"""The event log never stops detection: a FIFO nobody opens, a stdout pipe nobody reads, a full
disk. Stalls are still counted in /metrics, the daemon reaches ready and stays up, whole records
only reach the file, and what the output did not take is counted."""
import fcntl
import json
import os
import signal
import time

import pytest

import service_harness as h
from service_harness import Daemon, Workload, wait_for


def stalls_total(d):
    _, samples = h.parse_exposition(d.metrics_text())
    return sum(v for name, _, v in samples if name == "loopstall_stalls_total")


def output_dropped(d, reason):
    _, samples = h.parse_exposition(d.metrics_text())
    return sum(v for name, labels, v in samples
               if name == "loopstall_output_dropped_total" and labels == {"output": "events", "reason": reason})


def stall_counted(d, before, n=1):
    """Runs a gevent workload with one 300 ms CPU stall; waits until /metrics counted it."""
    w = Workload("gevent_stall.py", "cpu", "--ms", 300, "--warmup", 1, "--after", 1)
    wait_for(lambda: stalls_total(d) >= before + n, 20, what="loopstall_stalls_total to count the stall",
             describe=d.describe)
    w.finish()


def fill_pipe(fd):
    """Writes into the pipe behind fd until it is full (nobody reads it)."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except BlockingIOError:
        pass
    fcntl.fcntl(fd, fcntl.F_SETFL, flags)


def test_fifo_without_reader_does_not_block_start_or_detection(bpf, tmp):
    """--events FIFO: open(2) used to wait for a reader before READY; now the daemon starts, and
    with the FIFO full (a reader that stopped) stalls are still detected."""
    fifo = tmp / "events.fifo"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    d = Daemon(tmp, events=fifo, ready_timeout=30)
    print(f"ready after {time.monotonic() - t0:.1f} s with nobody reading {fifo}")
    before = stalls_total(d)
    stall_counted(d, before)
    # A reader that opens the FIFO, fills it and stops reading.
    stuck = os.open(fifo, os.O_RDWR)
    try:
        fill_pipe(stuck)
        stall_counted(d, before + 1)
        assert h.http_get(f"http://{d.metrics_addr}/healthz")[0] == 200
        t1 = time.monotonic()
        assert d.stop(timeout=10) == 0, d.describe()
        print(f"stopped {time.monotonic() - t1:.1f} s after SIGTERM with its output stuck")
    finally:
        os.close(stuck)


def test_stdout_pipe_nobody_reads(bpf, tmp):
    """--events - with stdout a full pipe that is never read (a stuck journal or log shipper)."""
    r, w = os.pipe()
    try:
        fill_pipe(w)
        d = Daemon(tmp, events="-", stdout=w)
        before = stalls_total(d)
        stall_counted(d, before)
        stall_counted(d, before + 1)
        assert d.stop(timeout=10) == 0, d.describe()
        # What was still queued for the stuck pipe at exit is counted, not waited for.
        assert any("records not written to stdout" in l for _, l in d.err), d.describe()
    finally:
        os.close(r)
        os.close(w)


@pytest.fixture
def small_tmpfs(tmp):
    """A 64 KiB tmpfs, nearly full: two free pages for the output."""
    with h.nearly_full_tmpfs(tmp / "small", free_pages=2) as mnt:
        yield mnt


def whole_lines(path):
    """Every line of the file, parsed; fails on a cut record."""
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"{path} ends in half a record: ...{data[-200:]!r}"
    return [json.loads(l) for l in data.decode().splitlines()]


def test_daemon_on_a_full_disk_keeps_detecting_and_counts_the_loss(bpf, tmp, small_tmpfs):
    events = small_tmpfs / "events.jsonl"
    d = Daemon(tmp, events=events)
    before = stalls_total(d)
    for i in range(3):  # ongoing + final reports of a few KiB each: more than the free page
        stall_counted(d, before + i)
    lost = wait_for(lambda: output_dropped(d, "write_error"), 5,
                    what='loopstall_output_dropped_total{output="events",reason="write_error"} > 0',
                    describe=d.describe)
    assert d.alive()
    evs = whole_lines(events)
    print(f"{len(evs)} events in the file, {lost:.0f} lost to ENOSPC")
    assert any("No space left on device" in l for _, l in d.err), d.describe()
    assert sum("cannot write to" in l for _, l in d.err) == 1, "one warning, not one per record"
    assert d.stop(timeout=10) == 0, d.describe()
