"""An aiohttp web app on 127.0.0.1: its handler slow_handler() burns the CPU for --ms ms when the
app requests /slow from itself. aiohttp runs on asyncio's selector loop: "loop": "asyncio".

--greenlet 1 loads greenlet's C module too (as SQLAlchemy's asyncio layer does): still asyncio,
whatever greenlet hints at (it is also eventlet's)."""
import asyncio

from aiohttp import ClientSession, web

import _wl


async def ticker():
    # Light, steady traffic: the loop keeps iterating (loopstall learns the framework from the
    # loop thread's stack while it waits in epoll_wait).
    while True:
        await asyncio.sleep(0.01)


def make_app(ms):
    async def slow_handler(request):
        _wl.burn_cpu(ms)
        return web.Response(text="slow\n")

    app = web.Application()
    app.router.add_get("/slow", slow_handler)
    return app


async def main(args):
    runner = web.AppRunner(make_app(args.ms))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    tick = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.05)
    _wl.ready()
    await asyncio.sleep(args.warmup)
    async with ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{port}/slow") as r:
            assert r.status == 200, r.status
            await r.read()
    await asyncio.sleep(args.after)
    tick.cancel()
    await runner.cleanup()


if __name__ == "__main__":
    ARGS = _wl.parse(__doc__, ms=300, greenlet=0)
    if ARGS.greenlet:
        import greenlet  # noqa: F401
    asyncio.run(main(ARGS))
    _wl.exit_now()
