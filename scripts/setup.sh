#!/usr/bin/env bash
# Installs the Debian packages schedd needs (only the missing ones; idempotent), then
# configures and builds the given CMake presets (default: dev).
#   scripts/setup.sh [preset ...]        presets: dev release asan tsan
# Uses sudo when not root. Never installs the unversioned libboost-*-dev (Boost 1.74, which
# conflicts with the 1.81 packages used here).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  cmake ninja-build g++ pkg-config binutils clang-format tzdata
  libhowardhinnant-date-dev libboost1.81-dev libtomlplusplus-dev libspdlog-dev libfmt-dev
  nlohmann-json3-dev libcli11-dev libsqlite3-dev libgtest-dev libgmock-dev libbenchmark-dev
  libhiredis-dev redis-server redis-tools
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

presets=("$@")
if ((${#presets[@]} == 0)); then presets=(dev); fi
for preset in "${presets[@]}"; do
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
done
