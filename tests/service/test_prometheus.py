"""loopstalld scraped by a real Prometheus: what a user sees in Prometheus after a stall."""
import math
import re
import subprocess
import warnings

import pytest

import service_harness as h
from service_harness import Daemon, Prometheus, Workload, wait_for

BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, math.inf]


def sel(name, **labels):
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def buckets_by_le(prom, svc):
    return {float(m["le"]): v for m, v in prom.query(sel("loopstall_stall_duration_seconds_bucket", service=svc))}


def test_prometheus_scrapes_stalls(bpf, prometheus_bins, tmp):
    d = Daemon(tmp)
    prom = Prometheus(tmp, [d.metrics_addr])

    def scraped():
        t = [t for t in prom.targets() if t["labels"].get("job") == "loopstall"]
        return t and t[0]["health"] == "up" and prom.value('up{job="loopstall"}') == 1

    wait_for(scraped, 20, 0.25, what="Prometheus scraping loopstalld (up == 1)",
             describe=lambda: f"targets: {prom.targets()}\n{prom.describe()}")

    info = prom.query("loopstall_build_info")
    assert len(info) == 1 and info[0][1] == 1 and info[0][0].get("version"), info

    svc = "gevent_stall"  # confirmed from the event below (no OTEL_SERVICE_NAME/unit/container here: the script)
    stall_counts = []
    for round_ in range(2):
        base = {m["cause"]: v for m, v in prom.query(sel("loopstall_stalls_total", service=svc))}
        base_buckets = buckets_by_le(prom, svc)
        w = Workload("gevent_stall.py", "cpu", "--ms", 300, "--warmup", 2, "--after", 1.5)
        # While it runs: at least one monitored loop (the workload's, maybe others on this host).
        wait_for(lambda: (prom.value("loopstall_monitored_loops", 0) or 0) >= 1, 5, 0.2,
                 what="loopstall_monitored_loops >= 1 while a gevent workload runs",
                 describe=lambda: str(prom.query("loopstall_monitored_loops")) + "\n" + w.describe())
        assert w.alive(), "the workload ended before Prometheus saw its loop: raise --warmup/--after"
        ev = d.wait_final_event(w.pid)[0]
        h.validate_event(ev)
        assert ev["service"] == svc, ev
        # A pure-Python burn at nice -20: "cpu" (the integration tests check the attribution; on an
        # overloaded box it may say "runqueue", and then that counter must have moved).
        cause = ev["cause"]
        if cause != "cpu":
            warnings.warn(f"the 300 ms CPU burn was attributed to {cause}: {ev['breakdown_ms']}")
        w.finish()
        want = base.get(cause, 0.0) + 1
        wait_for(lambda: prom.value(sel("loopstall_stalls_total", cause=cause, service=svc), 0.0) >= want,
                 15, 0.25,
                 what=f'loopstall_stalls_total{{cause="{cause}",service="{svc}"}} >= {want} (round {round_})',
                 describe=lambda: str(prom.query("loopstall_stalls_total")))
        stall_counts.append(sum(v for _, v in prom.query(sel("loopstall_stalls_total", service=svc))))
        # The 300 ms stall is in the le=0.5 bucket and not in le=0.25.
        def landed():
            b = buckets_by_le(prom, svc)
            delta = {le: b.get(le, 0) - base_buckets.get(le, 0) for le in b}
            return delta and delta.get(0.5, 0) - delta.get(0.25, 0) >= 1 and delta
        wait_for(landed, 15, 0.25, what="the 300 ms stall counted in (0.25, 0.5]",
                 describe=lambda: str(buckets_by_le(prom, svc)))
    assert stall_counts[1] > stall_counts[0]

    iters = prom.value(sel("loopstall_loop_iterations_total", service=svc), 0)
    assert iters > 0, prom.query("loopstall_loop_iterations_total")

    les = sorted(buckets_by_le(prom, svc))
    assert les == BUCKETS, f"histogram buckets: {les}"
    # Bounds read the way users write them in PromQL (le="0.1", not le="0.10000000000000001").
    for le in ("0.001", "0.0025", "0.1", "1", "30", "+Inf"):
        assert prom.query(sel("loopstall_stall_duration_seconds_bucket", service=svc, le=le)), f"no bucket le={le!r}"
    count = prom.value(sel("loopstall_stall_duration_seconds_count", service=svc), 0)
    total = prom.value(sel("loopstall_stall_duration_seconds_sum", service=svc), 0)
    assert count >= 2 and total >= 0.6 * 0.95, (count, total)

    for name in ("loopstall_lost_events_total", "loopstall_monitored_loops"):
        assert prom.query(name), f"{name} missing in Prometheus"

    # No pid/tid/stack labels anywhere (bounded label sets).
    for m, _ in prom.query('{__name__=~"loopstall_.*"}'):
        assert not ({"pid", "tid", "stack", "stall_id"} & set(m)), m

    # promtool's lint on the raw text: clean (exit 0), no parse errors (1) nor lint findings (3).
    text = d.metrics_text()
    r = subprocess.run([h.PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=20)
    findings = (r.stdout + r.stderr).strip()
    assert r.returncode == 0, f"promtool check metrics (rc={r.returncode}):\n{findings}"


SHIPPED = [h.REPO / "deploy" / "prometheus" / "loopstall.rules.yml",
           h.REPO / "deploy" / "grafana" / "loopstall-dashboard.json"]


def test_exposition_matches_shipped_rules_and_dashboard(bpf, tmp):
    """The shipped alert rules and dashboard query what the daemon really exports: every
    loopstall_* metric they name exists, exact label matchers (e.g. result="...") use values the
    daemon emits, and the histogram's le labels are rendered the way Prometheus users write them
    (le="0.1", not le="0.10000000000000001": a {le="0.1"} selector must find the bucket)."""
    shipped = [p for p in SHIPPED if p.exists()]
    if not shipped:
        pytest.skip("no shipped rules/dashboard in deploy/")
    # An Alertmanager URL (nothing listens there) makes the delivery counters exist.
    d = Daemon(tmp, config={"alerts": {"alertmanager": {"url": f"http://127.0.0.1:{h.free_port()}"}}})
    w = Workload("gevent_stall.py", "cpu", "--ms", 150, "--warmup", 0.5, "--after", 0.3)
    d.wait_final_event(w.pid)
    w.finish()
    wait_for(lambda: "loopstall_alert_deliveries_total{" in d.metrics_text(), 5,
             what="loopstall_alert_deliveries_total in /metrics")
    types, samples = h.parse_exposition(d.metrics_text())
    families = set(types)
    for name in list(types):
        if types[name] == "histogram":
            families |= {name + "_bucket", name + "_sum", name + "_count"}

    problems = []
    for path in shipped:
        text = path.read_text().replace('\\"', '"')
        for name in sorted(set(re.findall(r"\bloopstall_[a-z0-9_]+", text))):
            if name not in families:
                problems.append(f"{path.relative_to(h.REPO)}: {name} is not exported by loopstalld")
        for name, matchers in re.findall(r"\b(loopstall_[a-z0-9_]+)\{([^}]*)\}", text):
            for label, value in re.findall(r'(\w+)\s*=\s*"([^"]*)"', matchers):
                exported = {lbl[label] for n, lbl, _ in samples if n == name and label in lbl}
                if exported and value not in exported:
                    problems.append(f'{path.relative_to(h.REPO)}: {name}{{{label}="{value}"}} never matches: '
                                    f"loopstalld exports {label} in {sorted(exported)}")

    def canonical(x):
        if math.isinf(x):
            return "+Inf"
        s = repr(float(x))
        return s[:-2] if s.endswith(".0") else s

    bad_le = sorted({lbl["le"] for n, lbl, _ in samples
                     if n.endswith("_bucket") and lbl["le"] != canonical(float(lbl["le"]))})
    if bad_le:
        problems.append("histogram le labels are not in shortest form (Prometheus clients write "
                        f"le=\"0.1\"; a {{le=\"0.1\"}} selector misses these): {bad_le}")
    assert not problems, "\n".join(problems)
