#!/usr/bin/env bash
# Compare fogdb with MariaDB under sysbench's OLTP workloads.
#
# Builds fogdb from this checkout, starts it and a private MariaDB on spare
# loopback ports with fresh data directories, runs each workload against both
# (alternating run by run, so machine noise hits both alike) and prints a
# table of throughput and median latency. Fails (non-zero) if sysbench
# errors, a server dies, or the row count after a writing run is wrong.
#
#   tests/bench/sysbench.sh
#
# Environment:
#   BENCH_TIME=20        seconds per run
#   BENCH_QUICK=1        smoke form: 3 s runs, 1 thread, point_select and read_write
#   BENCH_THREADS="1 4"  thread counts
#   BENCH_WORKLOADS="oltp_point_select oltp_read_only oltp_read_write oltp_insert"
#   BENCH_TABLE_SIZE=10000
#   BENCH_OUT=FILE       also write the results as markdown to FILE
#   BENCH_PPROF=1        afterwards, run oltp_read_write once more against a
#                        profiling build of fogdb (tests/bench/fogdbprof) and
#                        save its CPU profile to BENCH_PPROF_OUT
#                        (default ./fogdb-read_write.cpu.pprof)
#   BENCH_KEEP=1         keep the work directory (logs, raw sysbench output)
#
# Needs root to install sysbench and mariadb-server when they are missing.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

BENCH_QUICK=${BENCH_QUICK:-0}
if [[ $BENCH_QUICK == 1 ]]; then
	BENCH_TIME=${BENCH_TIME:-3}
	BENCH_THREADS=${BENCH_THREADS:-1}
	BENCH_WORKLOADS=${BENCH_WORKLOADS:-oltp_point_select oltp_read_write}
fi
BENCH_TIME=${BENCH_TIME:-20}
BENCH_THREADS=${BENCH_THREADS:-1 4}
BENCH_WORKLOADS=${BENCH_WORKLOADS:-oltp_point_select oltp_read_only oltp_read_write oltp_insert}
BENCH_TABLE_SIZE=${BENCH_TABLE_SIZE:-10000}
BENCH_OUT=${BENCH_OUT:-}
BENCH_PPROF=${BENCH_PPROF:-0}
BENCH_PPROF_OUT=${BENCH_PPROF_OUT:-$PWD/fogdb-read_write.cpu.pprof}
BENCH_KEEP=${BENCH_KEEP:-0}

# BENCH_OUT and BENCH_PPROF_OUT are relative to the caller's directory.
if [[ -n $BENCH_OUT && $BENCH_OUT != /* ]]; then
	BENCH_OUT=$PWD/$BENCH_OUT
fi
if [[ $BENCH_PPROF_OUT != /* ]]; then
	BENCH_PPROF_OUT=$PWD/$BENCH_PPROF_OUT
fi

read -r -a THREADS <<<"$BENCH_THREADS"
read -r -a WORKLOADS <<<"$BENCH_WORKLOADS"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "FAILED: $*"
	exit 1
}

WORK=""
FOG_PID=""
MARIA_PID=""
PROF_PID=""
SB_PID=""

# stop_pid PID NAME: SIGTERM, wait up to 30 s, then SIGKILL.
stop_pid() {
	local pid=$1 name=$2 i
	[[ -n $pid ]] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name (pid $pid) ignored SIGTERM; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_pid "$SB_PID" sysbench
	stop_pid "$PROF_PID" fogdbprof
	stop_pid "$FOG_PID" fogdb
	stop_pid "$MARIA_PID" mariadbd
	if [[ -n $WORK && -d $WORK ]]; then
		if [[ $BENCH_KEEP == 1 || $rc -ne 0 ]]; then
			log "work directory kept: $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- tools

find_mariadbd() {
	local c
	for c in mariadbd /usr/sbin/mariadbd mysqld /usr/sbin/mysqld; do
		if command -v "$c" >/dev/null 2>&1; then
			command -v "$c"
			return 0
		fi
	done
	return 1
}

install_tools() {
	local missing=()
	command -v sysbench >/dev/null 2>&1 || missing+=(sysbench)
	if ! find_mariadbd >/dev/null || ! command -v mariadb-install-db >/dev/null 2>&1; then
		missing+=(mariadb-server)
	fi
	command -v mariadb >/dev/null 2>&1 || missing+=(mariadb-client)
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

# ---------------------------------------------------------------- ports

# port_in_use, spare_port, MYSQL_CLIENT and wait_tcp.
# shellcheck source=../lib/servers.sh
source "$REPO/tests/lib/servers.sh"

# start_fogdb BINARY PORT DATADIR LOG [ARGS...]: sets STARTED_PID.
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
	"${MYSQL_CLIENT[@]}" -P"$port" -e 'CREATE DATABASE IF NOT EXISTS sbtest' ||
		die "CREATE DATABASE sbtest on $(basename "$bin")"
}

start_mariadb() {
	local mariadbd dir=$WORK/mariadb-data sock=$WORK/mariadb.sock
	mariadbd=$(find_mariadbd) || die "mariadbd not found"
	mkdir -p "$dir" "$WORK/mariadb-tmp"
	mariadb-install-db --no-defaults --datadir="$dir" --user=root \
		--auth-root-authentication-method=socket --skip-test-db \
		>"$WORK/mariadb-install.log" 2>&1 ||
		{
			tail -n 30 "$WORK/mariadb-install.log" >&2
			die "mariadb-install-db"
		}
	# Stock durable settings: innodb_flush_log_at_trx_commit=1 (the default)
	# is spelled out; no binary log.
	"$mariadbd" --no-defaults --user=root --datadir="$dir" \
		--socket="$sock" --port="$MARIA_PORT" --bind-address=127.0.0.1 \
		--pid-file="$WORK/mariadb.pid" --log-error="$WORK/mariadb.log" \
		--tmpdir="$WORK/mariadb-tmp" --skip-name-resolve \
		--innodb-flush-log-at-trx-commit=1 --max-connections=200 \
		>"$WORK/mariadb.out" 2>&1 &
	MARIA_PID=$!
	local i
	for ((i = 0; i < 600; i++)); do
		kill -0 "$MARIA_PID" 2>/dev/null || {
			tail -n 30 "$WORK/mariadb.log" "$WORK/mariadb.out" >&2 || true
			die "mariadbd exited during startup"
		}
		[[ -S $sock ]] && mariadb --no-defaults --socket="$sock" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
		sleep 0.1
	done
	# root over TCP from loopback with no password, like fogdb's root.
	mariadb --no-defaults --socket="$sock" -uroot -e "
		CREATE USER 'root'@'127.0.0.1';
		GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
		CREATE DATABASE sbtest;" ||
		die "creating MariaDB user and database"
	wait_tcp mariadbd "$MARIA_PID" "$MARIA_PORT" "$WORK/mariadb.log"
	# With the socket answering as our root, check TCP reaches the same server.
	local sockport
	sockport=$("${MYSQL_CLIENT[@]}" -P"$MARIA_PORT" -N -e 'SELECT @@port') ||
		die "MariaDB over TCP"
	[[ $sockport == "$MARIA_PORT" ]] || die "something else answers on 127.0.0.1:$MARIA_PORT"
}

# ---------------------------------------------------------------- sysbench

sb_common() {
	local port=$1
	printf '%s\n' --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$port" \
		--mysql-user=root --mysql-password= --mysql-db=sbtest \
		--tables=1 --table-size="$BENCH_TABLE_SIZE" --db-ps-mode=auto
}

# sb NAME PORT LOG OUTFILE WORKLOAD COMMAND [ARGS...]: runs sysbench, fails
# loudly (with the server's log tail) if it errors.
sb() {
	local name=$1 port=$2 logf=$3 out=$4 workload=$5 cmd=$6
	shift 6
	local common
	mapfile -t common < <(sb_common "$port")
	local rc=0
	# In the background, so a signal to this script is handled at once.
	sysbench "$workload" "${common[@]}" "$@" "$cmd" >"$out" 2>&1 &
	SB_PID=$!
	wait "$SB_PID" || rc=$?
	SB_PID=""
	if ((rc != 0)) || grep -q 'FATAL' "$out"; then
		{
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

prepare_table() {
	local name=$1 port=$2 logf=$3 workload=$4 tag=$5
	sb "$name" "$port" "$logf" "$WORK/runs/$name-$tag-cleanup.txt" "$workload" cleanup
	sb "$name" "$port" "$logf" "$WORK/runs/$name-$tag-prepare.txt" "$workload" prepare
}

# run_one NAME PORT LOG WORKLOAD THREADS: sets RES_TPS, RES_P50 (ms) and
# RES_IGN (errors sysbench ignored: deadlocks, lock wait timeouts).
run_one() {
	local name=$1 port=$2 logf=$3 workload=$4 threads=$5
	local out=$WORK/runs/$name-$workload-t$threads.txt
	sb "$name" "$port" "$logf" "$out" "$workload" run \
		--threads="$threads" --time="$BENCH_TIME" --events=0 --percentile=50 \
		--report-interval=0
	RES_TPS=$(awk '/^ *transactions:/ { gsub(/\(/, "", $3); print $3 }' "$out")
	RES_P50=$(awk '/50th percentile:/ { print $3 }' "$out")
	RES_IGN=$(awk '/^ *ignored errors:/ { print $3 }' "$out")
	RES_IGN=${RES_IGN:-0}
	RES_EVENTS=$(awk '/total number of events:/ { print $5 }' "$out")
	[[ -n $RES_TPS && -n $RES_P50 && -n $RES_EVENTS ]] || {
		tail -n 30 "$out" >&2
		die "cannot parse sysbench output $out"
	}
}

# check_rows NAME PORT LOG WORKLOAD: after a run that writes, the table must
# hold what sysbench's committed transactions left: read_write deletes and
# re-inserts the same ids, insert adds one row per transaction.
check_rows() {
	local name=$1 port=$2 logf=$3 workload=$4 want got
	case $workload in
	oltp_read_write) want=$ROWS_BEFORE ;;
	oltp_insert) want=$((ROWS_BEFORE + RES_EVENTS)) ;;
	*) return 0 ;;
	esac
	got=$("${MYSQL_CLIENT[@]}" -P"$port" -N sbtest -e 'SELECT COUNT(*) FROM sbtest1') ||
		die "counting sbtest1 rows on $name"
	if [[ $got != "$want" ]]; then
		tail -n 20 "$logf" >&2 || true
		die "$name: sbtest1 has $got rows after $workload, expected $want"
	fi
}

count_rows() {
	ROWS_BEFORE=$("${MYSQL_CLIENT[@]}" -P"$1" -N sbtest -e 'SELECT COUNT(*) FROM sbtest1') ||
		die "counting sbtest1 rows"
}

# ---------------------------------------------------------------- main

install_tools
command -v go >/dev/null 2>&1 || die "go not found"

WORK=$(mktemp -d /tmp/fogdb-bench.XXXXXX)
mkdir -p "$WORK/runs"

log "building fogdb from $REPO"
(cd "$REPO" && go build -o "$WORK/fogdb" ./cmd/fogdb) || die "go build ./cmd/fogdb"
if [[ $BENCH_PPROF == 1 ]]; then
	(cd "$REPO" && go build -o "$WORK/fogdbprof" ./tests/bench/fogdbprof) ||
		die "go build ./tests/bench/fogdbprof"
fi

FOG_PORT=$(spare_port)
MARIA_PORT=$(spare_port "$FOG_PORT")
FOG_LOG=$WORK/fogdb.log
MARIA_LOG=$WORK/mariadb.log

log "starting fogdb on 127.0.0.1:$FOG_PORT"
start_fogdb "$WORK/fogdb" "$FOG_PORT" "$WORK/fogdb-data" "$FOG_LOG"
FOG_PID=$STARTED_PID
log "starting MariaDB on 127.0.0.1:$MARIA_PORT"
start_mariadb

SYSBENCH_VERSION=$(sysbench --version | awk '{ print $2 }')
LOAD_START=$(cut -d" " -f1-3 /proc/loadavg)
MARIA_VERSION=$("${MYSQL_CLIENT[@]}" -P"$MARIA_PORT" -N -e 'SELECT VERSION()')
FOG_COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$REPO" status --porcelain -- cmd server sqlfront kv 2>/dev/null) ]]; then
	FOG_COMMIT="$FOG_COMMIT+local changes"
fi

log "preparing sbtest1 ($BENCH_TABLE_SIZE rows) on both"
prepare_table fogdb "$FOG_PORT" "$FOG_LOG" oltp_read_write initial
prepare_table mariadb "$MARIA_PORT" "$MARIA_LOG" oltp_read_write initial

ROWS=()
for w in "${WORKLOADS[@]}"; do
	for t in "${THREADS[@]}"; do
		if [[ $w == oltp_insert ]]; then
			# Start each insert run from the same freshly prepared table.
			prepare_table fogdb "$FOG_PORT" "$FOG_LOG" "$w" "$w-t$t"
			prepare_table mariadb "$MARIA_PORT" "$MARIA_LOG" "$w" "$w-t$t"
		fi
		log "$w, $t thread(s), ${BENCH_TIME}s: fogdb"
		count_rows "$FOG_PORT"
		run_one fogdb "$FOG_PORT" "$FOG_LOG" "$w" "$t"
		check_rows fogdb "$FOG_PORT" "$FOG_LOG" "$w"
		f_tps=$RES_TPS f_p50=$RES_P50 f_ign=$RES_IGN
		log "$w, $t thread(s), ${BENCH_TIME}s: mariadb"
		count_rows "$MARIA_PORT"
		run_one mariadb "$MARIA_PORT" "$MARIA_LOG" "$w" "$t"
		check_rows mariadb "$MARIA_PORT" "$MARIA_LOG" "$w"
		m_tps=$RES_TPS m_p50=$RES_P50 m_ign=$RES_IGN
		ratio=$(awk -v f="$f_p50" -v m="$m_p50" 'BEGIN { if (m > 0) printf "%.2f", f / m; else print "n/a" }')
		log "  fogdb $f_tps tps, p50 $f_p50 ms | mariadb $m_tps tps, p50 $m_p50 ms | ratio $ratio"
		ROWS+=("$w|$t|$f_tps|$f_p50|$m_tps|$m_p50|$ratio|$f_ign|$m_ign")
	done
done

# ---------------------------------------------------------------- report

LOAD_END=$(cut -d" " -f1-3 /proc/loadavg)
MEM=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
CPU=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)

print_text() {
	local r w t ft fp mt mp ra fign mign
	printf '\n%-18s %7s %12s %12s %12s %12s %9s\n' workload threads "fogdb tps" "fogdb p50ms" \
		"maria tps" "maria p50ms" "p50 ratio"
	for r in "${ROWS[@]}"; do
		IFS='|' read -r w t ft fp mt mp ra fign mign <<<"$r"
		printf '%-18s %7s %12s %12s %12s %12s %9s\n' "$w" "$t" "$ft" "$fp" "$mt" "$mp" "$ra"
		if [[ $fign != 0 || $mign != 0 ]]; then
			printf '%-18s %7s   ignored errors (deadlocks, lock waits): fogdb %s, mariadb %s\n' "" "" "$fign" "$mign"
		fi
	done
	echo "load average before: $LOAD_START, after: $LOAD_END (on $(nproc) CPUs)"
	echo
}

print_markdown() {
	local r w t ft fp mt mp ra fign mign
	echo "sysbench $SYSBENCH_VERSION, fogdb $FOG_COMMIT vs MariaDB $MARIA_VERSION;" \
		"$(nproc) CPUs ($CPU), $MEM; ${BENCH_TIME}s per run, 1 table of $BENCH_TABLE_SIZE rows," \
		"--db-ps-mode=auto; $(date -u '+%Y-%m-%d %H:%M UTC');" \
		"load average before $LOAD_START, after $LOAD_END"
	echo
	echo "| workload | threads | fogdb TPS | fogdb p50 (ms) | MariaDB TPS | MariaDB p50 (ms) | p50 ratio fogdb/MariaDB | ignored errors fogdb/MariaDB |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	for r in "${ROWS[@]}"; do
		IFS='|' read -r w t ft fp mt mp ra fign mign <<<"$r"
		echo "| $w | $t | $ft | $fp | $mt | $mp | $ra | $fign / $mign |"
	done
}

print_text
if [[ -n $BENCH_OUT ]]; then
	print_markdown >"$BENCH_OUT"
	log "markdown written to $BENCH_OUT"
fi

# ---------------------------------------------------------------- profile

if [[ $BENCH_PPROF == 1 ]]; then
	# A separate pass, so the profiler does not weigh on the numbers above.
	last=$((${#THREADS[@]} - 1))
	pt=${THREADS[$last]}
	stop_pid "$FOG_PID" fogdb
	FOG_PID=""
	PROF_PORT=$(spare_port "$MARIA_PORT")
	PROF_LOG=$WORK/fogdbprof.log
	log "profiling: oltp_read_write, $pt thread(s), ${BENCH_TIME}s against fogdbprof on 127.0.0.1:$PROF_PORT"
	start_fogdb "$WORK/fogdbprof" "$PROF_PORT" "$WORK/fogdbprof-data" "$PROF_LOG" \
		--cpuprofile "$WORK/read_write.cpu.pprof"
	PROF_PID=$STARTED_PID
	prepare_table fogdbprof "$PROF_PORT" "$PROF_LOG" oltp_read_write profile
	kill -USR1 "$PROF_PID"
	run_one fogdbprof "$PROF_PORT" "$PROF_LOG" oltp_read_write "$pt"
	log "  fogdbprof $RES_TPS tps, p50 $RES_P50 ms (with the profiler on)"
	kill -USR2 "$PROF_PID"
	for ((i = 0; i < 100; i++)); do
		grep -q 'CPU profile written' "$PROF_LOG" && break
		sleep 0.1
	done
	stop_pid "$PROF_PID" fogdbprof
	PROF_PID=""
	[[ -s $WORK/read_write.cpu.pprof ]] || die "no CPU profile written (see $PROF_LOG)"
	cp "$WORK/read_write.cpu.pprof" "$BENCH_PPROF_OUT"
	cp "$WORK/fogdbprof" "${BENCH_PPROF_OUT%.pprof}.bin"
	log "CPU profile: $BENCH_PPROF_OUT (binary ${BENCH_PPROF_OUT%.pprof}.bin)"
	(cd "$REPO" && go tool pprof -top -nodecount=25 "$BENCH_PPROF_OUT" 2>/dev/null) || true
fi
