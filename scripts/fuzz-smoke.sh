#!/usr/bin/env bash
# Builds the libFuzzer targets (build-fuzz/: clang, ASan+UBSan, coverage) and
# runs each: its regression inputs once, then fuzzing from its seed corpus for
# a fixed time. Fails on any crash, leak, timeout or sanitizer report.
#   scripts/fuzz-smoke.sh [SECONDS_PER_TARGET=10] [TARGET...]
# New corpus entries go to build-fuzz/corpus/<target>/, crashing inputs to
# build-fuzz/artifacts/<target>/ (keep one under fuzz/regressions/<target>/
# with the fix). A long campaign: docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(elf proc_maps procinfo python_frames unwinder config control_request capture_file)

CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOOPSTALL_FUZZ=ON \
  -DLOOPSTALL_TESTS=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/#/fuzz_}"

source scripts/fuzz-settings.sh

rc=0
for t in "${targets[@]}"; do
  bin=build-fuzz/fuzz/fuzz_$t
  work=build-fuzz/corpus/$t
  art=build-fuzz/artifacts/$t/
  mkdir -p "$work" "$art"
  echo "== fuzz $t: regressions, then ${secs}s"
  regressions=()
  [[ -d fuzz/regressions/$t ]] && mapfile -t regressions < <(find "fuzz/regressions/$t" -type f)
  if ((${#regressions[@]})) && ! "$bin" -runs=1 "${regressions[@]}" >"$art/regressions.log" 2>&1; then
    echo "fuzz $t: a regression input fails:" >&2
    tail -30 "$art/regressions.log" >&2
    rc=1
    continue
  fi
  if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="$(fuzz_max_len "$t")" \
    $(fuzz_dict_args "$t") -artifact_prefix="$art" -print_final_stats=1 "$work" "fuzz/corpus/$t" >"$art/fuzz.log" 2>&1; then
    echo "fuzz $t: FAILED (input in $art):" >&2
    tail -40 "$art/fuzz.log" >&2
    rc=1
    continue
  fi
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$art/fuzz.log" | tr '\n' ' '
  grep -E '^#[0-9]+ *DONE' "$art/fuzz.log" || echo
done
exit $rc
