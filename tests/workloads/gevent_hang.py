"""The gevent loop hangs for --seconds in hang(): a real (unpatched) sleep, or a CPU spin with --spin."""
import sys
import time

real_sleep = time.sleep

from gevent import monkey  # noqa: E402

monkey.patch_all()

import gevent  # noqa: E402

import _wl  # noqa: E402


def hang(seconds, spin):
    _wl.hang(seconds, spin, real_sleep)


def main():
    spin = "--spin" in sys.argv
    if spin:
        sys.argv.remove("--spin")
    args = _wl.parse(__doc__, seconds=5)
    _wl.gevent_ready_then_wait(args)
    gevent.spawn(hang, args.seconds, spin).join()
    gevent.sleep(args.after)


if __name__ == "__main__":
    main()
    _wl.exit_now()
