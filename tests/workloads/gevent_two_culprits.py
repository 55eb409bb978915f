"""A gevent service with two culprits: each round a request handler greenlet burns --hog-ms of
pure-Python CPU in hog_handler() and another calls libc usleep() for --block-ms through ctypes in
blocking_handler() (invisible to gevent's patching); --rounds rounds, --gap s apart. --hog-ms 0:
the same service without the hog (for `loopstall diff`).
"""
from gevent import monkey

monkey.patch_all()

import ctypes  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402

import _wl  # noqa: E402

libc = ctypes.CDLL(None)


def hog_handler(ms):
    end = time.perf_counter() + ms / 1000.0  # vDSO clock: no syscalls while burning
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def blocking_handler(ms):
    libc.usleep(int(ms * 1000))  # glibc: clock_nanosleep(CLOCK_REALTIME)


def main():
    args = _wl.parse(__doc__, hog_ms=250, block_ms=400, rounds=2, gap=0.3)
    _wl.gevent_ready_then_wait(args)
    _wl.stall_start()
    for _ in range(int(args.rounds)):
        if args.hog_ms > 0:
            gevent.spawn(hog_handler, args.hog_ms).join()
        gevent.sleep(args.gap)
        gevent.spawn(blocking_handler, args.block_ms).join()
        gevent.sleep(args.gap)
    _wl.stall_end()
    gevent.sleep(args.after)


if __name__ == "__main__":
    main()
    _wl.exit_now()
