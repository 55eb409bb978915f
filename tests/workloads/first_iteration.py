"""The loop's very first iteration stalls: the process calls epoll_wait once (a cooperative sleep of
--idle seconds, or none with --idle 0), then blocks the loop for --seconds (a real sleep, or a CPU spin
with --spin). No ticker: the stalling iteration is the one right after the process's first epoll_wait.
--framework gevent (the main greenlet blocks inside the hub's iteration) or asyncio (a callback)."""
import sys
import time

import _wl

real_sleep = time.sleep


def block(seconds, spin):
    _wl.hang(seconds, spin, real_sleep)


def gevent_main(args, spin):
    import gevent

    _wl.ready()
    gevent.sleep(args.idle)  # the hub's first epoll_wait (timeout 0 with --idle 0)
    block(args.seconds, spin)
    gevent.sleep(args.after)


def asyncio_main(args, spin):
    import asyncio

    async def run():
        _wl.ready()
        await asyncio.sleep(args.idle)  # the selector's first epoll_wait
        block(args.seconds, spin)
        await asyncio.sleep(args.after)

    asyncio.run(run())


if __name__ == "__main__":
    spin = "--spin" in sys.argv
    if spin:
        sys.argv.remove("--spin")
    framework = "gevent"
    if "--framework" in sys.argv:
        i = sys.argv.index("--framework")
        framework = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    args = _wl.parse(__doc__, seconds=3, idle=1.5)
    (gevent_main if framework == "gevent" else asyncio_main)(args, spin)
    _wl.exit_now()
