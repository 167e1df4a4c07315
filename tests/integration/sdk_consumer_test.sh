#!/usr/bin/env bash
# SDK consumer test: installs the SDK component into a temporary prefix, builds
# examples/hello (C++) and examples/hello_c (C11) out of tree with find_package(schedd_sdk),
# checks what the plugins export, and loads both into the daemon with `schedd plugins` and
# `schedd exec`.
#
# Environment (set by ctest, see tests/CMakeLists.txt):
#   SCHEDD_SOURCE_DIR  the source tree (for examples/)
#   SCHEDD_BUILD_DIR   the build tree to install the SDK from
#   SCHEDD_BINARY      the schedd executable
#   CMAKE              optional: the cmake to use (default: cmake from PATH)
set -euo pipefail

: "${SCHEDD_SOURCE_DIR:?set SCHEDD_SOURCE_DIR to the source tree}"
: "${SCHEDD_BUILD_DIR:?set SCHEDD_BUILD_DIR to the build tree}"
: "${SCHEDD_BINARY:?set SCHEDD_BINARY to the schedd executable}"
cmake_bin=${CMAKE:-cmake}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/schedd-sdk-consumer-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "sdk_consumer: FAIL: $*" >&2
  exit 1
}

# Runs a command with its output in $tmp/<log>.log, shown only when it fails.
logged() {
  local log=$tmp/$1.log
  shift
  local rc=0
  "$@" >"$log" 2>&1 || rc=$?
  if ((rc != 0)); then
    cat "$log" >&2
    fail "$* (exit $rc)"
  fi
}

generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi

# 1. Install only the SDK component.
logged install "$cmake_bin" --install "$SCHEDD_BUILD_DIR" --prefix "$tmp/prefix" --component sdk
[[ -f $tmp/prefix/include/schedd/abi.h ]] || fail "abi.h was not installed"
[[ -f $tmp/prefix/include/schedd/sdk.hpp ]] || fail "sdk.hpp was not installed"

# 2. Build each example as a third party would. The SDK headers are included as ordinary
#    (not system) headers, so warnings in them fail the build as they would for a strict user.
mkdir -p "$tmp/plugins"
for example in hello hello_c; do
  build=$tmp/build-$example
  logged "configure-$example" "$cmake_bin" --no-warn-unused-cli \
    -S "$SCHEDD_SOURCE_DIR/examples/$example" -B "$build" "${generator[@]}" \
    -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_NO_SYSTEM_FROM_IMPORTED=ON \
    -DCMAKE_C_FLAGS="-Wall -Wextra -Werror -pedantic" \
    -DCMAKE_CXX_FLAGS="-Wall -Wextra -Werror -pedantic"
  logged "build-$example" "$cmake_bin" --build "$build"
  so=$build/$example.so
  [[ -f $so ]] || fail "$so was not built"

  # The manifest is the one exported definition (linker-made markers aside).
  exported=$(nm -D --defined-only "$so" | awk '{print $NF}' |
    { grep -Ev '^(_init|_fini|_edata|_end|__bss_start)$' || true; } | sort -u)
  [[ $exported == "schedd_plugin_manifest" ]] ||
    fail "$example.so should export only schedd_plugin_manifest, it exports:"$'\n'"$exported"
  # STB_GNU_UNIQUE symbols would make dlclose a no-op (docs/design.md "Toolchain").
  # (Outputs are captured before grepping: `cmd | grep -q` can fail under pipefail.)
  unique=$(readelf -sW "$so" | { grep -w UNIQUE || true; })
  [[ -z $unique ]] || fail "$example.so has STB_GNU_UNIQUE symbols:"$'\n'"$unique"
  cp "$so" "$tmp/plugins/"
done

# The C plugin needs no C++ runtime at all.
needed=$(readelf -d "$tmp/plugins/hello_c.so" | { grep NEEDED || true; })
if grep -Eq 'libstdc\+\+|libc\+\+' <<<"$needed"; then
  fail "hello_c.so depends on a C++ runtime:"$'\n'"$needed"
fi

# 3. Load both into the daemon.
cat >"$tmp/schedd.toml" <<'EOF'
[daemon]
plugin_dir = "plugins"          # relative to the config file's folder

[helpers.greet]
executor = "hello"
schedule = { every = "1h" }
params = { greeting = "bonjour" }

[helpers.greet_c]
executor = "hello_c"
schedule = { every = "1h" }
EOF

if ! out=$("$SCHEDD_BINARY" plugins -c "$tmp/schedd.toml" 2>&1); then
  echo "$out" >&2
  fail "schedd plugins exited nonzero"
fi
grep -Eq '^plugin hello [^ ]+ ' <<<"$out" || { echo "$out" >&2; fail "plugin hello not listed"; }
grep -Eq '^plugin hello_c [^ ]+ ' <<<"$out" || { echo "$out" >&2; fail "plugin hello_c not listed"; }
grep -Eq 'executor hello_c' <<<"$out" || { echo "$out" >&2; fail "executor hello_c not listed"; }
grep -q 'greeting' <<<"$out" || { echo "$out" >&2; fail "param greeting not listed"; }

if ! out=$("$SCHEDD_BINARY" exec -c "$tmp/schedd.toml" greet 2>&1); then
  echo "$out" >&2
  fail "schedd exec greet exited nonzero"
fi
grep -q 'succeeded' <<<"$out" || { echo "$out" >&2; fail "greet did not succeed"; }
grep -q 'bonjour from ' <<<"$out" || { echo "$out" >&2; fail "greet did not say bonjour"; }

if ! out=$("$SCHEDD_BINARY" exec -c "$tmp/schedd.toml" greet_c 2>&1); then
  echo "$out" >&2
  fail "schedd exec greet_c exited nonzero"
fi
grep -q 'succeeded' <<<"$out" || { echo "$out" >&2; fail "greet_c did not succeed"; }
# The schema default ("hello") applies when the helper sets no greeting.
grep -q 'hello from ' <<<"$out" || { echo "$out" >&2; fail "greet_c did not say hello"; }

echo "sdk_consumer: ok"
