#!/usr/bin/env bash
# Long fuzzing run: each target of tests/fuzz (mutated packets before and
# after the handshake, mutated SQL) for FUZZTIME (default 5m), one after the
# other. Reports, per target, whether it found a failure (the input is
# written to tests/fuzz/testdata/fuzz/<target>/; keep it there as seed
# corpus once the problem is fixed), and the memory high-water mark of the
# fuzzing processes (the node runs inside each worker).
#
#   FUZZTIME=10m tests/fuzz.sh            all targets
#   tests/fuzz.sh FuzzSQL                 one target
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

FUZZTIME="${FUZZTIME:-5m}"
PARALLEL="${PARALLEL:-2}"
# Go minimizes every new interesting input; with a node behind each run
# that is slow, so it is bounded.
MINIMIZE="${MINIMIZE:-10s}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	targets=(FuzzWireHandshake FuzzWireCommand FuzzSQL)
fi
if [ ! -x /usr/bin/time ]; then
	echo "fuzz.sh: needs GNU time (/usr/bin/time, Debian package \"time\")" >&2
	exit 2
fi

out="$(mktemp -d /tmp/fogdb-fuzz.XXXXXX)"
echo "logs in $out"
failed=0
summary=()
for t in "${targets[@]}"; do
	echo "==> $t for $FUZZTIME"
	before="$(ls tests/fuzz/testdata/fuzz/"$t" 2>/dev/null | sort)"
	/usr/bin/time -v -o "$out/$t.time" \
		go test -run='^$' -fuzz="^${t}\$" -fuzztime="$FUZZTIME" -fuzzminimizetime="$MINIMIZE" -parallel="$PARALLEL" ./tests/fuzz \
		>"$out/$t.log" 2>&1
	rc=$?
	grep '^fuzz: elapsed' "$out/$t.log" | tail -1
	# ru_maxrss of the children: the largest of go test, the fuzzing
	# coordinator and its workers, each running a node.
	rss_kb="$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$out/$t.time")"
	after="$(ls tests/fuzz/testdata/fuzz/"$t" 2>/dev/null | sort)"
	new="$(comm -13 <(echo "$before") <(echo "$after") | grep . || true)"
	if [ $rc -ne 0 ]; then
		failed=1
		echo "$t FAILED (exit $rc); see $out/$t.log"
		grep -A12 -e '--- FAIL' "$out/$t.log" | grep -v '^time=' | head -30
		for f in $new; do echo "  failing input: tests/fuzz/testdata/fuzz/$t/$f"; done
		summary+=("$t: FAILED, memory high-water $((rss_kb / 1024)) MB")
	else
		summary+=("$t: ok, memory high-water $((rss_kb / 1024)) MB")
	fi
done
echo
printf '%s\n' "${summary[@]}"
exit $failed
