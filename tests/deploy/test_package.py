"""The .deb as a Debian admin gets it: built with CPack from the configured build, checked with
lintian and dpkg-deb, and its unit verified on its installed paths in a throwaway root made with
`dpkg-deb -x` -- never installed on this machine."""
import gzip
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from deploy_helpers import require_tool, run
from test_install import build_dir

MAX_EXPOSURE = 2.5
EXPECTED_FILES = {
    "usr/bin/loopstall", "usr/sbin/loopstalld", "usr/lib/systemd/system/loopstalld.service",
    "etc/loopstall/loopstalld.json", "usr/share/loopstall/loopstalld.schema.json",
    "usr/share/man/man1/loopstall.1.gz", "usr/share/man/man8/loopstalld.8.gz",
    "usr/share/bash-completion/completions/loopstall", "usr/share/bash-completion/completions/loopstalld",
    "usr/share/doc/loopstall/copyright", "usr/share/doc/loopstall/changelog.gz",
    "usr/share/doc/loopstall/operations.md", "usr/share/doc/loopstall/contract/stall-event.schema.json",
    "usr/share/doc/loopstall/deploy/prometheus/loopstall.rules.yml",
}


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    cpack = require_tool("cpack")
    require_tool("dpkg-deb")
    d = build_dir()
    out = tmp_path_factory.mktemp("deb")
    r = run([cpack, "-G", "DEB", "--config", str(d / "CPackConfig.cmake"), "-B", str(out)], timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    debs = list(out.glob("loopstall_*.deb"))
    assert len(debs) == 1, (debs, r.stdout)
    return debs[0]


@pytest.fixture(scope="module")
def unpacked(deb, tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    r = run(["dpkg-deb", "-x", str(deb), str(root)])
    assert r.returncode == 0, r.stderr
    return root


def control_field(deb, field):
    r = run(["dpkg-deb", "-f", str(deb), field])
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_contents(deb):
    r = run(["dpkg-deb", "-c", str(deb)])
    assert r.returncode == 0, r.stderr
    files = {line.split()[-1].lstrip("./") for line in r.stdout.splitlines() if not line.startswith("d")}
    missing = EXPECTED_FILES - files
    assert not missing, f"missing from the package: {sorted(missing)}\n{r.stdout}"
    modes = {line.split()[-1].lstrip("./"): line.split()[0] for line in r.stdout.splitlines()}
    assert modes["usr/sbin/loopstalld"] == "-rwxr-xr-x" and modes["etc/loopstall/loopstalld.json"] == "-rw-r--r--"
    assert not [f for f in files if f.startswith(("usr/local", "opt/"))], files


def test_control(deb, tmp_path):
    assert control_field(deb, "Package") == "loopstall"
    maint = control_field(deb, "Maintainer")
    assert "@" in maint and "localhost" not in maint, maint
    assert control_field(deb, "Section") == "admin"
    depends = control_field(deb, "Depends")
    for lib in ("libbpf1", "libelf1", "libdw1", "libre2-9", "libsystemd0"):
        assert lib in depends, depends
    r = run(["dpkg-deb", "-e", str(deb), str(tmp_path / "DEBIAN")])
    assert r.returncode == 0, r.stderr
    ctl = tmp_path / "DEBIAN"
    assert (ctl / "conffiles").read_text().split() == ["/etc/loopstall/loopstalld.json"]
    for script in ("postinst", "prerm", "postrm"):
        p = ctl / script
        assert p.exists() and p.stat().st_mode & 0o111, f"{script} missing or not executable"
        assert run(["sh", "-n", str(p)]).returncode == 0, f"{script}: shell syntax"
    post = (ctl / "postinst").read_text()
    assert "deb-systemd-helper enable 'loopstalld.service'" in post and "deb-systemd-invoke" in post
    assert "deb-systemd-invoke stop 'loopstalld.service'" in (ctl / "prerm").read_text()
    postrm = (ctl / "postrm").read_text()
    assert "deb-systemd-helper purge 'loopstalld.service'" in postrm and "daemon-reload" in postrm


def test_maintainer_scripts_run_the_debian_helpers(deb, tmp_path):
    """The scripts run against stub helpers: install enables and starts, upgrade restarts, remove
    stops and masks, purge forgets -- the dh_installsystemd sequence."""
    run(["dpkg-deb", "-e", str(deb), str(tmp_path / "DEBIAN")])
    stubs = tmp_path / "bin"
    stubs.mkdir()
    log = tmp_path / "calls"
    for tool in ("deb-systemd-helper", "deb-systemd-invoke", "systemctl"):
        (stubs / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\nexit 0\n')
        (stubs / tool).chmod(0o755)

    def calls(script, *args):
        log.write_text("")
        env = {"PATH": f"{stubs}:/usr/bin:/bin"}
        r = subprocess.run(["sh", str(tmp_path / "DEBIAN" / script), *args], env=env, capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return log.read_text()

    first = calls("postinst", "configure")
    assert "deb-systemd-helper enable loopstalld.service" in first
    systemd_runs = Path("/run/systemd/system").is_dir()
    if systemd_runs:
        assert "deb-systemd-invoke start loopstalld.service" in first
        assert "deb-systemd-invoke restart loopstalld.service" in calls("postinst", "configure", "0.0.9")
        assert "deb-systemd-invoke stop loopstalld.service" in calls("prerm", "remove")
    else:  # no systemd as PID 1 (containers, this test machine): nothing is started or stopped
        assert "deb-systemd-invoke" not in first and "systemctl" not in first
        assert calls("prerm", "remove") == ""


def test_lintian(deb):
    lintian = require_tool("lintian")
    r = run([lintian, "--no-tag-display-limit", "--display-info", str(deb)], timeout=600)
    tags = [l for l in r.stdout.splitlines() if re.match(r"^[EWIP]: ", l)]
    errors = [l for l in tags if l.startswith("E: ")]
    warnings = [l for l in tags if l.startswith("W: ")]
    print("lintian:", len(errors), "errors,", len(warnings), "warnings,", len(tags) - len(errors) - len(warnings),
          "info\n" + "\n".join(tags))
    assert not errors, "\n".join(tags)
    assert not warnings, "\n".join(tags)


def verify_root(unpacked, tmp_path):
    """The unpacked package plus the host's units (verify resolves sysinit.target etc.)."""
    root = tmp_path / "vroot"
    shutil.copytree(unpacked, root, symlinks=True)
    host_units = Path("/usr/lib/systemd/system")
    if not host_units.is_dir():
        host_units = Path("/lib/systemd/system")
    shutil.copytree(host_units, root / "usr/lib/systemd/system", symlinks=True, dirs_exist_ok=True)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")):
        if not (root / link).exists():
            (root / link).symlink_to(target)
    (root / "etc/systemd/system").mkdir(parents=True, exist_ok=True)
    kill = root / "bin/kill"  # ExecReload=/bin/kill
    if not kill.exists():
        kill.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy("/bin/kill", kill)
    return root


def test_packaged_unit_names_installed_paths(unpacked):
    unit = (unpacked / "usr/lib/systemd/system/loopstalld.service").read_text()
    exec_start = re.search(r"^ExecStart=(\S+)", unit, re.M).group(1)
    assert exec_start == "/usr/sbin/loopstalld", exec_start
    assert (unpacked / exec_start.lstrip("/")).is_file()
    assert "--config /etc/loopstall/loopstalld.json" in unit
    docs = re.search(r"^Documentation=(.*)$", unit, re.M).group(1).split()
    assert "man:loopstalld(8)" in docs
    for d in docs:
        if d.startswith("file:"):
            assert (unpacked / d[len("file:"):].lstrip("/")).is_file(), d


def test_packaged_unit_verifies(unpacked, tmp_path):
    exe = require_tool("systemd-analyze")
    root = verify_root(unpacked, tmp_path)
    # verify runs man(1) for Documentation=man:...: the package's own pages must answer.
    env = {"PATH": "/usr/bin:/bin", "MANPATH": str(unpacked / "usr/share/man")}
    r = run([exe, "verify", f"--root={root}", "loopstalld.service"], env=env)
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == 0 and out == "", f"systemd-analyze verify:\n{out}"


def test_packaged_unit_exposure(unpacked, tmp_path):
    exe = require_tool("systemd-analyze")
    root = verify_root(unpacked, tmp_path)
    r = run([exe, "security", "--offline=true", "--no-pager", f"--root={root}", "loopstalld.service"])
    out = r.stdout + r.stderr
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
    assert m, f"no exposure level (rc={r.returncode}):\n{out}"
    print(f"exposure of the packaged unit: {m.group(1)}")
    assert float(m.group(1)) <= MAX_EXPOSURE, out


def test_man_pages_render(unpacked):
    man = shutil.which("man")
    for page in ("usr/share/man/man1/loopstall.1.gz", "usr/share/man/man8/loopstalld.8.gz"):
        text = gzip.decompress((unpacked / page).read_bytes()).decode()
        assert text.startswith(".TH "), page
        if "loopstalld" in page:
            assert r"\-\-check\-config" in text and "SERVICE NAMES" in text, page
        if man:
            r = run([man, "--warnings", "-l", "-Tutf8", str(unpacked / page)],
                    env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin"})
            shown = re.sub(r".\x08", "", r.stdout)  # grotty's overstrike bold
            assert r.returncode == 0 and "NAME" in shown and "SYNOPSIS" in shown, r.stderr
            assert "warning" not in r.stderr, r.stderr


def test_bash_completion(unpacked):
    comp = unpacked / "usr/share/bash-completion/completions/loopstall"
    script = f"""
_init_completion() {{ cur=${{COMP_WORDS[COMP_CWORD]}}; prev=${{COMP_WORDS[COMP_CWORD-1]}};
  words=("${{COMP_WORDS[@]}}"); cword=$COMP_CWORD; }}
_filedir() {{ :; }}
source {comp}
COMP_WORDS=(loopstall capture --for); COMP_CWORD=2; _loopstall; echo "${{COMPREPLY[@]}}"
COMP_WORDS=(loopstall capture --format ''); COMP_CWORD=3; _loopstall; echo "${{COMPREPLY[@]}}"
COMP_WORDS=(loopstall s); COMP_CWORD=1; _loopstall; echo "${{COMPREPLY[@]}}"
COMP_WORDS=(loopstall f); COMP_CWORD=1; _loopstall; echo "${{COMPREPLY[@]}}"
COMP_WORDS=(loopstall flamegraph c.lsc --format ''); COMP_CWORD=4; _loopstall; echo "${{COMPREPLY[@]}}"
COMP_WORDS=(loopstall diff a.lsc b.lsc -); COMP_CWORD=4; _loopstall; echo "${{COMPREPLY[@]}}"
COMP_WORDS=(loopstall t); COMP_CWORD=1; _loopstall; echo "${{COMPREPLY[@]}}"
COMP_WORDS=(loopstall top --sort ''); COMP_CWORD=3; _loopstall; echo "${{COMPREPLY[@]}}"
COMP_WORDS=(loopstall top --ba); COMP_CWORD=2; _loopstall; echo "${{COMPREPLY[@]}}"
"""
    r = run(["bash", "-c", script])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["--format", "text json", "status", "flamegraph", "svg folded speedscope",
                                     "-o --output --help", "top", "util iter p99 stalls churn pid", "--batch"], r.stdout
