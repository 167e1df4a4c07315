#!/usr/bin/env bash
# Installs what is missing, builds and runs the whole test suite for each preset given
# (default: dev). CI runs `scripts/test.sh dev asan`; `scripts/test.sh tsan` runs the
# ThreadSanitizer subsets.
#
# Each preset after the first builds in the background, at the lowest CPU priority, while the
# tests of the one before it run: much of a test run is waiting (daemons starting, leases,
# timeouts), and the compiler gets only the CPU the tests leave. Its output goes to
# build/PRESET.build.log, shown when it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
presets=("$@")
if ((${#presets[@]} == 0)); then presets=(dev); fi
scripts/setup.sh --install-only "${presets[@]}"
scripts/check-format.sh
scripts/check-docs.sh
scripts/setup-web-tests.sh

# Under CI every build is a unity build (CMakeLists.txt, SCHEDD_UNITY_BUILD): a clean build
# compiles each core/ folder once, about a third of the CPU; the sanitizer presets always do.
build() {
  cmake --preset "$1" ${CI:+-DSCHEDD_UNITY_BUILD=ON} >/dev/null && cmake --build --preset "$1"
}
background=""
trap '[[ -n $background ]] && kill -- "-$background" 2>/dev/null; true' EXIT
echo "== build: ${presets[0]}"
build "${presets[0]}"
for ((i = 0; i < ${#presets[@]}; ++i)); do
  next=${presets[i + 1]:-}
  if [[ -n $next ]]; then
    mkdir -p build
    echo "== build: $next (in the background, log in build/$next.build.log)"
    set -m  # its own process group, so that the EXIT trap can stop all of it
    nice -n 19 bash -c "$(declare -f build); build $next" >"build/$next.build.log" 2>&1 &
    background=$!
    set +m
  fi
  echo "== tests: ${presets[i]}"
  ctest --preset "${presets[i]}"
  if [[ -n $next ]]; then
    if ! wait "$background"; then
      background=""
      tail -n 50 "build/$next.build.log"
      echo "test.sh: building $next failed (build/$next.build.log)" >&2
      exit 1
    fi
    background=""
    tail -n 1 "build/$next.build.log"
  fi
done
# Once per run, not per preset: build the .deb packages, install, run, remove and purge them
# (root only; it says so and skips otherwise). From the dev build when there is one: its
# binaries, stripped, make the same packages without a third compilation of everything.
if [[ " ${presets[*]} " == *" dev "* ]]; then
  scripts/test-package.sh --reuse build/dev
else
  scripts/test-package.sh
fi
