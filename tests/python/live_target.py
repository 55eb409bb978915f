"""Live-test target: threads parked in known call chains, one per kind of wait.

Prints "<role> <native tid>" for each thread once it is about to block, then
"ready". Lines marked `# @name` are looked up by the test, so edits here do not
break it. Runs on CPython 3.8+.
"""
import ctypes
import sys
import threading
import time

ready_lock = threading.Lock()


def report(role):
    with ready_lock:
        print(role, threading.get_native_id(), flush=True)


def inner_sleep(role):
    report(role)
    time.sleep(3600)  # @sleep


def middle(role):
    inner_sleep(role)  # @middle


def outer(role):
    middle(role)  # @outer


def c_inner():
    report("ctypes")
    ctypes.CDLL(None).usleep(3600 * 1000 * 1000)  # @usleep: GIL released inside C


def c_middle():
    c_inner()  # @c_middle


def c_outer():
    c_middle()  # @c_outer


class Klass:
    def method(self):
        outer("main")  # @method


def main():
    threading.Thread(target=outer, args=("worker",), daemon=True).start()  # @worker_start
    threading.Thread(target=c_outer, daemon=True).start()
    Klass().method()  # @main


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "gevent":
        import gevent  # noqa: imported only for the gevent case

        def greenlet_body():
            outer("greenlet")  # @greenlet_body

        # The real (unpatched) time.sleep inside a greenlet blocks the hub: a stall
        # whose culprit is the running greenlet's frames.
        gevent.spawn(greenlet_body).join()
    else:
        main()  # @module
