"""Issue 3, "name the culprit": the stall events must say which code stalled the loop.

For each workload the user must find, in the JSON event of its one stall:
  - the stalling Python function as a frame of the TOP python_stacks entry (python_stacks[0]: the
    most samples), innermost, with the workload's file and a line inside that function's body
    (line ranges come from the workload source via `ast`, never hard-coded); co_qualname on 3.11+
    (Handler.handle), co_name before (handle);
  - a native_stack that names the C culprit: libc's sleep for blocking sleeps, `usleep` for a
    ctypes call, `rd_kafka_flush` for librdkafka, a libsqlite3 frame for a long query;
  - for gc.collect() on a big cyclic heap: cause "gc" with breakdown_ms.gc >= half the stall, on
    interpreters with the gc__start/gc__done USDT probes (Debian's python3.11; pyenv's builds have
    none: there only the stall and the frame that called gc.collect() are checked).

The four basic gevent stalls reuse test_capture's runs (cached per session). Everything else -- two
gevent workloads (SQLite, gc) and four asyncio workloads on every interpreter found -- runs in ONE
capture: the workloads start together, calibrate, print READY, then a go file gives them a common
time origin and each stalls at its own offset, the CPU-heavy stalls one after the other. One CPU
stays free for the tracer: it reads Python frames from userspace while the stall goes on, and two
nice -20 stalls on this 2-CPU box starve it until the stall is over (it then names the frames of
the idle loop, selectors.select, instead of the culprit).
Each stall's duration is checked against the one the workload measured itself (STALL_START ..
STALL_END), so that calibrated stalls of any length compare fairly.
"""
import ast
import bisect
import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import PY, WORKLOADS, run_capture, workload
from test_capture import GEVENT_CASES, INTERPRETERS, gevent_run, near, the_stall

# ---------------------------------------------------------------- the cases

# gevent cases (Debian's python3.11 only): case -> (workload, culprit qualname, native check).
# The first four are test_capture's GEVENT_CASES (same runs); sqlite and gc are new.
GEVENT_CULPRITS = {case: (spec[0], spec[5]) for case, spec in GEVENT_CASES.items()}
GEVENT_CULPRITS.update({
    "sqlite": ("gevent_sqlite.py", "sqlite_long_query"),
    "gc": ("gevent_gc.py", "collect_big_heap"),
})
NEW_GEVENT = ("sqlite", "gc")

# asyncio cases, one process each, on every interpreter: --case -> culprit qualname in ASYNCIO_SCRIPT.
ASYNCIO_SCRIPT = "asyncio_culprit.py"
ASYNCIO_CULPRITS = {
    "cpu": "Handler.handle",  # a method: co_qualname differs from co_name
    "sleep": "blocking_sleep",
    "sqlite": "sqlite_long_query",
    "gc": "collect_big_heap",
}
ON_CPU = {"cpu", "sqlite", "gc"}  # stalls that need a CPU throughout: spread out in the schedule

VERSIONS = sorted(INTERPRETERS, key=lambda v: int(v.split(".")[1]))


def version_id(v):
    return ("debian-" if INTERPRETERS[v] == PY else "pyenv-") + v


def minor(version):
    return int(version.split(".")[1])


def need_interpreter(version):
    if INTERPRETERS[version] is None:
        pytest.skip(f"no pyenv Python {version} installed")
    return INTERPRETERS[version]


# ---------------------------------------------------------------- the one capture for the new cases

SLOT_S = 0.7  # one CPU-heavy stall (~300-450 ms on an idle CPU, up to ~650 when the VM is slow) and a gap
LEAD_S = 1.0   # go -> first stall: the tracer has seen every loop's epoll_wait by then


def _start_scheduled(go_file):
    """Start every new workload at once (threads: each waits for its READY, and calibration
    before READY takes up to a second), then write the go file: the common time origin."""
    specs = [(("gevent", case), GEVENT_CULPRITS[case][0], [], PY) for case in NEW_GEVENT]
    specs += [(("asyncio", case, v), ASYNCIO_SCRIPT, ["--case", case], INTERPRETERS[v])
              for v in VERSIONS if INTERPRETERS[v] for case in ASYNCIO_CULPRITS]
    heavy = sleepers = 0
    argvs = []
    for key, script, args, interp in specs:
        case = key[1]
        if case in ON_CPU:  # one at a time
            offset = heavy * SLOT_S
            heavy += 1
        else:  # blocked stalls barely use a CPU: a little apart, at the start
            offset = sleepers * 0.2
            sleepers += 1
        argvs.append((key, script, [*args, "--go-file", go_file, "--warmup", f"{offset:.2f}"], interp))
    with ThreadPoolExecutor(max_workers=len(argvs)) as pool:
        futures = [(key, pool.submit(workload, script, *args, interp=interp))
                   for key, script, args, interp in argvs]
        started = {key: f.result() for key, f in futures}  # re-raises a workload's failure
    tmp = go_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{time.time() + LEAD_S:.3f}")
    os.rename(tmp, go_file)  # atomic: a workload never reads half a time
    return list(started.values()), {"by_key": started}


def culprit_run(cache, binary):
    """The shared run, made once per session. A failure is remembered too: ~70 tests use this run,
    and retrying a run that timed out for each of them would take an hour."""
    key = "culprit"
    if key not in cache:
        tmpdir = tempfile.mkdtemp(prefix="loopstall-culprit-")
        try:
            cache[key] = run_capture(binary, lambda: _start_scheduled(os.path.join(tmpdir, "go")),
                                     workload_timeout=90)
        except (Exception, pytest.fail.Exception) as e:
            cache[key] = e
            raise
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
    if isinstance(cache[key], BaseException):
        pytest.fail(f"the shared capture of the new workloads failed (see the first test that used it): "
                    f"{cache[key]}", pytrace=False)
    return cache[key]


def new_workload(cache, binary, key):
    run = culprit_run(cache, binary)
    return run, run.extra["by_key"][key]


# ---------------------------------------------------------------- reading the events

def shown(run, pid, w=None):
    """The events of pid as the user saw them (for failure messages), plus the workload's output."""
    evs = "\n".join(json.dumps({k: v for k, v in e.items() if k != "_recv_ns"}) for e in run.of(pid))
    return (evs or f"(no events for pid {pid})") + (f"\n{w.describe(tail=10)}" if w else "") + \
        f"\n{run.capture_tail()}"


def detected(run, w, loop):
    """The one final stall of workload w: right loop, duration within 15 % of what it measured."""
    ev = the_stall(run, w.pid)
    measured_ms = (w.mark("STALL_END") - w.mark("STALL_START")) / 1e6
    msg = shown(run, w.pid, w)
    assert ev["loop"] == loop, f"loop {ev['loop']!r}, expected {loop!r}:\n{msg}"
    print(f"{w.name} pid {w.pid} ({' '.join(w.argv[-6:])}): stall {ev['duration_ms']:.1f} ms, workload measured "
          f"{measured_ms:.1f} ms; cause {ev['cause']} {ev['breakdown_ms']}")
    assert near(ev["duration_ms"], measured_ms), \
        f"duration_ms {ev['duration_ms']} not within 15% of the {measured_ms:.1f} ms the workload measured:\n{msg}"
    return ev


def fmt_py(stack):
    return "\n".join(f"    {f['function']} ({f['file']}:{f['line']})" for f in stack["frames"])


def fmt_native(frames):
    return "\n".join(f"    {f['symbol'] or '?'} ({f['module']}+{f['offset']:#x})" for f in frames) or "    (empty)"


def check_stack_shape(ev, msg):
    """Every python_stacks entry: samples >= 1, non-empty frames with a function and a file, a
    line that is null or >= 1; entries most samples first; identical stacks merged."""
    stacks = ev["python_stacks"]
    seen = set()
    for i, st in enumerate(stacks):
        assert st["samples"] >= 1, f"python_stacks[{i}] has samples {st['samples']}:\n{msg}"
        assert st["frames"], f"python_stacks[{i}] has no frames:\n{msg}"
        for f in st["frames"]:
            assert f["function"] and f["file"], f"python_stacks[{i}]: frame without function/file {f}:\n{msg}"
            assert f["line"] is None or f["line"] >= 1, f"python_stacks[{i}]: bad line in {f}:\n{msg}"
        ident = tuple((f["function"], f["file"], f["line"]) for f in st["frames"])
        assert ident not in seen, f"python_stacks[{i}] repeats an earlier stack (identical stacks merge):\n{msg}"
        seen.add(ident)
    counts = [st["samples"] for st in stacks]
    assert counts == sorted(counts, reverse=True), f"python_stacks not sorted by samples {counts}:\n{msg}"


@functools.lru_cache(maxsize=None)
def function_lines(script):
    """qualname -> (first body line, last line) of every function in a workload, from its source."""
    tree = ast.parse((WORKLOADS / script).read_text(), filename=script)
    found = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qualname = prefix + child.name
                found[qualname] = (child.body[0].lineno, child.end_lineno)
                visit(child, qualname + ".<locals>.")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def check_python_culprit(ev, script, qualname, version, msg):
    """The culprit is the innermost frame of python_stacks[0], named as the version names it,
    in script, at a line of its body."""
    lines = function_lines(script)
    assert qualname in lines, f"test bug: no function {qualname} in {script} ({sorted(lines)})"
    first, last = lines[qualname]
    want = qualname if minor(version) >= 11 else qualname.rsplit(".", 1)[-1]  # co_qualname is 3.11+
    check_stack_shape(ev, msg)
    assert ev["python_stacks"], f"no python_stacks: expected {want}() of {script} on top:\n{msg}"
    top = ev["python_stacks"][0]
    where = f"python_stacks[0] ({top['samples']} samples), innermost first:\n{fmt_py(top)}\n{msg}"
    hits = [f for f in top["frames"] if f["function"] == want and os.path.basename(f["file"]) == script]
    assert hits, f"no frame {want!r} of {script} in the top Python stack " \
                 f"({'co_qualname' if minor(version) >= 11 else 'co_name'} expected on {version}); " + where
    line = hits[0]["line"]
    assert line is not None and first <= line <= last, \
        f"{want} frame line {line} is not inside its body, lines {first}-{last} of {script}; " + where
    innermost = top["frames"][0]
    assert innermost is hits[0], f"{want}() calls only C code: it must be the innermost Python frame; " + where


def norm_sym(symbol):
    """libc's aliases compare equal: __GI___clock_nanosleep, __clock_nanosleep, clock_nanosleep@@GLIBC_2.17."""
    s = re.sub(r"^(?:_|GI_)+", "", symbol.split("@")[0])
    return re.sub(r"_time64$", "", s)


def base(frame):
    return os.path.basename(frame["module"])


def interpreter_modules(interp):
    """Module basenames that hold the eval loop and the collector: the executable (Debian's
    python3.11 is static) or a shared libpython (pyenv's builds)."""
    return lambda name: name == os.path.basename(os.path.realpath(interp)) or name.startswith("libpython3")


INNER = 4  # "innermost frames": how deep below the user-space top a named libc function may sit


def check_native(ev, kind, interp, version, msg):
    frames = ev["native_stack"]
    where = f"native_stack (innermost first):\n{fmt_native(frames)}\n{msg}"
    assert frames, f"empty native_stack for a {kind} stall; " + where
    syms = [norm_sym(f["symbol"]) for f in frames]
    inner = syms[:INNER]
    if kind in ("cpu", "gc"):
        is_interp = interpreter_modules(interp)
        assert any(is_interp(base(f)) for f in frames), \
            f"no frame of the interpreter ({os.path.realpath(interp)} or libpython) in an on-CPU Python stall; " + where
    elif kind == "sqlite":
        assert any(base(f).startswith("libsqlite3") for f in frames), "no libsqlite3 frame; " + where
    elif kind == "kafka":
        assert base(frames[0]).startswith("libc."), "innermost frame not in libc (futex wait); " + where
        assert "rd_kafka_flush" in syms, "no rd_kafka_flush frame; " + where
    elif kind == "sleep":
        # CPython 3.11+ sleeps in clock_nanosleep(); 3.8-3.10 in select() (pselect6).
        want = "clock_nanosleep" if minor(version) >= 11 else "select"
        assert base(frames[0]).startswith("libc."), "innermost frame not in libc; " + where
        assert want in inner, f"no {want} (or an alias) among the {INNER} innermost frames; " + where
    elif kind == "usleep":
        # glibc: usleep -> __nanosleep -> __clock_nanosleep: the caller must show, not just the wrapper.
        assert base(frames[0]).startswith("libc."), "innermost frame not in libc; " + where
        assert inner[0] in ("clock_nanosleep", "nanosleep", "usleep"), \
            f"innermost frame {frames[0]['symbol']!r}, expected clock_nanosleep/__clock_nanosleep/nanosleep; " + where
        assert "usleep" in inner, f"no usleep among the {INNER} innermost frames; " + where
    else:
        raise AssertionError(f"test bug: unknown native kind {kind}")


@functools.lru_cache(maxsize=None)
def has_gc_usdt(interp):
    """Whether the interpreter (its executable or the libpython it links) has USDT gc__start."""
    if not shutil.which("readelf"):
        return interp == PY  # Debian's build is the one with --with-dtrace
    files = [os.path.realpath(interp)]
    try:
        ldd = subprocess.run(["ldd", interp], capture_output=True, text=True, timeout=20).stdout
        files += re.findall(r"=>\s*(\S*libpython\S*)", ldd)
    except (OSError, subprocess.TimeoutExpired):
        pass
    for f in files:
        try:
            notes = subprocess.run(["readelf", "-n", f], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        if "gc__start" in notes:
            return True
    return False


def check_gc(ev, msg):
    bd, d = ev["breakdown_ms"], ev["duration_ms"]
    assert bd["gc"] >= 0.5 * d, \
        f"breakdown_ms.gc {bd['gc']} ms is less than half of the {d} ms stall spent in gc.collect():\n{msg}"
    assert ev["cause"] == "gc", f"cause {ev['cause']!r}, expected 'gc' (GC time is the largest part):\n{msg}"


# ---------------------------------------------------------------- gevent (Debian's python3.11)

def gevent_case(cache, binary, case):
    if case in NEW_GEVENT:
        return new_workload(cache, binary, ("gevent", case))
    run = gevent_run(cache, binary, case)
    return run, run.w


GEVENT_NATIVE = {"cpu": "cpu", "sleep_before_patch": "sleep", "ctypes_usleep": "usleep",
                 "kafka_flush": "kafka", "sqlite": "sqlite", "gc": "gc"}


@pytest.mark.parametrize("case", list(GEVENT_CULPRITS))
def test_gevent_stall_detected(bpf_ready, cached_runs, case):
    run, w = gevent_case(cached_runs, bpf_ready, case)
    detected(run, w, "gevent")


@pytest.mark.parametrize("case", list(GEVENT_CULPRITS))
def test_gevent_python_culprit(bpf_ready, cached_runs, case):
    run, w = gevent_case(cached_runs, bpf_ready, case)
    ev = detected(run, w, "gevent")
    script, func = GEVENT_CULPRITS[case]
    check_python_culprit(ev, script, func, "3.11", shown(run, w.pid, w))


@pytest.mark.parametrize("case", list(GEVENT_CULPRITS))
def test_gevent_native_stack(bpf_ready, cached_runs, case):
    run, w = gevent_case(cached_runs, bpf_ready, case)
    ev = detected(run, w, "gevent")
    check_native(ev, GEVENT_NATIVE[case], PY, "3.11", shown(run, w.pid, w))


def load_segments(path):
    """(file offset, vaddr, filesz) of each PT_LOAD of an ELF file."""
    out = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True, timeout=30).stdout
    return [(int(m[1], 16), int(m[2], 16), int(m[3], 16))
            for m in re.finditer(r"^\s+LOAD\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)", out, re.M)]


def function_symbols(path):
    """Sorted (address, name) of the defined functions in .dynsym (Debian strips .symtab)."""
    out = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True, text=True, timeout=30).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TtWi":
            syms.append((int(parts[0], 16), parts[2].split("@")[0]))
    return sorted(syms)


def test_native_offsets_are_file_offsets(bpf_ready, cached_runs):
    """The contract: native_stack[].offset is the offset in the module FILE. Debian's python3.11 is
    not PIE (linked at 0x400000), so a file offset and an ELF address differ there: map each named
    python3.11 frame's offset through the program headers and find its function in .dynsym."""
    if not shutil.which("readelf") or not shutil.which("nm"):
        pytest.skip("binutils (readelf, nm) not installed")
    run, w = gevent_case(cached_runs, bpf_ready, "cpu")
    ev = detected(run, w, "gevent")
    exe = os.path.realpath(PY)
    loads, syms = load_segments(exe), function_symbols(exe)
    addrs = [a for a, _ in syms]
    checked = 0
    for f in ev["native_stack"]:
        if f["module"] != exe or not f["symbol"]:
            continue
        seg = [(off, va) for off, va, size in loads if off <= f["offset"] < off + size]
        assert seg, f"offset {f['offset']:#x} of {f['symbol']} is outside every segment of {exe}"
        vaddr = f["offset"] - seg[0][0] + seg[0][1]
        i = bisect.bisect_right(addrs, vaddr) - 1
        assert i >= 0 and f["symbol"] in {n for a, n in syms if a == addrs[i]}, \
            f"file offset {f['offset']:#x} (ELF address {vaddr:#x}) is in {syms[i][1] if i >= 0 else None}, " \
            f"but the frame says {f['symbol']}"
        checked += 1
    assert checked, f"no named {exe} frame in the native stack:\n{fmt_native(ev['native_stack'])}"


def test_gevent_gc_cause(bpf_ready, cached_runs):
    """Debian's python3.11 has USDT gc__start/gc__done: a stall spent in gc.collect() is a gc stall."""
    assert has_gc_usdt(PY), f"{PY} has no USDT gc__start probe (readelf -n): not Debian's build?"
    run, w = gevent_case(cached_runs, bpf_ready, "gc")
    ev = detected(run, w, "gevent")
    check_gc(ev, shown(run, w.pid, w))


# ---------------------------------------------------------------- asyncio, every interpreter

ASYNCIO_NATIVE = {"cpu": "cpu", "sleep": "sleep", "sqlite": "sqlite", "gc": "gc"}
ASYNCIO_PARAMS = [pytest.param(case, v, id=f"{case}-{version_id(v)}") for v in VERSIONS for case in ASYNCIO_CULPRITS]


def asyncio_case(cache, binary, case, version):
    need_interpreter(version)
    run, w = new_workload(cache, binary, ("asyncio", case, version))
    return run, w, detected(run, w, "asyncio")


@pytest.mark.parametrize("case,version", ASYNCIO_PARAMS)
def test_asyncio_stall_detected(bpf_ready, cached_runs, case, version):
    run, w, ev = asyncio_case(cached_runs, bpf_ready, case, version)
    assert ev.get("python_version") in (None, version), \
        f"python_version {ev.get('python_version')!r}, expected {version}:\n{shown(run, w.pid, w)}"


@pytest.mark.parametrize("case,version", ASYNCIO_PARAMS)
def test_asyncio_python_culprit(bpf_ready, cached_runs, case, version):
    run, w, ev = asyncio_case(cached_runs, bpf_ready, case, version)
    check_python_culprit(ev, ASYNCIO_SCRIPT, ASYNCIO_CULPRITS[case], version, shown(run, w.pid, w))


@pytest.mark.parametrize("case,version", ASYNCIO_PARAMS)
def test_asyncio_native_stack(bpf_ready, cached_runs, case, version):
    run, w, ev = asyncio_case(cached_runs, bpf_ready, case, version)
    check_native(ev, ASYNCIO_NATIVE[case], INTERPRETERS[version], version, shown(run, w.pid, w))


# Only where the interpreter has the USDT probes; elsewhere the gc case is covered by the
# detection and Python-culprit tests above (the stall, and the frame that called gc.collect()).
@pytest.mark.parametrize("version", [v for v in VERSIONS if INTERPRETERS[v] and has_gc_usdt(INTERPRETERS[v])],
                         ids=version_id)
def test_asyncio_gc_cause(bpf_ready, cached_runs, version):
    run, w, ev = asyncio_case(cached_runs, bpf_ready, "gc", version)
    check_gc(ev, shown(run, w.pid, w))


# ---------------------------------------------------------------- every event

def test_every_event_has_well_formed_stacks(bpf_ready, cached_runs):
    """Every stall event of these runs (ongoing reports too): python_stacks entries with samples
    >= 1, sorted by samples, frames with a function and a file."""
    runs = [culprit_run(cached_runs, bpf_ready)] + [gevent_run(cached_runs, bpf_ready, c) for c in GEVENT_CASES]
    n = 0
    for run in runs:
        for ev in run.events:
            check_stack_shape(ev, json.dumps({k: v for k, v in ev.items() if k != "_recv_ns"}))
            n += 1
    assert n >= len(GEVENT_CULPRITS), f"only {n} events in {len(runs)} runs"


# ---------------------------------------------------------------- a starved tracer

def test_python_stacks_are_taken_at_the_sample_even_when_the_tracer_is_starved(bpf_ready):
    """Both CPUs busy with nice -20 stalls (one per CPU, pinned), the tracer at nice 0: it runs
    only after the stalls. BPF copies the Python frames at each sample, so the report still names
    the culprit, not whatever the loop runs by the time the tracer reads its memory."""
    interps = [i for i in (INTERPRETERS.get("3.9"), INTERPRETERS.get("3.12"), PY) if i][:2]
    if len(interps) < 2:
        interps = [PY, PY]

    def start():
        return [workload(ASYNCIO_SCRIPT, "--case", "cpu", "--ms", "400", interp=interp,
                         prefix=["taskset", "-c", str(cpu)])
                for cpu, interp in enumerate(interps)]

    run = run_capture(bpf_ready, start)
    for w in run.workloads:
        version = re.search(r"python(3\.\d+)", os.path.basename(w.interp)).group(1)
        finals = [e for e in run.of(w.pid) if not e["ongoing"]]
        assert len(finals) == 1, f"expected one final stall for {w.interp}:\n{shown(run, w.pid)}"
        check_python_culprit(finals[0], ASYNCIO_SCRIPT, ASYNCIO_CULPRITS["cpu"], version, shown(run, w.pid))
