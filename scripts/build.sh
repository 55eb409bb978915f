#!/usr/bin/env bash
# Builds loopstall: build/ (release) or, with --sanitize, build-asan/ (ASan+UBSan).
# Development builds: warnings are errors (LOOPSTALL_WERROR; packagers leave it off).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOOPSTALL_WERROR=ON)
if [[ "${1:-}" == "--sanitize" ]]; then
  dir=build-asan
  args=(-DCMAKE_BUILD_TYPE=Debug -DLOOPSTALL_SANITIZE=ON -DLOOPSTALL_WERROR=ON)
fi
cmake -S . -B "$dir" "${args[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
