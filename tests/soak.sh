#!/usr/bin/env bash
# Soak: a fogdb process under ordinary load next to runaway statements
# (memory bombs, recursive CTEs, endless joins, deep subqueries) that are
# killed, timed out or abandoned by disconnecting clients, half of them over
# TLS. Fails if the node's RSS passes SOAK_RSS_MB or an ordinary client is
# not served.
#
#   tests/soak.sh [seconds]     (default 20; SOAK_RSS_MB default 1536)
set -euo pipefail
cd "$(dirname "$0")/.."
export SOAK_SECONDS="${1:-${SOAK_SECONDS:-20}}"
export SOAK_RSS_MB="${SOAK_RSS_MB:-1536}"
go test -count=1 -run '^TestSoak$' -v -timeout "$((SOAK_SECONDS + 300))s" ./tests/wire/
