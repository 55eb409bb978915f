"""Fixtures for the loopstalld service tests (see service_harness.py for the helpers).

Run: /usr/bin/python3.11 -m pytest tests/service
Needs root and a BPF-capable kernel (BTF); Prometheus and Alertmanager for their tests. Without
them the tests skip, except under CI=true where they fail.
"""
import shutil

import pytest

import service_harness as h
from harness.ci import require_executable, require_root_and_bpf
from harness.children import killed_on_exit
from harness.fixtures import kill_leftovers  # noqa: F401 (fixture)


@pytest.fixture(scope="session")
def binaries():
    for b in (h.LOOPSTALLD, h.LOOPSTALL):
        require_executable(b, "build it, or set LOOPSTALLD_BIN / LOOPSTALL_BIN")
    return h.LOOPSTALLD, h.LOOPSTALL


@pytest.fixture(scope="session")
def bpf(binaries):
    """Root and BPF: loopstalld loads BPF programs."""
    require_root_and_bpf("loopstalld")
    return binaries


@pytest.fixture(scope="session")
def prometheus_bins():
    for b in (h.PROMETHEUS, h.PROMTOOL):
        require_executable(b, "apt install prometheus")


@pytest.fixture(scope="session")
def alertmanager_bin():
    require_executable(h.ALERTMANAGER, "apt install prometheus-alertmanager")


@pytest.fixture
def tmp():
    d = h.short_tmpdir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(autouse=True)
def _kill_test_children(tmp):
    """Whatever a test started (daemons, workloads, Prometheus...) dies with the test, before its
    temporary directory is removed (this fixture depends on `tmp`, so it is torn down first)."""
    with killed_on_exit():
        yield
