"""asyncio.start_server on uvloop, on 127.0.0.1: the connection handler slow_handler() burns the
CPU for --ms ms when the workload connects to itself. "loop": "uvloop"."""
import asyncio

import uvloop

import _wl


async def ticker():
    # Steady light traffic: the loop keeps iterating.
    while True:
        await asyncio.sleep(0.01)


async def main(args):
    async def slow_handler(reader, writer):
        await reader.readline()
        _wl.burn_cpu(args.ms)
        writer.write(b"slow\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(slow_handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    assert type(asyncio.get_running_loop()).__module__.startswith("uvloop"), asyncio.get_running_loop()
    tick = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.05)
    _wl.ready()
    await asyncio.sleep(args.warmup)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET\n")
    assert await reader.readline() == b"slow\n"
    writer.close()
    await asyncio.sleep(args.after)
    tick.cancel()
    server.close()


if __name__ == "__main__":
    uvloop.install()
    asyncio.run(main(_wl.parse(__doc__, ms=300)))
    _wl.exit_now()
