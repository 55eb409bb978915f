"""`service` as a user sees it from `loopstall capture`: named by the default rules, on real
processes (an OpenTelemetry-configured service, a script, gunicorn's gevent workers)."""
import os
import socket
import subprocess
import time
import urllib.request

from conftest import PY, WORKLOADS, Capture, Proc, run_capture, workload


def test_otel_service_name_and_script_name(bpf_ready):
    def start():
        return [workload("gevent_stall.py", "cpu", "--ms", 300, "--warmup", 1, "--after", 0.5,
                         prefix=["env", "OTEL_SERVICE_NAME=checkout"]),
                workload("gevent_stall.py", "sleep", "--ms", 300, "--warmup", 1, "--after", 0.5)]

    run = run_capture(bpf_ready, start, capture_args=["--standalone"])
    otel, plain = run.workloads
    got = {w.pid: {e["service"] for e in run.of(w.pid)} for w in (otel, plain)}
    assert got == {otel.pid: {"checkout"}, plain.pid: {"gevent_stall"}}, run.describe()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_gevent_workers_are_named_after_the_app(bpf_ready):
    """Two forked gevent workers of one master: their stalls carry the WSGI module, not python3.11."""
    port = free_port()
    cap = Capture(bpf_ready, ["--standalone"])
    guni = Proc(["nice", "-n", "-20", PY, "-m", "gunicorn", "-k", "gevent", "-w", "2", "-b", f"127.0.0.1:{port}",
                 "--chdir", str(WORKLOADS), "gunicorn_app:app"], name="gunicorn")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline and guni.alive(), guni.describe()
                time.sleep(0.2)
        time.sleep(1)  # both workers in their loops and classified
        for _ in range(4):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/stall?ms=300", timeout=10).read()
        time.sleep(0.5)
        workers = {int(p) for p in subprocess.run(["pgrep", "-P", str(guni.pid)], capture_output=True,
                                                  text=True).stdout.split()}
    finally:
        guni.kill()
        cap.stop()
    events = [e for e in cap.events() if e["pid"] in workers and not e["ongoing"]]
    assert len(events) >= 4, cap.describe() + guni.describe()
    assert {e["service"] for e in events} == {"gunicorn_app"}, events
    assert all(e["pid"] != guni.pid for e in events)
