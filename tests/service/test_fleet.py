"""What a fleet needs: one service name in events, metrics and alerts; one alert per service under
a storm of stalls, grouped by the shipped Alertmanager example; one daemon per metrics port."""
import socket
import subprocess
from pathlib import Path

import pytest

import service_harness as h
from service_harness import Alertmanager, Daemon, Workload, wait_for

SHIPPED_AM = h.REPO / "deploy" / "alertmanager" / "alertmanager.example.yml"
# Only this test's workloads: other Python services on the box must not add alerts or series.
OURS = {"include": [{"cmdline": str(h.WORKLOADS) + "/"}]}


def test_second_daemon_on_the_same_metrics_port_is_refused(bpf, tmp):
    first = Daemon(tmp)
    port = first.metrics_port
    other = tmp / "second"
    other.mkdir()
    argv = [str(h.LOOPSTALLD), "--control-socket", str(other / "control.sock"),
            "--metrics-listen", f"127.0.0.1:{port}", "--events", str(other / "events.jsonl")]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"a second loopstalld on 127.0.0.1:{port} kept running", pytrace=False)
    assert r.returncode == 1, f"rc={r.returncode}\n{r.stderr}"
    assert f"cannot listen on 127.0.0.1:{port} for metrics (Address already in use)" in r.stderr, r.stderr
    assert "loopstalld: ready" not in r.stderr, r.stderr
    # Refused before any BPF was loaded, and before its control socket was made.
    assert "BPF programs attached" not in r.stderr
    assert not (other / "control.sock").exists()
    # Every scrape still reaches the first daemon.
    for _ in range(5):
        assert "loopstall_build_info" in first.metrics_text()
    assert first.alive()


def test_a_port_held_by_another_program_is_refused(binaries, tmp):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = subprocess.run([str(h.LOOPSTALLD), "--control-socket", str(tmp / "c.sock"), "--metrics-listen",
                            f"127.0.0.1:{port}", "--events", ""], capture_output=True, text=True, timeout=20,
                           stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and "Address already in use" in r.stderr, r.stderr


def test_bpf_run_time_is_absent_not_zero_when_the_kernel_does_not_measure_it(bpf, tmp):
    """Without kernel.bpf_stats_enabled the kernel counts no BPF run time: a 0 would read as "free"."""
    enabled = Path("/proc/sys/kernel/bpf_stats_enabled").read_text().strip() == "1"
    d = Daemon(tmp)
    wait_for(lambda: any(n == "loopstall_bpf_stats_enabled" for n, _, _ in h.parse_exposition(d.metrics_text())[1]),
             5, what="a loopstall_bpf_stats_enabled sample")
    _, samples = h.parse_exposition(d.metrics_text())
    flag = [v for n, _, v in samples if n == "loopstall_bpf_stats_enabled"]
    run_time = [(lbl, v) for n, lbl, v in samples if n == "loopstall_bpf_program_run_seconds_total"]
    assert flag == [1.0 if enabled else 0.0], flag
    if enabled:
        assert run_time and all("program" in lbl for lbl, _ in run_time), run_time
    else:
        assert run_time == [], run_time


def metric_services(d, family):
    _, samples = h.parse_exposition(d.metrics_text())
    return {lbl.get("service"): v for n, lbl, v in samples if n == family}


def test_services_named_by_rule_are_the_same_in_events_metrics_and_alerts(bpf, tmp):
    d = Daemon(tmp, config={
        "watch": OURS,
        "service_names": [
            {"from": "env", "var": "OTEL_SERVICE_NAME"},
            {"from": "cmdline", "regex": "gevent_stall\\.py (sleep)", "name": "sleeper-svc"},
            {"from": "script"},
        ],
        "alerts": {"labels": {"cluster": "test-1"}, "rules": [{"name": "SlowLoop", "stall_ms": 200}]}})
    otel = Workload("gevent_stall.py", "cpu", "--ms", 300, "--warmup", 0.5, "--after", 0.5,
                    env={"OTEL_SERVICE_NAME": "checkout"})
    by_regex = Workload("gevent_stall.py", "sleep", "--ms", 300, "--warmup", 0.5, "--after", 0.5)
    by_script = Workload("gevent_stall.py", "usleep", "--ms", 300, "--warmup", 0.5, "--after", 0.5)
    expected = {otel.pid: "checkout", by_regex.pid: "sleeper-svc", by_script.pid: "gevent_stall"}
    for pid, service in expected.items():
        ev = d.wait_final_event(pid)[0]
        h.validate_event(ev)
        assert ev["service"] == service, ev
    for w in (otel, by_regex, by_script):
        w.finish()

    wait_for(lambda: set(expected.values()) <= set(metric_services(d, "loopstall_stalls_total")), 5,
             what="loopstall_stalls_total for every named service", describe=lambda: d.metrics_text())
    iterations = metric_services(d, "loopstall_loop_iterations_total")
    assert set(expected.values()) <= set(iterations), iterations

    for service in expected.values():
        line = wait_for(lambda: d.find_line(lambda l: l.startswith("loopstalld: alert firing ")
                                            and f'service="{service}"' in l), 5,
                        what=f"a SlowLoop alert for service {service}", describe=d.describe)
        assert 'cluster="test-1"' in line and 'instance="' in line, line
    # The process name is not a service any more once a rule names it.
    assert "python3.11" not in metric_services(d, "loopstall_stalls_total")


def test_a_storm_of_stalls_in_one_service_is_one_alert(bpf, alertmanager_bin, tmp):
    """N stalls of one service = 1 alert in a real Alertmanager running the shipped example routing."""
    am = Alertmanager(tmp, config=SHIPPED_AM.read_text())
    # Every stall written one by one (no event_coalescing): the test finds the latest in the log.
    d = Daemon(tmp, config={"watch": OURS, "event_coalescing": {"enabled": False}, "alerts": {
        "alertmanager": {"url": am.url, "timeout_ms": 2000},
        "labels": {"instance": "web-1:9750"},
        "rules": [{"name": "LoopStalled", "severity": "warning", "stall_ms": 150}]}})
    storm = Workload("gevent_stall.py", "sleep", "--count", 25, "--ms", 200, "--gap", 0.05, "--warmup", 0.5,
                     "--after", 0.5, env={"OTEL_SERVICE_NAME": "storm-svc"})
    calm = Workload("gevent_stall.py", "sleep", "--ms", 300, "--warmup", 0.5, "--after", 0.5)
    storm.wait_line(lambda l: l.startswith("STALLS_DONE"), 60, "out")
    storm.finish()
    calm.finish()
    finals = wait_for(lambda: len(d.final_events(storm.pid)) >= 20 and d.final_events(storm.pid), 10,
                      what="the storm's stall events", describe=d.describe)
    last_id = max(finals, key=lambda e: e["start_unix_ns"])["stall_id"]

    def storm_alerts():
        return [a for a in am.alerts(active=True) if a["labels"].get("service") == "storm-svc"]

    # The latest stall is the one the alert describes (updates are delivered in the background).
    alerts = wait_for(lambda: (lambda a: a if a and a[0]["annotations"].get("stall_id") == last_id else None)(
        storm_alerts()), 15, 0.2, what=f"one LoopStalled alert for storm-svc describing {last_id}",
        describe=lambda: f"alerts: {am.alerts()}\n{d.describe()}")
    assert len(alerts) == 1, alerts
    labels = alerts[0]["labels"]
    assert labels == {"alertname": "LoopStalled", "severity": "warning", "service": "storm-svc",
                      "instance": "web-1:9750"}, labels
    assert alerts[0]["annotations"]["pid"] == str(storm.pid)
    # The other service has its own alert: one per (rule, service).
    wait_for(lambda: [a for a in am.alerts(active=True) if a["labels"].get("service") == "gevent_stall"], 10, 0.2,
             what="an alert for gevent_stall", describe=lambda: str(am.alerts()))
    # The shipped routing groups by alertname, instance, service: labels the daemon's alerts carry.
    groups = [g for g in am.groups() if g["labels"].get("service") == "storm-svc"]
    assert len(groups) == 1 and len(groups[0]["alerts"]) == 1, groups
    assert groups[0]["labels"] == {"alertname": "LoopStalled", "instance": "web-1:9750", "service": "storm-svc"}
    firing_lines = [line for _, line in d.err
                    if line.startswith("loopstalld: alert firing") and 'service="storm-svc"' in line]
    assert len(firing_lines) == 1, d.describe()
    assert d.status()["alerts_firing"]["LoopStalled"] == 2
    print(f"storm: {len(finals)} stalls of storm-svc -> {len(alerts)} alert")
