"""Shared plumbing for the workloads: arguments and the lines the tests read.

Protocol on stdout (each line flushed):
  READY <pid>             the event loop is running
  STALL_START <unix_ns>   printed inside the stalling iteration, just before it blocks/burns
  STALL_END <unix_ns>     printed when the stalling call returned
  STALL_CPU_MS <ms>       (workloads using begin_stall/end_stall) the stall's thread CPU time
Other lines (CALIBRATED ..., COLLECTED ...) are for people reading a failure.
Pure stdlib and Python 3.8 syntax: asyncio_sleep.py runs on pyenv 3.8-3.13 too.
"""
import argparse
import os
import sys
import time


def parse(description, kinds=None, **stall_args):
    """stall_args: name -> default, e.g. ms=300 gives --ms (float). kinds: the choices of a
    positional `kind` argument (which stall a workload of several kinds makes)."""
    p = argparse.ArgumentParser(description=description)
    if kinds:
        p.add_argument("kind", choices=kinds)
    for name, default in stall_args.items():
        p.add_argument("--" + name.replace("_", "-"), type=float, default=default)
    # The tracer classifies a process on its first epoll_wait; the warm-up leaves it time.
    p.add_argument("--warmup", type=float, default=1.0, help="seconds between READY and the stall")
    p.add_argument("--after", type=float, default=1.0, help="seconds the loop keeps running after the stall")
    p.add_argument("--go-file", default=None,
                   help="schedule the stall at (unix time in this file) + --warmup; the file may appear "
                        "after READY: the loop keeps iterating until it does (see stall_delay())")
    return p.parse_args()


def say(*words):
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


def ready():
    say("READY", os.getpid())


def stall_start():
    say("STALL_START", time.time_ns())


def stall_end():
    say("STALL_END", time.time_ns())


def stall_delay(args):
    """Seconds to wait from now until the stall, or None while --go-file does not exist yet (poll
    again from the running loop). Without --go-file: --warmup, counted from the call (after READY).

    The go file lets a test start many workloads at once, then give them one common time origin
    once they are all READY, so their CPU-heavy stalls can be spread out instead of colliding.
    """
    if not args.go_file:
        return args.warmup
    try:
        with open(args.go_file) as f:
            origin = float(f.read())
    except (OSError, ValueError):  # absent, or being written
        return None
    return max(0.0, origin + args.warmup - time.time())


def gevent_ready_then_wait(args):
    """gevent workloads: keep the hub iterating (a ticker greenlet), say READY, then sleep
    cooperatively until the scheduled stall time (see stall_delay())."""
    import gevent

    def ticker():
        while True:
            gevent.sleep(0.01)

    gevent.spawn(ticker)
    gevent.sleep(0.05)
    ready()
    delay = stall_delay(args)
    while delay is None:
        gevent.sleep(0.01)
        delay = stall_delay(args)
    gevent.sleep(delay)


def hang(seconds, spin, sleep=time.sleep):
    """The stall of the hang workloads: stall_start(), then `seconds` of a CPU spin (spin) or of
    `sleep` (pass the unpatched time.sleep under gevent), then stall_end()."""
    stall_start()
    if spin:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass
    else:
        sleep(seconds)
    stall_end()


def begin_stall():
    """stall_start(), then the thread's CPU clock; pass the result to end_stall()."""
    stall_start()
    return time.thread_time()


def end_stall(cpu0):
    """stall_end(), then STALL_CPU_MS <ms>: the thread CPU time the stall took, as measured here."""
    cpu_ms = (time.thread_time() - cpu0) * 1000.0
    stall_end()
    say("STALL_CPU_MS", "%.1f" % cpu_ms)


def burn_cpu(ms):
    """STALL_START, pure-Python CPU for ms ms (the vDSO clock: no syscalls while burning),
    STALL_END. The framework workloads call it from their handler or callback."""
    stall_start()
    end = time.perf_counter() + ms / 1000.0
    n = 0
    while time.perf_counter() < end:
        n += 1
    stall_end()
    return n


def exit_now():
    """Exit 0 without interpreter teardown: it adds ~100 ms to every run for nothing (loopstall
    ignores it, see exit_teardown.py and test_interpreter_teardown_is_not_a_stall)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
