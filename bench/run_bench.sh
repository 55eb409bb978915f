#!/usr/bin/env bash
# loopstall overhead benchmarks. Run as root: sudo bench/run_bench.sh
# Prints a table of baseline vs traced numbers measured side by side in this
# one run, with PASS/FAIL against the project's targets. Always exits 0 (a
# report, not a test) unless it cannot run at all. See bench/README.md.
#
# Environment:
#   BUILD_DIR   build tree with loopstall and bench/ls_epoll_pingpong (default: <repo>/build)
#   PYTHON      interpreter with gevent (default: /usr/bin/python3.11)
#   BENCH_ARGS  extra arguments for bench.py, e.g. "--rounds 3" or "--only gevent"
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
build=${BUILD_DIR:-$repo/build}
python=${PYTHON:-/usr/bin/python3.11}

if [ "$(id -u)" -ne 0 ]; then
  echo "run_bench.sh: needs root (BPF, bpf_stats sysctl)" >&2
  exit 1
fi
for tool in wrk bpftool ldd "$python"; do
  command -v "$tool" >/dev/null || { echo "run_bench.sh: $tool not found" >&2; exit 1; }
done
"$python" -c 'import gevent' 2>/dev/null || { echo "run_bench.sh: $python has no gevent" >&2; exit 1; }

if [ ! -x "$build/loopstall" ] || [ ! -x "$build/loopstalld" ] || [ ! -x "$build/bench/ls_epoll_pingpong" ] || [ ! -x "$build/bench/ls_hookcost" ] || [ ! -x "$build/bench/ls_syscall_loop" ]; then
  echo "run_bench.sh: building loopstall and the bench helpers in $build" >&2
  { [ -f "$build/CMakeCache.txt" ] || cmake -S "$repo" -B "$build" >/dev/null; } &&
    cmake --build "$build" -j2 --target loopstall loopstalld ls_epoll_pingpong ls_hookcost ls_syscall_loop >/dev/null || {
      echo "run_bench.sh: build failed" >&2; exit 1; }
fi

# The driver cleans up every child it starts; the timeout bounds the whole run
# (it gets SIGTERM, stops its children and prints what it has).
# shellcheck disable=SC2086
timeout --foreground -k 20 600 "$python" "$here/bench.py" \
  --loopstall "$build/loopstall" --pingpong "$build/bench/ls_epoll_pingpong" \
  --hookcost "$build/bench/ls_hookcost" --hookcost-obj "$build/bench/hookcost.bpf.o" \
  --syscall-loop "$build/bench/ls_syscall_loop" \
  --python "$python" --json "$build/bench/last_results.json" ${BENCH_ARGS:-}
exit 0
