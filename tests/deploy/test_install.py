"""`cmake --install` puts the binaries, the unit, the config and the docs where the unit and
the operator's guide say they are."""
import os
import re
import subprocess

from harness.ci import skip_or_fail
from harness.paths import REPO as ROOT


def build_dir():
    for name in ("build-asan", "build"):
        d = ROOT / name
        if (d / "CMakeCache.txt").exists() and (d / "loopstalld").exists():
            return d
    skip_or_fail("no configured build directory with loopstalld (build-asan/ or build/: run scripts/build.sh)")


def test_cmake_install_layout(tmp_path):
    d = build_dir()
    env = dict(os.environ, DESTDIR=str(tmp_path))
    r = subprocess.run(["cmake", "--install", str(d), "--prefix", "/usr"], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    for rel in ("usr/sbin/loopstalld", "usr/bin/loopstall", "usr/lib/systemd/system/loopstalld.service",
                "usr/share/man/man1/loopstall.1.gz", "usr/share/man/man8/loopstalld.8.gz",
                "usr/share/bash-completion/completions/loopstall", "usr/share/doc/loopstall/copyright",
                "etc/loopstall/loopstalld.json", "usr/share/doc/loopstall/operations.md",
                "usr/share/doc/loopstall/deploy/README.md",
                "usr/share/doc/loopstall/deploy/prometheus/loopstall.rules.yml"):
        assert (tmp_path / rel).exists(), f"{rel} not installed"
    assert os.access(tmp_path / "usr/sbin/loopstalld", os.X_OK)
    unit = (tmp_path / "usr/lib/systemd/system/loopstalld.service").read_text()
    assert "\nExecStart=/usr/sbin/loopstalld --config /etc/loopstall/loopstalld.json\n" in unit


def test_cmake_install_elsewhere_the_unit_names_the_installed_daemon(tmp_path):
    """--prefix /usr/local: the unit must not start a /usr/sbin/loopstalld that is not there (203/EXEC)."""
    d = build_dir()
    env = dict(os.environ, DESTDIR=str(tmp_path))
    r = subprocess.run(["cmake", "--install", str(d), "--prefix", "/usr/local"], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    unit = (tmp_path / "usr/local/lib/systemd/system/loopstalld.service").read_text()
    exec_start = [l for l in unit.splitlines() if l.startswith("ExecStart=")]
    assert exec_start == ["ExecStart=/usr/local/sbin/loopstalld --config /etc/loopstall/loopstalld.json"], exec_start
    assert os.access(tmp_path / "usr/local/sbin/loopstalld", os.X_OK)
    assert "file:/usr/local/share/doc/loopstall/deploy/README.md" in unit
    assert (tmp_path / "usr/local/share/doc/loopstall/deploy/README.md").is_file()
    assert (tmp_path / "etc/loopstall/loopstalld.json").is_file()  # the unit's ConfigurationDirectory=
    assert not (tmp_path / "usr/sbin").exists()


def test_version_names_the_build():
    d = build_dir()
    for prog in ("loopstall", "loopstalld"):
        r = subprocess.run([str(d / prog), "--version"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        first, *rest = r.stdout.splitlines()
        m = re.match(rf"{prog} (\d+\.\d+\.\d+) \(git ([0-9a-f]{{7,}}(-dirty)?|[^,]+-g[0-9a-f]+(-dirty)?), (\w+)\)$",
                     first)
        assert m, first
        text = "\n".join(rest)
        assert re.search(r"^libbpf \d+\.\d+ \(built against \d+\.\d+", text, re.M), text
        assert re.search(r"^kernel \S+ x86_64:", text, re.M), text
        assert "tp_btf sched_switch: yes" in text, text  # this kernel has it; the daemon uses it
        for feature in ("BTF", "BPF ring buffer", "tp_btf", "syscall tracepoints", "uprobe_multi",
                        "kernel.bpf_stats_enabled"):
            assert feature in text, text
        # As root on this kernel, the probes answer.
        if os.geteuid() == 0:
            assert re.search(r"BPF ring buffer: yes", text), text
