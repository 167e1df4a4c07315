#!/usr/bin/env bash
# Installs the Debian packages schedd needs (only the missing ones; idempotent), then
# configures and builds the given CMake presets (default: dev).
#   scripts/setup.sh [--install-only] [preset ...]     presets: dev release asan tsan fuzz
# --install-only: the packages those presets need, no build (scripts/test.sh builds itself).
# Uses sudo when not root. Never installs the unversioned libboost-*-dev (Boost 1.74, which
# conflicts with the 1.81 packages used here).
set -euo pipefail
cd "$(dirname "$0")/.."
install_only=0
if [[ ${1:-} == --install-only ]]; then
  install_only=1
  shift
fi

PACKAGES=(
  cmake ninja-build g++ pkg-config binutils clang-format tzdata
  libhowardhinnant-date-dev libboost1.81-dev libtomlplusplus-dev libspdlog-dev libfmt-dev
  nlohmann-json3-dev libcli11-dev libsqlite3-dev libgtest-dev libgmock-dev libbenchmark-dev
  libhiredis-dev redis-server redis-tools libyaml-cpp-dev prometheus
)

# The fuzz preset (scripts/fuzz.sh) builds with clang and links libFuzzer's runtime, which
# clang-14 only recommends.
for preset in "$@"; do
  if [[ $preset == fuzz ]]; then PACKAGES+=(clang libclang-rt-14-dev); fi
done

source scripts/lib/install-missing.sh
install_missing "${PACKAGES[@]}"
if ((install_only)); then exit 0; fi

presets=("$@")
if ((${#presets[@]} == 0)); then presets=(dev); fi
for preset in "${presets[@]}"; do
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
done
