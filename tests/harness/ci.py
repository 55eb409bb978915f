"""Preconditions: outside CI a missing tool, binary, root or BPF skips the test with what to do;
under CI (CI set to anything but "", 0, false, no) it fails instead, because CI must run every test."""
import os
import shutil
from pathlib import Path

import pytest

# Debian package of each tool the suites run (for the skip message).
TOOL_PACKAGES = {
    "systemd-analyze": "systemd",
    "lintian": "lintian",
    "cpack": "cmake",
    "dpkg-deb": "dpkg",
    "promtool": "prometheus",
    "amtool": "prometheus-alertmanager",
    "strace": "strace",
    "setpriv": "util-linux",
    "unshare": "util-linux",
    "readelf": "binutils",
    "wrk": "wrk",
    "cc": "gcc",
}


def in_ci():
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason):
    """Skip locally; in CI the suite must really run, so fail instead."""
    if in_ci():
        pytest.fail(reason + " (CI is set: failing instead of skipping)", pytrace=False)
    pytest.skip(reason)


def require_executable(path, hint):
    """`path` as a str when it is an executable file; otherwise skip_or_fail with `hint`."""
    path = Path(path)
    if not (path.is_file() and os.access(path, os.X_OK)):
        skip_or_fail(f"{path.name} not found at {path} ({hint})")
    return str(path)


def require_root_and_bpf(who):
    """Root and a kernel with BTF: `who` loads CO-RE BPF programs."""
    if os.geteuid() != 0:
        skip_or_fail(f"{who} needs root (BPF); run the suite as root")
    if not Path("/sys/kernel/btf/vmlinux").exists():
        skip_or_fail("BPF unavailable: /sys/kernel/btf/vmlinux is missing (kernel without BTF)")


def require_tool(name):
    """Path of a tool on PATH (or an absolute path); skip_or_fail with its Debian package when missing."""
    path = shutil.which(name)
    if path:
        return path
    skip_or_fail(f"{name} is not installed (Debian: apt-get install {TOOL_PACKAGES.get(Path(name).name, name)})")


def require_module(name, package):
    """Import a Python module at collection time; skip_or_fail the whole test module without it."""
    try:
        return __import__(name)
    except ImportError:
        msg = f"Python module {name} is not installed (Debian: apt-get install {package})"
        if in_ci():
            pytest.fail(msg + " (CI is set: failing instead of skipping)", pytrace=False)
        pytest.skip(msg, allow_module_level=True)
