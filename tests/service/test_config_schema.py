"""deploy/config/loopstalld.schema.json and `loopstalld --check-config` give the same verdict on
the shipped configuration and on bad ones: the schema operators validate with is the daemon's."""
import json
import subprocess

import jsonschema
import pytest

import service_harness as h
from test_config import BAD_CONFIGS

SCHEMA = json.loads((h.REPO / "deploy" / "config" / "loopstalld.schema.json").read_text())
SHIPPED = h.REPO / "deploy" / "config" / "loopstalld.json"

# Checks a JSON Schema cannot express: only the daemon refuses these (asserted too).
DAEMON_ONLY = {
    "bad-regex": "RE2 syntax",
    "rule-duplicate-name": "uniqueness of a property across array items",
    "invalid-json": "not JSON at all",
    "number-overflow": "not representable (Python reads 1e400 as inf)",
    "missing-file": "no file",
    "naming-bad-regex": "RE2 syntax",
}

# Beyond test_config.BAD_CONFIGS: where hand-written validation and the schema used to disagree.
MORE_BAD = [
    ("fractional-max-services", {"labels": {"max_services": 2.5}}),
    ("fractional-stalls", {"alerts": {"rules": [{"name": "F", "stalls": 2.5, "window_s": 60}]}}),
    ("fractional-timeout", {"alerts": {"alertmanager": {"url": "http://x:1", "timeout_ms": 10.5}}}),
    ("empty-severity", {"alerts": {"rules": [{"name": "S", "severity": "", "stall_ms": 1}]}}),
    ("empty-unit", {"watch": {"include": [{"unit": ""}]}}),
    ("empty-match", {"watch": {"include": [{}]}}),
    ("port-out-of-range", {"metrics_listen": "127.0.0.1:99999"}),
    ("ipv6-without-brackets", {"metrics_listen": "::1:9750"}),
    ("listen-port-not-a-number", {"metrics_listen": "127.0.0.1:http"}),
    ("naming-unknown-source", {"service_names": [{"from": "hostname"}]}),
    ("naming-env-without-var", {"service_names": [{"from": "env"}]}),
    ("naming-regex-without-regex", {"service_names": [{"from": "cmdline"}]}),
    ("naming-regex-on-comm", {"service_names": [{"from": "comm", "regex": "x"}]}),
    ("naming-var-on-script", {"service_names": [{"from": "script", "var": "X"}]}),
    ("naming-bad-regex", {"service_names": [{"from": "cmdline", "regex": "(x"}]}),
    ("naming-not-array", {"service_names": {"from": "comm"}}),
    ("alert-label-reserved", {"alerts": {"labels": {"service": "x"}}}),
    ("alert-label-bad-name", {"alerts": {"labels": {"a-b": "x"}}}),
    ("alert-label-not-string", {"alerts": {"labels": {"env": 1}}}),
]

GOOD = [
    ("shipped", json.loads(SHIPPED.read_text())),
    ("empty", {}),
    ("naming-rules", {"service_names": [{"from": "env", "var": "OTEL_SERVICE_NAME"},
                                        {"from": "cmdline", "regex": "--name=(\\S+)"},
                                        {"from": "exe", "regex": "/srv/([a-z]+)/", "name": "srv"},
                                        {"from": "kubernetes"}, {"from": "container_id"}, {"from": "comm"}]}),
    ("no-naming", {"service_names": []}),
    ("alert-labels", {"alerts": {"labels": {"instance": "web-1:9750", "cluster": "eu"}}}),
    ("whole-number-floats", {"labels": {"max_services": 10.0}}),
    ("ipv6-listen", {"metrics_listen": "[::1]:9750"}),
    ("empty-host", {"metrics_listen": ":9750"}),
    ("coalescing", {"event_coalescing": {"enabled": False, "window_s": 30, "burst": 0}}),
    ("coalescing-defaults", {"event_coalescing": {}}),
]

CASES = [(cid, cfg, False) for cid, cfg, _ in BAD_CONFIGS] + [(cid, cfg, False) for cid, cfg in MORE_BAD] + \
        [(cid, cfg, True) for cid, cfg in GOOD]


def schema_verdict(text):
    try:
        doc = json.loads(text)
    except ValueError:
        return False
    return jsonschema.Draft202012Validator(SCHEMA).is_valid(doc)


def test_the_schema_is_a_valid_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("config,valid", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_schema_and_check_config_agree(binaries, tmp, request, config, valid):
    cid = request.node.callspec.id
    path = tmp / "loopstalld.json"
    if config is not None:
        path.write_text(config if isinstance(config, str) else json.dumps(config))
    r = subprocess.run([str(h.LOOPSTALLD), "--check-config", "--config", str(path)], capture_output=True,
                       text=True, timeout=15, stdin=subprocess.DEVNULL)
    daemon_ok = r.returncode == 0
    assert r.returncode in (0, 1), f"rc={r.returncode}\n{r.stderr}"
    assert daemon_ok == valid, f"loopstalld --check-config: rc={r.returncode}\n{r.stdout}{r.stderr}"
    if daemon_ok:
        assert "configuration OK" in r.stdout, r.stdout
    else:
        assert str(path) in r.stderr and "loopstalld: error:" in r.stderr, r.stderr
    assert "ready" not in r.stderr and not (tmp / "run").exists()  # nothing was started
    if cid in DAEMON_ONLY:
        return
    assert schema_verdict(path.read_text()) == daemon_ok, \
        f"the schema says {'valid' if not daemon_ok else 'invalid'}, loopstalld --check-config says " \
        f"{'valid' if daemon_ok else 'invalid'}: {r.stderr}"


def test_check_config_without_a_file_checks_the_built_in_configuration(binaries):
    r = subprocess.run([str(h.LOOPSTALLD), "--check-config"], capture_output=True, text=True, timeout=15)
    assert r.returncode == 0 and "built-in: configuration OK" in r.stdout, r.stdout + r.stderr
