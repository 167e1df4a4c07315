#!/usr/bin/env bash
# The side-by-side benchmark of issue #7: schedd on its Redis store against BullMQ, both
# processing no-op jobs at the same concurrency on the same redis-server, completed jobs kept.
#
#   scripts/bench-redis.sh [--runs N] [--jobs N] [--concurrency C] [--lag-jobs N]
#                          [--lag-span-ms MS] [--appendfsync always|everysec|no]
#                          [--build DIR] [--bullmq-only] [--trace-fsync]
#
# Starts ONE redis-server on a free loopback port (AOF on, fsync as --appendfsync, default
# "always" like the test harness), installs BullMQ with npm in tests/load/bullmq (pinned by
# its package-lock.json), then for each run prints one JSON line per side on stdout:
#   BullMQ:  tests/load/bullmq/bench.js (workers in 2 processes sharing concurrency C);
#   schedd:  `schedd-bench --redis URL --redis-only`, then 2 `schedd run` daemons fed over
#            HTTP (tests/load/schedd_daemons.js); see the schedd side below.
# Machine load (uptime) goes to stderr before and after each run. Each side starts from a
# compacted AOF, and stderr says after it how many AOF rewrites ran during it and what Redis's
# latency monitor saw (fork, fsync and command stalls over 5 ms). The LAST line on stdout is
# the summary: per setup (node, cluster) the median of the same-run ratios schedd / BullMQ
# (jobs per second), each run's ratio, the jobs each daemon ran and Redis CPU per job. Numbers
# and how to read them: docs/PERFORMANCE.md. Everything it starts is stopped on exit, by pid.
# --trace-fsync (root, or perf_event_paranoid <= 1): `perf trace` times every fdatasync of
# redis-server during each side, and stderr says after the side how many there were, their
# median and p90, and the share of the side's time Redis spent in them (appendfsync always:
# no reply to a write leaves before the fsync of the event-loop turn that ran it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

runs=3
jobs=50000
concurrency=8
lag_jobs=2000
lag_span_ms=5000
appendfsync=always
build=build/release
bullmq_only=0
trace_fsync=0
trace_pid=""
while (($#)); do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --lag-jobs) lag_jobs=$2; shift 2 ;;
    --lag-span-ms) lag_span_ms=$2; shift 2 ;;
    --appendfsync) appendfsync=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --bullmq-only) bullmq_only=1; shift ;;
    --trace-fsync) trace_fsync=1; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "bench-redis: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if ((trace_fsync)) && ! command -v perf >/dev/null; then need+=(linux-perf); fi
if ((${#need[@]})); then
  echo "bench-redis: installing ${need[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/schedd-bench-redis-XXXXXX")
redis_pid=""
port=""

process_alive() {  # a zombie counts as gone
  [[ -r /proc/$1/stat ]] && ! grep -q ') Z' "/proc/$1/stat"
}

cleanup() {
  if [[ -n $redis_pid ]]; then
    redis-cli -p "$port" shutdown >/dev/null 2>&1 || kill -TERM "$redis_pid" 2>/dev/null || true
    for _ in $(seq 200); do process_alive "$redis_pid" || break; sleep 0.05; done
    if process_alive "$redis_pid"; then kill -KILL "$redis_pid" 2>/dev/null || true; fi
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# ONE redis-server on a free loopback port, as tests/testing/redis_server.h starts its own.
start_redis() {
  local attempt
  for attempt in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi  # taken
    rm -f "$work/redis.pid" "$work/redis.log"
    redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --pidfile "$work/redis.pid" \
      --dir "$work" --appendonly yes --appendfsync "$appendfsync" --save "" \
      --logfile "$work/redis.log" --loglevel warning --always-show-logo no || continue
    for _ in $(seq 400); do
      if [[ -s $work/redis.pid ]] && [[ $(redis-cli -p "$port" ping 2>/dev/null) == PONG ]]; then
        redis_pid=$(cat "$work/redis.pid")
        return 0
      fi
      grep -q 'Could not create server TCP listening socket' "$work/redis.log" 2>/dev/null && break
      sleep 0.05
    done
  done
  echo "bench-redis: redis-server did not start:" >&2
  cat "$work/redis.log" >&2 || true
  return 1
}
start_redis
url="redis://127.0.0.1:$port/0"
echo "bench-redis: redis-server $(redis-server --version | awk '{print $3}' | sed 's/^v=//') pid $redis_pid" \
  "on $url, appendfsync $appendfsync; $(nproc) cores" >&2

# BullMQ, the versions pinned by package-lock.json. `npm ci` is tried first; npm refuses it
# for this lock file on some npm versions (the platform-specific optional packages of
# msgpackr-extract), and `npm install --no-save` then installs the same pinned versions
# without touching the lock file.
(
  cd tests/load/bullmq
  npm ci --no-audit --no-fund --loglevel=silent >/dev/null 2>&1 ||
    npm install --no-save --no-audit --no-fund --loglevel=error >&2
)

# ------------------------------------------------------------------------------------------
# The schedd side, two ways; each needs the Redis store (core/store/redis_store.cc) in the
# build and says so, instead of failing the run, when it is not there yet.
#   schedd_bench:       `schedd-bench --redis URL --redis-only`: one RedisStore + one dispatcher
#                       with C workers and the noop executor (redis_dispatch_per_second,
#                       redis_lag_p99_ms), the same code paths as schedd-bench's in-memory runs.
#   schedd_two_daemons: tests/load/schedd_daemons.js: 2 `schedd run` daemons on this
#                       redis-server (noop, [lanes.default] workers = C with lane_capacity
#                       "cluster", history kept), fed JOBS executions over HTTP: the setup of
#                       issue #7, to compare with BullMQ's 2 processes.
schedd_bench() {
  local bench="$ROOT/$build/bin/schedd-bench"
  if [[ ! -x $bench ]]; then
    echo "bench-redis: schedd-bench skipped: $bench not built (cmake --build --preset release)" >&2
    return 0
  fi
  if ! "$bench" --help 2>/dev/null | grep -q -- '--redis'; then
    echo "bench-redis: schedd-bench skipped: this schedd-bench has no --redis" >&2
    return 0
  fi
  "$bench" --json --plugin-dir "$ROOT/$build/plugins" --redis "$url" --redis-only \
    --redis-workers "$concurrency" --redis-executions "$jobs" --redis-lag-executions "$lag_jobs" \
    --redis-lag-span-ms "$lag_span_ms" ||
    echo "bench-redis: schedd-bench --redis failed (exit $?)" >&2
}

schedd_two_daemons() {
  local schedd="$ROOT/$build/bin/schedd"
  if [[ ! -x $schedd ]]; then
    echo "bench-redis: 2 daemons skipped: $schedd not built" >&2
    return 0
  fi
  # Twice: C runs at once over the cluster (lane_capacity "cluster", workers C), and C/2 per
  # daemon with claims taken 256 ahead (lane_capacity "node"), which is how BullMQ's 2
  # processes of concurrency C/2 each run.
  local setup
  for setup in "--lane-capacity cluster" "--lane-capacity node --claim-ahead 256"; do
    [[ -n $trace_pid ]] || fsync_trace_start  # the first setup's trace began with compact_aof
    # shellcheck disable=SC2086
    node tests/load/schedd_daemons.js --schedd "$schedd" --plugin-dir "$ROOT/$build/plugins" \
      --redis "$url" --jobs "$jobs" --concurrency "$concurrency" --lag-jobs "$lag_jobs" \
      --lag-span-ms "$lag_span_ms" $setup | tee -a "$work/run-$run.jsonl" ||
      echo "bench-redis: 2 daemons ($setup) failed (exit $?); see above" >&2
    fsync_report "2 daemons ($setup)"
  done
}

# The last line: same-run ratios from the JSON lines of every run (run-N.jsonl).
summary() {
  node - "$work" "$runs" <<'JS'
const fs = require('node:fs');
const [dir, runs] = [process.argv[2], Number(process.argv[3])];
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const per = { node: [], cluster: [] };
for (let run = 1; run <= runs; ++run) {
  let lines = [];
  try {
    lines = fs.readFileSync(`${dir}/run-${run}.jsonl`, 'utf8').split('\n').filter((l) => l.startsWith('{'));
  } catch {}
  const rows = lines.map((l) => JSON.parse(l));
  const bull = rows.find((r) => r.tool === 'bullmq');
  for (const r of rows.filter((x) => x.tool === 'schedd' && x.lane_capacity)) {
    if (!bull || !per[r.lane_capacity]) continue;
    const split = Object.values(r.jobs_by_node || {}).sort((a, b) => b - a).join('/');
    per[r.lane_capacity].push({ ratio: r.jobs_per_second / bull.jobs_per_second, split,
                                cpu: r.redis_cpu_us_per_job });
  }
}
const parts = Object.entries(per).map(([setup, xs]) => {
  if (xs.length === 0) return `${setup}: no run`;
  const cpu = xs.filter((x) => x.cpu !== undefined).map((x) => x.cpu);
  return `${setup} ${median(xs.map((x) => x.ratio)).toFixed(2)}x (runs ` +
    xs.map((x) => x.ratio.toFixed(2)).join(' ') + `; jobs per daemon ` +
    xs.map((x) => x.split).join(' ') +
    (cpu.length ? `; Redis CPU ${median(cpu).toFixed(1)} us/job` : '') + ')';
});
console.log(`bench-redis: schedd/BullMQ jobs/s, median of same-run ratios over ${runs} run(s): ` + parts.join(', '));
JS
}

# Every side starts from a compacted AOF: BGREWRITEAOF, then wait for it to end. Otherwise
# a side meets whatever AOF the sides before it left, and an automatic rewrite (a fork, and
# fsyncs stalled behind the child's writes) lands in its measurement or not by chance.
# After each side, stderr says how many rewrites ran during it and what Redis's latency
# monitor saw (events over 5 ms: fork, aof-fsync-always, command).
redis_info() { redis-cli -p "$port" info persistence | tr -d '\r' | sed -n "s/^$1://p"; }
compact_aof() {
  redis-cli -p "$port" bgrewriteaof >/dev/null 2>&1 || true
  for _ in $(seq 600); do
    [[ $(redis_info aof_rewrite_in_progress) == 0 && $(redis_info aof_rewrite_scheduled) == 0 ]] && break
    sleep 0.1
  done
  rewrites_before=$(redis_info aof_rewrites)
  redis-cli -p "$port" latency reset >/dev/null
  fsync_trace_start
}
fsync_trace_start() {
  if ((trace_fsync)); then
    perf trace -e fdatasync -p "$redis_pid" -o "$work/fsync.txt" 2>/dev/null &
    trace_pid=$!
    sleep 1  # perf trace attaches
  fi
}
# fdatasync calls in the trace: count, median and p90 ms, share of the traced time in them.
# Ends the trace; nothing when none is running (the 2-daemon side reports per setup).
fsync_report() {
  [[ -n $trace_pid ]] || return 0
  kill -INT "$trace_pid" 2>/dev/null || true
  wait "$trace_pid" 2>/dev/null || true
  trace_pid=""
  echo "bench-redis: $1: fsync: $(node - "$work/fsync.txt" <<'JS'
const lines = require('node:fs').readFileSync(process.argv[2], 'utf8').split('\n');
const at = [], ms = [];
for (const l of lines) {
  const m = /^\s*([0-9.]+) \(\s*([0-9.]+) ms\): .*fdatasync\(/.exec(l);
  if (m) { at.push(Number(m[1])); ms.push(Number(m[2])); }
}
if (ms.length === 0) { console.log('no fdatasync traced'); process.exit(0); }
const sorted = [...ms].sort((a, b) => a - b), q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
const span = Math.max(1, at[at.length - 1] - at[0]), sum = ms.reduce((a, b) => a + b, 0);
console.log(`${ms.length} fdatasync, median ${q(0.5).toFixed(3)} ms, p90 ${q(0.9).toFixed(3)} ms, ` +
            `${(100 * sum / span).toFixed(0)}% of ${(span / 1000).toFixed(1)} s in them`);
JS
)" >&2
}
side_report() {
  local latency
  latency=$(redis-cli -p "$port" --no-raw latency latest | tr '\n' ' ' | tr -s ' ')
  fsync_report "$1"
  echo "bench-redis: $1: $(($(redis_info aof_rewrites) - rewrites_before)) AOF rewrite(s);" \
    "latency events (name, at, latest ms, max ms): ${latency:-none}" >&2
}
redis-cli -p "$port" config set latency-monitor-threshold 5 >/dev/null

for run in $(seq "$runs"); do
  echo "bench-redis: run $run/$runs, before: $(uptime)" >&2
  compact_aof
  node tests/load/bullmq/bench.js --redis "$url" --jobs "$jobs" --concurrency "$concurrency" \
    --processes 2 --lag-jobs "$lag_jobs" --lag-span-ms "$lag_span_ms" | tee "$work/run-$run.jsonl"
  side_report "BullMQ"
  if ((!bullmq_only)); then
    compact_aof
    schedd_bench
    side_report "schedd-bench --redis"
    compact_aof
    schedd_two_daemons
    side_report "2 daemons"
  fi
  echo "bench-redis: run $run/$runs, after: $(uptime)" >&2
done
((bullmq_only)) || summary
