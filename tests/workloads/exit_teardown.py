"""A loop that ends normally, then a long interpreter teardown: Py_Finalize frees a big heap.

Everything after the loop's last epoll_wait is, to the kernel, one iteration that never ends; the
part after Py_Finalize began is teardown, not a stall any request waited for, and must not be
reported. --gevent runs the loop under gevent (Debian's python3.11), else plain asyncio (any
CPython 3.8+). Prints READY, then EXITING <unix_ns> just before the interpreter shuts down; the
test measures the teardown from there to the process's exit.
"""
import argparse
import sys
import time

p = argparse.ArgumentParser(description=__doc__)
p.add_argument("--gevent", action="store_true")
p.add_argument("--objects", type=int, default=3_000_000)
args = p.parse_args()

if args.gevent:
    from gevent import monkey

    monkey.patch_all()
    import gevent

# Freed when Py_Finalize clears this module's globals, after the loop is long gone.
HEAP = [[i, i] for i in range(args.objects)]


def say(*words):
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


if args.gevent:
    def tick():
        for _ in range(50):
            gevent.sleep(0.01)

    g = gevent.spawn(tick)
    gevent.sleep(0.02)
    say("READY", __import__("os").getpid())
    g.join()
else:
    import asyncio

    async def main():
        await asyncio.sleep(0.02)
        say("READY", __import__("os").getpid())
        for _ in range(50):
            await asyncio.sleep(0.01)

    asyncio.run(main())
say("EXITING", time.time_ns())
