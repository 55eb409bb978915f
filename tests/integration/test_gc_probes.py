"""GC USDT probes: attached while a capture runs, and gone again after it.

Debian's python3.11 guards gc__start/gc__done with semaphores: the probe sites run only while a
tracer holds them. loopstall attaches per binary for every process (the kernel increments the
semaphore in each process mapping the file) and must leave them at zero when it stops, or every
Python process on the host keeps paying for the probes.
"""
import re
import subprocess
import time

import pytest

from conftest import PY, Capture, skip_or_fail, workload


def semaphore_addresses(binary):
    try:
        notes = subprocess.run(["readelf", "-n", binary], capture_output=True, text=True, timeout=30).stdout
    except FileNotFoundError:
        skip_or_fail("readelf (binutils) is not installed")
    found = {}
    for name in ("gc__start", "gc__done"):
        m = re.search(rf"Name: {name}\n\s+Location: \S+, Base: \S+, Semaphore: (0x[0-9a-f]+)", notes)
        if m:
            found[name] = int(m.group(1), 16)
    return found


def read_u16(pid, addr):
    with open(f"/proc/{pid}/mem", "rb") as mem:
        mem.seek(addr)
        return int.from_bytes(mem.read(2), "little")


def test_gc_semaphores_held_during_capture_and_released_after(bpf_ready):
    sems = semaphore_addresses(PY)
    if set(sems) != {"gc__start", "gc__done"}:
        pytest.skip(f"{PY} has no gc__start/gc__done USDT semaphores")
    # python3.11 is not PIE: the notes' addresses are the runtime addresses.
    w = workload("gevent_stall.py", "cpu", "--ms", "200", "--warmup", "30", "--after", "1")
    try:
        before = {name: read_u16(w.pid, a) for name, a in sems.items()}
        assert before == {"gc__start": 0, "gc__done": 0}, f"semaphores set before any tracer ran: {before}"
        capture = Capture(bpf_ready)  # returns once its programs are attached
        try:
            # The process existed before the capture: it is classified (and its binary's probes
            # attached) while the capture starts; give the attach a moment all the same.
            deadline = time.monotonic() + 5
            during = {}
            while time.monotonic() < deadline:
                during = {name: read_u16(w.pid, a) for name, a in sems.items()}
                if all(v >= 1 for v in during.values()):
                    break
                time.sleep(0.1)
            assert all(v >= 1 for v in during.values()), \
                f"GC probes not attached while capturing: semaphores {during}\n{capture.describe()}"
        finally:
            capture.stop()
        assert w.popen.poll() is None, "the workload ended before the capture did"
        after = {name: read_u16(w.pid, a) for name, a in sems.items()}
        assert after == {"gc__start": 0, "gc__done": 0}, f"semaphores left set after the capture ended: {after}"
    finally:
        w.kill()
