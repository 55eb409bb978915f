"""time.sleep bound before gevent's monkey-patching: blocking_sleep() blocks the hub in clock_nanosleep."""
import time

real_sleep = time.sleep  # the unpatched function: the classic mistake

from gevent import monkey  # noqa: E402

monkey.patch_all()

import gevent  # noqa: E402

import _wl  # noqa: E402


def blocking_sleep(ms):
    _wl.stall_start()
    real_sleep(ms / 1000.0)
    _wl.stall_end()


def main():
    args = _wl.parse(__doc__, ms=300)
    _wl.gevent_ready_then_wait(args)
    gevent.spawn(blocking_sleep, args.ms).join()
    gevent.sleep(args.after)


if __name__ == "__main__":
    main()
    _wl.exit_now()
