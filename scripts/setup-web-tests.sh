#!/usr/bin/env bash
# Installs what the dashboard's browser tests (tests/web/) need, only what is missing
# (idempotent): Debian's chromium (and nodejs and npm when no `node` is on PATH), then
# `npm ci` in tests/web when node_modules is missing or older than package-lock.json.
# The tests drive the system Chromium with puppeteer-core: nothing downloads a browser.
#   scripts/setup-web-tests.sh
# Uses sudo when not root, like scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(chromium)
if ! command -v node >/dev/null 2>&1; then PACKAGES+=(nodejs npm); fi

source scripts/lib/install-missing.sh
install_missing "${PACKAGES[@]}"

cd tests/web
if [[ ! -d node_modules || package-lock.json -nt node_modules ]]; then
  echo "setup-web-tests: npm ci in tests/web" >&2
  npm ci --no-audit --no-fund
  touch node_modules
fi
