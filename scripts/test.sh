#!/usr/bin/env bash
# Set-up command 2: install what is needed, build, run every test:
# unit tests (doctest, under ASan/UBSan; they replay the fuzz corpora), the
# format check, a short fuzzing run of every fuzz target, and the BPF
# integration tests against real workloads (root + BPF; in CI they must run).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --with-tests
./scripts/build.sh --sanitize

echo "== unit tests (ASan/UBSan)"
ctest --test-dir build-asan --output-on-failure

echo "== format"
./scripts/check-format.sh

echo "== fuzz smoke (libFuzzer, ${LOOPSTALL_FUZZ_SECONDS:-10}s per target)"
./scripts/fuzz-smoke.sh "${LOOPSTALL_FUZZ_SECONDS:-10}"

echo "== integration tests (real BPF, real workloads, real Prometheus/Alertmanager/systemd tools)"
export LOOPSTALL_BIN="$PWD/build-asan/loopstall"
export LOOPSTALLD_BIN="$PWD/build-asan/loopstalld"
# Leak checks on; a sanitizer report fails the test that ran the binary.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
# One pytest process per suite: each suite has its own conftest.py.
results=$(mktemp -d)
rc=0
for suite in tests/integration tests/deploy tests/service; do
  echo "== $suite"
  /usr/bin/python3.11 -m pytest --junitxml="$results/$(basename "$suite").xml" "$suite" || rc=1
done
# One closing line for the whole run.
/usr/bin/python3.11 - "$results" <<'PY'
import sys, glob, xml.etree.ElementTree as ET
t = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for f in glob.glob(sys.argv[1] + "/*.xml"):
    for s in ET.parse(f).getroot().iter("testsuite"):
        for k in t:
            t[k] += int(s.get(k, 0))
failed = t["failures"] + t["errors"]
print(f"integration: {t['tests'] - failed - t['skipped']} passed, {failed} failed, {t['skipped']} skipped")
PY
rm -rf "$results"
exit $rc
