"""A Python process that starts its event loop only when told to: it prints STARTED <pid> at once
(no epoll_wait yet), waits for --go-file to exist (plain time.sleep polling, no event loop), then
runs an asyncio loop that stalls --count times for --ms ms (time.sleep in a coroutine), one stall
every --every seconds, printing READY <pid> and the STALL_START/STALL_END lines of _wl.

Lets a test place a process's first epoll_wait exactly: e.g. after a capture through the daemon
classified the host (issue 10, item 3).
"""
import argparse
import asyncio
import os
import time

import _wl


async def ticker():
    while True:
        await asyncio.sleep(0.01)


async def main(args):
    tick = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.05)
    _wl.ready()
    for _ in range(int(args.count)):
        await asyncio.sleep(args.every)
        _wl.stall_start()
        time.sleep(args.ms / 1000.0)
        _wl.stall_end()
    await asyncio.sleep(args.after)
    tick.cancel()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--go-file", required=True)
    p.add_argument("--ms", type=float, default=300)
    p.add_argument("--count", type=int, default=4)
    p.add_argument("--every", type=float, default=1.0)
    p.add_argument("--after", type=float, default=0.5)
    p.add_argument("marks", nargs="*", help="ignored: lets a test mark the command line for a watch rule")
    a = p.parse_args()
    _wl.say("STARTED", os.getpid())
    while not os.path.exists(a.go_file):
        time.sleep(0.02)
    asyncio.run(main(a))
    _wl.exit_now()
