#!/usr/bin/env bash
# Measures the foundation's costs and prints them; docs/PERFORMANCE.md records the results.
#   scripts/measure-foundation.sh                  all of (a)-(d)
#   KEEP_BUILDS=1 scripts/measure-foundation.sh    keep build/measure-{dev,release} afterwards
# It uses about 10 minutes of CPU, nearly all of it compiling; the wall time depends on what
# else runs (docs/PERFORMANCE.md has what it took here).
#
#   (a) clean build time of the dev (Debug) and release (RelWithDebInfo) configurations, each
#       in a fresh folder: configure, then build everything (core, plugins, tests, benchmarks);
#   (b) wall time of the whole test suite (ctest -j2 on the dev build), median of 3 runs;
#   (c) idle RSS of `schedd run -c config/schedd.toml` (dev and release binaries): VmRSS from
#       /proc/PID/status 2 s after it logs "schedd ready", then SIGTERM; median of 3;
#   (d) plugin load time: the "loaded in X ms" lines of `schedd plugins` (median of 3 runs per
#       plugin), and BM_PluginLoadUnload_* of schedd_bench_micro (release; median of 5).
#
# Builds go to build/measure-dev and build/measure-release, never to the preset folders, and
# are removed at the end (about 1 GB). The machine is shared: read the numbers as medians and
# compare only numbers measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=build/measure-dev
REL=build/measure-release
CONFIG=config/schedd.toml
RUNS=3
daemon_pid=""

cleanup() {
  if [[ -n "$daemon_pid" ]] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  rm -f "$DEV".*.log "$REL".*.log "${TIMES_FILE:-}"
  if [[ "${KEEP_BUILDS:-0}" != 1 ]]; then rm -rf "$DEV" "$REL"; fi
}
trap cleanup EXIT

now_ns() { date +%s%N; }
# Sets CPU_S to the CPU seconds (user + system) used so far by this script's finished child
# processes, which includes the compilers under cmake --build: less sensitive than wall time
# to other load on a shared machine. `times` must run in this shell, not in a subshell.
TIMES_FILE=$(mktemp)
children_cpu() {
  times >"$TIMES_FILE"
  CPU_S=$(awk 'NR == 2 {
    total = 0
    for (i = 1; i <= 2; i++) { split($i, p, "m"); total += p[1] * 60 + p[2] }
    printf "%.1f", total }' "$TIMES_FILE")
}
cpu_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
# Seconds, 1 decimal, between two now_ns values.
seconds_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }
# Median of the arguments (numbers); the lower middle one for an even count.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

section() { printf '\n== %s   [load %s]\n' "$*" "$(cut -d' ' -f1-3 /proc/loadavg)"; }

START_NS=$(now_ns)
section "machine"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "nproc:   $(nproc)"
echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "memory:  $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "kernel:  $(uname -r)"
echo "g++:     $(g++ --version | head -1)"
echo "commit:  $(git rev-parse --short HEAD)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg)"

# (a) ------------------------------------------------------------------------------------------
DEV_BUILT=1
clean_build() {  # folder build-type
  local dir=$1 type=$2 t0 t1 t2 c1 c2 status=0
  rm -rf "$dir"
  t0=$(now_ns)
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log" >&2; return 1; }
  t1=$(now_ns)
  children_cpu
  c1=$CPU_S
  cmake --build "$dir" >"$dir.build.log" 2>&1 || status=$?
  t2=$(now_ns)
  children_cpu
  c2=$CPU_S
  if ((status != 0)); then
    # Others' work in progress can break the build; measure the rest with what we need.
    grep -E '^FAILED|error' "$dir.build.log" | head -5 >&2
    echo "$type: BUILD FAILED after $(seconds_between "$t1" "$t2") s (not a clean-build time);" \
      "building only schedd, plugins and schedd_bench_micro"
    [[ "$dir" == "$DEV" ]] && DEV_BUILT=0
    cmake --build "$dir" --target schedd plugins schedd_bench_micro >"$dir.build.log" 2>&1 ||
      { tail -30 "$dir.build.log" >&2; return 1; }
    return 0
  fi
  rm -f "$dir.configure.log" "$dir.build.log"
  echo "$type: configure $(seconds_between "$t0" "$t1") s, build $(seconds_between "$t1" "$t2") s" \
    "wall / $(cpu_between "$c1" "$c2") s CPU (user+sys), $(find "$dir" -name '*.o' | wc -l) objects"
}

section "(a) clean build (cmake -S . -B DIR -G Ninja -DCMAKE_BUILD_TYPE=...; cmake --build DIR)"
clean_build "$DEV" Debug
clean_build "$REL" RelWithDebInfo

# (b) ------------------------------------------------------------------------------------------
section "(b) test suite: ctest --test-dir $DEV -j2 (median of $RUNS)"
if ((DEV_BUILT)); then
  times_s=()
  for i in $(seq "$RUNS"); do
    t0=$(now_ns)
    status=0
    ctest --test-dir "$DEV" -j2 >"$DEV/ctest.log" 2>&1 || status=$?
    t1=$(now_ns)
    times_s+=("$(seconds_between "$t0" "$t1")")
    echo "run $i: ${times_s[-1]} s, $(grep -E 'tests passed|tests failed' "$DEV/ctest.log" |
      tail -1) (exit $status)"
  done
  echo "median: $(median "${times_s[@]}") s"
  echo "slowest tests of the last run:"
  grep -E '^ *[0-9]+/[0-9]+ Test' "$DEV/ctest.log" | sed -E 's/.*Test +#[0-9]+: //' |
    awk '{ print $(NF - 1), $1 }' | sort -gr | head -5 | sed 's/^/  /'
else
  echo "not measured: the dev build failed"
fi

# (c) ------------------------------------------------------------------------------------------
# Starts the daemon, waits for "schedd ready", idles 2 s, stops it; sets RSS_KB to its VmRSS.
# Not run in a subshell, so that the EXIT trap can stop the daemon if the script is interrupted.
idle_rss() {  # build-folder
  local dir=$1 log
  log=$(mktemp)
  "$dir/bin/schedd" run -c "$CONFIG" --plugin-dir "$dir/plugins" >"$log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 300); do
    grep -q "schedd ready" "$log" && break
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q "schedd ready" "$log"; then
    echo "schedd did not log \"schedd ready\":" >&2
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  sleep 2
  RSS_KB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$daemon_pid/status")
  kill -TERM "$daemon_pid"
  wait "$daemon_pid" || true
  daemon_pid=""
  rm -f "$log"
}

section "(c) idle RSS: schedd run -c $CONFIG --plugin-dir DIR/plugins (median of $RUNS)"
for dir in "$DEV" "$REL"; do
  values=()
  for _ in $(seq "$RUNS"); do
    idle_rss "$dir"
    values+=("$RSS_KB")
  done
  echo "$dir: median $(median "${values[@]}") kB VmRSS (runs: ${values[*]} kB)"
done

# (d) ------------------------------------------------------------------------------------------
section "(d) plugin load time: schedd plugins -c $CONFIG --plugin-dir DIR/plugins (median of $RUNS)"
for dir in "$DEV" "$REL"; do
  out=$(for _ in $(seq "$RUNS"); do
    "$dir/bin/schedd" plugins -c "$CONFIG" --plugin-dir "$dir/plugins" |
      sed -nE 's/^plugin ([^ ]+) .*loaded in ([0-9.]+) ms$/\1 \2/p'
  done)
  # shellcheck disable=SC2013  # plugin names are single words
  for plugin in $(awk '{ print $1 }' <<<"$out" | sort -u); do
    # shellcheck disable=SC2046  # one number per word
    echo "$dir: $plugin $(median $(awk -v p="$plugin" '$1 == p { print $2 }' <<<"$out")) ms"
  done
done

section "(d) plugin load + unload: $REL/bin/schedd_bench_micro (median of 5 repetitions)"
"$REL/bin/schedd_bench_micro" --benchmark_filter='BM_PluginLoadUnload' \
  --benchmark_repetitions=5 --benchmark_report_aggregates_only=true 2>&1 |
  grep -E '_median|WARNING'

section "done"
children_cpu
echo "total: $(seconds_between "$START_NS" "$(now_ns)") s wall, $CPU_S s CPU (user+sys)"
if [[ "${KEEP_BUILDS:-0}" == 1 ]]; then echo "kept $DEV and $REL"; else echo "removed $DEV and $REL"; fi
