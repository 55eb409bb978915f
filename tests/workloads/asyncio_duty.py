"""An asyncio loop busy a chosen share of the time, never stalling (issue 13's utilisation).

Each iteration burns --burn-ms of CPU (below any stall threshold), then the loop sleeps so that
the busy share of wall time is --duty: 1.0 is a saturated loop (every iteration runs a ready
callback), 0 an idle one (the loop only waits in epoll_wait).

  READY <pid>     the loop is running
"""
import argparse
import asyncio
import os
import time


def burn(ms):
    end = time.thread_time() + ms / 1000
    while time.thread_time() < end:
        pass


async def work(burn_ms, duty):
    while True:
        if duty <= 0:
            await asyncio.sleep(3600)
            continue
        burn(burn_ms)
        # Idle time that makes busy / (busy + idle) == duty.
        await asyncio.sleep(burn_ms / 1000 * (1 - duty) / duty if duty < 1 else 0)


async def main(a):
    print("READY", os.getpid(), flush=True)
    task = asyncio.ensure_future(work(a.burn_ms, a.duty))
    await asyncio.sleep(a.seconds)
    task.cancel()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--burn-ms", type=float, default=5)
    p.add_argument("--duty", type=float, default=1.0)
    p.add_argument("--seconds", type=float, default=30)
    asyncio.run(main(p.parse_args()))
