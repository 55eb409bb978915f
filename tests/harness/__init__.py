"""The test harness shared by the three pytest suites (tests/integration, tests/service,
tests/deploy): what every suite needs once, each suite's conftest.py keeps only its own.

  paths      the binaries, the interpreter and the files under test (env overrides)
  ci         skip locally, fail under CI: skip_or_fail() and the require_*() preconditions
  children   child processes in their own session, drained and killed (ChildProcess, Proc)
  workloads  Workload: a tests/workloads program, started and waited for until READY
  events     the stall-event schema check for every event line
  fixtures   leftover cleanup: import them into a suite's conftest.py
  fs         nearly_full_tmpfs(): a full disk on demand
  net        free_port()

pytest.ini puts tests/ on sys.path, so a suite imports these as `from harness.X import ...`.
"""
