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
#   BENCH_FOGDB=PATH     measure this fogdb binary instead of building one
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
PROF_PID=""

# port_in_use, spare_port, mysql_at, wait_tcp, stop_pid,
# start_private_mariadb, end_work and trap_cleanup.
# shellcheck source=../lib/servers.sh
source "$REPO/tests/lib/servers.sh"
# install_tools, start_fogdb, start_mariadb, prepare_table,
# run_one, count_rows, check_rows (and SB_PID, MARIA_PID).
# shellcheck source=lib.sh
source "$REPO/tests/bench/lib.sh"

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_pid "$SB_PID" sysbench
	stop_pid "$PROF_PID" fogdbprof
	stop_pid "$FOG_PID" fogdb
	stop_pid "$MARIA_PID" mariadbd
	end_work "$rc" "$BENCH_KEEP"
}
trap_cleanup

# ---------------------------------------------------------------- main

# shellcheck disable=SC2119 # no tools beyond the usual ones
install_tools

WORK=$(mktemp -d /tmp/fogdb-bench.XXXXXX)
mkdir -p "$WORK/runs"

build_fogdb
if [[ $BENCH_PPROF == 1 ]]; then
	(cd "$REPO" && go build -o "$WORK/fogdbprof" ./tests/bench/fogdbprof) ||
		die "go build ./tests/bench/fogdbprof"
fi

FOG_PORT=$(spare_port)
MARIA_PORT=$(spare_port "$FOG_PORT")
FOG_LOG=$WORK/fogdb.log
MARIA_LOG=$WORK/mariadb.log

log "starting fogdb on 127.0.0.1:$FOG_PORT"
# The peer port (Raft), like the admin API, on a port the kernel picks, so
# that runs side by side do not collide on fogdb's default 127.0.0.1:7071.
start_fogdb "$WORK/fogdb" "$FOG_PORT" "$WORK/fogdb-data" "$FOG_LOG" --peer-addr 127.0.0.1:0
FOG_PID=$STARTED_PID
create_sbtest "$FOG_PORT" fogdb
log "starting MariaDB on 127.0.0.1:$MARIA_PORT"
start_mariadb

SYSBENCH_VERSION=$(sysbench --version | awk '{ print $2 }')
LOAD_START=$(cut -d" " -f1-3 /proc/loadavg)
MARIA_VERSION=$(mysql_at "$MARIA_PORT" -N -e 'SELECT VERSION()')

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
		--cpuprofile "$WORK/read_write.cpu.pprof" --peer-addr 127.0.0.1:0
	PROF_PID=$STARTED_PID
	create_sbtest "$PROF_PORT" fogdbprof
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
