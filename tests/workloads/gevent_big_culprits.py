"""A hostile gevent process (docs/security.md, the event log's byte budget): each of its --count
stalls blocks the hub in a different function whose name and file name are --name-bytes long,
--depth frames deep, each stall 1 ms longer than the one before (a stall longer than the loop's
longest always gets its stacks read), --gap s apart. Without a byte budget each event line is
about depth x 2 x name-bytes. Prints READY, then STALLS_DONE <n>.
"""
import time

real_sleep = time.sleep  # the unpatched function: blocks the hub

from gevent import monkey  # noqa: E402

monkey.patch_all()

import gevent  # noqa: E402

import _wl  # noqa: E402


def make_culprit(i, name_bytes, depth):
    """A chain of `depth` functions named f<i>_<j>_xxx... in a file with a name as long."""
    pad = "x" * int(name_bytes)
    src = []
    for j in range(depth):
        callee = f"f{i}_{j + 1}_{pad}(ms)" if j + 1 < depth else "_sleep(ms / 1000.0)"
        src.append(f"def f{i}_{j}_{pad}(ms):\n    return {callee}\n")
    ns = {"_sleep": real_sleep}
    exec(compile("".join(src), f"/tmp/{pad}/culprit_{i}.py", "exec"), ns)
    return ns[f"f{i}_0_{pad}"]


def main():
    args = _wl.parse(__doc__, ms=150, count=20, gap=0.3, name_bytes=3000, depth=30)
    depth = int(args.depth)
    culprits = [make_culprit(i, args.name_bytes, depth) for i in range(int(args.count))]
    _wl.gevent_ready_then_wait(args)
    for i, f in enumerate(culprits):
        if i:
            gevent.sleep(args.gap)
        gevent.spawn(f, args.ms + i).join()
    _wl.say("STALLS_DONE", len(culprits))
    gevent.sleep(args.after)


if __name__ == "__main__":
    main()
    _wl.exit_now()
