"""loopstalld's own alert rules delivered to a real Alertmanager (POST /api/v2/alerts)."""
import time
from datetime import datetime, timezone

import service_harness as h
from service_harness import Alertmanager, Daemon, Workload, wait_for


def ts(rfc3339):
    """Alertmanager's RFC 3339 times (nanosecond fractions) -> unix seconds."""
    base, _, frac = rfc3339.rstrip("Z").partition(".")
    secs = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return secs + (float("0." + frac) if frac else 0.0)


def of(alerts, name, service):
    """Alerts are keyed by (rule, service): the pid is an annotation (the latest stall's)."""
    return [a for a in alerts if a["labels"].get("alertname") == name and a["labels"].get("service") == service]


def log_line(d, state, name, service):
    return d.find_line(lambda l: l.startswith(f"loopstalld: alert {state} ") and f'alertname="{name}"' in l
                       and f'service="{service}"' in l)


def test_alertmanager_hung_loop_fires_then_resolves(bpf, alertmanager_bin, tmp):
    am = Alertmanager(tmp)
    d = Daemon(tmp, config={"alerts": {
        "alertmanager": {"url": am.url, "timeout_ms": 2000},
        "rules": [
            {"name": "LoopHung", "severity": "critical", "hung_s": 1},
            {"name": "SlowIteration", "severity": "warning", "labels": {"team": "svc-test"}, "stall_ms": 200},
            {"name": "VeryLongStall", "stall_ms": 5000},
        ]}})
    hang = Workload("gevent_stall.py", "sleep", "--ms", 6000, "--warmup", 0.5, "--after", 1,
                    env={"OTEL_SERVICE_NAME": "hung-svc"})
    cpu = Workload("gevent_stall.py", "cpu", "--ms", 300, "--warmup", 0.5, "--after", 0.5)
    # Named by the default rules: OTEL_SERVICE_NAME for one, the script for the other (no unit here).
    HANG, CPU = "hung-svc", "gevent_stall"

    # While the loop hangs: an active LoopHung alert with its pid, in Alertmanager and on stderr.
    hung_since = int(hang.wait_line(lambda l: l.startswith("STALL_START "), 5, "out").split()[1]) / 1e9
    found = wait_for(lambda: of(am.alerts(active=True), "LoopHung", HANG), 8, 0.2,
                     what=f"an active LoopHung alert for {HANG} in Alertmanager",
                     describe=lambda: f"alerts: {am.alerts()}\n{d.describe()}")
    assert hang.find_line(lambda l: l.startswith("STALL_END"), "out") is None, "alert seen only after the hang"
    alert = found[0]
    assert alert["status"]["state"] == "active", alert
    labels = alert["labels"]
    assert labels["severity"] == "critical" and labels["service"] == HANG, labels
    assert labels["instance"] and "pid" not in labels and "tid" not in labels, labels
    assert alert["annotations"]["pid"] == str(hang.pid), alert
    assert alert["annotations"]["tid"] == str(hang.pid), alert  # gevent's hub runs on the main thread
    assert abs(ts(alert["startsAt"]) - hung_since) < 2.0, (alert["startsAt"], hung_since)
    assert ts(alert["endsAt"]) > time.time(), alert
    assert "summary" in alert["annotations"], alert
    assert log_line(d, "firing", "LoopHung", HANG), d.describe()

    # The 300 ms CPU stall fires SlowIteration (stall_ms 200) but not VeryLongStall (5000 ms).
    wait_for(lambda: log_line(d, "firing", "SlowIteration", CPU), 15,
             what=f'stderr "loopstalld: alert firing alertname=\\"SlowIteration\\" service=\\"{CPU}\\""',
             describe=d.describe)
    slow = wait_for(lambda: of(am.alerts(active=True), "SlowIteration", CPU), 10, 0.2,
                    what="SlowIteration in Alertmanager", describe=lambda: str(am.alerts()))[0]
    assert slow["labels"]["team"] == "svc-test" and slow["labels"]["severity"] == "warning", slow
    assert slow["annotations"].get("stall_id", "").startswith(f"{cpu.pid}-"), slow
    cpu.finish()

    # After the loop returns: resolved (gone from the active alerts; no copy with endsAt ahead).
    hang.wait_line(lambda l: l.startswith("STALL_END "), 15, "out")
    returned = time.time()

    def resolved():
        active = of(am.alerts(active=True), "LoopHung", HANG)
        every = of(am.alerts(active=True, silenced=True, inhibited=True, unprocessed=True), "LoopHung", HANG)
        return not active and all(ts(a["endsAt"]) <= time.time() for a in every)

    wait_for(resolved, 10, 0.2, what=f"LoopHung for {HANG} resolved in Alertmanager",
             describe=lambda: f"alerts: {am.alerts()}\n{d.describe()}")
    assert time.time() - returned < 10
    assert log_line(d, "resolved", "LoopHung", HANG), d.describe()
    # The 6 s hang crossed both stall rules; the 300 ms stall crossed only the first.
    assert log_line(d, "firing", "VeryLongStall", HANG), d.describe()
    assert log_line(d, "firing", "VeryLongStall", CPU) is None, d.describe()
    hang.finish()

    # Delivery counters and the firing gauge in /metrics; status agrees.
    _, samples = h.parse_exposition(d.metrics_text())
    deliveries = {lbl["result"]: v for n, lbl, v in samples if n == "loopstall_alert_deliveries_total"}
    assert deliveries.get("ok", 0) >= 3 and not deliveries.get("failed", 0), deliveries
    firing = {lbl["alert"]: v for n, lbl, v in samples if n == "loopstall_alerts_firing"}
    assert set(firing) >= {"LoopHung", "SlowIteration", "VeryLongStall"}, firing
    assert firing["SlowIteration"] >= 2, firing  # single-stall alerts are held (endsAt ahead)
    assert d.status()["alerts_firing"]["SlowIteration"] >= 2
