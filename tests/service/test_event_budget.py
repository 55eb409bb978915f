"""The event log's byte budget (docs/security.md): a local user whose processes stall with a new
culprit every time (not coalesced) under kilobyte-long names cannot grow the log by MB/s. Over
`event_log_bytes_per_s` every stall is still written, without its stacks, marked
`"stacks_omitted": true` and counted in loopstall_event_stacks_omitted_total."""
import service_harness as h
from service_harness import Daemon, Workload, wait_for

RATE = 20_000  # bytes/s: a burst of 30 s of it (600 KB) is about 3 of these workloads' lines
PROCS, COUNT = 2, 15


def metric(d, name):
    _, samples = h.parse_exposition(d.metrics_text())
    return sum(v for n, _, v in samples if n == name)


def test_big_culprits_fill_the_budget_then_stalls_come_without_stacks(bpf, tmp):
    d = Daemon(tmp, config={"watch": {"include": [{"cmdline": str(h.WORKLOADS) + "/gevent_big_culprits"}]},
                            "event_log_bytes_per_s": RATE})
    ws = [Workload("gevent_big_culprits.py", "--count", COUNT, "--name-bytes", 3000, "--depth", 30,
                   "--gap", 0.25, "--warmup", 1, "--after", 1.5) for _ in range(PROCS)]
    for w in ws:
        w.wait_line(lambda l: l.startswith("STALLS_DONE"), 60, "out")
    pids = {w.pid for w in ws}
    finals = lambda: [e for e in d.events() if e["pid"] in pids and not e["ongoing"]]
    wait_for(lambda: sum(e.get("coalesced", {}).get("count", 1) for e in finals()) >= PROCS * COUNT, 30,
             what="every stall in the event log", describe=d.describe)
    for w in ws:
        w.finish()
    events = [e for e in d.events() if e["pid"] in pids]
    size = d.events_path.stat().st_size
    full = [e for e in events if e["python_stacks"]]
    lean = [e for e in events if e.get("stacks_omitted")]
    print(f"{len(events)} events, {len(full)} with stacks, {len(lean)} without; log {size} bytes")
    # Without the budget each line is ~180 KB (30 frames x 2 x 3 KB): 30+ of them, over 5 MB.
    assert full and lean, events[:3]
    assert all(not e["python_stacks"] and not e["native_stack"] for e in lean)
    assert size <= RATE * 30 + RATE * 60 + len(events) * 2048, size
    # Every stall is still there, and what was left out is counted.
    assert sum(e.get("coalesced", {}).get("count", 1) for e in events if not e["ongoing"]) == PROCS * COUNT
    assert metric(d, "loopstall_stalls_total") >= PROCS * COUNT
    assert metric(d, "loopstall_event_stacks_omitted_total") == len(lean)
