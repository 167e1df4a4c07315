#!/usr/bin/env bash
# Runs a libFuzzer target of tests/fuzz/ for a while (README "Fuzzing").
#   scripts/fuzz.sh TARGET SECONDS     one target: cron schedule config api http redis_reply
#                                      sqlite_store runner_protocol
#   scripts/fuzz.sh all SECONDS        each target in turn, SECONDS each
#   scripts/fuzz.sh list               the targets
# Builds only that target in the fuzz preset (build/fuzz: clang, ASan+UBSan, -O1), runs it
# with its dictionary over its checked-in corpus, and writes what it finds elsewhere:
#   build/fuzz/corpus-new/TARGET/   new inputs (the checked-in corpus is never written)
#   build/fuzz/crashes/TARGET/      crash-*, timeout-*, oom-* reproducers
#   build/fuzz/logs/TARGET.log      the run's output
# then prints runs, coverage and crashes, and the command that merges the new inputs into
# tests/fuzz/corpus/TARGET (keeping only inputs that reach new code, so it stays small).
# Environment: FUZZ_NICE (default 10), FUZZ_ARGS (more libFuzzer flags), FUZZ_BUILD=0 (run
# the binary as built, e.g. while another build runs in build/fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(cron schedule config api http redis_reply sqlite_store runner_protocol)
BUILD=build/fuzz

usage() {
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# Longest input per target: configs and store files are bigger than the default 4 KB.
max_len() {
  case "$1" in
    config) echo 16384 ;;
    sqlite_store) echo 32768 ;;
    cron) echo 128 ;;
    schedule) echo 512 ;;
    *) echo 4096 ;;
  esac
}

run_one() {
  local target=$1 seconds=$2
  local bin=$BUILD/bin/${target}_fuzz
  local new=$BUILD/corpus-new/$target crashes=$BUILD/crashes/$target log=$BUILD/logs/$target.log
  if [[ ${FUZZ_BUILD:-1} != 0 ]]; then
    if [[ ! -f $BUILD/build.ninja ]]; then cmake --preset fuzz >/dev/null; fi
    nice -n "${FUZZ_NICE:-10}" cmake --build "$BUILD" --target "${target}_fuzz"
  fi
  mkdir -p "$new" "$crashes" "$(dirname "$log")"
  echo "fuzz: $target for ${seconds}s (new inputs: $new, crashes: $crashes, log: $log)"
  local rc=0
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    nice -n "${FUZZ_NICE:-10}" "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
    -max_len="$(max_len "$target")" -print_final_stats=1 \
    -dict="tests/fuzz/$target.dict" -artifact_prefix="$crashes/" ${FUZZ_ARGS:-} \
    "$new" "tests/fuzz/corpus/$target" >"$log" 2>&1 || rc=$?
  local execs cov
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1)
  local found
  found=$(find "$crashes" -type f | wc -l)
  echo "fuzz: $target: exit $rc, ${execs:-?} runs, ${cov:-no coverage line}, $found reproducer(s) in $crashes"
  if ((rc != 0)); then
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|[a-z_]+_fuzz: )' "$log" | head -5 || true
    echo "fuzz: reproduce with $bin $crashes/<file>; once fixed, copy it to" \
      "tests/fuzz/corpus/$target/crash-<what>"
  fi
  echo "fuzz: merge new inputs into the checked-in corpus (keep it under 200 files) with"
  echo "  $bin -merge=1 -use_counters=0 -use_cmp=0 tests/fuzz/corpus/$target $new"
  return "$rc"
}

(($# >= 1)) || usage
if [[ $1 == list ]]; then
  printf '%s\n' "${TARGETS[@]}"
  exit 0
fi
(($# == 2)) || usage
[[ $2 =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a whole number, got '$2'" >&2; exit 2; }
if [[ $1 == all ]]; then
  status=0
  for t in "${TARGETS[@]}"; do run_one "$t" "$2" || status=1; done
  exit $status
fi
for t in "${TARGETS[@]}"; do
  if [[ $t == "$1" ]]; then
    run_one "$1" "$2"
    exit $?
  fi
done
echo "fuzz.sh: unknown target '$1' (targets: ${TARGETS[*]})" >&2
exit 2
