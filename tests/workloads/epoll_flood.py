"""An event loop whose every iteration is just over --iter-ms (1.2 ms by default) of CPU: a capture
at a 1 ms threshold gets one event per iteration, ~800 a second per process. Runs --seconds, then
exits. Prints READY <pid> once looping."""
import argparse
import select
import time

import _wl


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--iter-ms", type=float, default=1.2)
    p.add_argument("--seconds", type=float, default=20)
    a = p.parse_args()
    ep = select.epoll()
    end = time.monotonic() + a.seconds
    ep.poll(0)
    _wl.ready()
    while time.monotonic() < end:
        ep.poll(0)  # epoll_wait: one iteration ends, the next begins
        t = time.perf_counter() + a.iter_ms / 1000.0
        while time.perf_counter() < t:
            pass


if __name__ == "__main__":
    main()
    _wl.exit_now()
