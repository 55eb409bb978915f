"""Harness for the loopstall integration tests: run `loopstall capture` around real workloads.

Run as root:  /usr/bin/python3.11 -m pytest tests/integration   (~80 s)
  LOOPSTALL_BIN     binary under test (default <repo>/build/loopstall)
  LOOPSTALL_SCHEMA  event schema (default: docs/contract/stall-event.schema.json, the contract's copy)
  CI=true           missing binary / not root / no BPF fail instead of skipping

Every child runs in its own session and is killed (SIGKILL to its process group) when the run
that started it ends, and again at session end as a safety net. Every wait has a timeout.
"""
import json
import signal
import time

import pytest

from harness.ci import require_executable, require_root_and_bpf, skip_or_fail  # noqa: F401 (tests import it)
from harness.children import ALL, ChildProcess, Proc, killed_on_exit  # noqa: F401
from harness.events import parse_events
from harness.fixtures import kill_leftovers, kill_test_children  # noqa: F401 (fixtures)
from harness.paths import LOOPSTALL as BIN, PY, WORKLOADS  # noqa: F401
from harness.workloads import Workload

THRESHOLD_MS = 100

workload = Workload  # the suite's tests start their workloads by this name


@pytest.fixture(scope="session")
def loopstall_bin():
    return require_executable(BIN, "build it or set LOOPSTALL_BIN")


@pytest.fixture(scope="session")
def bpf_ready(loopstall_bin):
    require_root_and_bpf("loopstall capture")
    return loopstall_bin


class Capture(Proc):
    """`loopstall capture`, started and waited for until its BPF programs are attached."""

    def __init__(self, binary, args=(), fmt="json", threshold_ms=THRESHOLD_MS, ready_timeout=30):
        argv = [binary, "capture", "--format", fmt]
        if threshold_ms is not None:
            argv += ["--threshold-ms", str(threshold_ms)]
        super().__init__([*argv, *args], name="loopstall capture")
        self.fmt = fmt
        try:
            self.ready_ns, _ = self.wait_item(lambda l: l.startswith("loopstall: ready"), ready_timeout, "err")
        except BaseException:
            self.kill()
            raise

    def stop(self, timeout=15):
        """SIGINT, then the exit code must be 0 (the contract: report what is pending, exit 0)."""
        if self.popen.poll() is None:
            self.sigint_ns = time.time_ns()
            self.popen.send_signal(signal.SIGINT)
        rc = self.wait(timeout)
        self.join_output()
        assert rc == 0, f"capture exited {rc} after SIGINT\n{self.describe()}"

    def events(self):
        """Every stdout line parsed and validated against the schema; each dict gets the arrival
        time of its line as '_recv_ns' (not part of the output)."""
        return parse_events(self.out, self.describe)


class Run:
    """Result of one capture around workloads: .events (all, validated), .capture, .workloads."""

    def __init__(self, capture, workloads, extra):
        self.capture, self.workloads, self.extra = capture, workloads, extra
        self.events = capture.events() if capture.fmt == "json" else []
        self.w = workloads[0] if workloads else None

    def of(self, pid):
        return [e for e in self.events if e["pid"] == pid]

    def describe(self):
        events = "\n".join(json.dumps({k: v for k, v in e.items() if k != "_recv_ns"}) for e in self.events)
        return f"{events or '(no events)'}\n{self.capture_tail()}"

    def capture_tail(self, lines=8):
        """The capture's last stderr lines: its warnings (a probe not attached) and its closing
        account (samples taken/skipped, repairs, drops), which explain missing evidence."""
        err = "\n".join(l for _, l in self.capture.err[-lines:])
        return f"--- capture stderr (tail) ---\n{err}"


def run_capture(binary, start_workloads, capture_args=(), before=None, fmt="json",
                threshold_ms=THRESHOLD_MS, workload_timeout=60, settle=0.5):
    """Start the capture, wait for ready, start the workloads (start_workloads() -> list of
    Workload, plus optional extra processes), wait for them to exit, wait `settle` s so the last
    events are out, SIGINT the capture and collect its output.

    before: workloads started BEFORE the capture (already running); they are waited for too.
    """
    spawned = list(before or [])
    # Everything this run starts (hogs, wrk, half-started workloads too), and `before`, dies with it.
    with killed_on_exit(also=spawned):
        capture = Capture(binary, capture_args, fmt=fmt, threshold_ms=threshold_ms)
        started = start_workloads() if start_workloads else []
        extra = {}
        if isinstance(started, tuple):
            started, extra = started
        spawned += started
        for w in spawned:
            rc = w.wait(workload_timeout)
            assert rc == 0, f"workload {w.name} exited {rc}\n{w.describe()}"
        time.sleep(settle)
        capture.stop()
        return Run(capture, spawned, extra)


@pytest.fixture(scope="session")
def cached_runs():
    """Some runs feed several tests (timing, stacks, breakdown): run them once per session."""
    return {}
