"""Plain asyncio: the coroutine blocking_coro() calls time.sleep() and blocks the event loop.

Pure stdlib, Python 3.8+: the tests run it on every interpreter they find.
"""
import asyncio
import time

import _wl


async def ticker():
    while True:
        await asyncio.sleep(0.01)


async def blocking_coro(ms):
    _wl.stall_start()
    time.sleep(ms / 1000.0)  # 3.11+: clock_nanosleep; 3.8-3.10: pselect6
    _wl.stall_end()


async def main(args):
    tick = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.05)  # the selector has called epoll_wait
    _wl.ready()
    await asyncio.sleep(args.warmup)
    await blocking_coro(args.ms)
    await asyncio.sleep(args.after)
    tick.cancel()


if __name__ == "__main__":
    asyncio.run(main(_wl.parse(__doc__, ms=300)))
    _wl.exit_now()
