#!/usr/bin/env bash
# Set-up command 2: install what is needed, build, run every test:
# unit tests (doctest, under ASan/UBSan), the format check, and the BPF
# integration tests against real workloads (root + BPF; in CI they must run).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --with-tests
./scripts/build.sh --sanitize

echo "== unit tests (ASan/UBSan)"
ctest --test-dir build-asan --output-on-failure

echo "== format"
./scripts/check-format.sh

echo "== integration tests (real BPF, real workloads, real Prometheus/Alertmanager/systemd tools)"
export LOOPSTALL_BIN="$PWD/build-asan/loopstall"
export LOOPSTALLD_BIN="$PWD/build-asan/loopstalld"
# LeakSanitizer needs ptrace-free operation; keep ASan quiet about alloc/dealloc mismatch in libs.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
exec /usr/bin/python3.11 -m pytest
