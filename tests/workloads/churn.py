"""Process churn: starts short asyncio processes of Debian's python3.11 (--parallel at a time), each
running its event loop for --iterations iterations of 10 ms and exiting, until --count have run or
--seconds have passed. Every child's argv ends with --tag, so a watch rule can select exactly them.

Prints "CHURN started=N ok=N failed=N seconds=S" when done (also on SIGTERM).
"""
import argparse
import signal
import subprocess
import sys
import time

# What each child runs: an asyncio loop (epoll_wait every iteration), then exit without teardown.
CHILD = (
    "import asyncio, os, sys\n"
    "async def main(n):\n"
    "    for _ in range(n):\n"
    "        await asyncio.sleep(0.01)\n"
    "asyncio.run(main(int(sys.argv[1])))\n"
    "os._exit(0)\n"
)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--parallel", type=int, default=6)
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--tag", default="loopstall-churn")
    p.add_argument("--python", default="/usr/bin/python3.11")
    a = p.parse_args()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    argv = [a.python, "-S", "-c", CHILD, str(a.iterations), a.tag]
    running, started, ok, failed = [], 0, 0, 0
    t0 = time.monotonic()
    while not stop:
        for child in running[:]:
            rc = child.poll()
            if rc is not None:
                running.remove(child)
                ok += rc == 0
                failed += rc != 0
        more = started < a.count and time.monotonic() - t0 < a.seconds
        if not more and not running:
            break
        while more and len(running) < a.parallel:
            running.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
            started += 1
            more = started < a.count
        time.sleep(0.005)
    for child in running:  # SIGTERM: the ones still running are waited for, not counted
        child.wait()
    print(f"CHURN started={started} ok={ok} failed={failed} seconds={time.monotonic() - t0:.1f}", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
