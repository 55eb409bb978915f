"""Helpers for the deployment tests (tests/deploy): the deploy/ files and the metrics they may use.
The tests import them by name (`from deploy_helpers import ...`); the suite's conftest.py only
holds fixtures.

Run: /usr/bin/python3.11 -m pytest tests/deploy

Tools (systemd-analyze, promtool, amtool) come from Debian packages. When one is
missing, the test that needs it is skipped with the package to install. With
CI=true (or any non-empty CI other than "false"/"0") it fails instead: CI must
run every check (tests/harness/ci.py).
"""
import re
import subprocess

from harness.ci import in_ci, require_module, require_tool, skip_or_fail  # noqa: F401 (the tests import them)
from harness.paths import REPO as ROOT
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "systemd" / "loopstalld.service"
CONFIG = DEPLOY / "config" / "loopstalld.json"
SCHEMA = DEPLOY / "config" / "loopstalld.schema.json"
RULES = DEPLOY / "prometheus" / "loopstall.rules.yml"
RULES_TEST = DEPLOY / "prometheus" / "loopstall.rules.test.yml"
PROM_EXAMPLE = DEPLOY / "prometheus" / "prometheus.example.yml"
PROM_K8S_EXAMPLE = DEPLOY / "prometheus" / "prometheus.kubernetes.example.yml"
ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.example.yml"
DAEMONSET = DEPLOY / "kubernetes" / "loopstalld-daemonset.yaml"
PODMONITOR = DEPLOY / "kubernetes" / "loopstalld-podmonitor.yaml"
DASHBOARD = DEPLOY / "grafana" / "loopstall-dashboard.json"
README = DEPLOY / "README.md"

# The metrics loopstalld exports (the contract's required series plus the
# documented extras), with their labels. Dashboards and rules may use only these.
METRICS = {
    # contract
    "loopstall_stalls_total": {"cause", "service"},
    "loopstall_stall_duration_seconds": {"service"},  # histogram
    "loopstall_loop_iterations_total": {"service"},
    "loopstall_monitored_loops": set(),
    "loopstall_lost_events_total": set(),
    "loopstall_build_info": {"version"},
    "loopstall_loop_busy_seconds_total": {"service", "state"},
    "loopstall_loop_reads_total": {"service"},
    "loopstall_loop_read_bytes_total": {"service"},
    # extras
    "loopstall_stall_time_seconds_total": {"component", "service"},
    "loopstall_blocked_seconds_total": {"syscall", "service"},
    "loopstall_loops": {"loop"},
    "loopstall_service_loops": {"service"},
    "loopstall_ongoing_stalls": set(),
    "loopstall_longest_ongoing_stall_seconds": set(),
    "loopstall_probe_attach_failures_total": {"probe"},
    "loopstall_bpf_map_full_total": {"map"},
    "loopstall_bpf_stats_enabled": set(),
    "loopstall_bpf_program_runs_total": {"program"},
    "loopstall_bpf_program_run_seconds_total": {"program"},
    "loopstall_alerts_firing": {"alert"},
    "loopstall_alert_deliveries_total": {"result"},
    "process_cpu_seconds_total": set(),
    "process_resident_memory_bytes": set(),
    "process_start_time_seconds": set(),
    "process_open_fds": set(),
}
HISTOGRAMS = {"loopstall_stall_duration_seconds"}
# Labels Prometheus adds to every series of a target.
TARGET_LABELS = {"job", "instance"}
# The contract's required series.
CONTRACT_METRICS = [
    "loopstall_stalls_total",
    "loopstall_stall_duration_seconds",
    "loopstall_loop_iterations_total",
    "loopstall_monitored_loops",
    "loopstall_lost_events_total",
    "loopstall_build_info",
    "loopstall_loop_busy_seconds_total",
    "loopstall_loop_reads_total",
    "loopstall_loop_read_bytes_total",
]


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 120)
    return subprocess.run(cmd, **kw)


# ------------------------------------------------------------------ PromQL
_FUNC_OR_KEYWORD = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "inf", "nan", "atan2",
}


def _strip_promql(expr):
    """Remove strings, Grafana variables, ranges and comments from a PromQL expression."""
    s = re.sub(r"#[^\n]*", "", expr)
    s = re.sub(r"\$__\w+|\$\{[^}]*\}|\$\w+", "X", s)  # Grafana variables
    s = re.sub(r"\[[^\]]*\]", "", s)  # range/subquery selectors
    return s


def promql_selectors(expr):
    """(metric name or None, [label names in its matchers]) for every vector selector."""
    s = _strip_promql(expr)
    out = []
    strings = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
    # Blank out strings, keeping positions.
    blank = strings.sub(lambda m: '"' + " " * (len(m.group(0)) - 2) + '"', s)
    # Label lists of by/without/on/ignoring/group_*: not selectors.
    grouping = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
    grouping_labels = set()
    for m in grouping.finditer(blank):
        grouping_labels |= {x.strip() for x in m.group(2).split(",") if x.strip()}
    blank = grouping.sub(lambda m: " " * len(m.group(0)), blank)
    # Label matchers {...}, remembered by position.
    matchers = {}
    for m in re.finditer(r"\{([^}]*)\}", blank):
        labels = re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", m.group(1))
        matchers[m.start()] = (m.end(), labels)
    no_braces = re.sub(r"\{[^}]*\}", lambda m: " " * len(m.group(0)), blank)
    no_strings = re.sub(r'"\s*"', lambda m: " " * len(m.group(0)), no_braces)
    for m in re.finditer(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)", no_strings):
        tok = m.group(1)
        rest = no_strings[m.end():]
        if rest.lstrip().startswith("("):  # function or aggregation
            continue
        if tok in _FUNC_OR_KEYWORD:
            continue
        # A selector's {..} directly follows its name.
        labels = []
        j = m.end()
        while j < len(blank) and blank[j] == " " and j not in matchers:
            j += 1
        if j in matchers:
            labels = matchers.pop(j)[1]
        out.append((tok, labels))
    # Selectors without a name: {__name__="x"}.
    for _, (_, labels) in matchers.items():
        out.append((None, labels))
    return out, grouping_labels


def base_metric(name):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in HISTOGRAMS:
            return name[: -len(suffix)]
    return name


def check_promql(expr, extra_metrics=()):
    """Problems with an expression: unknown metrics, or labels the metrics do not have."""
    problems = []
    selectors, grouping_labels = promql_selectors(expr)
    used_labels = set()
    if not selectors:
        problems.append(f"no metric in {expr!r}")
    for name, labels in selectors:
        if name is None:
            problems.append(f"selector without a metric name in {expr!r}")
            continue
        base = base_metric(name)
        if base in extra_metrics:
            continue
        if base not in METRICS:
            problems.append(f"unknown metric {name!r} in {expr!r}")
            continue
        allowed = METRICS[base] | TARGET_LABELS | ({"le"} if name.endswith("_bucket") else set())
        bad = set(labels) - allowed
        if bad:
            problems.append(f"{name} has no label(s) {sorted(bad)} (in {expr!r})")
        used_labels |= allowed
    all_labels = set().union(*METRICS.values()) | TARGET_LABELS | {"le"}
    bad = grouping_labels - all_labels
    if bad:
        problems.append(f"grouping by unknown label(s) {sorted(bad)} in {expr!r}")
    return problems


def metric_names(expr):
    return {base_metric(n) for n, _ in promql_selectors(expr)[0] if n}
