#!/bin/sh
# Builds the libFuzzer target with clang (whatever compiler the CMake build
# uses) and runs it: run_fuzz.sh [SECONDS=60] [OUT_DIR=build-py/fuzz].
# New corpus entries go to OUT_DIR/corpus; the checked-in seeds in
# tests/python/fuzz_corpus are replayed by ctest (python_fuzz_replay).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${1:-60}
OUT=${2:-$ROOT/build-py/fuzz}
mkdir -p "$OUT/corpus"
clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Wall -Wextra -Werror -I"$ROOT/include" \
  "$ROOT/tests/python/fuzz_frame_walker.cpp" "$ROOT"/daemon/python/*.cpp "$ROOT/daemon/native/process_memory.cpp" \
  -lelf -o "$OUT/fuzz_frame_walker"
exec "$OUT/fuzz_frame_walker" -max_total_time="$SECS" -timeout=5 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 "$OUT/corpus" "$ROOT/tests/python/fuzz_corpus"
