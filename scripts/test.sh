#!/usr/bin/env bash
# Installs what is missing, builds and runs the whole test suite for each preset given
# (default: dev). CI runs `scripts/test.sh dev asan`; `scripts/test.sh tsan` runs the
# ThreadSanitizer subsets.
set -euo pipefail
cd "$(dirname "$0")/.."
presets=("$@")
if ((${#presets[@]} == 0)); then presets=(dev); fi
scripts/setup.sh "${presets[@]}"
scripts/check-format.sh
scripts/check-docs.sh
scripts/setup-web-tests.sh
for preset in "${presets[@]}"; do
  echo "== tests: $preset"
  ctest --preset "$preset"
done
# Once per run, not per preset: build the .deb packages, install, run, remove and purge them
# (root only; it says so and skips otherwise). From the dev build when there is one: its
# binaries, stripped, make the same packages without a third compilation of everything.
if [[ " ${presets[*]} " == *" dev "* ]]; then
  scripts/test-package.sh --reuse build/dev
else
  scripts/test-package.sh
fi
