"""A hand-written event loop on the selectors module (epoll) serving 127.0.0.1: no framework
loopstall knows, so "loop": "python". on_request() burns the CPU for --ms ms when the workload
connects to itself."""
import selectors
import socket
import time

import _wl


def main(args):
    sel = selectors.DefaultSelector()
    assert isinstance(sel, selectors.EpollSelector), sel
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)

    end_at = []

    def on_request(conn):
        conn.recv(64)
        _wl.burn_cpu(args.ms)
        conn.sendall(b"slow\n")
        sel.unregister(conn)
        conn.close()
        end_at.append(time.monotonic() + args.after)

    def on_accept(_):
        conn, _ = listener.accept()
        sel.register(conn, selectors.EVENT_READ, on_request)

    sel.register(listener, selectors.EVENT_READ, on_accept)
    client = None
    ready_at = time.monotonic() + 0.05
    request_at = ready_at + args.warmup
    while not end_at or time.monotonic() < end_at[0]:
        # 10 ms ticks: the loop keeps iterating.
        for key, _ in sel.select(timeout=0.01):
            key.data(key.fileobj)
        now = time.monotonic()
        if ready_at and now >= ready_at:
            _wl.ready()
            ready_at = None
        if client is None and now >= request_at:
            client = socket.create_connection(listener.getsockname())
            client.sendall(b"GET\n")
            client.setblocking(False)
            sel.register(client, selectors.EVENT_READ, lambda c: c.recv(64))


if __name__ == "__main__":
    main(_wl.parse(__doc__, ms=300))
    _wl.exit_now()
