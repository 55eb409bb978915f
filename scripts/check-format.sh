#!/usr/bin/env bash
# Fails when a C/C++ source differs from clang-format's output (.clang-format).
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
while IFS= read -r f; do
  if ! diff -q <(clang-format --style=file "$f") "$f" >/dev/null; then
    echo "not clang-formatted: $f (run: clang-format -i $f)" >&2
    bad=1
  fi
done < <(git ls-files '*.cpp' '*.hpp' '*.h' '*.c' | grep -v '^tests/workloads/')
[[ $bad -eq 0 ]] && echo "format: clean"
exit $bad
