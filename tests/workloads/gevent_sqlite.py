"""A greenlet runs a long SQLite query in sqlite_long_query(): libsqlite3 computes for ~--ms ms
(a recursive CTE counting to a few million), in C with the GIL released, where gevent cannot
switch greenlets. The row count is calibrated at startup, before READY.
"""
from gevent import monkey

monkey.patch_all()

import sqlite3  # noqa: E402

import gevent  # noqa: E402

import _heavy  # noqa: E402
import _wl  # noqa: E402


def sqlite_long_query(db, rows):
    cpu0 = _wl.begin_stall()
    count = db.execute(_heavy.COUNT_QUERY, (rows,)).fetchone()[0]
    _wl.end_stall(cpu0)
    assert count == rows, (count, rows)


def main():
    args = _wl.parse(__doc__, ms=400)
    db = sqlite3.connect(":memory:")
    rows, probe_ms = _heavy.sqlite_rows_for(db, args.ms)
    _wl.say("CALIBRATED", "rows", rows, "probe_ms", "%.1f" % probe_ms)
    _wl.gevent_ready_then_wait(args)
    gevent.spawn(sqlite_long_query, db, rows).join()
    gevent.sleep(args.after)


if __name__ == "__main__":
    main()
    _wl.exit_now()
