"""Target of walk_agreement_test.cpp: an event loop whose iterations burn the
CPU inside one C call, so its Python frames hold still while it runs on CPU.

Prints "tid <native tid>", then for each line N read from stdin runs one loop
iteration (epoll_wait, then sum(range(N)) reached through a C call) and prints
"done". Runs on CPython 3.8+.
"""
import select
import sys
import threading


def burn(n):
    return sum(range(n))  # @burn: C code; the frames above hold still


def via_c(n):
    return list(map(burn, [n]))[0]  # @via_c: burn entered from C (3.12+: a shim frame)


def iteration(n):
    via_c(n)  # @iteration


def main():
    ep = select.epoll()
    print("tid", threading.get_native_id(), flush=True)
    for line in sys.stdin:
        ep.poll(0)  # an iteration ends and the next begins: this thread is a loop
        iteration(int(line))
        ep.poll(0)
        print("done", flush=True)


main()  # @module
