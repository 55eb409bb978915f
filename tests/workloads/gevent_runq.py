"""burn_cpu() needs --ms ms of CPU *time* in one iteration.

The test pins this process and two CPU hogs to one core, so the iteration lasts about three times
longer than its CPU time: most of the stall is spent runnable, waiting for the CPU (runqueue).
"""
from gevent import monkey

monkey.patch_all()

import time  # noqa: E402

import gevent  # noqa: E402

import _wl  # noqa: E402


def burn_cpu(ms):
    _wl.stall_start()
    end = time.thread_time() + ms / 1000.0  # CPU time of this thread, not wall time
    n = 0
    while time.thread_time() < end:
        n += 1
    _wl.stall_end()
    return n


def main():
    args = _wl.parse(__doc__, ms=150)
    _wl.gevent_ready_then_wait(args)
    gevent.spawn(burn_cpu, args.ms).join()
    gevent.sleep(args.after)


if __name__ == "__main__":
    main()
    _wl.exit_now()
