"""Busy gevent service for the throughput benchmark: pywsgi hello world.

Binds 127.0.0.1 on an ephemeral port (or --port) and prints the port on
stdout once it is listening. Request logging is off (it would dominate).
Accepted sockets get TCP_NODELAY, as production servers (gunicorn) set it:
pywsgi sends the headers and the body in two writes, and with Nagle plus the
client's delayed ACK every keep-alive request would wait 40 ms -- the server
would be idle, not busy.
Run with /usr/bin/python3.11 (Debian's interpreter, which has gevent).
"""
import argparse
import socket
import sys

from gevent.pywsgi import WSGIServer

BODY = b"Hello, World!\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]


class Server(WSGIServer):
    def handle(self, sock, address):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle(sock, address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    server = Server(("127.0.0.1", args.port), app, log=None, error_log=sys.stderr)
    server.init_socket()
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
