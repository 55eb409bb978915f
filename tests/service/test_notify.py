"""sd_notify: what systemd (Type=notify, WatchdogSec=) receives from loopstalld."""
import os
import select
import signal
import socket
import time

from service_harness import Daemon


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []  # (monotonic time, {KEY: value}) per datagram

    def drain(self, timeout=0.0):
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.0, deadline - time.monotonic())
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return
            data = self.sock.recv(65536).decode()
            fields = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def wait(self, key, value="1", timeout=5.0, after=0):
        """Index of the first datagram (from index `after`) with KEY=value."""
        deadline = time.monotonic() + timeout
        while True:
            for i, (_, f) in enumerate(self.messages[after:], after):
                if f.get(key) == value:
                    return i
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.drain(min(left, 0.1))

    def describe(self):
        return "datagrams received:\n" + "\n".join(f"  {t:.3f} {f}" for t, f in self.messages)

    def close(self):
        self.sock.close()


def test_sd_notify_ready_watchdog_reload_stopping(bpf, tmp):
    ns = NotifySocket(tmp / "notify.sock")
    try:
        env = dict(os.environ, NOTIFY_SOCKET=ns.path, WATCHDOG_USEC="2000000")
        env.pop("WATCHDOG_PID", None)
        d = Daemon(tmp, env=env, via_shell_export_watchdog_pid=True, wait_ready=False)
        ready = ns.wait("READY", timeout=30)
        assert ready is not None, f"no READY=1\n{ns.describe()}\n{d.describe()}"
        assert ns.messages[ready][1].get("STATUS"), "READY=1 should come with a STATUS= line"
        d.wait_ready(5)  # READY=1 is sent once the BPF programs are attached, as the stderr line says
        t_ready = ns.messages[ready][0]

        # WatchdogSec=2s: pings at least every second; two of them within ~3 s of READY=1.
        ns.drain(3.0)
        pings = [t for t, f in ns.messages[ready:] if f.get("WATCHDOG") == "1"]
        assert len(pings) >= 2, f"{len(pings)} WATCHDOG=1 in 3 s\n{ns.describe()}"
        assert all(b - a < 1.5 for a, b in zip([t_ready] + pings, pings)), ns.describe()
        assert any(f.get("STATUS", "").startswith("watching") for _, f in ns.messages), ns.describe()

        # SIGHUP: RELOADING=1, then READY=1 again.
        mark = len(ns.messages)
        d.signal(signal.SIGHUP)
        reloading = ns.wait("RELOADING", timeout=5, after=mark)
        assert reloading is not None, ns.describe()
        assert ns.wait("READY", timeout=5, after=reloading + 1) is not None, ns.describe()
        d.wait_line(lambda l: "configuration reloaded" in l, 5)

        # SIGTERM: STOPPING=1, exit 0.
        mark = len(ns.messages)
        assert d.stop(timeout=5) == 0, d.describe()
        ns.drain(0.2)
        assert ns.wait("STOPPING", timeout=1, after=mark) is not None, ns.describe()
    finally:
        ns.close()


def test_sd_notify_no_watchdog_for_another_pid(bpf, tmp):
    """WATCHDOG_PID names another process (the watchdog is not ours): READY=1, but no pings."""
    ns = NotifySocket(tmp / "notify.sock")
    try:
        env = dict(os.environ, NOTIFY_SOCKET=ns.path, WATCHDOG_USEC="400000", WATCHDOG_PID="1")
        d = Daemon(tmp, env=env)
        assert ns.wait("READY", timeout=5) is not None, ns.describe()
        ns.drain(1.0)
        assert not [f for _, f in ns.messages if "WATCHDOG" in f], ns.describe()
        assert d.stop() == 0
    finally:
        ns.close()
