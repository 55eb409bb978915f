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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "workloads"))
import fleet  # noqa: E402  (tests/workloads/fleet.py)

real_sleep = time.sleep  # bound before monkey-patching: blocks the hub


def child(a, ready_w):
    # The parent blocks SIGTERM/SIGINT for its sigwait: the storm dies of them.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, fleet.STOP)
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
    fleet.run(a.procs, lambda ready_w: child(a, ready_w))


if __name__ == "__main__":
    main()
