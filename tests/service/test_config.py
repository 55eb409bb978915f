"""Bad configuration files and flags: loopstalld refuses to start and says which key is wrong."""
import json
import subprocess

import pytest

import service_harness as h
from service_harness import Daemon

RULE = {"name": "R", "stall_ms": 500}

# (id, config file text or None for a missing file, text stderr must contain)
BAD_CONFIGS = [
    ("unknown-top-level-key", {"threshold_ms": 100, "tresholds": 1}, "tresholds: unknown key"),
    ("unknown-nested-key", {"watch": {"inclde": []}}, "watch.inclde: unknown key"),
    ("unknown-key-in-match", {"watch": {"include": [{"exe": "python", "comand": "x"}]}}, "watch.include[0].comand"),
    ("bad-type-threshold", {"threshold_ms": "x"}, "threshold_ms: must be a number"),
    ("bad-type-all-loops", {"watch": {"all_loops": "yes"}}, "watch.all_loops"),
    ("out-of-range-threshold", {"threshold_ms": 0}, "threshold_ms: must be between"),
    ("out-of-range-sample-hz", {"sample_hz": 100000}, "sample_hz: must be between"),
    ("bad-regex", {"watch": {"exclude": [{"exe": "python(3"}]}}, "watch.exclude[0].exe: invalid regular expression"),
    ("rule-two-conditions", {"alerts": {"rules": [{"name": "Both", "stall_ms": 500, "hung_s": 5}]}},
     "alerts.rules[0]: needs exactly one of"),
    ("rule-no-condition", {"alerts": {"rules": [{"name": "None"}]}}, "alerts.rules[0]: needs exactly one of"),
    ("rule-bad-name", {"alerts": {"rules": [{"name": "has space", "stall_ms": 1}]}}, "alerts.rules[0].name"),
    ("rule-duplicate-name", {"alerts": {"rules": [RULE, RULE]}}, "alerts.rules[1].name: duplicate"),
    ("rule-window-without-stalls", {"alerts": {"rules": [{"name": "W", "hung_s": 5, "window_s": 60}]}},
     "alerts.rules[0]: min_ms and window_s go only with stalls"),
    ("bad-alertmanager-url", {"alerts": {"alertmanager": {"url": "127.0.0.1:9093"}}}, "alerts.alertmanager.url"),
    ("bad-metrics-listen", {"metrics_listen": "localhost"}, "metrics_listen: must be HOST:PORT"),
    ("invalid-json", '{"threshold_ms": 100,', "invalid JSON"),
    ("number-overflow", '{"threshold_ms": 1e400}', "invalid JSON"),
    ("not-an-object", "[1, 2]", "must be a JSON object"),
    ("coalescing-not-object", {"event_coalescing": True}, "event_coalescing: must be an object"),
    ("coalescing-unknown-key", {"event_coalescing": {"window": 10}}, "event_coalescing.window: unknown key"),
    ("coalescing-bad-enabled", {"event_coalescing": {"enabled": "yes"}}, "event_coalescing.enabled: must be true"),
    ("coalescing-window-range", {"event_coalescing": {"window_s": 0.5}}, "event_coalescing.window_s: must be between"),
    ("coalescing-fractional-burst", {"event_coalescing": {"burst": 2.5}}, "event_coalescing.burst: must be a whole"),
    ("coalescing-negative-burst", {"event_coalescing": {"burst": -1}}, "event_coalescing.burst: must be between"),
    ("missing-file", None, "cannot be read"),
]


def run_daemon(tmp, args, timeout=15):
    argv = [str(h.LOOPSTALLD), "--control-socket", str(tmp / "run" / "control.sock"),
            "--metrics-listen", "127.0.0.1:0", "--events", str(tmp / "events.jsonl"), *args]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"loopstalld kept running with a bad configuration ({' '.join(argv)}): {e}", pytrace=False)


@pytest.mark.parametrize("config,expect", [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_is_refused_naming_the_key(binaries, tmp, config, expect):
    path = tmp / "loopstalld.json"
    if config is not None:
        path.write_text(config if isinstance(config, str) else json.dumps(config))
    r = run_daemon(tmp, ["--config", str(path)])
    assert r.returncode != 0, f"loopstalld accepted it: rc=0\n{r.stderr}"
    assert expect in r.stderr, f"stderr does not say {expect!r}:\n{r.stderr}"
    assert str(path) in r.stderr, f"stderr does not name the file:\n{r.stderr}"
    assert "loopstalld: ready" not in r.stderr
    assert not (tmp / "run" / "control.sock").exists()


@pytest.mark.parametrize("args,expect", [
    (["--no-such-flag"], "--no-such-flag"),
    (["--threshold-ms", "-5"], "--threshold-ms"),
    (["--threshold-ms", "abc"], "--threshold-ms"),
    (["--metrics-listen", "nope"], "--metrics-listen"),
], ids=["unknown-flag", "negative-threshold", "non-numeric-threshold", "bad-listen-flag"])
def test_bad_flag_is_refused(binaries, tmp, args, expect):
    r = run_daemon(tmp, args)
    assert r.returncode != 0, f"loopstalld accepted {args}\n{r.stderr}"
    assert expect in r.stderr, f"stderr does not mention {expect!r}:\n{r.stderr}"


def test_shipped_config_is_accepted(bpf, tmp):
    """deploy/config/loopstalld.json starts the daemon (paths overridden on the command line)."""
    shipped = h.REPO / "deploy" / "config" / "loopstalld.json"
    if not shipped.exists():
        pytest.skip("no deploy/config/loopstalld.json")
    d = Daemon(tmp, extra=["--config", shipped])
    st = d.status()
    assert st["threshold_ms"] == json.loads(shipped.read_text())["threshold_ms"]
    assert set(st["alerts_firing"]) == {r["name"] for r in json.loads(shipped.read_text())["alerts"]["rules"]}
    assert d.stop() == 0, d.describe()
