#!/usr/bin/env bash
# Fails when clang-format would change any C/C++ source (the .clang-format in the repo root).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.h' '*.hpp' '*.cc' '*.c' | grep -v '^build/')
clang-format --dry-run -Werror "${files[@]}"
echo "format: ${#files[@]} files clean"
