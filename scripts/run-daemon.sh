#!/usr/bin/env bash
# Set-up command 1: install what is needed, build, run loopstalld with its
# built-in defaults (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
exec ./build/loopstalld "$@"
