#!/usr/bin/env bash
# Installs every Debian package loopstall needs to build, run and test.
# Idempotent: a second run installs nothing new. Needs root (apt-get).
set -euo pipefail

BUILD_DEPS=(
  build-essential cmake pkg-config clang llvm linux-libc-dev
  libbpf-dev bpftool libelf-dev libdw-dev zlib1g-dev
  nlohmann-json3-dev libcli11-dev doctest-dev libcpp-httplib-dev libsystemd-dev libre2-dev prometheus-cpp-dev
)
# Real workloads and checkers the tests run (binutils: readelf/nm check USDT notes and
# native_stack offsets against the ELF files; the python3-* frameworks: one workload each in
# tests/integration/test_frameworks.py; libclang-rt-14-dev: libFuzzer and the sanitizer runtimes
# for clang, for scripts/fuzz-smoke.sh; lintian and man-db check the .deb and its man pages).
TEST_DEPS=(
  python3.11 python3-gevent python3-gunicorn python3-flask python3-confluent-kafka
  python3-jsonschema python3-pytest python3-yaml wrk util-linux procps strace clang-format binutils
  prometheus prometheus-alertmanager systemd libclang-rt-14-dev lintian man-db
  python3-uvloop python3-aiohttp python3-tornado python3-twisted python3-eventlet
)

want=("${BUILD_DEPS[@]}")
[[ "${1:-}" == "--with-tests" ]] && want+=("${TEST_DEPS[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
