"""Workload: a tests/workloads program (see tests/workloads/_wl.py for the lines it prints)."""
import os
from pathlib import Path

from harness.children import Proc
from harness.paths import PY, WORKLOADS


def boost_autogroup(pid):
    """With sched autogroup on, each session (every child here has its own) is scheduled as one
    group of equal weight, whatever its tasks' nice: only the group's own nice ranks it."""
    try:
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write("-20")
    except OSError:
        pass  # no autogroup: the plain nice applies


class Workload(Proc):
    """A workload started and waited for until it prints READY <pid> (.pid: that pid, .ready_ns:
    when the line came); STALL_START/STALL_END <ns> lines are read with mark()."""

    def __init__(self, script, *args, interp=PY, prefix=(), boost=True, env=None, ready_timeout=60):
        """script: a .py under tests/workloads (run by `interp`), or an executable (an absolute
        path stays as it is: the compiled fake_loop). prefix: argv before it (taskset, unshare...).
        env: extra environment variables, on top of this process's.

        boost: run it at nice -20 (and its autogroup too). The test box may be busy (a parallel
        build, say): against nice-0 work a nice -20 thread gets ~99 % of a CPU, so a 300 ms CPU burn
        stays on-CPU and its cause stays "cpu". Only tests that want the contention turn it off.
        """
        path = WORKLOADS / script
        argv = [*prefix, interp, path] if str(script).endswith(".py") else [*prefix, path]
        if boost:
            argv = ["nice", "-n", "-20", *argv]
        super().__init__([*argv, *args], name=Path(script).name,
                         env=dict(os.environ, **env) if env else None)
        self.interp = interp
        if boost:
            boost_autogroup(self.popen.pid)
        try:
            self.ready_ns, line = self.wait_item(lambda l: l.startswith("READY "), ready_timeout, "out")
        except BaseException:
            self.kill()
            raise
        self.pid = int(line.split()[1])  # its own pid (inside a PID namespace: the namespace's)

    def mark(self, tag):
        """Unix ns printed by the workload on its TAG line (STALL_START / STALL_END)."""
        return self.mark_wait(tag, 1)

    def mark_wait(self, tag, timeout):
        """mark(), waiting up to timeout s for the line."""
        return int(self.wait_line(lambda l: l.startswith(tag + " "), timeout, "out").split()[1])

    def finish(self, timeout=20):
        """Waits for the workload to exit; it must exit 0."""
        rc = self.wait(timeout)
        assert rc == 0, f"workload {self.name} exited {rc}\n{self.describe()}"
