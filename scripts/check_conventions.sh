#!/usr/bin/env bash
# The convention gate: parse the dbt project and check its manifest against the house rules in
# dbt-bouncer.yml (naming by layer, source() only in staging, descriptions, grain tests, contracts on marts).
# `dbt parse` needs a profile but no warehouse, so this runs before anything is built; an in-memory DuckDB
# keeps it off a warehouse file another process may hold.
# Usage: scripts/check_conventions.sh [PROJECT_DIR [DBT_BOUNCER_OPTIONS...]]
#   PROJECT_DIR defaults to this checkout; the tests pass a copy and ask for JSON output.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
bin="${VENV_BIN:-$repo/.venv/bin}"
cd "${1:-$repo}"

export DBT_SEND_ANONYMOUS_USAGE_STATS="${DBT_SEND_ANONYMOUS_USAGE_STATS:-false}"
FLIGHTDELAY_WAREHOUSE=:memory: "$bin/dbt" parse --quiet --project-dir . --profiles-dir .
# Into a pipe (CI, hooks, tests) the failure table would be cut at 80 columns, mid model name.
if [ ! -t 1 ]; then
    export COLUMNS=200
fi
"$bin/dbt-bouncer" run --config-file dbt-bouncer.yml "${@:2}"
