"""Each recognised framework, running a real server on 127.0.0.1 that stalls its loop for 300 ms
with a CPU burn in a handler: one final stall event with the framework as "loop", the burn's
length, cause cpu, and the handler in python_stacks.

All cases run under ONE capture, their stalls at least 0.7 s apart (each workload is started after
the previous one is READY and waits longer before its stall).
"""
import pytest

from conftest import PY, run_capture, workload

MS = 300
# id -> (script and extra args, loop, culprit: the handler's co_qualname)
CASES = {
    # Stalls 50 ms after its reactor started: named from the first moment (the stack read when the
    # process is classified), not "python" until a later scan. First: the others stall >= 1 s later.
    "twisted_at_start": (("twisted_server.py", "--warmup", 0), "twisted", "SlowProtocol.dataReceived"),
    "aiohttp": (("aiohttp_app.py",), "asyncio", "make_app.<locals>.slow_handler"),
    "tornado": (("tornado_app.py",), "asyncio", "SlowHandler.get"),
    "uvloop": (("uvloop_server.py",), "uvloop", "main.<locals>.slow_handler"),
    "twisted": (("twisted_server.py",), "twisted", "SlowProtocol.dataReceived"),
    "eventlet": (("eventlet_server.py",), "eventlet", "slow_handler"),
    # greenlet's C module hints at eventlet; the loop thread's stack says asyncio.
    "aiohttp_with_greenlet": (("aiohttp_app.py", "--greenlet", 1), "asyncio", "make_app.<locals>.slow_handler"),
    # A hand-written selectors loop: a Python loop of no known framework.
    "selectors": (("selectors_loop.py",), "python", "main.<locals>.on_request"),
}


def frameworks_run(cache, binary):
    def start():
        started = {}
        for i, (case, ((script, *extra), _, _)) in enumerate(CASES.items()):
            warmup = ["--warmup", 0.3 + 0.7 * i] if "--warmup" not in extra else []
            started[case] = workload(script, *extra, *warmup, "--ms", MS, "--after", 0.5, interp=PY)
        return list(started.values()), started
    if "frameworks" not in cache:
        cache["frameworks"] = run_capture(binary, start)
    return cache["frameworks"]


def brief(run):
    """The events without their stacks' bulk, and the capture's closing lines."""
    def top(e):
        return [f["function"] for f in (e["python_stacks"] or [{"frames": []}])[0]["frames"][:3]]
    return "\n".join(f"pid {e['pid']} loop {e['loop']} {e['duration_ms']} ms ongoing {e['ongoing']} "
                     f"cause {e['cause']} top frames {top(e)}" for e in run.events) + "\n" + run.capture_tail()


@pytest.mark.parametrize("case", list(CASES))
def test_framework_stall(bpf_ready, cached_runs, case):
    _, loop, culprit = CASES[case]
    run = frameworks_run(cached_runs, bpf_ready)
    w = run.extra[case]
    shown = brief(run)
    finals = [e for e in run.of(w.pid) if not e["ongoing"]]
    assert len(finals) == 1, f"{case}: expected one final stall of pid {w.pid}, got {len(finals)}:\n{shown}"
    ev = finals[0]
    frames = [f["function"] for s in ev["python_stacks"] for f in s["frames"]]
    print(f"{case}: loop {ev['loop']} {ev['duration_ms']:.1f} ms cause {ev['cause']} "
          f"breakdown {ev['breakdown_ms']} culprit found {culprit in frames}")
    assert ev["loop"] == loop, f"{case}: loop {ev['loop']!r}, expected {loop!r}:\n{shown}"
    assert ev["tid"] == w.pid, f"{case}: the loop runs on the main thread:\n{shown}"
    # The burn is timed by the workload itself; the iteration holds it plus the request's parsing.
    assert MS - 20 <= ev["duration_ms"] <= MS * 1.5, f"{case}: duration {ev['duration_ms']} ms:\n{shown}"
    assert ev["cause"] == "cpu", f"{case}: cause {ev['cause']!r}:\n{shown}"
    assert culprit in frames, f"{case}: {culprit} not in python_stacks {frames}:\n{shown}"
    assert "burn_cpu" in frames, f"{case}: the burning function not in python_stacks:\n{shown}"
