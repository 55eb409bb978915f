"""Issue 9 point 5, "containers lose the culprit": a gevent process in its own PID namespace (as in
every container) must be reported under its HOST pid with its Python culprit and its native stack,
although the interpreter knows its threads by the namespace's ids (CPython's native_thread_id).

Each container runs `gevent_stall.py usleep`: the hub blocks 1 s in libc usleep() through ctypes, in
ctypes_usleep(). It prints READY with its namespace pid (1); the test finds its host pid in the
process tree below `unshare` (the descendant whose innermost NSpid is that pid).

  pid           unshare -p -f --mount-proc: another PID namespace, the host's files
  pid+mount     unshare -m -p -f --mount-proc: another mount namespace too
  private-files the same, with python3.11 and libc.so.6 copied into a tmpfs mounted only inside
                that namespace: the host cannot open them by the paths the process maps them
                under, so every file must be opened through /proc/PID/map_files or
                /proc/PID/root; the event still names them by the process's paths.
The three run in one capture. private-files runs once more under a capture without
CAP_SYS_ADMIN (the systemd unit does not grant it): /proc/PID/map_files is then closed to it and
only /proc/PID/root remains.
"""
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import PY, run_capture, workload
from test_culprit import check_native, check_python_culprit, detected, shown

SCRIPT = "gevent_stall.py"
# Long enough that a tracer starved by a busy host (other tests, builds) still sees it blocked.
STALL_MS = 1000
CULPRIT = "ctypes_usleep"
UNSHARE_PID = ["unshare", "-p", "-f", "--kill-child", "--mount-proc"]
UNSHARE_PID_MOUNT = ["unshare", "-m", "-p", "-f", "--kill-child", "--mount-proc"]

# sh -c PRIVATE_FILES sh DIR LIBC INTERP ARGS...: inside a new mount namespace, mount a tmpfs on DIR
# (the host keeps seeing DIR empty), copy the interpreter and libc there, and run the copy with the
# copied libc.
PRIVATE_FILES = r'''set -e
dir=$1 libc=$2 py=$3
shift 3
mount -t tmpfs loopstall-test "$dir"
cp "$py" "$libc" "$dir/"
LD_LIBRARY_PATH="$dir" exec "$dir/$(basename "$py")" "$@"
'''


def need_tools():
    for tool in ("unshare", "setpriv"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} (util-linux) not installed")


def libc_path():
    """The libc this very interpreter maps (/usr/lib/x86_64-linux-gnu/libc.so.6 on Debian 12)."""
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split(maxsplit=5)[-1].strip()
            if os.path.basename(path).startswith("libc.so"):
                return path
    pytest.fail("no libc.so mapped by the test's own interpreter", pytrace=False)


def nspid(pid):
    """The NSpid ids of a process, outermost (ours) first; [] when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return [int(x) for x in line.split()[1:]]
    except OSError:
        pass
    return []


def parents():
    """pid -> ppid of every process (from /proc/PID/stat: the field after the ')' of comm)."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        out[int(name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    return out


def host_pid(w):
    """The host pid of workload w, which printed READY with its namespace pid: the one descendant of
    the process we started (unshare) that lives in a child PID namespace and is that pid there."""
    ppid = parents()
    below, todo = set(), [w.popen.pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in ppid.items() if pp == p]
        below.update(kids)
        todo += kids
    found = [p for p in below if len(nspid(p)) > 1 and nspid(p)[-1] == w.ns_pid]
    assert len(found) == 1, f"expected one process below {w.popen.pid} that is pid {w.ns_pid} in its own " \
                            f"namespace, found {found} (descendants {sorted(below)})\n{w.describe()}"
    return found[0]


def container(kind, go_file, private_dir=None):
    if kind == "pid":
        prefix = UNSHARE_PID
    elif kind == "pid+mount":
        prefix = UNSHARE_PID_MOUNT
    else:
        prefix = [*UNSHARE_PID_MOUNT, "sh", "-c", PRIVATE_FILES, "sh", private_dir, libc_path()]
    w = workload(SCRIPT, "usleep", "--ms", str(STALL_MS), "--go-file", go_file, "--warmup", "0.5", prefix=prefix)
    w.kind, w.private_dir = kind, private_dir
    w.ns_pid = w.pid
    try:
        w.pid = host_pid(w)
    except BaseException:
        w.kill()
        raise
    # The premise of private-files, while it runs: the host cannot open its copy by its path.
    w.host_sees_private = private_dir is not None and os.path.exists(os.path.join(private_dir, os.path.basename(PY)))
    return w


KINDS = ("pid", "pid+mount", "private-files")


def capture_containers(binary, kinds, capture_prefix=()):
    """Start one container per kind, then a capture of just their host pids (`--pid`: the rest of a
    busy host is not its business), then let them stall. Returns (run, {kind: workload})."""
    tmp = tempfile.mkdtemp(prefix="loopstall-containers-")
    go_file = os.path.join(tmp, "go")
    started = {}
    try:
        if capture_prefix:
            # run_capture starts `binary capture ...`: a wrapper script puts the prefix in front.
            wrapper = os.path.join(tmp, "loopstall")
            Path(wrapper).write_text("#!/bin/sh\nexec " + " ".join(capture_prefix) + f' "{binary}" "$@"\n')
            os.chmod(wrapper, 0o755)
            binary = wrapper
        for kind in kinds:
            d = None
            if kind == "private-files":
                d = os.path.join(tmp, "private")
                os.mkdir(d)
            started[kind] = container(kind, go_file, d)

        def go():
            Path(go_file + ".tmp").write_text(f"{time.time():.3f}")
            os.rename(go_file + ".tmp", go_file)  # atomic: a workload never reads half a time
            return [], started

        pids = [a for w in started.values() for a in ("--pid", str(w.pid))]
        run = run_capture(binary, go, capture_args=pids, before=list(started.values()))
        return run, run.extra
    finally:
        for w in started.values():
            w.kill()
        # The tmpfs lived in the workload's mount namespace only: on the host the directory is empty.
        shutil.rmtree(tmp, ignore_errors=True)


def containers_run(cache, binary):
    if "containers" not in cache:
        cache["containers"] = capture_containers(binary, KINDS)
    return cache["containers"]


def check_container_stall(run, w):
    msg = shown(run, w.pid, w)
    assert w.pid != w.ns_pid, f"test bug: host pid {w.pid} equals the namespace pid"
    assert not run.of(w.ns_pid), f"events under the namespace pid {w.ns_pid} (the host pid is {w.pid}):\n{run.describe()}"
    ev = detected(run, w, "gevent")  # the one final stall of the HOST pid, duration as measured
    assert ev["tid"] == w.pid, f"the hub runs on the main thread (host tid {w.pid}), got tid {ev['tid']}:\n{msg}"
    # Every report of it, the ongoing ones too, names the culprit and the libc sleep.
    for rep in run.of(w.pid):
        what = f"{'ongoing' if rep['ongoing'] else 'final'} report at {rep['duration_ms']} ms of pid {w.pid} " \
               f"(pid {w.ns_pid} in its {w.kind} container)"
        check_python_culprit(rep, SCRIPT, CULPRIT, "3.11", f"{what}\n{msg}")
        check_native(rep, "usleep", PY, "3.11", f"{what}\n{msg}")
    return ev


@pytest.mark.parametrize("kind", KINDS)
def test_container_stall_names_culprit(bpf_ready, cached_runs, kind):
    need_tools()
    run, by_kind = containers_run(cached_runs, bpf_ready)
    check_container_stall(run, by_kind[kind])


def check_private_paths(run, w):
    """The event names the files as the process maps them, though the host has nothing there."""
    msg = shown(run, w.pid, w)
    assert not w.host_sees_private, "test bug: the container's tmpfs was visible on the host"
    py_copy = os.path.join(w.private_dir, os.path.basename(PY))
    libc_copy = os.path.join(w.private_dir, os.path.basename(libc_path()))
    ev = detected(run, w, "gevent")
    assert ev["exe"] == py_copy, f"exe {ev['exe']!r}, expected the container's {py_copy!r}:\n{msg}"
    libc_frames = [f for f in ev["native_stack"] if os.path.basename(f["module"]).startswith("libc.")]
    assert libc_frames and all(f["module"] == libc_copy for f in libc_frames), \
        f"libc frames must name the container's {libc_copy}:\n{msg}"


def test_private_files_named_as_the_process_sees_them(bpf_ready, cached_runs):
    need_tools()
    run, by_kind = containers_run(cached_runs, bpf_ready)
    check_private_paths(run, by_kind["private-files"])


def test_private_files_without_cap_sys_admin(bpf_ready):
    """As the systemd unit runs it: no CAP_SYS_ADMIN, so no /proc/PID/map_files: /proc/PID/root it is."""
    need_tools()
    probe = subprocess.run(["setpriv", "--bounding-set", "-sys_admin", "true"], capture_output=True, timeout=10)
    if probe.returncode != 0:
        pytest.skip(f"setpriv cannot drop CAP_SYS_ADMIN here: {probe.stderr.decode(errors='replace')}")
    run, by_kind = capture_containers(bpf_ready, ["private-files"],
                                      capture_prefix=["setpriv", "--bounding-set", "-sys_admin"])
    w = by_kind["private-files"]
    check_container_stall(run, w)
    check_private_paths(run, w)
