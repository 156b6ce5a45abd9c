#!/usr/bin/env bash
# Runs go-mysql-server's engine test suites against its memory backend and
# against fogdb in one run, and compares them subtest by subtest (see
# tests/enginetest/etcount). The last line is
#   enginetest: N passed, M failed, K skipped
# for fogdb. Fails when fogdb passes less than ENGINETEST_MIN percent
# (default 97) of the subtests that pass on memory, or fails a transaction
# script not listed in tests/enginetest/txn_allow.txt.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

go test -tags enginetest -c -o "$work/enginetest.test" ./tests/enginetest
go build -o "$work/etcount" ./tests/enginetest/etcount

# Each suite runs in its own process, so a crash in one (go-mysql-server
# has a few panics of its own) loses only that suite's remaining subtests.
suites="Queries QueriesPrepared InsertInto Update Delete ReplaceInto Scripts ForeignKeys AlterTable Indexes ChecksOnInsert TransactionScripts ConcurrentTransactions"
: > "$work/enginetest.json"
for s in $suites; do
	for backend in Memory Fogdb; do
		(cd tests/enginetest && go tool test2json -t -p enginetest \
			"$work/enginetest.test" -test.v=test2json -test.run "^Test${backend}${s}\$" -test.timeout 20m) \
			>> "$work/enginetest.json" 2>&1 || true
	done
done

out="${ENGINETEST_FAILURES:-$work/failures.txt}"
"$work/etcount" -min "${ENGINETEST_MIN:-97}" -allow tests/enginetest/txn_allow.txt -failures "$out" \
	< "$work/enginetest.json" && rc=0 || rc=$?
if [ "$rc" -ne 0 ]; then
	echo "failing fogdb subtests (first 50):"
	head -50 "$out"
fi
exit "$rc"
