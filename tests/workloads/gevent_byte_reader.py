"""A gevent client that reads a chunked HTTP response one byte per recv (issue 13's churn).

Python 2's httplib read responses through an unbuffered socket file (`makefile('rb', 0)`): a
chunked body read with `read(1)` then costs one recv(2) per byte, and every request of the
process waits behind thousands of tiny hub iterations (the gevent + requests story). This
workload does the same from a monkey-patched gevent process against a local chunked server (a
child process with no event loop, so the only loop measured is the reader's hub). It never
stalls: each iteration is microseconds.

  READY <pid>          the hub is running
  BYTES <n>            bytes read so far (every second)
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402

SERVER = r'''
import socket, sys, time
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0)); srv.listen(8)
print(srv.getsockname()[1], flush=True)
piece = b"x" * int(sys.argv[1])
while True:
    c, _ = srv.accept()
    c.recv(65536)
    c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    try:
        for _ in range(int(sys.argv[2])):  # trickled: the client waits for each chunk
            c.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            time.sleep(float(sys.argv[3]))
        c.sendall(b"0\r\n\r\n")
    except OSError:
        pass
    c.close()
'''


def read_chunked_bytewise(f):
    """The body of a chunked response, read as an unbuffered file one byte per call."""
    body = 0
    while True:
        line = b""
        while not line.endswith(b"\r\n"):
            line += f.read(1)
        size = int(line.strip(), 16)
        if size == 0:
            return body
        for _ in range(size):
            f.read(1)
            body += 1
        f.read(2)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--chunk", type=int, default=4096, help="bytes per chunk the server sends")
    p.add_argument("--chunks", type=int, default=200)
    p.add_argument("--gap", type=float, default=0.001, help="seconds between chunks")
    a = p.parse_args()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(a.chunk), str(a.chunks), str(a.gap)],
                              stdout=subprocess.PIPE, text=True)
    port = int(server.stdout.readline())
    total = [0]

    def client():
        while True:
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            f = s.makefile("rb", 0)
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                head += f.read(1)
            total[0] += read_chunked_bytewise(f)
            s.close()

    print("READY", os.getpid(), flush=True)
    g = gevent.spawn(client)
    end = time.monotonic() + a.seconds
    try:
        while time.monotonic() < end:
            gevent.sleep(1)
            print("BYTES", total[0], flush=True)
    finally:
        g.kill()
        server.kill()


if __name__ == "__main__":
    main()
