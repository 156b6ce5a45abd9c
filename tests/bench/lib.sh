# shellcheck shell=bash disable=SC2034 # RES_*, FOG_COMMIT... are the caller's
# Functions shared by the sysbench benchmarks (tests/bench/sysbench.sh,
# tests/bench/cluster.sh). Source it after tests/lib/servers.sh and after
# defining log MESSAGE and die MESSAGE.
#
# Globals the caller provides: REPO (the checkout), WORK (work directory,
# with a runs/ subdirectory), BENCH_TIME, BENCH_TABLE_SIZE, MARIA_PORT (for
# start_mariadb). Globals set here: SB_PID (the sysbench running now, for the
# caller's cleanup), MARIA_PID, STARTED_PID, ROWS_BEFORE and the RES_*
# results of run_one.

SB_PID=""
MARIA_PID=""

# Upper bounds on the waits for sysbench: a run gets its --time plus this
# much; prepare and cleanup get SB_SETUP_TIMEOUT seconds.
SB_RUN_SLACK=${SB_RUN_SLACK:-120}
SB_SETUP_TIMEOUT=${SB_SETUP_TIMEOUT:-600}

# ---------------------------------------------------------------- processes

# stop_pids PID...: SIGTERM to all at once, wait up to 30 s for all, then
# SIGKILL the rest. Empty arguments are skipped.
stop_pids() {
	local pid i live
	for pid in "$@"; do
		if [[ -n $pid ]]; then
			kill -TERM "$pid" 2>/dev/null || true
		fi
	done
	for ((i = 0; i < 300; i++)); do
		live=0
		for pid in "$@"; do
			[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && live=1
		done
		((live)) || break
		sleep 0.1
	done
	for pid in "$@"; do
		[[ -n $pid ]] || continue
		if kill -0 "$pid" 2>/dev/null; then
			log "pid $pid ignored SIGTERM; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
}

# ---------------------------------------------------------------- tools


# install_tools [COMMAND...]: installs sysbench, mariadb-server and the
# mariadb client, and the Debian packages of the same name as each COMMAND,
# when they are missing.
install_tools() {
	local missing=() c
	command -v sysbench >/dev/null 2>&1 || missing+=(sysbench)
	if ! find_mariadbd >/dev/null || ! command -v mariadb-install-db >/dev/null 2>&1; then
		missing+=(mariadb-server)
	fi
	command -v mariadb >/dev/null 2>&1 || missing+=(mariadb-client)
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || missing+=("$c")
	done
	((${#missing[@]} == 0)) && return 0

	[[ $(id -u) == 0 ]] || die "need ${missing[*]}: run as root, or install them first"
	log "installing ${missing[*]}"
	# Keep Debian's maintainer scripts from starting their own mariadb
	# service: invoke-rc.d and deb-systemd-invoke honour policy-rc.d.
	local policy=/usr/sbin/policy-rc.d made_policy=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		made_policy=1
	fi
	local rc=0
	{
		apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
	} >&2 || rc=$?
	if ((made_policy)); then
		rm -f "$policy"
	fi
	((rc == 0)) || die "apt-get install ${missing[*]} (exit $rc)"
	# If a service manager started Debian's instance anyway, stop it: it
	# would compete with the benchmark for the CPU.
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mariadb 2>/dev/null; then
		systemctl stop mariadb || true
	fi
}

# fog_commit: the checkout's commit, marked when the server's sources have
# uncommitted changes.
fog_commit() {
	local c
	c=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
	if [[ -n $(git -C "$REPO" status --porcelain -- cmd server sqlfront kv replication 2>/dev/null) ]]; then
		c="$c+local changes"
	fi
	echo "$c"
}

# build_fogdb: $WORK/fogdb, built from the checkout, or a copy of the
# binary BENCH_FOGDB names (to measure a build made elsewhere); sets
# FOG_COMMIT to what it is.
build_fogdb() {
	if [[ -n ${BENCH_FOGDB:-} ]]; then
		log "using fogdb binary $BENCH_FOGDB"
		cp "$BENCH_FOGDB" "$WORK/fogdb" || die "copying $BENCH_FOGDB"
		FOG_COMMIT="binary $(basename "$BENCH_FOGDB")"
		return 0
	fi
	command -v go >/dev/null 2>&1 || die "go not found"
	log "building fogdb from $REPO"
	(cd "$REPO" && go build -o "$WORK/fogdb" ./cmd/fogdb) || die "go build ./cmd/fogdb"
	FOG_COMMIT=$(fog_commit)
}

# ---------------------------------------------------------------- servers

# start_fogdb BINARY PORT DATADIR LOG [ARGS...]: starts a node with a fresh
# data directory and the admin API on a port the kernel picks, waits until it
# answers on PORT; sets STARTED_PID. ARGS are more flags (fogdb's --peer-addr,
# --join...).
start_fogdb() {
	local bin=$1 port=$2 dir=$3 logf=$4
	shift 4
	rm -rf "$dir"
	"$bin" --mysql-addr "127.0.0.1:$port" --data-dir "$dir" --admin-addr 127.0.0.1:0 "$@" >"$logf" 2>&1 &
	STARTED_PID=$!
	wait_tcp "$(basename "$bin")" "$STARTED_PID" "$port" "$logf"
	# The port was free a moment ago; make sure it is this process that bound it.
	grep -Eq "fogdb serving MySQL.* addr=127\.0\.0\.1:$port( |\$)" "$logf" ||
		die "something else answers on 127.0.0.1:$port (see $logf)"
}

# create_sbtest PORT NAME: the database sysbench works in.
create_sbtest() {
	mysql_at "$1" -e 'CREATE DATABASE IF NOT EXISTS sbtest' || die "CREATE DATABASE sbtest on $2"
}

# admin_addr LOG PID NAME: the address a node's admin API listens on, from
# its log (it starts right after the MySQL listener).
admin_addr() {
	local logf=$1 pid=$2 name=$3 i a
	for ((i = 0; i < 100; i++)); do
		a=$(sed -n 's/.*msg="fogdb serving admin API" addr=\([0-9.]*:[0-9]*\).*/\1/p' "$logf" | tail -n 1)
		if [[ -n $a ]]; then
			echo "$a"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 20 "$logf" >&2 || true
	die "$name: no admin API address in $logf"
}

# start_mariadb: a private MariaDB on MARIA_PORT with its data in WORK
# (stock durable settings: innodb_flush_log_at_trx_commit=1, the default, is
# spelled out; no binary log) and database sbtest; sets MARIA_PID.
start_mariadb() {
	start_private_mariadb --innodb-flush-log-at-trx-commit=1 --max-connections=200
	mysql_at "$MARIA_PORT" -e 'CREATE DATABASE sbtest' || die "creating database sbtest on MariaDB"
}

# ---------------------------------------------------------------- sysbench

sb_common() {
	local port=$1
	printf '%s\n' --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$port" \
		--mysql-user=root --mysql-password= --mysql-db=sbtest \
		--tables=1 --table-size="$BENCH_TABLE_SIZE" --db-ps-mode=auto
}

# sb NAME PORT LOG OUTFILE WORKLOAD COMMAND [ARGS...]: runs sysbench, fails
# loudly (with the server's log tail) if it errors or overruns its time.
sb() {
	local name=$1 port=$2 logf=$3 out=$4 workload=$5 cmd=$6
	shift 6
	local common limit=$SB_SETUP_TIMEOUT
	[[ $cmd == run ]] && limit=$((BENCH_TIME + SB_RUN_SLACK))
	mapfile -t common < <(sb_common "$port")
	local rc=0
	# In the background, so a signal to this script is handled at once
	# (timeout passes SIGTERM on to sysbench).
	timeout -k 10 "$limit" sysbench "$workload" "${common[@]}" "$@" "$cmd" >"$out" 2>&1 &
	SB_PID=$!
	wait "$SB_PID" || rc=$?
	SB_PID=""
	if ((rc != 0)) || grep -q 'FATAL' "$out"; then
		{
			((rc == 124 || rc == 137)) && echo "---- sysbench did not finish within $limit s"
			echo "---- sysbench $workload $cmd against $name (exit $rc): $out"
			grep -n -E 'FATAL|error|Error' "$out" | head -n 20 || true
			echo "---- last lines of sysbench output"
			tail -n 25 "$out"
			echo "---- last lines of $name's log ($logf)"
			tail -n 40 "$logf" || true
		} >&2
		die "sysbench $workload $cmd against $name"
	fi
}

# prepare_table NAME PORT LOG WORKLOAD TAG: drops and creates sbtest1.
prepare_table() {
	local name=$1 port=$2 logf=$3 workload=$4 tag=$5
	sb "$name" "$port" "$logf" "$WORK/runs/$name-$tag-cleanup.txt" "$workload" cleanup
	sb "$name" "$port" "$logf" "$WORK/runs/$name-$tag-prepare.txt" "$workload" prepare
}

# hist_pct PCT FILE...: the PCT percentile of the latency histograms
# (sysbench --histogram=on) in FILEs taken together, in ms, the way sysbench
# computes its own percentile: the first bucket at which the running count
# reaches round(total * PCT / 100).
hist_pct() {
	local pct=$1
	shift
	awk -v p="$pct" '
		/^ *[0-9]+\.[0-9]+ \|/ { if (!($1 in c)) v[n++] = $1; c[$1] += $NF; tot += $NF }
		END {
			if (tot == 0) { print "n/a"; exit }
			m = int(tot * p / 100 + 0.5); if (m < 1) m = 1
			# Buckets appear in increasing order in every file; sort the union.
			for (i = 1; i < n; i++) { x = v[i]; for (j = i - 1; j >= 0 && v[j] + 0 > x + 0; j--) v[j + 1] = v[j]; v[j + 1] = x }
			for (i = 0; i < n; i++) { cum += c[v[i]]; if (cum >= m) { printf "%.2f\n", v[i]; exit } }
		}' "$@"
}

# run_one NAME PORT LOG WORKLOAD THREADS [TAG]: one timed run. Sets RES_OUT
# (the raw output), RES_TPS and RES_QPS (per second), RES_P50 and RES_P95
# (ms), RES_EVENTS, RES_QUERIES, RES_SECS (run time) and RES_IGN (errors
# sysbench ignored: deadlocks, lock wait timeouts).
run_one() {
	local name=$1 port=$2 logf=$3 workload=$4 threads=$5 tag=${6:-}
	local out=$WORK/runs/$name-$workload-t$threads${tag:+-$tag}.txt
	sb "$name" "$port" "$logf" "$out" "$workload" run \
		--threads="$threads" --time="$BENCH_TIME" --events=0 --percentile=95 \
		--histogram=on --report-interval=0
	RES_OUT=$out
	RES_TPS=$(awk '/^ *transactions:/ { gsub(/\(/, "", $3); print $3 }' "$out")
	RES_QPS=$(awk '/^ *queries:/ { gsub(/\(/, "", $3); print $3 }' "$out")
	RES_QUERIES=$(awk '/^ *queries:/ { print $2 }' "$out")
	RES_SECS=$(awk '/^ *total time:/ { sub(/s$/, "", $3); print $3 }' "$out")
	RES_IGN=$(awk '/^ *ignored errors:/ { print $3 }' "$out")
	RES_IGN=${RES_IGN:-0}
	RES_EVENTS=$(awk '/total number of events:/ { print $5 }' "$out")
	RES_P50=$(hist_pct 50 "$out")
	RES_P95=$(hist_pct 95 "$out")
	[[ -n $RES_TPS && -n $RES_QPS && -n $RES_SECS && -n $RES_EVENTS && $RES_P50 != n/a ]] || {
		tail -n 30 "$out" >&2
		die "cannot parse sysbench output $out"
	}
}

# count_rows PORT: sets ROWS_BEFORE to sbtest1's row count.
count_rows() {
	ROWS_BEFORE=$(mysql_at "$1" -N sbtest -e 'SELECT COUNT(*) FROM sbtest1') ||
		die "counting sbtest1 rows"
}

# check_rows NAME PORT LOG WORKLOAD: after a run that writes, the table must
# hold what sysbench's committed transactions left: read_write deletes and
# re-inserts the same ids, insert adds one row per transaction (ROWS_BEFORE
# from count_rows, RES_EVENTS from run_one).
check_rows() {
	local name=$1 port=$2 logf=$3 workload=$4 want got
	case $workload in
	oltp_read_write) want=$ROWS_BEFORE ;;
	oltp_insert) want=$((ROWS_BEFORE + RES_EVENTS)) ;;
	*) return 0 ;;
	esac
	got=$(mysql_at "$port" -N sbtest -e 'SELECT COUNT(*) FROM sbtest1') ||
		die "counting sbtest1 rows on $name"
	if [[ $got != "$want" ]]; then
		tail -n 20 "$logf" >&2 || true
		die "$name: sbtest1 has $got rows after $workload, expected $want"
	fi
}
