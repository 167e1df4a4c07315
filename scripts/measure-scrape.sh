#!/usr/bin/env bash
# The cost of one GET /metrics scrape with 10,000 helpers and 100,000 queued executions (issue
# #20): its time (client side: request sent to last byte read, on a keep-alive connection; and
# the daemon's own schedd_http_request_duration_seconds for route="/metrics"), its size, and
# the number of series and families, for the memory and the SQLite store.
#
# The helpers (a noop every hour, spread over 4 lanes) are planned but none runs during the
# measurement. The 100,000 executions are queued as dashboard_bench.js queues them: a 1 h
# `sleep` holds key "hold", then 100 bulk requests of 1,000 noop executions on that key wait
# behind it. Each state is scraped 3 times to warm up, then 15 times; the median and the
# slowest are printed. docs/PERFORMANCE.md "Scraping /metrics (issue #20)".
#
#   scripts/measure-scrape.sh [BUILD_DIR] [HELPERS] [QUEUED]  (defaults build/release, 10000, 100000)
#
# Needs python3. Everything lives in a temp folder, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
helpers=${2:-10000}
queued=${3:-100000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 - "$build/bin/schedd" "$PWD/$build/plugins" "$tmp" "$helpers" "$queued" <<'PY'
import http.client, json, os, re, signal, statistics, subprocess, sys, time

binary, plugins, tmp, helpers, queued = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
lanes = 4

def config(store):
    lines = [f'[daemon]\nplugin_dir = "{plugins}"\nstore = "{store}"',
             '[api]\nlisten = "127.0.0.1:0"', f'[capacity]\nqueued = {queued * 2}']
    for l in range(lanes):
        lines.append(f'[lanes.lane{l}]\nworkers = 2')
    for i in range(helpers):
        lines.append(f'[helpers.h{i}]\nexecutor = "noop"\nlane = "lane{i % lanes}"\n'
                     f'schedule = {{ every = "1h" }}')
    path = os.path.join(tmp, f"schedd-{len(os.listdir(tmp))}.toml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path

def request(conn, method, target, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, target, body=None if body is None else json.dumps(body), headers=headers)
    r = conn.getresponse()
    return r.status, r.read()

def start(path):
    log = open(os.path.join(tmp, "daemon.log"), "w+")
    p = subprocess.Popen([binary, "run", "-c", path], stderr=log)
    port = None
    deadline = time.monotonic() + 120
    while port is None:
        if p.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            sys.exit("the daemon did not start:\n" + log.read()[-3000:])
        log.seek(0)
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read())
        if m:
            port = int(m.group(1))
        time.sleep(0.05)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    while request(conn, "GET", "/readyz")[0] != 200:
        time.sleep(0.05)
    return p, conn

def populate(conn):
    s, b = request(conn, "POST", "/v1/executions",
                   {"executor": "sleep", "id": "hold-1h", "key": "hold", "params": {"duration": "1h"}})
    if s != 201:
        sys.exit(f"hold: {s} {b[:300]}")
    while json.loads(request(conn, "GET", "/v1/executions/hold-1h")[1])["status"] != "running":
        time.sleep(0.05)
    for batch in range(queued // 1000):
        executions = [{"executor": "noop", "key": "hold", "id": f"q-{batch}-{i}"} for i in range(1000)]
        s, b = request(conn, "POST", "/v1/executions/bulk", {"executions": executions})
        if s != 201:
            sys.exit(f"bulk {batch}: {s} {b[:300]}")
    stats = json.loads(request(conn, "GET", "/v1/stats")[1])
    return stats["queued"]

def measure(conn, label):
    for _ in range(3):
        request(conn, "GET", "/metrics")
    times, body = [], b""
    for _ in range(15):
        t0 = time.perf_counter()
        s, body = request(conn, "GET", "/metrics")
        times.append((time.perf_counter() - t0) * 1000)
        assert s == 200
    text = body.decode()
    series = [l for l in text.splitlines() if l and not l.startswith("#")]
    families = [l for l in text.splitlines() if l.startswith("# TYPE ")]
    biggest = {}
    for l in series:
        name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", l).group(0)
        biggest[name] = biggest.get(name, 0) + 1
    top = sorted(biggest.items(), key=lambda kv: -kv[1])[:4]
    m_sum = re.search(r'schedd_http_request_duration_seconds_sum\{method="GET",route="/metrics"\} (\S+)', text)
    m_cnt = re.search(r'schedd_http_request_duration_seconds_count\{method="GET",route="/metrics"\} (\S+)', text)
    server = float(m_sum.group(1)) / float(m_cnt.group(1)) * 1000 if m_sum and m_cnt else float("nan")
    print(f"  {label}: {statistics.median(times):.2f} ms median, {max(times):.2f} ms slowest "
          f"(client, 15 scrapes); daemon's own mean {server:.2f} ms over "
          f"{m_cnt.group(1) if m_cnt else '?'} scrapes; {len(body)} bytes; {len(series)} series "
          f"in {len(families)} families; most series: "
          + ", ".join(f"{n} {c}" for n, c in top))

for store_name in ("memory", "sqlite"):
    store = "memory" if store_name == "memory" else f"sqlite:{tmp}/{store_name}.db"
    p, conn = start(config(store))
    print(f"{helpers} helpers, {store_name} store:")
    measure(conn, "idle (helpers planned, nothing queued)")
    n = populate(conn)
    measure(conn, f"{n} queued and due")
    p.send_signal(signal.SIGTERM)
    p.wait()
PY
