"""`loopstall capture --coalesce`: the capture's JSON output folds repeats like loopstalld's event
log (tests/service/test_storm.py has the daemon's storm). A storm shorter than the 10 s window:
every summary comes out at the capture's end (SIGINT), and nothing is lost on the way."""
import signal
import tempfile
from pathlib import Path

from conftest import Capture, killed_on_exit, workload

PROCS = 4
SECONDS = 4


def test_capture_coalesce_writes_every_repeat_into_summaries_at_the_end(bpf_ready):
    go = Path(tempfile.mkdtemp(prefix="lscoalesce-")) / "go"
    with killed_on_exit():
        storm = workload("gevent_storm.py", "--procs", PROCS, "--seconds", SECONDS, "--hang-ms", 1500,
                         "--go-file", go)
        pids = [int(x) for x in storm.find_line(lambda l: l.startswith("READY "), "out").split()[2:]]
        args = ["--coalesce", "--standalone"] + [a for pid in pids for a in ("--pid", str(pid))]
        cap = Capture(bpf_ready, args)
        go.write_text("go")
        total = int(storm.wait_line(lambda l: l.startswith("ALL_DONE "), SECONDS + 40, "out").split()[1])
        made = {int(l.split()[1]): int(l.split()[2]) for _, l in storm.out if l.startswith("DONE ")}
        cap.stop()  # SIGINT: the windows in progress come out as summaries
        storm.signal(signal.SIGTERM)
        storm.finish()
    events = cap.events()  # each line schema-checked
    shown = "\n".join(f"{e['pid']} ongoing={e['ongoing']} {e['duration_ms']} {e['cause']} "
                      f"{[f['function'] for s in e['python_stacks'][:1] for f in s['frames'][:2]]} {e.get('coalesced')}"
                      for e in events)
    finals = [e for e in events if not e["ongoing"]]
    summaries = [e for e in finals if "coalesced" in e]
    for pid in pids:
        mine = [e for e in finals if e["pid"] == pid]
        accounted = sum(e["coalesced"]["count"] if "coalesced" in e else 1 for e in mine)
        assert accounted == made[pid], f"pid {pid}: {accounted} in the output, {made[pid]} made\n{shown}"
        assert [e for e in summaries if e["pid"] == pid], f"pid {pid} has no summary\n{shown}"
    assert sum(made.values()) == total
    # The burst and a summary per loop, plus another culprit and a hang: far fewer than one a stall.
    assert len(finals) <= PROCS * 5 + PROCS + 4, shown
    for s in summaries:
        assert s["coalesced"]["window_s"] == 10 and s["duration_ms"] <= s["coalesced"]["max_ms"]
    # The 1.5 s hang: written at once, not folded.
    hang = [e for e in finals if e["pid"] == pids[1] and e["duration_ms"] >= 1400]
    assert len(hang) == 1 and "coalesced" not in hang[0], shown
