"""Harness for the loopstalld service tests: the daemon, Prometheus and Alertmanager, each a child
process in its own session, killed (SIGKILL to the process group) at test end. What the three
suites share (children, workloads, the schema check, skip_or_fail) comes from tests/harness/ and
is re-exported here for the tests.

Every wait is bounded. Every child's stdout/stderr is drained by a thread; lines are stamped with
their arrival time so a test can wait for one and show the tail when something goes wrong.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from harness.ci import skip_or_fail  # noqa: F401 (tests use h.skip_or_fail)
from harness.children import Proc
from harness.events import read_event_log, validate_event  # noqa: F401
from harness.fs import nearly_full_tmpfs  # noqa: F401
from harness.net import free_port
from harness.paths import LOOPSTALL, LOOPSTALLD, PY, REPO, WORKLOADS  # noqa: F401
from harness.workloads import Workload  # noqa: F401

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager") or \
    "/usr/bin/prometheus-alertmanager"


def short_tmpdir():
    """A short directory under /tmp: unix socket paths must stay under 108 bytes."""
    return Path(tempfile.mkdtemp(prefix="lssvc-", dir="/tmp"))


def http_get(url, timeout=3):
    """(status, body) of a GET; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError):
        return 0, ""


def wait_for(pred, timeout, interval=0.1, what="condition", describe=lambda: ""):
    """Polls pred() until it returns something truthy (returned) or fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}\n{describe()}", pytrace=False)
        time.sleep(interval)


# ------------------------------------------------------------------------------------- daemon

class Daemon(Proc):
    """loopstalld with its own control socket, metrics port and event log under `tmp`.

    The metrics port is 0 (the kernel picks a free one, no race) unless given; the real one is
    read from the ready line ("loopstalld: ready: ... metrics on http://HOST:PORT/metrics").
    """

    def __init__(self, tmp, config=None, extra=(), metrics_listen="127.0.0.1:0", env=None,
                 via_shell_export_watchdog_pid=False, ready_timeout=30, wait_ready=True, events=None, stdout=True):
        """events: the --events target (default tmp/events.jsonl); stdout: see ChildProcess."""
        self.tmp = Path(tmp)
        self.sock = self.tmp / "run" / "control.sock"  # run/ does not exist: the daemon creates it
        self.events_path = Path(events) if events is not None else self.tmp / "events.jsonl"
        self.config_path = None
        if config is not None:
            self.config_path = self.tmp / "loopstalld.json"
            self.write_config(config)
        argv = [str(LOOPSTALLD), "--control-socket", str(self.sock), "--metrics-listen", metrics_listen,
                "--events", str(self.events_path)]
        if self.config_path:
            argv += ["--config", str(self.config_path)]
        argv += [str(a) for a in extra]
        if via_shell_export_watchdog_pid:
            # WATCHDOG_PID must be the daemon's own pid: the shell exports its pid, then execs.
            argv = ["/bin/sh", "-c", 'export WATCHDOG_PID=$$; exec "$@"', "sh", *argv]
        super().__init__(argv, name="loopstalld", env=env, stdout=stdout)
        self.metrics_host, self.metrics_port = None, None
        if wait_ready:
            self.wait_ready(ready_timeout)

    def wait_ready(self, timeout=30):
        try:
            line = self.wait_line(lambda l: l.startswith("loopstalld: ready"), timeout)
        except BaseException:
            self.kill()
            raise
        url = line.rsplit("metrics on ", 1)[1].strip()
        hostport = url.split("//", 1)[1].split("/", 1)[0]
        host, port = hostport.rsplit(":", 1)
        self.metrics_host, self.metrics_port = host, int(port)

    def write_config(self, config):
        text = config if isinstance(config, str) else json.dumps(config, indent=2)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config_path)  # atomic: a reload never sees half a file

    @property
    def metrics_addr(self):
        return f"{self.metrics_host}:{self.metrics_port}"

    def metrics_text(self):
        status, body = http_get(f"http://{self.metrics_addr}/metrics")
        assert status == 200, f"GET /metrics answered {status}\n{self.describe()}"
        return body

    def status(self, fmt="json", timeout=10):
        r = run_cli(["status", "--socket", self.sock, "--format", fmt], timeout=timeout)
        assert r.returncode == 0, f"loopstall status failed: rc={r.returncode}\n{r.stderr}\n{self.describe()}"
        return json.loads(r.stdout) if fmt == "json" else r.stdout

    def events(self):
        """Every line of the event log, parsed (no schema check here; see validate_event)."""
        return read_event_log(self.events_path)

    def final_events(self, pid):
        return [e for e in self.events() if e["pid"] == pid and not e["ongoing"]]

    def wait_final_event(self, pid, timeout=20, pred=lambda e: True):
        return wait_for(lambda: [e for e in self.final_events(pid) if pred(e)], timeout,
                        what=f"a final stall event of pid {pid} in {self.events_path}",
                        describe=lambda: self.describe() + "\n--- events ---\n" +
                        "\n".join(json.dumps(e) for e in self.events()[-20:]))

    def stop(self, timeout=5, sig=signal.SIGTERM):
        """SIGTERM; returns the exit code (fails when it does not exit in time)."""
        self.signal(sig)
        rc = self.wait(timeout)
        self.join_output()
        return rc


def run_cli(args, timeout=10, **kw):
    try:
        return subprocess.run([str(LOOPSTALL), *[str(a) for a in args]], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, **kw)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"loopstall {' '.join(map(str, args))} still running after {timeout}s: {e}", pytrace=False)


# ------------------------------------------------------------------- Prometheus, Alertmanager

class Prometheus(Proc):
    def __init__(self, tmp, targets, ready_timeout=30):
        self.dir = Path(tmp) / "prometheus"
        self.dir.mkdir(parents=True, exist_ok=True)
        cfg = self.dir / "prometheus.yml"
        cfg.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: loopstall\n    static_configs:\n"
            f"      - targets: [{', '.join(json.dumps(t) for t in targets)}]\n")
        self.port = free_port()
        super().__init__([PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={self.dir / 'data'}",
                          f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                         name="prometheus")
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(lambda: http_get(self.url + "/-/ready", 1)[0] == 200 or not self.alive(), ready_timeout,
                 what="Prometheus /-/ready", describe=self.describe)
        if not self.alive():
            pytest.fail(f"prometheus exited rc={self.popen.poll()}\n{self.describe()}", pytrace=False)

    def query(self, promql):
        """Instant query: list of (labels dict, float value)."""
        status, body = http_get(self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        assert status == 200, f"query {promql!r}: HTTP {status} {body}"
        data = json.loads(body)
        assert data["status"] == "success", data
        return [(r["metric"], float(r["value"][1])) for r in data["data"]["result"]]

    def value(self, promql, default=None):
        res = self.query(promql)
        return res[0][1] if res else default

    def targets(self):
        status, body = http_get(self.url + "/api/v1/targets")
        return json.loads(body)["data"]["activeTargets"] if status == 200 else []


class Alertmanager(Proc):
    CONFIG = ("route:\n  receiver: 'null'\n  group_wait: 1s\n  group_interval: 1s\n"
              "receivers:\n  - name: 'null'\n")

    def __init__(self, tmp, ready_timeout=30, config=None):
        """config: alertmanager.yml text (default: one null receiver, 1 s grouping)."""
        self.dir = Path(tmp) / "alertmanager"
        self.dir.mkdir(parents=True, exist_ok=True)
        cfg = self.dir / "alertmanager.yml"
        cfg.write_text(config or self.CONFIG)
        self.port = free_port()
        super().__init__([ALERTMANAGER, f"--config.file={cfg}", f"--storage.path={self.dir / 'data'}",
                          f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
                          "--log.level=warn"], name="alertmanager")
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(lambda: http_get(self.url + "/-/ready", 1)[0] == 200 or not self.alive(), ready_timeout,
                 what="Alertmanager /-/ready", describe=self.describe)
        if not self.alive():
            pytest.fail(f"alertmanager exited rc={self.popen.poll()}\n{self.describe()}", pytrace=False)

    def alerts(self, **filters):
        q = urllib.parse.urlencode({k: str(v).lower() if isinstance(v, bool) else v for k, v in filters.items()})
        status, body = http_get(self.url + "/api/v2/alerts" + ("?" + q if q else ""))
        assert status == 200, f"GET /api/v2/alerts: HTTP {status} {body}"
        return json.loads(body)

    def groups(self):
        status, body = http_get(self.url + "/api/v2/alerts/groups")
        assert status == 200, f"GET /api/v2/alerts/groups: HTTP {status} {body}"
        return json.loads(body)


# ---------------------------------------------------------------------------------- metrics

def metric(d, name, labels=None):
    """Sum of the samples of `name` (with these labels, if given) in daemon d's /metrics."""
    _, samples = parse_exposition(d.metrics_text())
    return sum(v for n, l, v in samples if n == name and (labels is None or all(l.get(k) == x
                                                                                for k, x in labels.items())))


def parse_exposition(text):
    """Prometheus text format -> (types {family: type}, samples [(name, labels dict, value)])."""
    types, samples = {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(None, 3)
            types[name] = typ
            continue
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, rest = line.split("{", 1)
            labels_text, value = rest.rsplit("}", 1)
            labels = {}
            i = 0
            while i < len(labels_text):
                eq = labels_text.index("=", i)
                key = labels_text[i:eq].strip().lstrip(",").strip()
                j = eq + 2  # past ="
                val = []
                while labels_text[j] != '"':
                    if labels_text[j] == "\\":
                        j += 1
                        val.append({"n": "\n"}.get(labels_text[j], labels_text[j]))
                    else:
                        val.append(labels_text[j])
                    j += 1
                labels[key] = "".join(val)
                i = j + 1
        else:
            name, value = line.split(None, 1)
            labels = {}
        samples.append((name, labels, float(value.split()[0])))
    return types, samples
