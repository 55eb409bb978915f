"""A gevent greenlet burns pure-Python CPU for --ms ms in burn_cpu(): one long loop iteration."""
from gevent import monkey

monkey.patch_all()

import time  # noqa: E402

import gevent  # noqa: E402

import _wl  # noqa: E402


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
    _wl.gevent_ready_then_wait(args)
    gevent.spawn(burn_cpu, args.ms).join()
    gevent.sleep(args.after)


if __name__ == "__main__":
    main()
    _wl.exit_now()
