"""Forks the benchmark's workload processes and stops them: shared by the
bench workloads that start many processes (asyncio_loops.py,
gevent_storm_deep.py)."""
import os
import signal
import time

STOP = {signal.SIGTERM, signal.SIGINT}


def run(procs, child):
    """Forks `procs` children running child(ready_fd) (each writes one byte to
    ready_fd once it runs, and must not return); prints "READY <pids>" once all
    are ready (NOT-READY after 60 s), waits for SIGTERM/SIGINT, then stops and
    reaps the children."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP)
    pids = []
    r, w = os.pipe()
    for _ in range(procs):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                child(w)
            finally:
                os._exit(0)
        pids.append(pid)
    os.close(w)
    got = 0
    deadline = time.monotonic() + 60
    while got < procs and time.monotonic() < deadline:
        b = os.read(r, procs)
        if not b:
            break
        got += len(b)
    print("READY" if got == procs else "NOT-READY", *pids, flush=True)
    signal.sigwait(STOP)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
