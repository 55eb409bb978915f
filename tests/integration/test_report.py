"""After the incident: `loopstall capture --save FILE`, then `loopstall report FILE`, as a person
would run them, on a gevent service with two culprits (a CPU hog and a blocking C call)."""
import json
import subprocess

from conftest import WORKLOADS, run_capture, workload


def run_cli(binary, *args, timeout=30):
    return subprocess.run([binary, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_save_then_report_ranks_both_culprits(bpf_ready, tmp_path):
    saved = tmp_path / "incident.lsc"
    run = run_capture(bpf_ready, lambda: [workload("gevent_stall.py", "cpu", "--ms", "300", "--warmup", "0.5"),
                                          workload("gevent_stall.py", "usleep", "--ms", "600", "--warmup", "1.5")],
                      capture_args=["--save", saved])
    hog, blocker = run.workloads
    hog.argv_script = blocker.argv_script = str(WORKLOADS / "gevent_stall.py")
    assert saved.stat().st_size > 0, run.describe()

    text = run_cli(bpf_ready, "report", saved)
    assert text.returncode == 0, text.stderr
    out = text.stdout
    print(out)
    # Both culprits by name and file (other processes on the host may stall too).
    usleep_name, burn_name = f"ctypes_usleep ({blocker.argv_script})", f"burn_cpu ({hog.argv_script})"
    assert usleep_name in out and burn_name in out, out
    assert "clock_nanosleep" in out, out

    js = run_cli(bpf_ready, "report", saved, "--format", "json")
    assert js.returncode == 0, js.stderr
    rep = json.loads(js.stdout)
    assert rep["stalls"] >= 2, rep
    pids = [l["pid"] for l in rep["loops"]]
    assert pids.index(blocker.pid) < pids.index(hog.pid), rep["loops"]
    by_pid = {l["pid"]: l for l in rep["loops"]}
    assert abs(by_pid[blocker.pid]["stalled_ms"] - 600) <= 90, by_pid[blocker.pid]
    assert abs(by_pid[hog.pid]["stalled_ms"] - 300) <= 60, by_pid[hog.pid]
    for l in (by_pid[blocker.pid], by_pid[hog.pid]):
        assert l["iterations"] > 10 and l["iterations_per_s"] > 0 and l["p99_ms"] > 0, l
    funcs = {f["name"]: f for f in rep["python_functions"]}
    names = [f["name"] for f in rep["python_functions"]]
    assert names.index(usleep_name) < names.index(burn_name), names  # more stalled time first
    assert funcs[usleep_name]["self_ms"] >= 500 and funcs[burn_name]["self_ms"] >= 200, rep["python_functions"]
    causes = {c["name"]: c for c in rep["causes"]}
    assert "blocking_syscall" in causes, rep["causes"]
    assert "clock_nanosleep" in [s["name"] for s in rep["syscalls"]], rep["syscalls"]
    # The culprit stacks, as in the text's "Culprit stacks": innermost frame first, with lines.
    stacks = rep["stacks"]
    assert [s["ms"] for s in stacks] == sorted((s["ms"] for s in stacks), reverse=True), stacks
    usleep = [s for s in stacks if s["python"] and s["python"][0].startswith(f"ctypes_usleep ({blocker.argv_script}:")]
    burn = [s for s in stacks if s["python"] and s["python"][0].startswith(f"burn_cpu ({hog.argv_script}:")]
    assert usleep and burn, stacks
    assert any(n.startswith("clock_nanosleep (") for n in usleep[0]["native"]), usleep[0]
    assert usleep[0]["ms"] >= 500 and 0 < usleep[0]["share"] <= 1 and usleep[0]["stalls"] >= 1, usleep[0]


def test_report_refuses_damaged_files(bpf_ready, tmp_path):
    saved = tmp_path / "c.lsc"
    run_capture(bpf_ready, lambda: [workload("gevent_stall.py", "cpu", "--ms", "300", "--warmup", "0.5")],
                capture_args=["--save", saved])
    data = saved.read_bytes()
    cases = {"truncated": data[: len(data) // 2], "garbage": b"\x1f\x8b" + bytes(range(256)) * 4,
             "text": b"not a capture\n"}
    for name, content in cases.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        r = run_cli(bpf_ready, "report", bad)
        assert r.returncode == 1, (name, r.returncode, r.stdout, r.stderr)
        assert r.stderr.startswith("loopstall: error: "), (name, r.stderr)
        assert not r.stdout, (name, r.stdout)
    r = run_cli(bpf_ready, "report", tmp_path / "missing.lsc")
    assert r.returncode == 1 and "cannot open" in r.stderr, r.stderr


def test_save_to_an_unwritable_path_is_an_error(bpf_ready, tmp_path):
    r = run_cli(bpf_ready, "capture", "--duration", "1", "--save", tmp_path / "no" / "such" / "dir" / "c.lsc")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "cannot write capture file" in r.stderr, r.stderr
