"""A gevent hub stalls in one greenlet; KIND says how, in a function named after it (the tests
look for that function in the reported Python stacks, in this file):

  cpu       burn_cpu()       pure-Python CPU for --ms ms of wall time (the vDSO clock: no syscalls)
  cpu-time  burn_cpu()       pure-Python CPU for --ms ms of the thread's CPU *time*: the same on a
                             busy host, so a test that pins it next to CPU hogs gets a runqueue stall
  sleep     blocking_sleep() time.sleep bound before gevent's monkey-patching (the classic mistake):
                             --ms ms in clock_nanosleep
  usleep    ctypes_usleep()  libc usleep() through ctypes, invisible to gevent's patching:
                             --ms ms in clock_nanosleep(CLOCK_REALTIME)
  mixed     mixed_stall()    --cpu-ms ms of CPU time, then a real sleep of --sleep-ms ms: every part
                             of the breakdown non-zero

--count N stalls (0: until killed), --gap s apart (the hub keeps iterating in between); then
STALLS_DONE <n> and --after s more of a running loop.
"""
import time

real_sleep = time.sleep  # the unpatched function, bound before monkey-patching

from gevent import monkey  # noqa: E402

monkey.patch_all()

import gevent  # noqa: E402

import _wl  # noqa: E402


def burn_cpu(ms, clock):
    _wl.stall_start()
    end = clock() + ms / 1000.0
    n = 0
    while clock() < end:
        n += 1
    _wl.stall_end()
    return n


def blocking_sleep(ms):
    _wl.stall_start()
    real_sleep(ms / 1000.0)
    _wl.stall_end()


def ctypes_usleep(ms, libc):
    _wl.stall_start()
    libc.usleep(int(ms * 1000))  # glibc: clock_nanosleep(CLOCK_REALTIME)
    _wl.stall_end()


def mixed_stall(cpu_ms, sleep_ms):
    _wl.stall_start()
    end = time.thread_time() + cpu_ms / 1000.0
    while time.thread_time() < end:
        pass
    real_sleep(sleep_ms / 1000.0)
    _wl.stall_end()


STALLS = {
    "cpu": lambda a: burn_cpu(a.ms, time.perf_counter),
    "cpu-time": lambda a: burn_cpu(a.ms, time.thread_time),
    "sleep": lambda a: blocking_sleep(a.ms),
    "usleep": lambda a: ctypes_usleep(a.ms, a.libc),
    "mixed": lambda a: mixed_stall(a.cpu_ms, a.sleep_ms),
}


def main():
    args = _wl.parse(__doc__, kinds=list(STALLS), ms=300, cpu_ms=200, sleep_ms=100, count=1, gap=0.05)
    if args.kind == "usleep":  # loaded before READY, and only for this kind: ctypes maps libffi
        import ctypes
        args.libc = ctypes.CDLL(None)
    _wl.gevent_ready_then_wait(args)
    stall, n = STALLS[args.kind], 0
    while args.count == 0 or n < args.count:
        if n:
            gevent.sleep(args.gap)
        gevent.spawn(stall, args).join()
        n += 1
    _wl.say("STALLS_DONE", n)
    gevent.sleep(args.after)


if __name__ == "__main__":
    main()
    _wl.exit_now()
