"""A greenlet forces a full collection of a big cyclic heap in collect_big_heap(): it drops the
last reference to ~millions of lists in reference cycles and calls gc.collect(), which frees them
for ~--ms ms of CPU. The heap is sized at startup, before READY (see _heavy.gc_heap_for()).
"""
from gevent import monkey

monkey.patch_all()

import gc  # noqa: E402

import gevent  # noqa: E402

import _heavy  # noqa: E402
import _wl  # noqa: E402


def collect_big_heap(heap):
    cpu0 = _wl.begin_stall()
    heap.clear()  # the rings were only reachable from here: cyclic garbage now
    freed = gc.collect()
    _wl.end_stall(cpu0)
    _wl.say("COLLECTED", freed)


def main():
    args = _wl.parse(__doc__, ms=400)
    heap, objects, ns_per_object = _heavy.gc_heap_for(args.ms)
    _wl.say("CALIBRATED", "objects", objects, "ns_per_object", "%.0f" % ns_per_object)
    _wl.gevent_ready_then_wait(args)
    gevent.spawn(collect_big_heap, heap).join()
    del heap
    gevent.sleep(args.after)


if __name__ == "__main__":
    main()
    _wl.exit_now()
