"""One iteration that mixes CPU and blocking: mixed_stall() burns --cpu-ms of CPU time, then
really sleeps --sleep-ms (an unpatched time.sleep).

Used to check that on_cpu + blocked + runqueue adds up to the duration when all parts are non-zero.
"""
import time

real_sleep = time.sleep

from gevent import monkey  # noqa: E402

monkey.patch_all()

import gevent  # noqa: E402

import _wl  # noqa: E402


def mixed_stall(cpu_ms, sleep_ms):
    _wl.stall_start()
    end = time.thread_time() + cpu_ms / 1000.0  # CPU time: the same on a busy machine
    while time.thread_time() < end:
        pass
    real_sleep(sleep_ms / 1000.0)
    _wl.stall_end()


def main():
    args = _wl.parse(__doc__, cpu_ms=200, sleep_ms=100)
    _wl.gevent_ready_then_wait(args)
    gevent.spawn(mixed_stall, args.cpu_ms, args.sleep_ms).join()
    gevent.sleep(args.after)


if __name__ == "__main__":
    main()
    _wl.exit_now()
