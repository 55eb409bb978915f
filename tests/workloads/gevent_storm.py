"""A stall storm (tests/service/test_storm.py): --procs gevent processes whose hubs each stall
--ms ms every --period ms in an unpatched time.sleep called from repeat_stall() --depth frames
deep, for --seconds s; a bad deploy where every worker stalls again and again, always the same way.

In the middle of the storm, two of them do something else once:
  process 0   a CPU burn of --ms ms in other_culprit() instead of its sleep (another culprit)
  process 1   one stall of --hang-ms ms in the same repeat_stall() (a hang)

Protocol (stdout): READY <parent pid> <child pids...> once every hub runs (idle: it stalls only
once --go-file exists, so that the tracer watches it first); then, per child, when its storm is
over, DONE <pid> <stalls it made>; then ALL_DONE <sum>. Runs until SIGTERM after that.
Every stall counted here is an iteration of at least --ms ms (and nothing else in these
processes blocks the hub: the idle iterations are a gevent.sleep of --gap-ms ms).
"""
import argparse
import os
import signal
import sys
import time

import fleet

real_sleep = time.sleep  # bound before monkey-patching: blocks the hub


def other_culprit(ms):
    end = time.monotonic() + ms / 1000.0
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


def repeat_stall(n, ms):
    if n <= 0:
        real_sleep(ms / 1000.0)
        return 0
    return repeat_stall(n - 1, ms) + 1


def child(a, index, ready_w, done_r, done_w):
    os.close(done_r)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, fleet.STOP)
    from gevent import monkey

    monkey.patch_all()
    import gevent

    gevent.sleep(0.01)  # the hub runs: the tracer sees its first epoll_wait
    os.write(ready_w, b"1")
    os.close(ready_w)
    while not os.path.exists(a.go_file):
        gevent.sleep(0.05)
    # Staggered by --stagger-ms: not every process's first stall at the same moment (the first
    # read of a process's stacks is the slow one).
    gevent.sleep(index * a.stagger_ms / 1000.0)
    gap = max(a.period - a.ms, 1) / 1000.0
    start = time.monotonic()
    odd_at = start + a.seconds / 2
    stalls = 0
    odd_done = False
    while time.monotonic() - start < a.seconds:
        if not odd_done and time.monotonic() >= odd_at and index in (0, 1):
            odd_done = True
            if index == 0:
                other_culprit(a.ms)
            else:
                repeat_stall(a.depth, a.hang_ms)
        else:
            repeat_stall(a.depth, a.ms)
        stalls += 1
        gevent.sleep(gap)
    os.write(done_w, f"DONE {os.getpid()} {stalls}\n".encode())
    while True:  # idle until stopped: the tracer keeps a live process
        gevent.sleep(0.1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", type=int, default=12)
    ap.add_argument("--ms", type=float, default=150)
    ap.add_argument("--period", type=float, default=200)
    ap.add_argument("--depth", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--hang-ms", type=float, default=3000)
    ap.add_argument("--stagger-ms", type=float, default=50)
    ap.add_argument("--go-file", required=True)
    a = ap.parse_args()
    sys.setrecursionlimit(a.depth + 200)
    done_r, done_w = os.pipe()
    procs = fleet.Fleet(a.procs, lambda i, ready_w: child(a, i, ready_w, done_r, done_w))
    os.close(done_w)
    print("READY", os.getpid(), *procs.pids, flush=True)
    total = 0
    buf = b""
    done = 0
    while done < a.procs:
        b = os.read(done_r, 4096)
        if not b:
            break
        buf += b
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            print(line.decode(), flush=True)
            total += int(line.split()[2])
            done += 1
    print("ALL_DONE", total, flush=True)
    procs.wait_and_stop()


if __name__ == "__main__":
    main()
