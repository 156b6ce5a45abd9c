#!/usr/bin/env bash
# Long form of the linearizability check (tests/linearizability): more
# operations and more faults than the CI defaults. Override any of
#   FOGDB_LIN_OPS      operations the checked history must hold (default here 20000)
#   FOGDB_LIN_FAULTS   faults to inject (default here 60)
#   FOGDB_LIN_CLIENTS  concurrent clients (default 8)
#   FOGDB_LIN_SEED     seed of the random choices (default: the clock)
#   FOGDB_LIN_CHECK_TIMEOUT  seconds porcupine may take (default here 300)
#   FOGDB_LIN_RUNS     how many times to run the tests (default 1)
# On a rejected history the failing test names the HTML visualisation it
# wrote.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

export FOGDB_LIN_OPS="${FOGDB_LIN_OPS:-20000}"
export FOGDB_LIN_FAULTS="${FOGDB_LIN_FAULTS:-60}"
export FOGDB_LIN_CHECK_TIMEOUT="${FOGDB_LIN_CHECK_TIMEOUT:-300}"
runs="${FOGDB_LIN_RUNS:-1}"

echo "linearizability: ops=$FOGDB_LIN_OPS faults=$FOGDB_LIN_FAULTS clients=${FOGDB_LIN_CLIENTS:-8} runs=$runs"
go test ./tests/linearizability/ -count="$runs" -v -timeout 0 \
	-run 'TestLinearizableUnderFaults|TestStaleReadsAreCaught' 2>&1 |
	grep -v '^time=' # go-mysql-server's own log lines
