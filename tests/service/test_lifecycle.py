"""SIGTERM: loopstalld exits 0 quickly, removes its control socket and leaves no BPF programs."""
import json
import os
import socket
import subprocess
import time

import pytest

import service_harness as h
from service_harness import Daemon, Workload


def bpf_prog_ids_of(pid):
    """BPF program ids the process holds (fds of programs and of links to programs)."""
    ids = set()
    fd_dir = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(fd_dir):
        try:
            with open(os.path.join(fd_dir, fd)) as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            pass
    return ids


def bpftool_progs():
    r = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_sigterm_exits_cleanly_and_detaches(bpf, tmp):
    d = Daemon(tmp)
    attached = d.status()["bpf"]["programs_attached"]
    ids = bpf_prog_ids_of(d.pid)
    before = {p["id"]: p for p in bpftool_progs() if p["id"] in ids}
    # bpftool built with pid iterators also names the owner: the same programs.
    by_pid = {p["id"] for p in bpftool_progs() if any(x.get("pid") == d.pid for x in p.get("pids", []))}
    assert not by_pid or by_pid == ids, (by_pid, ids)
    names = {p.get("name") for p in before.values()}
    assert len(before) >= attached > 0 and {"sched_switch", "epoll_wait_enter", "sample"} <= names, (attached, names)
    assert d.sock.exists()

    # A loop is stalled at that moment: what is pending is still written out.
    w = Workload("gevent_stall.py", "sleep", "--ms", 4000, "--warmup", 0.3, "--after", 0.2)
    w.wait_line(lambda l: l.startswith("STALL_START "), 5, "out")
    time.sleep(0.5)
    t0 = time.monotonic()
    rc = d.stop(timeout=5)
    took = time.monotonic() - t0
    assert rc == 0, f"exit code {rc}\n{d.describe()}"
    assert took < 2.0, f"took {took:.2f}s to exit after SIGTERM"
    assert d.find_line(lambda l: l.startswith("loopstalld: stopping"))
    assert not d.sock.exists(), f"{d.sock} left behind"
    assert d.sock.parent.exists()  # only the socket is removed, not the directory
    # The kernel frees programs asynchronously once the last fd is closed (tracing programs after an
    # RCU grace period): give it a moment.
    gone = time.monotonic() + 5
    while (left := [p for p in bpftool_progs() if p["id"] in ids]) and time.monotonic() < gone:
        time.sleep(0.1)
    assert not left, f"BPF programs still loaded 5 s after exit: {left}"
    pending = [e for e in d.events() if e["pid"] == w.pid]
    assert pending, "the stall in progress at SIGTERM was not written to the event log"
    for e in pending:
        h.validate_event(e)
    assert pending[-1]["duration_ms"] >= 400, pending[-1]
    w.kill()


def run_failing_daemon(tmp, sock, extra=(), timeout=8):
    """A loopstalld that must refuse to start: it exits non-zero, promptly."""
    argv = [str(h.LOOPSTALLD), "--control-socket", str(sock), "--metrics-listen", "127.0.0.1:0",
            "--events", str(tmp / "other.jsonl"), *map(str, extra)]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
    pytest.fail(f"loopstalld did not exit within {timeout}s after a startup error (killed); "
                f"stderr so far: {err!r}\n$ {' '.join(argv)}", pytrace=False)


def test_second_daemon_on_same_socket_is_refused(bpf, tmp):
    d = Daemon(tmp)
    r = run_failing_daemon(tmp, d.sock)
    assert r.returncode != 0 and "another loopstalld is listening" in r.stderr, r.stderr
    assert d.sock.exists() and d.alive()
    assert d.status()["version"]


def test_metrics_port_in_use_is_refused(bpf, tmp):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        argv = [str(h.LOOPSTALLD), "--control-socket", str(tmp / "run" / "c.sock"),
                "--metrics-listen", f"127.0.0.1:{port}", "--events", str(tmp / "e.jsonl")]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=8, stdin=subprocess.DEVNULL)
    assert r.returncode != 0 and f"127.0.0.1:{port}" in r.stderr, r.stderr
    assert not (tmp / "run" / "c.sock").exists()


def test_unusable_control_socket_dir_is_refused(bpf, tmp):
    (tmp / "file").write_text("")
    r = run_failing_daemon(tmp, tmp / "file" / "c.sock")  # its "directory" is a regular file
    assert r.returncode != 0 and str(tmp / "file") in r.stderr, r.stderr


def test_stale_socket_is_replaced(bpf, tmp):
    """A socket file left by a killed daemon (nobody listening) does not block the next start."""
    d = Daemon(tmp)
    d.kill()  # SIGKILL: no cleanup
    assert d.sock.exists()
    d2 = Daemon(tmp)
    assert d2.status()["version"]
    assert d2.stop() == 0
