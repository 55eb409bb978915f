"""Stall storm for the cost-per-report benchmark (bench part "storm").

Starts --procs gevent processes. In each, the hub stalls --ms milliseconds
every --period milliseconds in an unpatched time.sleep called --depth Python
frames deep (a bad deploy: every worker stalls, with real-size stacks).
Prints "READY <pids>" once every child runs, then runs until SIGTERM/SIGINT.
Run with /usr/bin/python3.11 (Debian's interpreter, which has gevent).
"""
import argparse
import os
import signal
import sys
import time

real_sleep = time.sleep  # bound before monkey-patching: blocks the hub


def child(a, ready_w):
    from gevent import monkey

    monkey.patch_all()
    import gevent

    def deep(n):
        if n <= 0:
            real_sleep(a.ms / 1000.0)
            return 0
        return deep(n - 1) + 1

    os.write(ready_w, b"1")
    os.close(ready_w)
    gap = max(a.period - a.ms, 1) / 1000.0
    while True:
        deep(a.depth)
        gevent.sleep(gap)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", type=int, default=50)
    ap.add_argument("--ms", type=float, default=150)
    ap.add_argument("--period", type=float, default=200)
    ap.add_argument("--depth", type=int, default=200)
    a = ap.parse_args()
    sys.setrecursionlimit(a.depth + 200)

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    pids = []
    r, w = os.pipe()
    for _ in range(a.procs):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            child(a, w)
            os._exit(0)
        pids.append(pid)
    os.close(w)
    got = 0
    deadline = time.monotonic() + 60
    while got < a.procs and time.monotonic() < deadline:
        b = os.read(r, a.procs)
        if not b:
            break
        got += len(b)
    print("READY" if got == a.procs else "NOT-READY", *pids, flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
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


if __name__ == "__main__":
    main()
