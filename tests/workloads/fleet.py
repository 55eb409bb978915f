"""Forks a workload's processes, waits until each runs, and stops and reaps them on SIGTERM/SIGINT:
shared by the workloads that start many processes (gevent_storm.py here, bench/asyncio_loops.py and
bench/gevent_storm_deep.py)."""
import os
import signal
import time

STOP = {signal.SIGTERM, signal.SIGINT}


class Fleet:
    """procs children, each running child(index, ready_fd): it writes one byte to ready_fd once it
    runs and must not return. SIGTERM/SIGINT stay blocked in the parent (sigwait takes them) and
    in the children until they unblock STOP themselves."""

    def __init__(self, procs, child, ready_timeout_s=60):
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP)
        self.pids = []
        r, w = os.pipe()
        for i in range(procs):
            pid = os.fork()
            if pid == 0:
                os.close(r)
                try:
                    child(i, w)
                finally:
                    os._exit(0)
            self.pids.append(pid)
        os.close(w)
        got = 0
        deadline = time.monotonic() + ready_timeout_s
        while got < procs and time.monotonic() < deadline:
            b = os.read(r, procs)
            if not b:
                break
            got += len(b)
        os.close(r)
        self.ready = got == procs

    def wait_and_stop(self):
        """Until SIGTERM or SIGINT; then stops the children and reaps them."""
        signal.sigwait(STOP)
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in self.pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def run(procs, child):
    """The whole life of a fleet whose children need no index: prints "READY <pids>" once all
    run (NOT-READY after 60 s), then waits for SIGTERM/SIGINT and stops them."""
    fleet = Fleet(procs, lambda _index, ready_w: child(ready_w))
    print("READY" if fleet.ready else "NOT-READY", *fleet.pids, flush=True)
    fleet.wait_and_stop()
