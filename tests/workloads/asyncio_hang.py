"""The asyncio loop hangs for --seconds in hang(), a callback: a blocking time.sleep, or a CPU spin with --spin."""
import asyncio
import sys

import _wl


def hang(seconds, spin):
    _wl.hang(seconds, spin)


async def main(args, spin):
    async def ticker():
        while True:
            await asyncio.sleep(0.01)

    asyncio.ensure_future(ticker())
    await asyncio.sleep(0.05)
    _wl.ready()
    await asyncio.sleep(args.warmup)
    asyncio.get_running_loop().call_soon(hang, args.seconds, spin)
    await asyncio.sleep(args.after)


if __name__ == "__main__":
    spin = "--spin" in sys.argv
    if spin:
        sys.argv.remove("--spin")
    asyncio.run(main(_wl.parse(__doc__, seconds=5), spin))
    _wl.exit_now()
