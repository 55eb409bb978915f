"""SIGHUP re-reads the configuration file; a broken file keeps the old configuration."""
import re
import signal
import time

import service_harness as h
from service_harness import Daemon, Workload, wait_for


def test_sighup_reloads_threshold_and_survives_broken_config(bpf, tmp):
    d = Daemon(tmp, config={"threshold_ms": 100})
    assert d.status()["threshold_ms"] == 100

    d.write_config({"threshold_ms": 400})
    d.signal(signal.SIGHUP)
    d.wait_line(lambda l: l.startswith("loopstalld: configuration reloaded") and "threshold 400 ms" in l, 5)
    assert d.status()["threshold_ms"] == 400

    # Blocking sleeps (not CPU burns): their length does not depend on how busy the box is.
    short = Workload("gevent_stall.py", "sleep", "--ms", 300, "--warmup", 0.5, "--after", 0.5)
    long_ = Workload("gevent_stall.py", "sleep", "--ms", 500, "--warmup", 0.5, "--after", 0.5)
    ev = d.wait_final_event(long_.pid)[0]
    h.validate_event(ev)
    assert ev["threshold_ms"] == 400 and 450 <= ev["duration_ms"] < 2000, ev
    short.finish()
    long_.finish()
    time.sleep(0.3)  # anything about the short one would be out by now
    short_events = [e for e in d.events() if e["pid"] == short.pid]
    assert not short_events, f"a 300 ms stall was reported with threshold 400 ms: {short_events}"

    # A broken file: the reload fails loudly, the daemon keeps running with threshold 400.
    d.write_config('{"threshold_ms": "x"}')
    d.signal(signal.SIGHUP)
    line = d.wait_line(lambda l: "reload failed" in l, 5)
    assert "threshold_ms" in line, line
    time.sleep(0.3)
    assert d.alive(), d.describe()
    assert d.status()["threshold_ms"] == 400
    assert "loopstall_build_info" in d.metrics_text()

    # Fixed again: the next SIGHUP applies it.
    d.write_config({"threshold_ms": 250})
    d.signal(signal.SIGHUP)
    wait_for(lambda: d.status()["threshold_ms"] == 250, 5, what="threshold 250 after fixing the file",
             describe=d.describe)
    assert d.stop() == 0, d.describe()


def cpu_samples(ev):
    return sum(s["samples"] for s in ev["python_stacks"])


def test_sample_hz_sets_the_sampling_rate_and_sighup_changes_it(bpf, tmp):
    """sample_hz is the on-CPU sampling rate behind python_stacks: a 400 ms CPU stall gets about
    (400 - threshold/2) ms x sample_hz samples; SIGHUP applies a new rate to the next stall."""
    d = Daemon(tmp, config={"threshold_ms": 100, "sample_hz": 10})

    def stall_samples():
        w = Workload("gevent_stall.py", "cpu", "--ms", 400, "--warmup", 0.5, "--after", 0.3)
        ev = d.wait_final_event(w.pid)[0]
        w.finish()
        h.validate_event(ev)
        return cpu_samples(ev), ev

    slow, ev_slow = stall_samples()  # ~350 ms on CPU sampled at 10 Hz: ~3
    d.write_config({"threshold_ms": 100, "sample_hz": 200})
    d.signal(signal.SIGHUP)
    d.wait_line(lambda l: l.startswith("loopstalld: configuration reloaded"), 5)
    fast, ev_fast = stall_samples()  # at 200 Hz: ~70 (fewer if the box is busy)
    print(f"samples in a 400 ms CPU stall: {slow} at 10 Hz, {fast} at 200 Hz")
    # Bounds with room for a busy box (a stall stretched by waiting for a CPU is sampled longer).
    assert 1 <= slow <= 10, f"{slow} samples at 10 Hz: {ev_slow}"
    assert fast >= 3 * slow and fast >= 15, f"{fast} samples at 200 Hz vs {slow} at 10 Hz: {ev_fast}"
    # The samples and what was dropped of them are counted on /metrics (refreshed once a second).
    def counter(name):
        m = re.search(rf"^{name} (\S+)$", d.metrics_text(), re.M)
        return float(m.group(1)) if m else None
    wait_for(lambda: (counter("loopstall_bpf_samples_total") or 0) >= slow + fast, 5,
             what="loopstall_bpf_samples_total to count the samples", describe=d.metrics_text)
    assert counter("loopstall_bpf_samples_skipped_total") == 0, d.metrics_text()
    assert counter("loopstall_samples_over_budget_total") == 0, d.metrics_text()
    # Exported even when nothing needed repair (a counter that appears late breaks rate()).
    assert counter("loopstall_bpf_run_state_repairs_total") is not None, d.metrics_text()
