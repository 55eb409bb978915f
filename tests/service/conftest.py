"""Fixtures for the loopstalld service tests (see service_harness.py for the helpers).

Run: /usr/bin/python3.11 -m pytest tests/service
Needs root and a BPF-capable kernel (BTF); Prometheus and Alertmanager for their tests. Without
them the tests skip, except under CI=true where they fail.
"""
import os
import shutil
from pathlib import Path

import pytest

import service_harness as h


@pytest.fixture(scope="session")
def binaries():
    for b in (h.LOOPSTALLD, h.LOOPSTALL):
        if not (b.is_file() and os.access(b, os.X_OK)):
            h.skip_or_fail(f"{b.name} not found at {b} (build it, or set LOOPSTALLD_BIN / LOOPSTALL_BIN)")
    return h.LOOPSTALLD, h.LOOPSTALL


@pytest.fixture(scope="session")
def bpf(binaries):
    """Root and BPF: loopstalld loads BPF programs."""
    if os.geteuid() != 0:
        h.skip_or_fail("loopstalld needs root (BPF); run the service tests as root")
    if not Path("/sys/kernel/btf/vmlinux").exists():
        h.skip_or_fail("BPF unavailable: /sys/kernel/btf/vmlinux is missing (kernel without BTF)")
    return binaries


@pytest.fixture(scope="session")
def prometheus_bins():
    for b in (h.PROMETHEUS, h.PROMTOOL):
        if not (Path(b).is_file() and os.access(b, os.X_OK)):
            h.skip_or_fail(f"{b} not found (apt install prometheus)")


@pytest.fixture(scope="session")
def alertmanager_bin():
    if not (Path(h.ALERTMANAGER).is_file() and os.access(h.ALERTMANAGER, os.X_OK)):
        h.skip_or_fail(f"{h.ALERTMANAGER} not found (apt install prometheus-alertmanager)")


@pytest.fixture
def tmp():
    d = h.short_tmpdir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(autouse=True)
def _kill_test_children(tmp):
    """Whatever a test started (daemons, workloads, Prometheus...) dies with the test, before its
    temporary directory is removed (this fixture depends on `tmp`, so it is torn down first)."""
    first = len(h.ALL_PROCS)
    yield
    for p in h.ALL_PROCS[first:]:
        p.kill()


@pytest.fixture(scope="session", autouse=True)
def _kill_leftovers():
    yield
    for p in h.ALL_PROCS:
        p.kill()
