#!/usr/bin/env bash
# Installs what is missing, builds, and starts the daemon on config/schedd.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
exec build/dev/bin/schedd run -c config/schedd.toml "$@"
