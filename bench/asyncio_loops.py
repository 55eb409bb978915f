"""Many watched event loops for the daemon-cost benchmark.

Starts --procs processes with --threads threads each; every thread runs its
own asyncio loop doing `await asyncio.sleep(--interval)` forever, i.e. about
1/interval iterations per second (each one ends in epoll_wait). Prints
"READY <pids>" once every loop has run at least one iteration, then runs
until killed (SIGTERM/SIGINT stop the children too).
Run with /usr/bin/python3.11.
"""
import argparse
import asyncio
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "workloads"))
import fleet  # noqa: E402  (tests/workloads/fleet.py)


def child(nthreads, interval, ready_w):
    started = threading.Barrier(nthreads + 1)

    async def loop_body():
        await asyncio.sleep(0)
        started.wait()
        while True:
            await asyncio.sleep(interval)

    for i in range(nthreads):
        threading.Thread(target=asyncio.run, args=(loop_body(),), name=f"loop{i}", daemon=True).start()
    started.wait()
    os.write(ready_w, b"1")
    os.close(ready_w)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    os._exit(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=25)
    ap.add_argument("--interval", type=float, default=0.01)
    args = ap.parse_args()
    fleet.run(args.procs, lambda ready_w: child(args.threads, args.interval, ready_w))
    sys.exit(0)


if __name__ == "__main__":
    main()
