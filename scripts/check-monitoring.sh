#!/usr/bin/env bash
# Validates the shipped alert rules (contrib/monitoring/schedd-alerts.yml) with Prometheus'
# promtool: `check rules` (syntax, PromQL, templates) and `test rules` (each alert fires on the
# series of schedd-alerts.test.yml that should fire it, and only on those). Run by ctest as
# monitoring_promtool. promtool comes with Debian's `prometheus` package (scripts/setup.sh).
# Without it the check is skipped (exit 77, which ctest reports as skipped), except in CI
# (CI set), where it fails.
set -euo pipefail
cd "${BASH_SOURCE[0]%/*}/../contrib/monitoring"
if ! command -v promtool >/dev/null 2>&1; then
  echo "check-monitoring: promtool not found: install Debian's prometheus package" \
    "(scripts/setup.sh does); the alert rules were not checked" >&2
  if [[ -n ${CI:-} ]]; then exit 1; fi
  exit 77
fi
promtool check rules schedd-alerts.yml
promtool test rules schedd-alerts.test.yml
