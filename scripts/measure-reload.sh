#!/usr/bin/env bash
# Times a live reload (SIGHUP) of a daemon with 1,000 helpers on a SQLite store: the same
# file again (nothing changes), every helper rescheduled (1,000 re-planned), one helper added.
# Prints the daemon's own "reload applied in N ms" line for each. Usage:
#   scripts/measure-reload.sh [BUILD_DIR]   (default build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
write() {  # every extra
  {
    printf '[daemon]\nplugin_dir = "%s"\nstore = "sqlite:state/schedd.db"\n' "$PWD/$build/plugins"
    printf '[api]\nlisten = "127.0.0.1:0"\n[lanes.default]\nworkers = 4\n'
    for i in $(seq 0 999); do
      printf '[helpers.h%d]\nexecutor = "noop"\nschedule = { every = "%s" }\n' "$i" "$1"
    done
    if [[ $2 == extra ]]; then printf '[helpers.extra]\nexecutor = "noop"\nschedule = { every = "1h" }\n'; fi
  } >"$dir/schedd.toml.new"
  mv "$dir/schedd.toml.new" "$dir/schedd.toml"
}
write 10m none
"$build/bin/schedd" run -c "$dir/schedd.toml" 2>"$dir/log" &
pid=$!
until grep -q "schedd ready" "$dir/log"; do sleep 0.2; done
reload() {  # label every extra
  write "$2" "$3"
  local before
  before=$(grep -c "reload applied" "$dir/log" || true)
  kill -HUP "$pid"
  until (($(grep -c "reload applied" "$dir/log" || true) > before)); do sleep 0.1; done
  echo "$1: $(grep "reload applied" "$dir/log" | tail -1 | sed 's/.*reload applied/applied/')"
}
for _ in 1 2 3; do reload "same file        " 10m none; done
reload "1000 rescheduled " 20m none
reload "same file        " 20m none
reload "1 helper added   " 20m extra
reload "1000 rescheduled " 10m none
