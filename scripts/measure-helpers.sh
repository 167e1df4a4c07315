#!/usr/bin/env bash
# 10,000 helpers in one config (issue #18 point 4): time from process start to READY=1
# (sd_notify) and to the first 200 of GET /readyz, the daemon's RSS once ready, and the cost of
# a planning round, for the memory and the SQLite store. Each helper is a noop every hour, so
# a 2 h window holds two or three executions of each (20,000-30,000 in all) and nothing runs
# during the measurement. docs/PERFORMANCE.md "10,000 helpers (issue #18)".
#
# A planning round is measured as the daemon's CPU time (user + system, /proc/PID/stat) over
# 20 s with expand_every = "1s", divided by the rounds in that time: nothing else runs, so
# that is an upper bound of one round's cost over all 10,000 helpers.
#
#   scripts/measure-helpers.sh [BUILD_DIR] [HELPERS]   (defaults build/release, 10000)
#
# Needs python3. Everything lives in a temp folder, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
helpers=${2:-10000}
bin=$build/bin/schedd
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 - "$bin" "$PWD/$build/plugins" "$tmp" "$helpers" <<'PY'
import json, os, signal, socket, subprocess, sys, tempfile, time, urllib.parse, urllib.request

binary, plugins, tmp, helpers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
tick = os.sysconf("SC_CLK_TCK")

def config(store, expand_every):
    lines = [f'[daemon]\nplugin_dir = "{plugins}"\nstore = "{store}"',
             f'expand_every = "{expand_every}"',
             '[api]\nlisten = "127.0.0.1:0"\n[capacity]\nqueued = 1000000']
    for i in range(helpers):
        lines.append(f'[helpers.h{i}]\nexecutor = "noop"\nschedule = {{ every = "1h" }}')
    path = os.path.join(tmp, f"schedd-{len(os.listdir(tmp))}.toml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path

def proc(pid, name):
    with open(f"/proc/{pid}/{name}") as f:
        return f.read()

def cpu_seconds(pid):
    fields = proc(pid, "stat").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick

def vm(pid, key):
    for line in proc(pid, "status").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) // 1024
    return 0

def start(path):
    sock_path = os.path.join(tempfile.mkdtemp(dir=tmp), "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sock_path)
    log = open(os.path.join(tmp, "daemon.log"), "w+")
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "run", "-c", path], stderr=log,
                         env=dict(os.environ, NOTIFY_SOCKET=sock_path))
    while "READY=1" not in s.recv(4096).decode().split("\n"):
        pass
    ready = time.monotonic() - t0
    port = None
    while port is None:
        log.seek(0)
        for line in log:
            if "listening on http://127.0.0.1:" in line:
                port = int(line.split("listening on http://127.0.0.1:")[1].split()[0])
        time.sleep(0.01)
    while True:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz").status == 200:
                break
        except Exception:
            pass
        time.sleep(0.005)
    readyz = time.monotonic() - t0
    rss = vm(p.pid, "VmRSS")  # before the listing below, which grows malloc's arenas
    status = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/status"))
    # The planned executions, a page of 1,000 at a time.
    planned, cursor = 0, None
    while True:
        url = f"http://127.0.0.1:{port}/v1/executions?status=planned&limit=1000"
        if cursor:
            url += "&cursor=" + urllib.parse.quote(cursor, safe="")
        page = json.load(urllib.request.urlopen(url))
        planned += len(page["executions"])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    status["planned"] = planned
    status["rss"] = rss
    return p, ready, readyz, status

def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait()

path = config("memory", "5m")
for run in range(3):
    t0 = time.monotonic()
    subprocess.run([binary, "check-config", path], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    print(f"check-config of {helpers} helpers, run {run + 1}: "
          f"{(time.monotonic() - t0) * 1000:.0f} ms")
for store_name, store in (("memory", "memory"), ("sqlite", None)):
    print(f"{helpers} helpers, {store_name} store:")
    for run in range(3):
        st = store or f"sqlite:{tmp}/run{run}/schedd.db"
        p, ready, readyz, status = start(config(st, "5m"))
        print(f"  run {run + 1}: READY=1 after {ready * 1000:.0f} ms, /readyz 200 after "
              f"{readyz * 1000:.0f} ms; {status['helpers']['total']} helpers, "
              f"{status['planned']} planned; RSS {status['rss']} MB once ready "
              f"({vm(p.pid, 'VmRSS')} MB after listing them)")
        stop(p)
    st = store or f"sqlite:{tmp}/rounds/schedd.db"
    p, _, _, _ = start(config(st, "1s"))
    time.sleep(2)
    c0, t0 = cpu_seconds(p.pid), time.monotonic()
    time.sleep(20)
    c1, t1 = cpu_seconds(p.pid), time.monotonic()
    rounds = t1 - t0  # one a second
    print(f"  planning rounds (expand_every = 1s): {c1 - c0:.2f} s CPU in {t1 - t0:.1f} s, "
          f"<= {(c1 - c0) / rounds * 1000:.0f} ms CPU a round; RSS {vm(p.pid, 'VmRSS')} MB")
    stop(p)
PY
