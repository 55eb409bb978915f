"""A tornado web app on 127.0.0.1: SlowHandler.get() burns the CPU for --ms ms when the app
fetches /slow from itself. tornado runs on asyncio's loop: "loop": "asyncio"."""
import asyncio

import tornado.httpclient
import tornado.httpserver
import tornado.netutil
import tornado.web

import _wl

MS = 300.0


class SlowHandler(tornado.web.RequestHandler):
    def get(self):
        _wl.burn_cpu(MS)
        self.write("slow\n")


async def ticker():
    # Steady light traffic: the loop keeps iterating.
    while True:
        await asyncio.sleep(0.01)


async def main(args):
    global MS
    MS = args.ms
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    server = tornado.httpserver.HTTPServer(tornado.web.Application([(r"/slow", SlowHandler)]))
    server.add_sockets(sockets)
    tick = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.05)
    _wl.ready()
    await asyncio.sleep(args.warmup)
    r = await tornado.httpclient.AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/slow")
    assert r.code == 200, r.code
    await asyncio.sleep(args.after)
    tick.cancel()
    server.stop()


if __name__ == "__main__":
    asyncio.run(main(_wl.parse(__doc__, ms=300)))
    _wl.exit_now()
