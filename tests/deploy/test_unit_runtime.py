"""Run the real loopstalld the way deploy/systemd/loopstalld.service runs it,
as far as that is possible without systemd as PID 1:

- as an unprivileged user (like DynamicUser=yes), holding only the unit's
  capabilities as ambient capabilities, with no_new_privs (setpriv);
- with NOTIFY_SOCKET/WATCHDOG_USEC pointing at a socket this test listens on
  (Type=notify, WatchdogSec=);
- with the shipped example configuration;
- then SIGHUP (ExecReload=) and SIGTERM (stop).

It also runs the daemon under strace and checks that every system call it makes
is allowed by the unit's SystemCallFilter=.

Needs root (BPF, setpriv) and a built daemon (LOOPSTALLD_BIN, default
build/loopstalld). Without them these tests skip, and under CI they fail.
"""
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from deploy_helpers import CONFIG, CONTRACT_METRICS, METRICS, ROOT, require_tool
from harness.ci import require_executable, require_root_and_bpf
from harness.events import read_event_log, validate_event
from harness.net import free_port
from harness.paths import LOOPSTALLD as DAEMON, PY
from harness.workloads import Workload

sys.path.insert(0, str(Path(__file__).parent))
from test_deploy import parse_unit, unit_allowed_syscalls  # noqa: E402

NOBODY = "nobody"
READY_TIMEOUT = 60.0  # the ASan build loads slowly


def preconditions():
    """Root (BPF programs; setpriv to drop to an unprivileged user), BTF and a built loopstalld."""
    require_root_and_bpf("loopstalld")
    require_executable(DAEMON, "build it or set LOOPSTALLD_BIN")


# The parts of the unit's file-system sandbox that a mount namespace can
# reproduce: ProtectKernelTunables= hides /proc/kallsyms and makes /sys
# read-only (tracefs included), ProtectControlGroups= makes /sys/fs/cgroup
# read-only, and ProtectHome=yes hides /home, /root and /run/user.
SANDBOX_SCRIPT = r"""
set -e
empty="$1"; shift
mount --bind "$empty" /proc/kallsyms
mount --rbind /sys /sys
mount -o remount,bind,ro /sys
for d in /sys/kernel/tracing /sys/kernel/debug /sys/fs/cgroup /sys/fs/bpf; do
  if mountpoint -q "$d"; then mount --bind -o ro "$d" "$d"; fi
done
for d in /home /root /run/user; do
  [ -d "$d" ] && mount -t tmpfs -o ro,mode=000,size=4k tmpfs "$d"
done
exec "$@"
"""


def unit_caps():
    caps = set()
    for _, key, value, _ in parse_unit(ROOT / "deploy/systemd/loopstalld.service"):
        if key == "AmbientCapabilities":
            caps |= {c.lower().removeprefix("cap_") for c in value.split()}
    return sorted(caps)


class NotifyListener:
    """The sd_notify side of systemd: a datagram socket that records messages."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o777)  # the daemon runs as another user
        self.sock.settimeout(0.2)
        self.messages = []  # [(time, {key: value})]
        self.cond = threading.Condition()
        self.stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self.cond:
                self.messages.append((time.monotonic(), fields))
                self.cond.notify_all()

    def wait_for(self, key, value=None, timeout=10.0, after=0.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, f in self.messages:
                    if t >= after and key in f and (value is None or f[key] == value):
                        return f
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def close(self):
        self.stop = True
        self.sock.close()


class Daemon:
    def __init__(self, argv, env, workdir):
        self.log = open(workdir / "daemon.stderr", "w+")
        self.popen = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=self.log,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    def stderr(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def wait_ready_text(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                return False
            if re.search(r"\bready\b", self.stderr()):
                return True
            time.sleep(0.1)
        return False

    def kill(self):
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def sandboxed():
    """loopstalld as user nobody with exactly the unit's ambient capabilities,
    in a mount namespace that reproduces the unit's /proc, /sys and home sandbox."""
    preconditions()
    setpriv = require_tool("setpriv")
    pw = pwd.getpwnam(NOBODY)
    work = Path(tempfile.mkdtemp(prefix="loopstalld-unit-", dir="/tmp"))
    os.chmod(work, 0o755)
    # What RuntimeDirectory= and LogsDirectory= would create for the service user.
    run_dir, log_dir = work / "run", work / "log"
    for d in (run_dir, log_dir):
        d.mkdir(mode=0o700)
        os.chown(d, pw.pw_uid, pw.pw_gid)
    exe = work / "loopstalld"
    shutil.copy2(DAEMON, exe)
    config = work / "loopstalld.json"
    shutil.copy(CONFIG, config)
    os.chmod(config, 0o644)
    notify = NotifyListener(str(work / "notify.sock"))
    port = free_port()
    caps = ",".join("+" + c for c in unit_caps())
    empty = work / "inaccessible"
    empty.touch(mode=0o000)
    unshare = require_tool("unshare")
    argv = [unshare, "--mount", "--propagation", "private", "sh", "-c", SANDBOX_SCRIPT, "sandbox", str(empty),
            setpriv, f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups",
            f"--inh-caps=-all,{caps}", f"--ambient-caps=-all,{caps}", f"--bounding-set=-all,{caps}",
            "--no-new-privs",
            str(exe), "--config", str(config), "--metrics-listen", f"127.0.0.1:{port}",
            "--control-socket", str(run_dir / "control.sock"), "--events", str(log_dir / "events.jsonl")]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET": str(work / "notify.sock"),
           "WATCHDOG_USEC": "2000000", "LANG": "C.UTF-8"}
    if "ASAN_OPTIONS" in os.environ:
        env["ASAN_OPTIONS"] = os.environ["ASAN_OPTIONS"]
    t0 = time.monotonic()
    d = Daemon(argv, env, work)
    # Ready: READY=1 on the notify socket. Stop waiting early if the daemon dies,
    # or says "ready" on stderr without notifying (reported by the tests below).
    ready, deadline = None, time.monotonic() + READY_TIMEOUT
    while not ready and time.monotonic() < deadline and d.popen.poll() is None:
        ready = notify.wait_for("READY", "1", timeout=0.5)
        if not ready and d.wait_ready_text(0.1):
            ready = notify.wait_for("READY", "1", timeout=3)
            break
    state = {"daemon": d, "notify": notify, "port": port, "work": work, "events": log_dir / "events.jsonl",
             "control": run_dir / "control.sock", "t0": t0, "ready_notified": bool(ready)}
    yield state
    d.kill()
    notify.close()
    shutil.rmtree(work, ignore_errors=True)


def alive_or_fail(state):
    d = state["daemon"]
    if d.popen.poll() is not None:
        pytest.fail(f"loopstalld exited with {d.popen.returncode} running with only the unit's "
                    f"capabilities {unit_caps()}:\n{d.stderr()}", pytrace=False)


def run_workload(script, *args, boost=True):
    """Runs a tests/workloads program to its end (it must exit 0); returns its pid."""
    w = Workload(script, *args, boost=boost)
    w.finish(60)
    return w.pid


def final_events(path, pid, timeout=5):
    """The final stall events of `pid` in the event log, each checked against the event schema;
    waits up to `timeout` s for the first."""
    deadline, found = time.monotonic() + timeout, []
    while time.monotonic() < deadline and not found:
        time.sleep(0.2)
        found = [e for e in read_event_log(path) if e["pid"] == pid and not e["ongoing"]]
    for ev in found:
        validate_event(ev)
    return found


def test_starts_with_only_unit_capabilities(sandboxed):
    alive_or_fail(sandboxed)
    assert sandboxed["daemon"].wait_ready_text(1) or sandboxed["ready_notified"], sandboxed["daemon"].stderr()


def test_sends_ready_notification(sandboxed):
    """Type=notify: without READY=1 systemd kills the daemon after TimeoutStartSec=."""
    alive_or_fail(sandboxed)
    assert sandboxed["ready_notified"], (
        "no READY=1 on $NOTIFY_SOCKET (Type=notify in the unit). Messages: "
        f"{[m for _, m in sandboxed['notify'].messages]}\n{sandboxed['daemon'].stderr()}")


def test_sends_watchdog_pings(sandboxed):
    """WatchdogSec=: WATCHDOG=1 at least every WATCHDOG_USEC/2 (here 1 s)."""
    alive_or_fail(sandboxed)
    now = time.monotonic()
    assert sandboxed["notify"].wait_for("WATCHDOG", "1", timeout=3, after=now), (
        "no WATCHDOG=1 within 3 s with WATCHDOG_USEC=2000000")


def test_detects_a_stall_in_another_users_process(sandboxed):
    """CAP_SYS_PTRACE/CAP_DAC_READ_SEARCH are enough to classify a root-owned gevent process."""
    alive_or_fail(sandboxed)
    pid = run_workload("gevent_stall.py", "cpu", "--ms", 300, "--warmup", 1, "--after", 1, boost=False)
    found = final_events(sandboxed["events"], pid)
    assert found, f"no stall event for pid {pid} in {sandboxed['events']}\n{sandboxed['daemon'].stderr()}"
    # (The cause may be cpu or runqueue on a busy host: not what this test is about.)
    assert found[0]["loop"] == "gevent"
    assert found[0]["duration_ms"] >= 250


def test_gc_time_and_stacks_with_only_unit_capabilities(sandboxed):
    """CPython's USDT GC probes attach with the unit's capabilities (uprobe_multi links need only
    CAP_BPF + CAP_PERFMON; a uprobe perf event would need CAP_SYS_ADMIN): a stall spent in
    gc.collect() reports its GC time and the Python stack that called it."""
    alive_or_fail(sandboxed)
    pid = run_workload("gevent_gc.py", "--ms", 300, "--warmup", 1, "--after", 1, boost=False)
    found = final_events(sandboxed["events"], pid)
    assert found, f"no stall event for pid {pid}\n{sandboxed['daemon'].stderr()}"
    ev = found[0]
    assert ev["breakdown_ms"]["gc"] >= 100, f"GC time missing: {ev['breakdown_ms']}\n{sandboxed['daemon'].stderr()}"
    assert ev["python_stacks"], "no Python stack with the unit's CAP_SYS_PTRACE"
    assert "GC probes" not in sandboxed["daemon"].stderr(), sandboxed["daemon"].stderr()


def test_tracefs_without_dac_read_search_is_named_as_permission(tmp_path):
    """Without CAP_DAC_READ_SEARCH an unprivileged daemon cannot look into /sys/kernel/tracing
    (mode 0700): it must say so, not that tracefs is not mounted."""
    preconditions()
    setpriv = require_tool("setpriv")
    if not Path("/sys/kernel/tracing/events").exists():
        pytest.skip("tracefs is not mounted on /sys/kernel/tracing here")
    if os.stat("/sys/kernel/tracing").st_mode & 0o005 == 0o005:
        pytest.skip("/sys/kernel/tracing is world-searchable here")
    caps = "+bpf,+perfmon,+sys_ptrace"
    r = subprocess.run([setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", f"--inh-caps=-all,{caps}",
                        f"--ambient-caps=-all,{caps}", f"--bounding-set=-all,{caps}", "--no-new-privs", str(DAEMON),
                        "--metrics-listen", "127.0.0.1:0", "--control-socket", "", "--events", ""],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    assert "not mounted" not in r.stderr, r.stderr
    assert "permission denied" in r.stderr and "CAP_DAC_READ_SEARCH" in r.stderr, r.stderr


def test_without_sys_ptrace_warns_once_and_still_reports_stalls(tmp_path):
    """Without CAP_SYS_PTRACE the daemon says at start what will be missing, and still measures
    stalls (without stacks). It used to measure none in another user's python3.11: CAP_PERFMON
    lets it read the process's maps but not its exe link, and a statically linked interpreter
    (no libpython in the maps) then did not look like Python, so its loop was ignored."""
    preconditions()
    setpriv = require_tool("setpriv")
    caps = "+bpf,+perfmon,+dac_read_search"
    os.chmod(tmp_path, 0o777)
    events = tmp_path / "events.jsonl"
    argv = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", f"--inh-caps=-all,{caps}",
            f"--ambient-caps=-all,{caps}", f"--bounding-set=-all,{caps}", "--no-new-privs", str(DAEMON),
            "--metrics-listen", "127.0.0.1:0", "--control-socket", "", "--events", str(events)]
    d = Daemon(argv, {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **({"ASAN_OPTIONS": os.environ["ASAN_OPTIONS"]}
                      if "ASAN_OPTIONS" in os.environ else {})}, tmp_path)
    try:
        assert d.wait_ready_text(READY_TIMEOUT), d.stderr()
        assert d.stderr().count("no CAP_SYS_PTRACE") == 1, d.stderr()
        pid = run_workload("asyncio_sleep.py", "--ms", 300, "--warmup", 1, "--after", 1)
        found = final_events(events, pid)
        assert found, f"no stall event for pid {pid} without CAP_SYS_PTRACE\n{d.stderr()}"
        assert found[0]["duration_ms"] >= 250 and found[0]["python_stacks"] == []
        # asyncio is named from the process's Python frames, which need CAP_SYS_PTRACE: "python" here.
        assert found[0]["loop"] in ("asyncio", "python") and found[0]["exe"] == PY, found[0]
    finally:
        d.kill()


def http_get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_metrics_endpoint_exports_every_dashboard_metric(sandboxed):
    """Every metric family used by the rules and the dashboard has a # TYPE line
    (also before it has any series), and the contract's series are there."""
    alive_or_fail(sandboxed)
    try:
        status, body = http_get(sandboxed["port"], "/metrics")
    except OSError as e:
        pytest.fail(f"GET /metrics on 127.0.0.1:{sandboxed['port']} failed: {e}", pytrace=False)
    assert status == 200
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", body, re.M))
    missing = sorted(set(METRICS) - set(types))
    assert not missing, f"families without # TYPE in /metrics: {missing}"
    assert types["loopstall_stall_duration_seconds"] == "histogram"
    for name in CONTRACT_METRICS:
        assert name in types
    assert re.search(r'^loopstall_build_info\{version="[^"]+"\} 1(\.0)?$', body, re.M)
    for le in ("0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
               "5", "10", "30", "+Inf"):
        if "loopstall_stall_duration_seconds_bucket{" in body:
            assert re.search(r'loopstall_stall_duration_seconds_bucket\{[^}]*le="' + re.escape(le) + '"',
                             body), f"bucket le={le} missing"


def test_healthz(sandboxed):
    """The DaemonSet's liveness/readiness probes use GET /healthz."""
    alive_or_fail(sandboxed)
    try:
        status, _ = http_get(sandboxed["port"], "/healthz")
    except OSError as e:
        pytest.fail(f"GET /healthz failed: {e}", pytrace=False)
    assert status == 200


def test_control_socket_is_private(sandboxed):
    alive_or_fail(sandboxed)
    assert sandboxed["control"].exists(), f"no control socket at {sandboxed['control']}"
    st = os.stat(sandboxed["control"])
    assert (st.st_mode & 0o777) == 0o600, oct(st.st_mode)


def test_sighup_reloads_and_keeps_running(sandboxed):
    """ExecReload=/bin/kill -HUP $MAINPID."""
    alive_or_fail(sandboxed)
    d = sandboxed["daemon"]
    os.kill(d.popen.pid, signal.SIGHUP)
    time.sleep(1.5)
    if d.popen.poll() is not None:
        pytest.fail(f"loopstalld exited ({d.popen.returncode}) on SIGHUP instead of reloading its "
                    f"configuration:\n{d.stderr()}", pytrace=False)


def test_sigterm_stops_cleanly(sandboxed):
    """systemctl stop sends SIGTERM; the unit's Restart=on-failure must not restart a clean exit."""
    alive_or_fail(sandboxed)
    p = sandboxed["daemon"].popen
    os.kill(p.pid, signal.SIGTERM)
    try:
        rc = p.wait(timeout=25)  # TimeoutStopSec=30s
    except subprocess.TimeoutExpired:
        pytest.fail("loopstalld did not exit within 25 s of SIGTERM", pytrace=False)
    assert rc == 0, sandboxed["daemon"].stderr()


# ---------------------------------------------------------------- syscalls
def test_every_syscall_the_daemon_makes_is_allowed_by_the_unit(tmp_path):
    preconditions()
    strace = require_tool("strace")
    allowed = unit_allowed_syscalls()
    out = tmp_path / "strace.out"
    port = free_port()
    cmd = [strace, "-f", "-qq", "-o", str(out), str(DAEMON), "--config", str(CONFIG),
           "--metrics-listen", f"127.0.0.1:{port}", "--control-socket", str(tmp_path / "c.sock"),
           "--events", str(tmp_path / "events.jsonl")]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        time.sleep(5)  # load + attach under strace
        # Exercise the paths: a stall (classification, stack reads), a scrape, a reload.
        run_workload("gevent_stall.py", "cpu", "--ms", 300, "--warmup", 1, "--after", 1, boost=False)
        for path in ("/metrics", "/healthz"):
            try:
                http_get(port, path)
            except OSError:
                pass
        os.kill(p.pid, signal.SIGHUP)  # strace forwards it
        time.sleep(1)
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
    names = set()
    for line in out.read_text().splitlines():
        m = re.match(r"\d+\s+([a-z_0-9]+)\(", line)
        if m:
            names.add(m.group(1))
    assert "bpf" in names, f"strace saw no bpf(): {p.stderr.read().decode()[-2000:]}"
    # execve is how strace started it; under systemd it happens before the filter.
    denied = sorted(names - allowed - {"execve"})
    assert denied == [], (f"loopstalld makes system calls the unit's SystemCallFilter= denies "
                          f"(they would fail with EPERM): {denied}")
