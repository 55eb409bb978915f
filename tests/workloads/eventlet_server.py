"""An eventlet server: a greenlet accepts on a listening socket of 127.0.0.1 (with a file
descriptor registered, eventlet's hub waits in epoll_wait; see README, limits), slow_handler()
burns the CPU for --ms ms when the workload connects to itself. "loop": "eventlet"."""
import eventlet

import _wl


def slow_handler(conn):
    conn.recv(64)
    _wl.burn_cpu(ARGS.ms)
    conn.sendall(b"slow\n")
    conn.close()


def serve(listener):
    while True:
        conn, _ = listener.accept()
        eventlet.spawn(slow_handler, conn)


def ticker():
    # Steady light traffic: the hub keeps iterating.
    while True:
        eventlet.sleep(0.01)


def main():
    listener = eventlet.listen(("127.0.0.1", 0))
    eventlet.spawn(serve, listener)
    eventlet.spawn(ticker)
    eventlet.sleep(0.05)
    _wl.ready()
    eventlet.sleep(ARGS.warmup)
    c = eventlet.connect(listener.getsockname())
    c.sendall(b"GET\n")
    assert c.recv(64) == b"slow\n"
    c.close()
    eventlet.sleep(ARGS.after)


if __name__ == "__main__":
    ARGS = _wl.parse(__doc__, ms=300)
    main()
    _wl.exit_now()
