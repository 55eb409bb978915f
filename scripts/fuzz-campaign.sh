#!/usr/bin/env bash
# A long fuzzing campaign of one target (docs/fuzzing.md): libFuzzer runs of
# CHUNK seconds, at the lowest priority, that resume one corpus
# (build-fuzz/corpus/TARGET, shared by every build) until the target has
# EXECS executions in this build, SECONDS have passed or the clock reads
# UNTIL. Stops at the first crash, leak, timeout or sanitizer report (input in
# BUILD/artifacts/TARGET/). Each run's log stays in BUILD/campaign/TARGET/;
# summary.tsv gets one line per run and the last line printed sums libFuzzer's
# own stat::number_of_executed_units over all of them.
#   scripts/fuzz-campaign.sh [-b BUILD=build-fuzz] [-e EXECS=10000000] [-c CHUNK=900]
#                            [-u HH:MM] TARGET SECONDS
# BUILD must hold fuzz/fuzz_TARGET (scripts/fuzz-smoke.sh builds build-fuzz/).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/fuzz-settings.sh

build=build-fuzz execs=10000000 chunk=900 until=
while getopts b:e:c:u: o; do
  case $o in
    b) build=$OPTARG ;;
    e) execs=$OPTARG ;;
    c) chunk=$OPTARG ;;
    u) until=$(date -d "$OPTARG" +%s) ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
(($# == 2)) || {
  echo "usage: $0 [-b BUILD] [-e EXECS] [-c CHUNK] [-u HH:MM] TARGET SECONDS" >&2
  exit 2
}
t=$1
end=$(($(date +%s) + $2))
[[ -n $until ]] && ((until < end)) && end=$until
bin=$build/fuzz/fuzz_$t
[[ -x $bin ]] || {
  echo "$bin: not built" >&2
  exit 2
}
work=build-fuzz/corpus/$t art=$build/artifacts/$t/ logs=$build/campaign/$t
mkdir -p "$work" "$art" "$logs"

# Executions so far: the sum over every finished run's final stats.
done_execs() {
  local runs=("$logs"/run-*.log)
  [[ -e ${runs[0]} ]] || runs=(/dev/null)
  sed -n 's/^stat::number_of_executed_units: *//p' "${runs[@]}" | awk '{s += $1} END {print s + 0}'
}

while :; do
  left=$((end - $(date +%s)))
  have=$(done_execs)
  ((left >= 30 && have < execs)) || break
  secs=$((left < chunk ? left : chunk))
  log=$logs/run-$(date +%Y%m%dT%H%M%S).log
  rc=0
  nice -n 19 "$bin" -max_total_time="$secs" -runs=$((execs - have)) -timeout=10 -rss_limit_mb=2048 \
    -max_len="$(fuzz_max_len "$t")" $(fuzz_dict_args "$t") -artifact_prefix="$art" -print_final_stats=1 \
    "$work" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  # A run's coverage, features and corpus: its last status line.
  status=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9a-zA-Z]+' || true)
  printf '%s\t%s\t%s\t%s\t%s\n' "$(basename "$log" .log)" "$secs" \
    "$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")" \
    "$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")" "$status" >>"$logs/summary.tsv"
  if ((rc != 0)); then
    echo "fuzz $t: FAILED (exit $rc; input in $art, log $log):" >&2
    tail -40 "$log" >&2
    exit 1
  fi
done
echo "fuzz $t ($build): $(done_execs) executions"
