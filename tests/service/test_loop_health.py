"""Loop health from loopstalld (issue 13): the contract's utilisation and churn counters on
/metrics (checked by promtool), and `loopstall top` through the daemon's control socket."""
import subprocess
import time

import service_harness as h
from service_harness import Daemon, Workload, run_cli, wait_for

# Only this test's workloads, each named by its OTEL_SERVICE_NAME.
CONFIG = {"watch": {"include": [{"cmdline": str(h.WORKLOADS) + "/"}]},
          "service_names": [{"from": "env", "var": "OTEL_SERVICE_NAME"}]}


def top_rows(sock, pids):
    """`loopstall top --batch` through the daemon: the last table, {pid: columns}."""
    r = run_cli(["top", "--socket", sock, "--batch", "--count", 2, "--interval", 1.5,
                 *[a for p in pids for a in ("--pid", p)]], timeout=30)
    assert r.returncode == 0, r.stderr
    block = r.stdout.strip().split("\n\n")[-1].splitlines()
    assert "loopstalld" in block[0], r.stdout  # not a standalone fallback
    rows = {}
    for line in block[2:]:
        cols = line.split()
        rows[int(cols[0])] = cols
    return rows, r.stdout


def series(text, name):
    _, samples = h.parse_exposition(text)
    return {tuple(sorted(lbl.items())): v for n, lbl, v in samples if n == name}


def test_busy_and_read_counters_and_top_through_the_daemon(bpf, tmp):
    d = Daemon(tmp, config=CONFIG)
    reader = Workload("gevent_byte_reader.py", "--seconds", 40, "--chunk", 64, "--gap", 0.005,
                      env={"OTEL_SERVICE_NAME": "lh-reader"})
    busy = Workload("asyncio_duty.py", "--duty", 1.0, "--burn-ms", 5, "--seconds", 40,
                    env={"OTEL_SERVICE_NAME": "lh-busy"})
    idle = Workload("asyncio_duty.py", "--duty", 0, "--seconds", 40, env={"OTEL_SERVICE_NAME": "lh-idle"})
    try:
        rows, out = top_rows(d.sock, [reader.pid, busy.pid, idle.pid])
        print(out)
        assert set(rows) == {reader.pid, busy.pid, idle.pid}, out
        svc = {reader: "lh-reader", busy: "lh-busy", idle: "lh-idle"}
        assert [rows[w.pid][1] for w in (reader, busy, idle)] == ["lh-reader", "lh-busy", "lh-idle"], out
        assert "CHURN:" in " ".join(rows[reader.pid]), out
        assert "SATURATED" in rows[busy.pid], out

        t0 = time.monotonic()
        first = d.metrics_text()
        time.sleep(4)
        second = d.metrics_text()
        dt = time.monotonic() - t0

        def rate(name, **labels):
            want = tuple(sorted(labels.items()))
            a, b = series(first, name).get(want, 0.0), series(second, name).get(want, 0.0)
            return (b - a) / dt

        def util(service):
            return sum(rate("loopstall_loop_busy_seconds_total", service=service, state=s)
                       for s in ("on_cpu", "blocked", "runqueue"))

        busy_util, idle_util = util(svc[busy]), util(svc[idle])
        reads = rate("loopstall_loop_reads_total", service=svc[reader])
        read_bytes = rate("loopstall_loop_read_bytes_total", service=svc[reader])
        iters = rate("loopstall_loop_iterations_total", service=svc[reader])
        print(f"utilisation busy {busy_util:.2f} idle {idle_util:.3f}; reader {reads:.0f} reads/s, "
              f"{read_bytes / max(reads, 1):.2f} B/read, {reads / max(iters, 1):.1f} reads/iteration")
        assert busy_util >= 0.8, second
        assert idle_util <= 0.05, second
        assert reads >= 1000, second
        assert read_bytes / reads <= 1.5
        assert reads / max(iters, 1) >= 5
        # One loop thread each: what the saturation alert divides the busy time by.
        loops = series(second, "loopstall_service_loops")
        assert [loops.get((("service", svc[w]),)) for w in (reader, busy, idle)] == [1, 1, 1], loops
        # Every state is exported, and the exposition passes promtool.
        states = {dict(k)["state"] for k in series(second, "loopstall_loop_busy_seconds_total")}
        assert states == {"on_cpu", "blocked", "runqueue"}, states
        check = subprocess.run([h.PROMTOOL, "check", "metrics"], input=second, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        for w in (reader, busy, idle):
            w.kill()


def test_top_says_when_the_daemon_is_gone(binaries, tmp):
    """Asked to use a socket nobody listens on, top falls back to standalone only when told to;
    a daemon that disappears mid-view is an error, not a frozen table."""
    d = Daemon(tmp)
    p = subprocess.Popen([str(h.LOOPSTALL), "top", "--socket", str(d.sock), "--batch", "--interval", "0.5"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: d.sock.exists(), 5)
        time.sleep(1.5)
        d.stop()
        _, err = p.communicate(timeout=20)
    finally:
        p.kill()
    assert p.returncode == 1, err
    # The same words as `loopstall status` (one client, daemon_client.cpp's ask_daemon).
    assert "loopstalld is not running" in err or "no answer from loopstalld" in err, err
