"""An asyncio coroutine stalls the loop, one way per run (--case):

  cpu     Handler.handle() burns pure-Python CPU for --ms ms (a method: co_qualname Handler.handle)
  sleep   blocking_sleep() calls time.sleep() for --ms ms
  sqlite  sqlite_long_query() runs a SQLite query that computes ~--ms ms in libsqlite3 (GIL released)
  gc      collect_big_heap() drops a big cyclic heap and calls gc.collect(): ~--ms ms of CPU

sqlite and gc are sized at startup, before READY (see _heavy.py).
Pure stdlib, Python 3.8 syntax: the tests run it on every interpreter 3.8-3.13.
"""
import asyncio
import gc
import sqlite3
import sys
import time

import _heavy
import _wl

DEFAULT_MS = {"cpu": 300, "sleep": 300, "sqlite": 400, "gc": 400}


class Handler:
    async def handle(self, ms):
        cpu0 = _wl.begin_stall()
        end = time.perf_counter() + ms / 1000.0  # vDSO clock: no syscalls while burning
        n = 0
        while time.perf_counter() < end:
            n += 1
        _wl.end_stall(cpu0)
        return n


async def blocking_sleep(ms):
    cpu0 = _wl.begin_stall()
    time.sleep(ms / 1000.0)  # 3.11+: clock_nanosleep; 3.8-3.10: select (pselect6)
    _wl.end_stall(cpu0)


async def sqlite_long_query(db, rows):
    cpu0 = _wl.begin_stall()
    count = db.execute(_heavy.COUNT_QUERY, (rows,)).fetchone()[0]
    _wl.end_stall(cpu0)
    assert count == rows, (count, rows)


async def collect_big_heap(heap):
    cpu0 = _wl.begin_stall()
    heap.clear()  # the rings were only reachable from here: cyclic garbage now
    freed = gc.collect()
    _wl.end_stall(cpu0)
    _wl.say("COLLECTED", freed)


async def ticker():
    while True:
        await asyncio.sleep(0.01)


def prepare(case, ms):
    """Calibrate before the loop runs; returns the coroutine function and its arguments."""
    if case == "cpu":
        return Handler().handle, (ms,)
    if case == "sleep":
        return blocking_sleep, (ms,)
    if case == "sqlite":
        db = sqlite3.connect(":memory:")
        rows, probe_ms = _heavy.sqlite_rows_for(db, ms)
        _wl.say("CALIBRATED", "rows", rows, "probe_ms", "%.1f" % probe_ms)
        return sqlite_long_query, (db, rows)
    if case == "gc":
        heap, objects, ns_per_object = _heavy.gc_heap_for(ms)
        _wl.say("CALIBRATED", "objects", objects, "ns_per_object", "%.0f" % ns_per_object)
        return collect_big_heap, (heap,)
    raise SystemExit("unknown --case %r (one of %s)" % (case, ", ".join(DEFAULT_MS)))


async def main(args, culprit, culprit_args):
    tick = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.05)  # the selector has called epoll_wait
    _wl.ready()
    delay = _wl.stall_delay(args)
    while delay is None:
        await asyncio.sleep(0.01)
        delay = _wl.stall_delay(args)
    await asyncio.sleep(delay)
    await culprit(*culprit_args)
    await asyncio.sleep(args.after)
    tick.cancel()


def pop_case():
    if "--case" not in sys.argv[:-1]:
        raise SystemExit("usage: asyncio_culprit.py --case {%s} [options]" % ",".join(DEFAULT_MS))
    i = sys.argv.index("--case")
    case = sys.argv[i + 1]
    del sys.argv[i:i + 2]
    return case


if __name__ == "__main__":
    case = pop_case()
    args = _wl.parse(__doc__, ms=None)
    culprit, culprit_args = prepare(case, args.ms if args.ms is not None else DEFAULT_MS[case])
    asyncio.run(main(args, culprit, culprit_args))
    _wl.exit_now()
