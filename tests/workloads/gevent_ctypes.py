"""A greenlet calls libc usleep() through ctypes in ctypes_usleep(): invisible to gevent's patching."""
from gevent import monkey

monkey.patch_all()

import ctypes  # noqa: E402

import gevent  # noqa: E402

import _wl  # noqa: E402

libc = ctypes.CDLL(None)


def ctypes_usleep(ms):
    _wl.stall_start()
    libc.usleep(int(ms * 1000))  # glibc: clock_nanosleep(CLOCK_REALTIME)
    _wl.stall_end()


def main():
    args = _wl.parse(__doc__, ms=300)
    _wl.gevent_ready_then_wait(args)
    gevent.spawn(ctypes_usleep, args.ms).join()
    gevent.sleep(args.after)


if __name__ == "__main__":
    main()
    _wl.exit_now()
