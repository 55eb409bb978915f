"""A gevent greenlet burns pure-Python CPU for --ms ms every --every seconds, --count times (0: until
killed): a steady stream of stalls to check detection against while something else goes on."""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402

import gevent  # noqa: E402

import _wl  # noqa: E402
from gevent_cpu import burn_cpu  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--ms", type=float, default=300)
    p.add_argument("--every", type=float, default=1.0)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--warmup", type=float, default=1.0)
    a = p.parse_args()

    def ticker():
        while True:
            gevent.sleep(0.01)

    gevent.spawn(ticker)
    gevent.sleep(0.05)
    _wl.ready()
    gevent.sleep(a.warmup)
    n = 0
    while a.count == 0 or n < a.count:
        gevent.spawn(burn_cpu, a.ms).join()
        n += 1
        gevent.sleep(max(0.0, a.every - a.ms / 1000.0))


if __name__ == "__main__":
    main()
    _wl.exit_now()
