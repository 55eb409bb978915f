"""CPU-heavy stalls sized at startup (before READY): a long SQLite query and a big cyclic heap for
gc.collect().

Both calibrate on the thread's CPU clock, not the wall clock: a busy machine (the tests start many
workloads at once) does not shrink the work, and on an idle CPU the stall lasts about target_ms
whatever the machine's speed. Pure stdlib, Python 3.8 syntax.
"""
import gc
import time

# Counting to N in a recursive CTE: one long VDBE loop inside libsqlite3 (the sqlite3 module
# releases the GIL around sqlite3_step), constant memory, the same result on every SQLite.
COUNT_QUERY = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
               "SELECT count(*) FROM c")

MIN_ROWS, MAX_ROWS = 100000, 50000000
MIN_OBJECTS, MAX_OBJECTS = 300000, 30000000


def _cpu_ms(fn, *args):
    t0 = time.thread_time()
    fn(*args)
    return (time.thread_time() - t0) * 1000.0


def sqlite_rows_for(db, target_ms, probe=200000):
    """Rows COUNT_QUERY must count on `db` to compute for ~target_ms: scaled from the median of
    three probes (~50 ms each; a VM's CPU speed wanders, one probe may be off by 2x)."""
    probe_ms = sorted(_cpu_ms(lambda: db.execute(COUNT_QUERY, (probe,)).fetchone()) for _ in range(3))[1]
    rows = int(probe * target_ms / max(probe_ms, 0.1))
    return max(MIN_ROWS, min(MAX_ROWS, rows)), probe_ms


def build_rings(n, ring=64):
    """~n one-element lists in reference cycles of `ring` lists; returns the list of ring heads."""
    heads = []
    for _ in range(max(1, n // ring)):
        first = prev = []
        for _ in range(ring - 1):
            prev = [prev]
        first.append(prev)
        heads.append(first)
    return heads


def gc_heap_for(target_ms, probe=MIN_OBJECTS):
    """A list of reference rings that gc.collect() needs ~target_ms of CPU to free once the list
    is cleared (the rings are then cyclic garbage). Sized from a probe heap that goes through the
    same steps; returned reachable and already in the oldest generation, so the automatic young
    collections that the running loop triggers never walk it.
    """
    enabled = gc.isenabled()
    gc.disable()  # no automatic collections while building
    try:
        heap = build_rings(probe)
        gc.collect()  # reachable: moves it to the oldest generation, as below
        heap.clear()
        per_object = _cpu_ms(gc.collect) / probe
        n = max(MIN_OBJECTS, min(MAX_OBJECTS, int(target_ms / max(per_object, 1e-6))))
        heap = build_rings(n)
        gc.collect()
        return heap, n, per_object * 1e6
    finally:
        if enabled:
            gc.enable()
