"""A gevent greenlet burns pure-Python CPU for --ms ms in burn_cpu(): one long loop iteration."""
from gevent import monkey

monkey.patch_all()

import time  # noqa: E402

import gevent  # noqa: E402

import _wl  # noqa: E402


def ticker():
    # Keeps the hub iterating (one epoll_wait every 10 ms) around the stall.
    while True:
        gevent.sleep(0.01)


def burn_cpu(ms):
    _wl.stall_start()
    end = time.perf_counter() + ms / 1000.0  # vDSO clock: no syscalls while burning
    n = 0
    while time.perf_counter() < end:
        n += 1
    _wl.stall_end()
    return n


def main():
    args = _wl.parse(__doc__, ms=300)
    gevent.spawn(ticker)
    gevent.sleep(0.05)  # the hub has entered epoll_wait
    _wl.ready()
    gevent.sleep(args.warmup)
    gevent.spawn(burn_cpu, args.ms).join()
    gevent.sleep(args.after)


if __name__ == "__main__":
    main()
    _wl.exit_now()
