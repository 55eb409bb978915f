"""What a local user controls reaches the output escaped, and bad flags are refused at the edge."""
import subprocess

import pytest

from conftest import run_capture, workload
from harness.text_output import stall_lines

ESC = "\x1b"


def test_escape_sequence_comm_is_printed_escaped(bpf_ready):
    """A process named "\\x1b]0;pwn\\x07\\x1b[2J" stalls: the text line names it escaped, with no raw
    ESC or BEL byte a terminal would act on; JSON carries the real comm (JSON escapes it)."""
    run = run_capture(bpf_ready, lambda: [workload("asyncio_hostile_comm.py")], fmt="text",
                      capture_args=["--standalone"])
    w = run.w
    out = [l for _, l in run.capture.out]
    text = "\n".join(out)
    mine = [s.line for s in stall_lines(text, w.pid)]
    assert mine, f"no stall line for pid {w.pid}:\n{text}\n{run.capture_tail()}"
    assert ESC not in text and "\x07" not in text, f"raw control bytes in the text output: {text!r}"
    assert any("\\x1b]0;pwn\\x07\\x1b[2J" in l for l in mine), f"comm not shown escaped: {mine!r}"
    # The summary's COMM column too.
    summary = [l for l in out if l.strip().startswith(str(w.pid))]
    assert summary and "\\x1b" in summary[0], f"summary line of pid {w.pid}: {summary!r}\n{text}"

    # JSON keeps the exact bytes, escaped by the JSON encoder.
    run = run_capture(bpf_ready, lambda: [workload("asyncio_hostile_comm.py")], fmt="json",
                      capture_args=["--standalone"])
    evs = run.of(run.w.pid)
    assert evs, run.describe()
    raw = "\n".join(l for _, l in run.capture.out)
    assert ESC not in raw, "raw ESC in JSON output"
    assert evs[0]["comm"] == "\x1b]0;pwn\x07\x1b[2J", evs[0]["comm"]


@pytest.mark.parametrize("value", ["nan", "inf", "1e300", "0", "0.5", "3600001", "abc"])
def test_threshold_out_of_range_is_a_bad_flag(loopstall_bin, value):
    """nan reported none of 7 real stalls and 1e300 fake ongoing ones (u64 overflow in the kernel
    threshold): now refused before anything is loaded, exit 105 (README: bad flags)."""
    r = subprocess.run([loopstall_bin, "capture", "--standalone", "--threshold-ms", value, "--duration", "1"],
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert r.returncode == 105, f"--threshold-ms {value}: rc={r.returncode}\n{r.stderr}"
    assert "--threshold-ms" in r.stderr and "ready" not in r.stderr, r.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "1e300", "0"])
def test_duration_out_of_range_is_a_bad_flag(loopstall_bin, value):
    r = subprocess.run([loopstall_bin, "capture", "--standalone", "--duration", value],
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert r.returncode == 105, f"--duration {value}: rc={r.returncode}\n{r.stderr}"
    assert "--duration" in r.stderr, r.stderr
