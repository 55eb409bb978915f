"""Static checks of everything under deploy/: the systemd unit, the example
configuration, the Prometheus rules and their unit tests, the Alertmanager
example, the Kubernetes manifests and the Grafana dashboard.

Run: /usr/bin/python3.11 -m pytest tests/deploy
"""
import copy
import json
import re
import shutil
from pathlib import Path

import pytest

from deploy_helpers import (
    ALERTMANAGER, CONFIG, CONTRACT_METRICS, DAEMONSET, DASHBOARD, METRICS, PODMONITOR,
    PROM_EXAMPLE, PROM_K8S_EXAMPLE, README, RULES, RULES_TEST, SCHEMA, UNIT,
    check_promql, metric_names, require_module, require_tool, run,
)

yaml = require_module("yaml", "python3-yaml")

UNIT_CAPABILITIES = {"CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"}
K8S_CAPABILITIES = {"BPF", "PERFMON", "SYS_PTRACE"}
MAX_EXPOSURE = 2.5


# ====================================================================== systemd
def parse_unit(path):
    """[(section, key, value, comment lines directly above)] -- keys may repeat."""
    entries, section, comments = [], None, []
    for raw in Path(path).read_text().splitlines():
        line = raw.strip()
        if not line:
            comments = []
            continue
        if line.startswith(("#", ";")):
            comments.append(line)
            continue
        if line.startswith("["):
            section, comments = line.strip("[]"), []
            continue
        key, _, value = line.partition("=")
        entries.append((section, key.strip(), value.strip(), comments))
        comments = []
    return entries


def unit_values(key, section="Service"):
    return [v for s, k, v, _ in parse_unit(UNIT) if s == section and k == key]


def unit_value(key, section="Service"):
    values = unit_values(key, section)
    assert values, f"{key}= missing from [{section}]"
    return values[-1]


def make_verify_root(tmp_path, unit_text):
    """A file-system root for `systemd-analyze verify --root`: the host's unit
    files, the unit under test unchanged, and a stub at the real ExecStart path.

    verify checks that every Exec*= binary exists and resolves dependencies
    (sysinit.target, sys-kernel-tracing.mount...) under --root, so the unit file
    is verified byte for byte as shipped, with /usr/sbin/loopstalld as it will be
    installed -- no rewriting of ExecStart=.
    """
    root = tmp_path / "root"
    for d in ("usr/bin", "usr/sbin", "usr/lib/systemd", "etc/systemd/system"):
        (root / d).mkdir(parents=True)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")):
        (root / link).symlink_to(target)
    host_units = Path("/usr/lib/systemd/system")
    if not host_units.is_dir():
        host_units = Path("/lib/systemd/system")
    shutil.copytree(host_units, root / "usr/lib/systemd/system", symlinks=True)
    # Stubs for every absolute Exec*= binary of the unit.
    for line in unit_text.splitlines():
        m = re.match(r"\s*Exec\w+=[-@:+!]*(/\S+)", line)
        if m:
            stub = root / m.group(1).lstrip("/")
            stub.parent.mkdir(parents=True, exist_ok=True)
            if not stub.exists():
                stub.write_text("#!/bin/sh\nexit 0\n")
                stub.chmod(0o755)
    (root / "etc/systemd/system/loopstalld.service").write_text(unit_text)
    return root


def verify_unit(tmp_path, unit_text):
    exe = require_tool("systemd-analyze")
    root = make_verify_root(tmp_path, unit_text)
    # verify runs man(1) for Documentation=man:loopstalld(8): the page from docs/man.
    man8 = tmp_path / "man" / "man8"
    man8.mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parents[2] / "docs" / "man" / "loopstalld.8", man8)
    r = run([exe, "verify", f"--root={root}", "loopstalld.service"],
            env={"PATH": "/usr/bin:/bin", "MANPATH": str(tmp_path / "man")})
    return r.returncode, (r.stdout + r.stderr).strip()


def test_unit_verify_clean(tmp_path):
    rc, out = verify_unit(tmp_path, UNIT.read_text())
    assert rc == 0 and out == "", f"systemd-analyze verify:\n{out}"


def test_unit_verify_harness_detects_errors(tmp_path):
    """The verify set-up above must not be vacuous: a typo is reported."""
    broken = UNIT.read_text().replace("ProtectClock=yes", "ProtectClock=yes\nProtectClok=yes")
    rc, out = verify_unit(tmp_path, broken)
    assert "ProtectClok" in out


def test_unit_security_exposure():
    exe = require_tool("systemd-analyze")
    r = run([exe, "security", "--offline=true", "--no-pager", str(UNIT)])
    out = r.stdout + r.stderr
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
    assert m, f"no exposure level in output (rc={r.returncode}):\n{out}"
    assert float(m.group(1)) <= MAX_EXPOSURE, out


def test_unit_service_basics():
    assert unit_value("Type") == "notify"
    assert unit_value("NotifyAccess") == "main"
    assert unit_value("WatchdogSec")
    assert unit_value("Restart") == "on-failure"
    assert unit_value("RestartSec")
    assert unit_value("ExecStart").split()[0] == "/usr/sbin/loopstalld"
    assert "--config /etc/loopstall/loopstalld.json" in unit_value("ExecStart")
    assert "-HUP $MAINPID" in unit_value("ExecReload")
    assert unit_value("RuntimeDirectory") == "loopstalld"
    assert unit_value("RuntimeDirectoryMode") == "0700"
    assert unit_value("LogsDirectory") == "loopstall"
    assert unit_value("ConfigurationDirectory") == "loopstall"
    for key, want in {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes",
        "ProtectClock": "yes", "ProtectHostname": "yes", "RestrictNamespaces": "yes",
        "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes", "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native",
        "IPAddressDeny": "any",
    }.items():
        assert unit_value(key) == want, key
    assert set(unit_value("RestrictAddressFamilies").split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert unit_value("UMask") in ("0077", "0027")
    assert unit_value("MemoryMax") and unit_value("CPUQuota")
    # These would break the daemon: private /proc or user namespace hide the host.
    for key in ("PrivateUsers", "PrivateNetwork", "ProtectProc", "ProcSubset"):
        assert key not in {k for _, k, _, _ in parse_unit(UNIT)}, key


def test_unit_capabilities_exact_and_documented():
    bounding, ambient = set(), set()
    for section, key, value, comments in parse_unit(UNIT):
        if key in ("CapabilityBoundingSet", "AmbientCapabilities"):
            caps = set(value.split())
            (bounding if key == "CapabilityBoundingSet" else ambient).update(caps)
            if key == "CapabilityBoundingSet":
                # Each capability has its own comment saying why.
                assert len(caps) == 1, f"one capability per line, got {value}"
                cap = next(iter(caps))
                assert any(cap in c for c in comments), f"{cap} has no comment above it"
    assert bounding == UNIT_CAPABILITIES
    assert ambient == UNIT_CAPABILITIES
    # Not root: the capabilities are all it gets.
    assert unit_value("DynamicUser") == "yes" or unit_value("User") not in ("", "root", "0")


def _syscall_groups(exe):
    out = run([exe, "syscall-filter"]).stdout
    groups, cur = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            cur = line.split()[0]
            groups[cur] = set()
        elif cur and line.strip() and not line.strip().startswith("#"):
            groups[cur].add(line.strip())
    return groups


def _expand(name, groups, seen=None):
    seen = seen or set()
    if not name.startswith("@"):
        return {name}
    if name in seen:
        return set()
    seen.add(name)
    out = set()
    for member in groups.get(name, ()):
        out |= _expand(member, groups, seen)
    return out


def unit_allowed_syscalls():
    """The allow list SystemCallFilter= lines produce, applied in order like systemd does."""
    exe = require_tool("systemd-analyze")
    groups = _syscall_groups(exe)
    allowed = None
    for value in unit_values("SystemCallFilter"):
        deny = value.startswith("~")
        names = value.lstrip("~").split()
        if allowed is None:
            assert not deny, "the first SystemCallFilter= must be an allow list"
            allowed = _expand("@default", groups)
        for n in names:
            if deny:
                allowed -= _expand(n, groups)
            else:
                allowed |= _expand(n, groups)
    return allowed


def test_unit_syscall_filter():
    allowed = unit_allowed_syscalls()
    for sc in ("bpf", "perf_event_open", "process_vm_readv", "epoll_wait", "ioctl", "mmap",
               "openat", "readlink", "kill", "prlimit64", "socket", "bind", "accept4", "connect"):
        assert sc in allowed, f"{sc} must be allowed"
    for sc in ("ptrace", "process_vm_writev", "mount", "umount2", "init_module", "kexec_load",
               "reboot", "swapon", "settimeofday", "setuid", "chroot", "pivot_root", "iopl"):
        assert sc not in allowed, f"{sc} must be denied"
    # A denied call returns EPERM instead of killing the daemon with SIGSYS.
    assert unit_value("SystemCallErrorNumber") == "EPERM"


# ====================================================================== config
# The documented configuration keys (the lead's parser implements exactly these).
CONFIG_KEYS = {
    "threshold_ms", "sample_hz", "metrics_listen", "events", "event_coalescing", "event_log_bytes_per_s",
    "control_socket", "watch", "service_names", "labels", "alerts",
}
COALESCING_KEYS = {"enabled", "window_s", "burst"}
WATCH_KEYS = {"all_loops", "include", "exclude"}
MATCH_KEYS = {"exe", "cmdline", "unit"}
LABELS_KEYS = {"max_services"}
ALERTS_KEYS = {"alertmanager", "labels", "rules"}
ALERTMANAGER_KEYS = {"url", "timeout_ms"}
RULE_KEYS = {"name", "severity", "labels", "stall_ms", "stalls", "min_ms", "window_s", "hung_s"}
# The condition of a rule: its trigger key -> the keys it may/must come with.
RULE_KINDS = {"stall_ms": set(), "stalls": {"window_s", "min_ms"}, "hung_s": set()}


def rule_kind(rule):
    triggers = set(rule) & set(RULE_KINDS)
    assert len(triggers) == 1, f"rule needs exactly one of {sorted(RULE_KINDS)}: {rule}"
    kind = triggers.pop()
    others = set(rule) & {"stall_ms", "stalls", "min_ms", "window_s", "hung_s"} - {kind}
    assert others <= RULE_KINDS[kind], f"{sorted(others)} do not go with {kind}: {rule}"
    if kind == "stalls":
        assert "window_s" in rule, f"stalls needs window_s: {rule}"
    return kind


def check_config_keys(cfg):
    assert set(cfg) <= CONFIG_KEYS, set(cfg) - CONFIG_KEYS
    watch = cfg.get("watch", {})
    assert set(watch) <= WATCH_KEYS
    for entry in watch.get("include", []) + watch.get("exclude", []):
        assert entry and set(entry) <= MATCH_KEYS, entry
        for key in ("exe", "cmdline"):
            if key in entry:
                re.compile(entry[key])  # also valid ECMAScript in these examples
    assert set(cfg.get("labels", {})) <= LABELS_KEYS
    assert set(cfg.get("event_coalescing", {})) <= COALESCING_KEYS
    alerts = cfg.get("alerts", {})
    assert set(alerts) <= ALERTS_KEYS
    assert set(alerts.get("alertmanager", {})) <= ALERTMANAGER_KEYS
    for rule in alerts.get("rules", []):
        assert set(rule) <= RULE_KEYS, rule
        assert "name" in rule, rule
        rule_kind(rule)


def schema_validator():
    jsonschema = require_module("jsonschema", "python3-jsonschema")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_config_parses_with_documented_keys_only():
    cfg = json.loads(CONFIG.read_text())
    check_config_keys(cfg)
    # Every documented key appears in the example, so the example documents them all.
    assert set(cfg) == CONFIG_KEYS
    assert set(cfg["watch"]) == WATCH_KEYS
    assert cfg["alerts"]["alertmanager"]["url"].startswith("http")
    # The example shows all three kinds of rule, with all their keys.
    assert {rule_kind(r) for r in cfg["alerts"]["rules"]} == set(RULE_KINDS)
    assert set().union(*map(set, cfg["alerts"]["rules"])) == RULE_KEYS


def test_config_matches_daemon_and_unit_defaults():
    cfg = json.loads(CONFIG.read_text())
    assert cfg["metrics_listen"] == "127.0.0.1:9750"
    assert cfg["control_socket"] == "/run/loopstalld/control.sock"
    assert cfg["events"].startswith("/var/log/loopstall/")  # LogsDirectory=loopstall
    assert cfg["control_socket"].startswith("/run/loopstalld/")  # RuntimeDirectory=loopstalld
    assert cfg["threshold_ms"] == 100


def test_config_schema_accepts_examples_and_rejects_mistakes():
    v = schema_validator()
    cfg = json.loads(CONFIG.read_text())
    assert not list(v.iter_errors(cfg))
    assert not list(v.iter_errors({})), "every key is optional"
    mistakes = {
        "misspelt key": lambda c: c.update(threshhold_ms=1),
        "rule with two conditions": lambda c: c["alerts"]["rules"][0].update(hung_s=3),
        "incomplete stalls rule": lambda c: c["alerts"]["rules"][1].pop("window_s"),
        "empty match entry": lambda c: c["watch"].update(include=[{}]),
        "unknown match field": lambda c: c["watch"].update(include=[{"pid": 1}]),
        "listen without host": lambda c: c.update(metrics_listen="9750"),
        "min_ms without stalls": lambda c: c["alerts"]["rules"][0].update(min_ms=5),
        "zero sample rate": lambda c: c.update(sample_hz=0),
    }
    for what, mutate in mistakes.items():
        c = copy.deepcopy(cfg)
        mutate(c)
        assert list(v.iter_errors(c)), f"schema accepts a config with a {what}"


def readme_json_blocks():
    text = README.read_text()
    return [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.S)]


def test_readme_config_snippets_are_valid():
    v = schema_validator()
    blocks = readme_json_blocks()
    assert blocks, "deploy/README.md has no ```json config example"
    for b in blocks:
        check_config_keys(b)
        assert not list(v.iter_errors(b)), b


# ====================================================================== Prometheus
def load_rules():
    return yaml.safe_load(RULES.read_text())


def all_rules():
    return [r for g in load_rules()["groups"] for r in g["rules"]]


def test_promtool_check_rules():
    exe = require_tool("promtool")
    r = run([exe, "check", "rules", str(RULES)])
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_test_rules():
    exe = require_tool("promtool")
    r = run([exe, "test", "rules", RULES_TEST.name], cwd=RULES_TEST.parent)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_alert_is_tested_firing_and_not_firing():
    tests = yaml.safe_load(RULES_TEST.read_text())
    assert tests["rule_files"] == [RULES.name]
    fires, silent = set(), set()
    for t in tests["tests"]:
        for a in t.get("alert_rule_test", []):
            (fires if a.get("exp_alerts") else silent).add(a["alertname"])
    names = {r["alert"] for r in all_rules()}
    assert names - fires == set(), "alerts never tested firing"
    assert names - silent == set(), "alerts never tested not firing"
    assert (fires | silent) <= names, "tests for alerts that do not exist"


def test_rules_are_complete_and_use_known_metrics():
    names = [r["alert"] for r in all_rules()]
    assert len(names) == len(set(names)), "duplicate alert names"
    for r in all_rules():
        assert "record" not in r
        assert r.get("for"), f"{r['alert']}: no for:"
        assert r["labels"]["severity"] in ("info", "warning", "critical"), r["alert"]
        for a in ("summary", "description", "runbook"):
            assert r["annotations"].get(a), f"{r['alert']}: no {a} annotation"
        assert check_promql(r["expr"], extra_metrics={"up"}) == [], r["alert"]
    used = set().union(*(metric_names(r["expr"]) for r in all_rules()))
    # The required coverage: stall rate, duration quantile, hung loops, lost
    # events, daemon down/absent, daemon CPU.
    for m in ("loopstall_stalls_total", "loopstall_stall_duration_seconds",
              "loopstall_longest_ongoing_stall_seconds", "loopstall_ongoing_stalls",
              "loopstall_lost_events_total", "up", "process_cpu_seconds_total"):
        assert m in used, m
    exprs = " ".join(r["expr"] for r in all_rules())
    assert "absent(" in exprs and "histogram_quantile(" in exprs


def test_prometheus_example_config():
    exe = require_tool("promtool")
    r = run([exe, "check", "config", PROM_EXAMPLE.name], cwd=PROM_EXAMPLE.parent)
    assert r.returncode == 0, r.stdout + r.stderr
    cfg = yaml.safe_load(PROM_EXAMPLE.read_text())
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert jobs["loopstall"]["static_configs"][0]["targets"] == ["127.0.0.1:9750"]
    assert RULES.name in cfg["rule_files"]


def test_prometheus_kubernetes_example_config(tmp_path):
    """Debian's promtool has no Kubernetes SD: check everything else by
    swapping the SD block for a static target."""
    exe = require_tool("promtool")
    cfg = yaml.safe_load(PROM_K8S_EXAMPLE.read_text())
    job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "loopstall")
    sd = job.pop("kubernetes_sd_configs")
    assert sd[0]["role"] == "endpoints" and sd[0]["namespaces"]["names"] == ["loopstall"]
    job["static_configs"] = [{"targets": ["127.0.0.1:9750"]}]
    shutil.copy(RULES, tmp_path / RULES.name)
    (tmp_path / "p.yml").write_text(yaml.safe_dump(cfg))
    r = run([exe, "check", "config", "p.yml"], cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    keep = job["relabel_configs"][0]
    assert keep["action"] == "keep" and keep["regex"] == "loopstalld;metrics"


def test_alertmanager_example():
    exe = require_tool("amtool")
    r = run([exe, "check-config", str(ALERTMANAGER)])
    assert r.returncode == 0, r.stdout + r.stderr
    for labels, receiver in (
        (["severity=critical", "alertname=LoopstallLoopHung"], "loopstall-pager"),
        (["severity=critical", "alertname=LoopHung"], "loopstall-pager"),
        (["severity=warning", "alertname=LoopstallLostEvents"], "loopstall-default"),
    ):
        r = run([exe, "config", "routes", "test", f"--config.file={ALERTMANAGER}",
                 f"--verify.receivers={receiver}", *labels])
        assert r.returncode == 0, (labels, r.stdout + r.stderr)
    # Inhibit rules refer to alerts that exist (in the rules file or the daemon config).
    am = yaml.safe_load(ALERTMANAGER.read_text())
    known = {r["alert"] for r in all_rules()} | {
        r["name"] for r in json.loads(CONFIG.read_text())["alerts"]["rules"]}
    for rule in am["inhibit_rules"]:
        for m in rule["source_matchers"] + rule["target_matchers"]:
            value = re.match(r'alertname=~?"(.*)"', m).group(1)
            for name in value.split("|"):
                assert name in known, name


# ====================================================================== Kubernetes
def k8s_docs():
    return [d for d in yaml.safe_load_all(DAEMONSET.read_text()) if d]


def k8s_doc(kind):
    docs = [d for d in k8s_docs() if d["kind"] == kind]
    assert len(docs) == 1, kind
    return docs[0]


def test_daemonset_manifest():
    kinds = [d["kind"] for d in k8s_docs()]
    for k in ("Namespace", "ServiceAccount", "ConfigMap", "DaemonSet", "Service"):
        assert k in kinds, k
    ns = k8s_doc("Namespace")["metadata"]["name"]
    for d in k8s_docs():
        assert d.get("apiVersion") and d["metadata"]["name"]
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == ns, d["kind"]

    ds = k8s_doc("DaemonSet")
    tmpl = ds["spec"]["template"]
    spec = tmpl["spec"]
    assert ds["spec"]["selector"]["matchLabels"].items() <= tmpl["metadata"]["labels"].items()
    assert spec["hostPID"] is True
    assert spec.get("hostNetwork", False) is False
    assert spec["serviceAccountName"] == k8s_doc("ServiceAccount")["metadata"]["name"]
    assert spec["automountServiceAccountToken"] is False
    assert {"operator": "Exists"} in spec["tolerations"]
    (c,) = spec["containers"]
    sc = c["securityContext"]
    assert set(sc["capabilities"]["add"]) == K8S_CAPABILITIES
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc.get("privileged", False) is False

    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    for path in ("/sys/kernel/btf", "/sys/kernel/tracing", "/sys/fs/cgroup"):
        m = mounts[path]
        assert m.get("readOnly") is True, path
        assert volumes[m["name"]]["hostPath"]["path"] == path
    # The config comes from the ConfigMap, at the path the daemon is started with.
    cm = k8s_doc("ConfigMap")
    conf_mount = mounts["/etc/loopstall"]
    assert volumes[conf_mount["name"]]["configMap"]["name"] == cm["metadata"]["name"]
    assert c["args"] == ["--config", "/etc/loopstall/loopstalld.json"]
    assert "/run/loopstalld" in mounts  # control socket (writable emptyDir)
    assert "emptyDir" in volumes[mounts["/run/loopstalld"]["name"]]

    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    cfg = json.loads(cm["data"]["loopstalld.json"])
    assert cfg["metrics_listen"] == f"0.0.0.0:{ports['metrics']}"
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["port"] in ("metrics", ports["metrics"])
        assert c[probe]["httpGet"]["path"] in ("/healthz", "/metrics")
    assert c["resources"]["limits"]["memory"] and c["resources"]["limits"]["cpu"]
    assert c["resources"]["requests"]["memory"] and c["resources"]["requests"]["cpu"]
    ann = tmpl["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true"
    assert ann["prometheus.io/port"] == str(ports["metrics"])

    svc = k8s_doc("Service")
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"].items() <= tmpl["metadata"]["labels"].items()
    assert any(p["name"] == "metrics" for p in svc["spec"]["ports"])


def test_daemonset_config_is_valid():
    cfg = json.loads(k8s_doc("ConfigMap")["data"]["loopstalld.json"])
    check_config_keys(cfg)
    assert not list(schema_validator().iter_errors(cfg))


def test_podmonitor_manifest():
    (pm,) = [d for d in yaml.safe_load_all(PODMONITOR.read_text()) if d]
    assert pm["kind"] == "PodMonitor"
    pod_labels = k8s_doc("DaemonSet")["spec"]["template"]["metadata"]["labels"]
    assert pm["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    ep = pm["spec"]["podMetricsEndpoints"][0]
    assert ep["port"] == "metrics"
    assert {"targetLabel": "job", "replacement": "loopstall"} in ep["relabelings"]


# ====================================================================== Grafana
def dashboard():
    return json.loads(DASHBOARD.read_text())


def dashboard_panels(d):
    for p in d["panels"]:
        yield p
        yield from p.get("panels", [])


def dashboard_exprs(d):
    return [(p["title"], t["expr"]) for p in dashboard_panels(d) for t in p.get("targets", [])]


def test_dashboard_structure():
    d = dashboard()
    assert 36 <= d["schemaVersion"] <= 41
    assert d["uid"] and d["title"]
    variables = {v["name"]: v for v in d["templating"]["list"]}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    svc = variables["service"]
    query = svc["query"]["query"] if isinstance(svc["query"], dict) else svc["query"]
    assert query == "label_values(loopstall_stalls_total, service)"
    assert svc["datasource"]["uid"] == "${datasource}"
    ids = [p["id"] for p in dashboard_panels(d)]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for p in dashboard_panels(d):
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", p["title"]


def test_dashboard_panels_do_not_overlap():
    cells = {}
    for p in dashboard()["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]


def test_dashboard_uses_only_known_metrics():
    d = dashboard()
    problems = []
    for title, expr in dashboard_exprs(d):
        problems += [f"{title}: {p}" for p in check_promql(expr)]
    for v in d["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((\w+)(?:\{[^}]*\})?,\s*(\w+)\)", q)
            assert m, q
            assert m.group(1) in METRICS and m.group(2) in METRICS[m.group(1)] | {"job", "instance"}, q
    assert problems == []


def test_dashboard_covers_the_metrics():
    used = set().union(*(metric_names(e) for _, e in dashboard_exprs(dashboard())))
    assert set(METRICS) - used == set(), "metrics without a panel"
    assert set(CONTRACT_METRICS) <= used


def test_dashboard_promql_parses(tmp_path):
    """promtool parses every dashboard query (Grafana variables replaced)."""
    exe = require_tool("promtool")
    rules = []
    for i, (_, expr) in enumerate(dashboard_exprs(dashboard())):
        e = expr.replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$__interval", "1m")
        e = re.sub(r"\$\{?(\w+)\}?", ".*", e)
        rules.append({"record": f"dashboard:expr_{i}", "expr": e})
    f = tmp_path / "dashboard.rules.yml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    r = run([exe, "check", "rules", str(f)])
    assert r.returncode == 0, r.stdout + r.stderr


# ====================================================================== the checker itself
@pytest.mark.parametrize("expr,ok", [
    ('sum by (cause) (rate(loopstall_stalls_total{service=~"$service"}[$__rate_interval]))', True),
    ("histogram_quantile(0.99, sum by (le) (rate(loopstall_stall_duration_seconds_bucket[5m])))", True),
    ("rate(process_cpu_seconds_total[5m]) and on (job, instance) loopstall_build_info", True),
    ("rate(loopstall_stall_total[5m])", False),  # misspelt metric
    ('loopstall_stalls_total{casue="cpu"}', False),  # misspelt label
    ("sum by (pid) (loopstall_stalls_total)", False),  # no pid label exists
    ("rate(node_cpu_seconds_total[5m])", False),  # foreign metric
    ("loopstall_stall_duration_seconds_bucket{le=\"1\"} > 1e3", True),
])
def test_promql_checker(expr, ok):
    assert (check_promql(expr) == []) == ok, check_promql(expr)
