"""A storm: the hub blocks in an unpatched time.sleep --count times, --ms each, --gap s apart."""
import time

real_sleep = time.sleep  # bound before monkey-patching: blocks the hub

from gevent import monkey  # noqa: E402

monkey.patch_all()

import gevent  # noqa: E402

import _wl  # noqa: E402


def main():
    args = _wl.parse(__doc__, ms=250, count=20, gap=0.05)
    _wl.gevent_ready_then_wait(args)
    for _ in range(int(args.count)):
        _wl.stall_start()
        real_sleep(args.ms / 1000.0)
        _wl.stall_end()
        gevent.sleep(args.gap)
    _wl.say("STORM_DONE")
    gevent.sleep(args.after)


if __name__ == "__main__":
    main()
    _wl.exit_now()
