"""A healthy gevent HTTP server on 127.0.0.1:--port that answers at once; exits after --seconds.

A StreamServer with a minimal keep-alive HTTP/1.1 handler: every response goes out in one send
(pywsgi sends headers and body separately, which meets Nagle + delayed ACK and caps wrk at
~700 req/s). It never blocks the hub, so the tracer must report no stall for it.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402

import gevent  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

import _wl  # noqa: E402

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"


def handle(sock, _addr):
    buf = b""
    with sock:
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionError:  # wrk resets its connections when it stops
                return
            if not data:
                return
            buf += data
            # wrk sends GETs without bodies: one response per complete header block.
            while b"\r\n\r\n" in buf:
                _, buf = buf.split(b"\r\n\r\n", 1)
                sock.sendall(RESPONSE)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seconds", type=float, default=5.0)
    args = p.parse_args()
    server = StreamServer(("127.0.0.1", args.port), handle)
    server.start()
    gevent.sleep(0.05)
    _wl.ready()
    gevent.sleep(args.seconds)
    server.stop(timeout=1)


if __name__ == "__main__":
    main()
    _wl.exit_now()
