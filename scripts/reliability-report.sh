#!/usr/bin/env bash
# Prints, for each fault test named in docs/reliability.md, its last result in a build's
# ctest log: passed or failed, how long it took, and the counts it printed (kill rounds, runs,
# submissions accepted and lost...). The counts in docs/reliability.md come from here.
#
#   scripts/reliability-report.sh [BUILD_DIR]        default: build/dev
set -euo pipefail
cd "$(dirname "$0")/.."
log=${1:-build/dev}/Testing/Temporary/LastTest.log
[[ -f $log ]] || {
  echo "reliability-report: no $log; run ctest in that build first" >&2
  exit 1
}
# The tests docs/reliability.md cites, by the backquoted Suite.Name patterns in its table.
mapfile -t wanted < <(grep -o '`[A-Za-z0-9/]*Test[A-Za-z0-9]*\.[A-Za-z0-9*/]*`' docs/reliability.md |
  tr -d '`' | sort -u)
awk -v wanted="$(printf '%s\n' "${wanted[@]}")" '
  BEGIN { n = split(wanted, w, "\n"); for (i = 1; i <= n; ++i) { gsub(/\*/, ".*", w[i]); pat[i] = "^" w[i] "$" } }
  function cited(name,   i) { for (i = 1; i <= n; ++i) if (name ~ pat[i]) return 1; return 0 }
  /^[0-9]+\/[0-9]+ Test: / { name = $3; keep = cited(name); out = ""; result = "?"; next }
  !keep { next }
  /^\[       OK \]/ { result = "passed"; next }
  /^\[  FAILED  \]/ { result = "FAILED"; next }
  /time elapsed:/ { printf "%s: %s in %s\n%s", name, result, $NF, out; keep = 0; next }
  /^\[|^Running main|^Note: Google|^Output:|^-----|^$|^"|^Command:|^Directory:|^Test (Passed|Failed)|^<end of output>|^Test time = / { next }
  { out = out "    " $0 "\n" }
' "$log"
