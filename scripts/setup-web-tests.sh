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

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup-web-tests: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cd tests/web
if [[ ! -d node_modules || package-lock.json -nt node_modules ]]; then
  echo "setup-web-tests: npm ci in tests/web" >&2
  npm ci --no-audit --no-fund
  touch node_modules
fi
