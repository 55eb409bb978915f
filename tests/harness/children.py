"""A child process for the pytest suites: its own session, stdout and stderr drained by threads
into .out/.err as (arrival time.time_ns(), line), every wait bounded, killed (SIGKILL to its
process group) when the test or run that started it ends (see killed_on_exit() and fixtures.py).
"""
import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

ALL = []  # every child started in this pytest process: a safety net kills them at session end


class ChildProcess:
    def __init__(self, argv, name=None, env=None, stdout=True):
        """stdout: True (drained into .out), False (/dev/null), or a file descriptor to inherit."""
        self.argv = [str(a) for a in argv]
        self.name = name or Path(self.argv[0]).name
        self.start_ns = time.time_ns()
        self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                      stdout={True: subprocess.PIPE, False: subprocess.DEVNULL}.get(stdout, stdout),
                                      stderr=subprocess.PIPE, start_new_session=True, env=env)
        ALL.append(self)
        self.pid = self.popen.pid
        self.out, self.err = [], []
        self._cond = threading.Condition()
        streams = [(self.popen.stderr, self.err)]
        if stdout is True:
            streams.append((self.popen.stdout, self.out))
        self._threads = [threading.Thread(target=self._drain, args=s, daemon=True) for s in streams]
        for t in self._threads:
            t.start()

    def _drain(self, stream, lines):
        # readline() on a pipe returns as soon as a full line is there: arrival times are honest.
        for raw in iter(stream.readline, b""):
            with self._cond:
                lines.append((time.time_ns(), raw.decode("utf-8", "replace").rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def alive(self):
        return self.popen.poll() is None

    def find_line(self, pred, stream="err"):
        with self._cond:
            for _, line in (self.err if stream == "err" else self.out):
                if pred(line):
                    return line
        return None

    def wait_item(self, pred, timeout, stream):
        """First (recv_ns, line) of stream ("out"/"err") matching pred; fails on timeout or when
        the process ended without it."""
        lines = self.err if stream == "err" else self.out
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for item in lines:
                    if pred(item[1]):
                        return item
                left = deadline - time.monotonic()
                done = self.popen.poll() is not None and not any(t.is_alive() for t in self._threads)
                if left <= 0 or done:
                    pytest.fail(f"{self.name}: no matching line on std{stream} after {timeout}s "
                                f"(rc={self.popen.poll()})\n{self.describe()}", pytrace=False)
                self._cond.wait(min(left, 0.1))

    def wait(self, timeout):
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.name} still running after {timeout}s\n{self.describe()}", pytrace=False)

    def join_output(self, timeout=5):
        for t in self._threads:
            t.join(timeout)

    def signal(self, sig):
        if self.alive():
            self.popen.send_signal(sig)

    def kill(self):
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def describe(self, tail=40):
        with self._cond:
            err = "\n".join(l for _, l in self.err[-tail:])
            out = "\n".join(l for _, l in self.out[-tail:])
        return f"$ {' '.join(self.argv)}\n--- stdout (tail) ---\n{out}\n--- stderr (tail) ---\n{err}"


class Proc(ChildProcess):
    """A ChildProcess whose wait_line() returns the matching line itself (stderr by default: where
    loopstall and loopstalld say "ready"); wait_item() also gives its arrival time."""

    def wait_line(self, pred, timeout, stream="err"):
        """First line matching pred; fails on timeout or when the process ended without it."""
        return self.wait_item(pred, timeout, stream)[1]


@contextlib.contextmanager
def killed_on_exit(also=()):
    """Every child started inside the block (and the children in `also`) is killed when it ends."""
    first = len(ALL)
    try:
        yield
    finally:
        for p in [*also, *ALL[first:]]:
            p.kill()
