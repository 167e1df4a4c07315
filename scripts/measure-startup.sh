#!/usr/bin/env bash
# Time from process start to READY=1 (sd_notify) of `schedd run`, with an empty SQLite store and
# with one holding 1,000,000 queued executions (1,000 keys, due tomorrow, so none runs), three
# runs each. The store is filled with sqlite3 from a daemon-made file; everything lives in a
# temp folder, removed at the end. docs/PERFORMANCE.md "Start-up (issue #17)".
#
#   scripts/measure-startup.sh [BUILD_DIR]     (default build/release)
#
# Needs sqlite3 and python3 (the notify socket's listener).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
bin=$build/bin/schedd
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

write_config() {  # $1: store folder
  cat <<TOML
[daemon]
plugin_dir = "$PWD/$build/plugins"
store = "sqlite:$1/schedd.db"
[api]
listen = "127.0.0.1:0"
[capacity]
queued = 2000000
[helpers.tick]
executor = "noop"
schedule = { every = "1h" }
TOML
}

ready_times() {  # $1: config; prints one line per run
  python3 - "$bin" "$1" 3 <<'PY'
import os, socket, subprocess, sys, tempfile, time, signal
binary, config, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(runs):
    path = os.path.join(tempfile.mkdtemp(), "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "run", "-c", config], stderr=subprocess.DEVNULL,
                         env=dict(os.environ, NOTIFY_SOCKET=path))
    while "READY=1" not in s.recv(4096).decode().split("\n"):
        pass
    ready = time.monotonic() - t0
    p.send_signal(signal.SIGTERM)
    p.wait()
    print(f"  run {i + 1}: READY=1 after {ready * 1000:.0f} ms")
PY
}

write_config "$tmp/empty" >"$tmp/empty.toml"
echo "empty store:"
ready_times "$tmp/empty.toml"

write_config "$tmp/full" >"$tmp/full.toml"
# A daemon makes the file (schema, one helper's template), then sqlite3 adds 1 M rows.
"$bin" run -c "$tmp/full.toml" 2>/dev/null &
pid=$!
for _ in $(seq 100); do [[ -s "$tmp/full/schedd.db" ]] && break; sleep 0.1; done
sleep 1
kill -TERM "$pid"
wait "$pid" || true
sqlite3 "$tmp/full/schedd.db" <<'SQL'
BEGIN;
WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n < 999)
INSERT INTO templates(id, body)
SELECT 100 + n, '{"executor":"noop","expiry_ms":86400000,"key":"k' || n || '","lane":"default","max_attempts":3,"name":"bulk","origin":3,"overlap":0,"params":[],"priority":3,"retry_delays_ms":[0,30000,300000],"timeout_ms":null}' FROM k;
WITH RECURSIVE c(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM c WHERE n < 999999)
INSERT INTO executions(id, template, due, not_before, seq, attempt, status, fence, created)
SELECT 'bulk-' || n, 100 + n % 1000,
       (CAST(strftime('%s', 'now') AS INTEGER) + 86400) * 1000000000 + n * 1000000,
       (CAST(strftime('%s', 'now') AS INTEGER) + 86400) * 1000000000 + n * 1000000,
       1000 + n, 1, 0, 0, CAST(strftime('%s', 'now') AS INTEGER) * 1000000000 FROM c;
COMMIT;
SQL
echo "1,000,000 queued: $(sqlite3 "$tmp/full/schedd.db" 'SELECT count(*) FROM executions WHERE status = 0') rows queued"
ready_times "$tmp/full.toml"
