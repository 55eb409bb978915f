"""`loopstall status`: what the daemon watches, in text and json."""
import os
import re
import socket
import subprocess
import time

import service_harness as h
from service_harness import Daemon, Workload, wait_for

TEXT_WATCHING = re.compile(r"^watching (\d+) processes, (\d+) loops \(gevent (\d+), asyncio (\d+), uvloop (\d+), "
                           r"eventlet (\d+), twisted (\d+), python (\d+), epoll (\d+)\)$", re.M)
TEXT_STALLS = re.compile(r"^stalls so far (\d+), stalled now (\d+), lost events (\d+)$", re.M)


def test_status_shows_loops_and_stalls(bpf, tmp):
    d = Daemon(tmp)
    s0 = d.status()
    for key, typ in (("version", str), ("uptime_s", (int, float)), ("threshold_ms", (int, float)),
                     ("watched_processes", int), ("monitored_loops", int), ("loops", dict), ("stalls_total", int),
                     ("ongoing_stalls", int), ("lost_events", int), ("bpf", dict), ("alerts_firing", dict),
                     ("metrics_listen", str)):
        assert isinstance(s0.get(key), typ), f"{key}: {s0.get(key)!r}"
    assert s0["threshold_ms"] == 100 and s0["bpf"]["programs_attached"] > 0
    assert s0["metrics_listen"] == d.metrics_addr
    assert h.http_get(f"http://{d.metrics_addr}/healthz") == (200, "ok\n")

    w = Workload("gevent_stall.py", "cpu", "--ms", 300, "--warmup", 2, "--after", 1.0)
    st = wait_for(lambda: (s := d.status())["monitored_loops"] >= 1 and s["loops"]["gevent"] >= 1 and s, 5,
                  what="status: a monitored gevent loop", describe=lambda: str(d.status()))
    assert st["watched_processes"] >= 1
    # The gevent loop holds a loop slot and its process a procs entry (the ones BPF keeps).
    maps = st["bpf"]["map_entries"]
    assert set(maps) == {"loops", "procs", "py_threads"} and maps["loops"] >= 1 and maps["procs"] >= 1, maps
    text = d.status("text")
    m = TEXT_WATCHING.search(text)
    assert m, text
    assert int(m.group(1)) >= 1 and int(m.group(2)) >= 1 and int(m.group(3)) >= 1, text
    assert f"threshold 100 ms, metrics on {d.metrics_addr}" in text, text
    assert w.alive(), "the workload ended too early: raise --warmup"

    d.wait_final_event(w.pid)
    w.finish()
    after = wait_for(lambda: (s := d.status())["stalls_total"] >= s0["stalls_total"] + 1 and s, 5,
                     what="stalls_total increased", describe=lambda: str(d.status()))
    text = d.status("text")
    m = TEXT_STALLS.search(text)
    assert m and int(m.group(1)) >= s0["stalls_total"] + 1, text
    assert after["uptime_s"] > s0["uptime_s"]
    assert re.search(r"^BPF programs attached \d+$", text, re.M), text


def test_status_without_daemon(binaries, tmp):
    missing = tmp / "nothing" / "control.sock"
    for args, env in ((["status", "--socket", missing], None),
                      (["status", "--format", "json"], dict(os.environ, LOOPSTALL_CONTROL_SOCKET=str(missing)))):
        r = h.run_cli(args, env=env)
        assert r.returncode != 0, r
        assert r.stdout == "", f"nothing on stdout when there is no answer: {r.stdout!r}"
        assert "loopstalld is not running" in r.stderr and str(missing) in r.stderr, r.stderr


def test_status_and_top_when_the_daemon_never_answers(binaries, tmp):
    """A socket that accepts and never answers (a daemon stuck): status and top give up within
    their timeouts (5 s, 2 s) with the same words, instead of hanging (one client: ask_daemon)."""
    path = tmp / "stuck.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(8)
    try:
        for args, limit in ((["status", "--socket", path], 5), (["top", "--socket", path, "--batch"], 2)):
            t0 = time.monotonic()
            r = h.run_cli(args, timeout=15)
            took = time.monotonic() - t0
            assert r.returncode == 1, r
            assert f"no answer from loopstalld on {path}: timed out after {limit * 1000} ms" in r.stderr, r.stderr
            assert limit <= took <= limit + 3, f"{args[0]} gave up after {took:.1f} s"
    finally:
        srv.close()


def test_status_on_stale_socket(bpf, tmp):
    """A socket file nobody listens on (daemon killed): the same clear message."""
    d = Daemon(tmp)
    d.kill()
    assert d.sock.exists()
    r = h.run_cli(["status", "--socket", d.sock])
    assert r.returncode != 0 and "loopstalld is not running" in r.stderr, r.stderr


def test_status_as_an_unprivileged_user_says_permission_denied(bpf, tmp):
    """The control socket is root-only (0600): a non-root user is told so, not that nothing runs."""
    d = Daemon(tmp)
    os.chmod(tmp, 0o755)
    os.chmod(d.sock.parent, 0o755)
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", str(h.LOOPSTALL), "status",
                        "--socket", str(d.sock)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1, r
    assert "permission denied" in r.stderr and str(d.sock) in r.stderr, r.stderr
    assert "not running" not in r.stderr, r.stderr
