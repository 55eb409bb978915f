"""`loopstall capture` and its output: a full disk is an error the user sees (no half record,
exit 1), and a stdout nobody reads never holds the capture (it still stops on SIGINT, and says
what it could not write)."""
import fcntl
import json
import os
import re
import signal
import time

import pytest

import harness.fs
from conftest import THRESHOLD_MS, Capture, ChildProcess, workload

DONE_OUTPUT_RE = re.compile(r"; (\d+) records written, (\d+) dropped \(output not keeping up\), (\d+) lost "
                            r"\(write errors\)$")


@pytest.fixture
def nearly_full_tmpfs(tmp_path):
    """A 64 KiB tmpfs with two free pages: the first records fit, the next one is cut by ENOSPC."""
    with harness.fs.nearly_full_tmpfs(tmp_path / "small", free_pages=2) as mnt:
        yield mnt


def done_output_counts(capture):
    lines = [l for _, l in capture.err if l.startswith("loopstall: done:")]
    assert len(lines) == 1, capture.describe()
    m = DONE_OUTPUT_RE.search(lines[0])
    assert m, f"no output account in {lines[0]!r}"
    return tuple(map(int, m.groups()))


def test_full_disk_fails_the_capture_without_half_records(bpf_ready, nearly_full_tmpfs):
    out = nearly_full_tmpfs / "stalls.jsonl"
    cap = Capture(bpf_ready, ["--standalone", "--output", out])
    try:
        # Ongoing and final reports of three stalls, a few KiB each: more than the free page.
        for _ in range(3):
            w = workload("gevent_stall.py", "cpu", "--ms", "300", "--warmup", "1", "--after", "0.5")
            assert w.wait(60) == 0, w.describe()
        time.sleep(0.5)
        cap.popen.send_signal(signal.SIGINT)
        rc = cap.wait(15)
        cap.join_output()
    finally:
        cap.kill()
    data = out.read_bytes()
    assert not data or data.endswith(b"\n"), f"the file ends in half a record: ...{data[-200:]!r}"
    events = [json.loads(l) for l in data.decode().splitlines()]
    written, dropped, lost = done_output_counts(cap)
    print(f"{len(events)} events in the file; written {written}, dropped {dropped}, lost {lost}")
    assert rc == 1, f"records were lost to ENOSPC, the capture must fail\n{cap.describe()}"
    assert lost >= 1 and written == len(events), cap.describe()
    err = "\n".join(l for _, l in cap.err)
    assert err.count("No space left on device") == 1, err
    assert re.search(rf"loopstall: error: {lost} of \d+ records could not be written to {re.escape(str(out))}", err), err


def test_stdout_nobody_reads_does_not_hold_the_capture(bpf_ready):
    """The capture's stdout is a full pipe that is never read. Before, the first report blocked the
    detector in write(2) and SIGINT could not stop it; now it stops, counts what it dropped and
    exits 0."""
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, fcntl.F_SETFL, os.O_NONBLOCK)
        try:
            while True:
                os.write(w, b"x" * 4096)
        except BlockingIOError:
            pass
        fcntl.fcntl(w, fcntl.F_SETFL, 0)
        cap = ChildProcess([bpf_ready, "capture", "--standalone", "--format", "json", "--threshold-ms",
                            str(THRESHOLD_MS)], name="loopstall capture", stdout=w)
        try:
            cap.wait_item(lambda l: l.startswith("loopstall: ready"), 30, "err")
            wl = workload("gevent_stall.py", "cpu", "--ms", "300", "--warmup", "1", "--after", "0.5")
            assert wl.wait(60) == 0, wl.describe()
            time.sleep(0.5)
            t0 = time.monotonic()
            cap.signal(signal.SIGINT)
            rc = cap.wait(15)
            stop_s = time.monotonic() - t0
            cap.join_output()
        finally:
            cap.kill()
        written, dropped, lost = done_output_counts(cap)
        print(f"stopped {stop_s:.1f} s after SIGINT; written {written}, dropped {dropped}, lost {lost}")
        assert rc == 0, cap.describe()
        assert stop_s < 10
        assert written == 0 and dropped >= 1 and lost == 0, cap.describe()
    finally:
        os.close(r)
        os.close(w)
