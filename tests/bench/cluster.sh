#!/usr/bin/env bash
# fogdb on one node and on three, against MariaDB, under sysbench.
#
# Builds fogdb from this checkout and starts, on loopback with fresh data
# directories: a 1-node fogdb, a 3-node fogdb cluster (node 1 bootstraps,
# nodes 2 and 3 join it with a shared secret), and a private MariaDB. Each
# workload then runs against four configurations in turn, so that machine
# noise hits all alike:
#
#   fogdb-1     the 1-node fogdb
#   leader      the 3-node cluster, client on the leader
#   follower    the 3-node cluster, client on a follower
#   mariadb     MariaDB (durable: innodb_flush_log_at_trx_commit=1)
#
# and the script prints throughput (tps, qps) and p50/p95 latency per
# configuration, the ratios 3-node leader / 1-node (insert target: >= 0.5),
# follower / leader and fogdb / MariaDB, and from the /status counters of
# the Raft leader (of the 1-node fogdb) the fsyncs per acknowledged commit:
# (log_writes + state_writes) / commits over each run, on the leader and
# summed over the three nodes.
#
# Fails (non-zero) if sysbench errors, a server dies, or a row count after a
# writing run is wrong (on every node of the cluster).
#
#   tests/bench/cluster.sh
#   BENCH_QUICK=1 tests/bench/cluster.sh      # smoke form, as CI runs it
#
# Environment:
#   BENCH_TIME=20        seconds per run
#   BENCH_QUICK=1        smoke form: 3 s runs, oltp_insert only, 1000 rows
#   BENCH_THREADS=4      client threads
#   BENCH_WORKLOADS="oltp_insert oltp_read_write"
#   BENCH_ROUNDS=1       rounds: each runs every workload once against each
#                        configuration, starting one configuration later
#                        each round; results are over all rounds
#   BENCH_TABLE_SIZE=10000
#   BENCH_OUT=FILE       also write the results as markdown to FILE
#   BENCH_KEEP=1         keep the work directory (logs, raw sysbench output)
#   BENCH_FOGDB=PATH     measure this fogdb binary instead of building one
#
# Needs curl, sysbench, mariadb-server and the mariadb client (installed with
# apt-get when missing and running as root).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

BENCH_QUICK=${BENCH_QUICK:-0}
if [[ $BENCH_QUICK == 1 ]]; then
	BENCH_TIME=${BENCH_TIME:-3}
	BENCH_WORKLOADS=${BENCH_WORKLOADS:-oltp_insert}
	BENCH_TABLE_SIZE=${BENCH_TABLE_SIZE:-1000}
fi
BENCH_TIME=${BENCH_TIME:-20}
BENCH_THREADS=${BENCH_THREADS:-4}
BENCH_WORKLOADS=${BENCH_WORKLOADS:-oltp_insert oltp_read_write}
BENCH_ROUNDS=${BENCH_ROUNDS:-1}
BENCH_TABLE_SIZE=${BENCH_TABLE_SIZE:-10000}
BENCH_OUT=${BENCH_OUT:-}
BENCH_KEEP=${BENCH_KEEP:-0}

if [[ -n $BENCH_OUT && $BENCH_OUT != /* ]]; then
	BENCH_OUT=$PWD/$BENCH_OUT
fi
read -r -a WORKLOADS <<<"$BENCH_WORKLOADS"
[[ $BENCH_THREADS =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_THREADS: one number" >&2; exit 2; }
[[ $BENCH_ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_ROUNDS: a positive number" >&2; exit 2; }

log() { printf '[cluster-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "FAILED: $*"
	exit 1
}

WORK=""
# Every server this script starts, by configuration name: fogdb-1, n1, n2,
# n3 (the cluster's nodes) and mariadb.
declare -A PID=() PORT=() LOGF=() ADMIN=()

# port_in_use, spare_port, mysql_at, wait_tcp, stop_pid,
# start_private_mariadb, end_work and trap_cleanup.
# shellcheck source=../lib/servers.sh
source "$REPO/tests/lib/servers.sh"
# stop_pids, install_tools, build_fogdb, start_fogdb, admin_addr,
# start_mariadb, prepare_table, run_one, hist_pct, count_rows, check_rows.
# shellcheck source=lib.sh
source "$REPO/tests/bench/lib.sh"

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_pid "$SB_PID" sysbench
	stop_pids "${PID[n2]:-}" "${PID[n3]:-}" "${PID[n1]:-}" "${PID[fogdb-1]:-}" "$MARIA_PID"
	end_work "$rc" "$BENCH_KEEP"
}
trap_cleanup

# ---------------------------------------------------------------- status

# status NAME: the node's GET /status (pretty-printed JSON, one field a line).
status() {
	curl -fsS --max-time 5 "http://${ADMIN[$1]}/status"
}

# jfield FIELD: the first value of FIELD in the JSON on stdin, without
# quotes (groups[0]'s, for the group fields: a node has one group).
jfield() {
	sed -n "s/^ *\"$1\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p" | head -n 1
}

# counters NAME: "log_writes state_writes commits entries term leader" from
# the node's /status.
counters() {
	local s f out=()
	s=$(status "$1") || die "GET /status from $1 (${ADMIN[$1]})"
	for f in log_writes state_writes commits entries term leader; do
		out+=("$(jfield "$f" <<<"$s")")
	done
	echo "${out[*]}"
}

# fsyncs NAME...: log_writes + state_writes, summed over the nodes.
fsyncs() {
	local n sum=0
	local -a v
	for n in "$@"; do
		read -r -a v <<<"$(counters "$n")"
		sum=$((sum + v[0] + v[1]))
	done
	echo "$sum"
}

# wait_cluster: until node 1 lists three voters in its first group (the
# global group, which holds the benchmark's tables; /status lists the
# site's group after it) and nodes 2 and 3 follow a leader (60 s at most).
wait_cluster() {
	local deadline=$((SECONDS + 60)) s1 s2 s3
	while ((SECONDS < deadline)); do
		check_alive
		if s1=$(status n1 2>/dev/null) && s2=$(status n2 2>/dev/null) && s3=$(status n3 2>/dev/null) &&
			[[ $(sed -n '/"groups"/,/"active_version"/p' <<<"$s1" | grep -c '"voter": true') == 3 ]] &&
			[[ -n $(jfield leader <<<"$s2") && -n $(jfield leader <<<"$s3") ]] &&
			[[ $(jfield leader <<<"$s2") == $(jfield leader <<<"$s1") &&
				$(jfield leader <<<"$s3") == $(jfield leader <<<"$s1") ]]; then
			return 0
		fi
		sleep 0.2
	done
	for s1 in n1 n2 n3; do
		echo "---- /status of $s1" >&2
		status "$s1" >&2 || true
	done
	die "the cluster did not form within 60 s"
}

# check_alive: every server started is still running.
check_alive() {
	local n
	for n in "${!PID[@]}"; do
		if ! kill -0 "${PID[$n]}" 2>/dev/null; then
			tail -n 40 "${LOGF[$n]}" >&2 || true
			die "$n (pid ${PID[$n]}) has died (log above, ${LOGF[$n]})"
		fi
	done
}

# ---------------------------------------------------------------- servers

install_tools curl

WORK=$(mktemp -d /tmp/fogdb-cluster-bench.XXXXXX)
mkdir -p "$WORK/runs"
build_fogdb

# start_node NAME [ARGS...]: a fogdb on a spare MySQL port; the peer port
# and the admin API on ports the kernel picks.
start_node() {
	local name=$1
	shift
	PORT[$name]=$(spare_port "${PORT[@]}")
	LOGF[$name]=$WORK/$name.log
	log "starting $name on 127.0.0.1:${PORT[$name]}"
	start_fogdb "$WORK/fogdb" "${PORT[$name]}" "$WORK/$name-data" "${LOGF[$name]}" \
		--peer-addr 127.0.0.1:0 "$@"
	PID[$name]=$STARTED_PID
	ADMIN[$name]=$(admin_addr "${LOGF[$name]}" "$STARTED_PID" "$name")
}

start_node fogdb-1
create_sbtest "${PORT[fogdb-1]}" fogdb-1

# The cluster's secret, for this run only; in the environment, not on
# command lines.
FOGDB_CLUSTER_SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
export FOGDB_CLUSTER_SECRET
start_node n1 --node-id n1
PEER1=$(status n1 | jfield peer_addr)
[[ -n $PEER1 ]] || die "no peer_addr in n1's /status"
start_node n2 --node-id n2 --join "$PEER1"
start_node n3 --node-id n3 --join "$PEER1"
unset FOGDB_CLUSTER_SECRET
wait_cluster

LEADER_ID=$(status n1 | jfield leader)
case $LEADER_ID in
n1 | n2 | n3) ;;
*) die "unexpected leader ID '$LEADER_ID'" ;;
esac
FOLLOWER_ID=n2
[[ $LEADER_ID == n2 ]] && FOLLOWER_ID=n3
log "cluster formed: n1 (peer $PEER1), n2, n3; leader $LEADER_ID; follower for clients $FOLLOWER_ID"
create_sbtest "${PORT[$LEADER_ID]}" "$LEADER_ID"

MARIA_PORT=$(spare_port "${PORT[@]}")
log "starting MariaDB on 127.0.0.1:$MARIA_PORT"
start_mariadb
PID[mariadb]=$MARIA_PID
PORT[mariadb]=$MARIA_PORT
LOGF[mariadb]=$WORK/mariadb.log

# The four configurations, the server each one's client uses, and (for
# fogdb) the node whose /status counts its fsyncs and commits.
CONFIGS=(fogdb-1 leader follower mariadb)
declare -A SERVER=([fogdb-1]=fogdb-1 [leader]=$LEADER_ID [follower]=$FOLLOWER_ID [mariadb]=mariadb)
declare -A COUNTED=([fogdb-1]=fogdb-1 [leader]=$LEADER_ID [follower]=$LEADER_ID)
declare -A LABEL=([fogdb-1]="fogdb, 1 node" [leader]="fogdb, 3 nodes, client on leader"
	[follower]="fogdb, 3 nodes, client on follower" [mariadb]="MariaDB")

SYSBENCH_VERSION=$(sysbench --version | awk '{ print $2 }')
MARIA_VERSION=$(mysql_at "$MARIA_PORT" -N -e 'SELECT VERSION()')
LOAD_START=$(cut -d" " -f1-3 /proc/loadavg)
STARTED_AT=$(date -u '+%Y-%m-%d %H:%M UTC')

log "preparing sbtest1 ($BENCH_TABLE_SIZE rows) on fogdb-1, the cluster (through $LEADER_ID) and MariaDB"
prepare_table fogdb-1 "${PORT[fogdb-1]}" "${LOGF[fogdb-1]}" oltp_insert initial
prepare_table cluster "${PORT[$LEADER_ID]}" "${LOGF[$LEADER_ID]}" oltp_insert initial
prepare_table mariadb "$MARIA_PORT" "$WORK/mariadb.log" oltp_insert initial
check_alive

# ---------------------------------------------------------------- runs

# Sums over rounds, by "workload config".
declare -A EV=() QS=() SECS=() IGN=() OUTS=() ROUND_TPS=() D_LOG=() D_STATE=() D_COMMITS=() D_ENTRIES=() D_ALL=()
NOTES=()

# bench_one WORKLOAD CONFIG ROUND
bench_one() {
	local w=$1 c=$2 r=$3 srv=${SERVER[$2]} k="$1 $2" before after all_before all_after n
	local -a b a nodes=("${SERVER[$2]}")
	[[ $c == leader || $c == follower ]] && nodes=(n1 n2 n3)
	log "$w, $BENCH_THREADS threads, ${BENCH_TIME}s, round $r: ${LABEL[$c]} ($srv, 127.0.0.1:${PORT[$srv]})"
	count_rows "${PORT[$srv]}"
	if [[ -n ${COUNTED[$c]:-} ]]; then
		before=$(counters "${COUNTED[$c]}")
		all_before=$(fsyncs "${nodes[@]}")
	fi
	run_one "$c" "${PORT[$srv]}" "${LOGF[$srv]}" "$w" "$BENCH_THREADS" "r$r"
	if [[ -n ${COUNTED[$c]:-} ]]; then
		after=$(counters "${COUNTED[$c]}")
		all_after=$(fsyncs "${nodes[@]}")
	fi
	check_alive
	EV[$k]=$((${EV[$k]:-0} + RES_EVENTS))
	QS[$k]=$((${QS[$k]:-0} + RES_QUERIES))
	SECS[$k]=$(awk -v a="${SECS[$k]:-0}" -v b="$RES_SECS" 'BEGIN { print a + b }')
	IGN[$k]=$((${IGN[$k]:-0} + RES_IGN))
	OUTS[$k]="${OUTS[$k]:-} $RES_OUT"
	ROUND_TPS[$k]="${ROUND_TPS[$k]:+${ROUND_TPS[$k]} / }$RES_TPS"
	log "  $RES_TPS tps, $RES_QPS qps, p50 $RES_P50 ms, p95 $RES_P95 ms"
	if [[ -n ${COUNTED[$c]:-} ]]; then
		read -r -a b <<<"$before"
		read -r -a a <<<"$after"
		D_LOG[$k]=$((${D_LOG[$k]:-0} + a[0] - b[0]))
		D_STATE[$k]=$((${D_STATE[$k]:-0} + a[1] - b[1]))
		D_COMMITS[$k]=$((${D_COMMITS[$k]:-0} + a[2] - b[2]))
		D_ENTRIES[$k]=$((${D_ENTRIES[$k]:-0} + a[3] - b[3]))
		D_ALL[$k]=$((${D_ALL[$k]:-0} + all_after - all_before))
		if [[ ${b[4]} != "${a[4]}" || ${b[5]} != "${a[5]}" ]]; then
			NOTES+=("$w round $r ($c): the term changed from ${b[4]} to ${a[4]} (leader ${b[5]} to ${a[5]}) during the run")
			log "  WARNING: ${NOTES[-1]}"
		fi
	fi
	# The rows the run left, on every node that holds them.
	if [[ $c == leader || $c == follower ]]; then
		for n in n1 n2 n3; do
			check_rows "$n" "${PORT[$n]}" "${LOGF[$n]}" "$w"
		done
	else
		check_rows "$c" "${PORT[$srv]}" "${LOGF[$srv]}" "$w"
	fi
}

for w in "${WORKLOADS[@]}"; do
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		for ((i = 0; i < ${#CONFIGS[@]}; i++)); do
			bench_one "$w" "${CONFIGS[$(((i + r - 1) % ${#CONFIGS[@]}))]}" "$r"
		done
	done
done
LOAD_END=$(cut -d" " -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report

div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
tps() { div "${EV[$1]}" "${SECS[$1]}"; }
qps() { div "${QS[$1]}" "${SECS[$1]}"; }
# shellcheck disable=SC2086 # OUTS holds a list of files
p50() { hist_pct 50 ${OUTS[$1]}; }
# shellcheck disable=SC2086
p95() { hist_pct 95 ${OUTS[$1]}; }
fsyncs_per_commit() { div $((D_LOG[$1] + D_STATE[$1])) "${D_COMMITS[$1]}"; }
has() { [[ " ${WORKLOADS[*]} " == *" $1 "* ]]; }

# RATIOS: "label|value" lines.
RATIOS=()
TARGET=""
for w in "${WORKLOADS[@]}"; do
	RATIOS+=("$w throughput, 3 nodes (leader) / 1 node|$(div "$(tps "$w leader")" "$(tps "$w fogdb-1")")")
	RATIOS+=("$w throughput, follower / leader|$(div "$(tps "$w follower")" "$(tps "$w leader")")")
	RATIOS+=("$w throughput, fogdb 1 node / MariaDB|$(div "$(tps "$w fogdb-1")" "$(tps "$w mariadb")")")
	RATIOS+=("$w throughput, fogdb 3 nodes (leader) / MariaDB|$(div "$(tps "$w leader")" "$(tps "$w mariadb")")")
done
if has oltp_insert; then
	ins=$(div "$(tps "oltp_insert leader")" "$(tps "oltp_insert fogdb-1")")
	if awk -v x="$ins" 'BEGIN { exit !(x >= 0.5) }'; then
		TARGET="met: 3-node insert throughput is $ins of 1-node (target >= 0.5)"
	else
		TARGET="NOT met: 3-node insert throughput is $ins of 1-node (target >= 0.5)"
	fi
fi

print_text() {
	local w c k
	printf '\n%-16s %-34s %10s %10s %9s %9s %8s  %s\n' workload configuration tps qps "p50 ms" "p95 ms" ignored \
		"tps by round"
	for w in "${WORKLOADS[@]}"; do
		for c in "${CONFIGS[@]}"; do
			k="$w $c"
			printf '%-16s %-34s %10s %10s %9s %9s %8s  %s\n' "$w" "${LABEL[$c]}" "$(tps "$k")" "$(qps "$k")" \
				"$(p50 "$k")" "$(p95 "$k")" "${IGN[$k]}" "${ROUND_TPS[$k]}"
		done
	done
	echo
	local r
	for r in "${RATIOS[@]}"; do
		printf '%-58s %s\n' "${r%%|*}" "${r#*|}"
	done
	[[ -n $TARGET ]] && echo "insert target $TARGET"
	echo
	echo "fsyncs per acknowledged commit, (Δlog_writes + Δstate_writes) / Δcommits on the node that leads"
	echo "(and summed over all the cluster's nodes):"
	for w in "${WORKLOADS[@]}"; do
		for c in fogdb-1 leader follower; do
			k="$w $c"
			printf '  %-16s %-34s (%s + %s) / %s = %s (all nodes %s); commits per Raft entry %s\n' "$w" "${LABEL[$c]}" \
				"${D_LOG[$k]}" "${D_STATE[$k]}" "${D_COMMITS[$k]}" "$(fsyncs_per_commit "$k")" \
				"$(div "${D_ALL[$k]}" "${D_COMMITS[$k]}")" "$(div "${D_COMMITS[$k]}" "${D_ENTRIES[$k]}")"
		done
	done
	for r in "${NOTES[@]}"; do
		echo "note: $r"
	done
	echo "load average before: $LOAD_START, after: $LOAD_END (on $(nproc) CPUs)"
	echo
}

print_markdown() {
	local w c k r
	echo "sysbench $SYSBENCH_VERSION, fogdb $FOG_COMMIT vs MariaDB $MARIA_VERSION;" \
		"$(nproc) CPUs ($(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo))," \
		"$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo);" \
		"$BENCH_THREADS threads, ${BENCH_TIME}s per run, $BENCH_ROUNDS round(s)," \
		"1 table of $BENCH_TABLE_SIZE rows, --db-ps-mode=auto; $STARTED_AT;" \
		"load average before $LOAD_START, after $LOAD_END"
	echo
	echo "| workload | configuration | TPS | QPS | p50 (ms) | p95 (ms) | ignored errors | TPS by round |"
	echo "|---|---|---:|---:|---:|---:|---:|---|"
	for w in "${WORKLOADS[@]}"; do
		for c in "${CONFIGS[@]}"; do
			k="$w $c"
			echo "| $w | ${LABEL[$c]} | $(tps "$k") | $(qps "$k") | $(p50 "$k") | $(p95 "$k") | ${IGN[$k]} | ${ROUND_TPS[$k]} |"
		done
	done
	echo
	echo "| ratio | value |"
	echo "|---|---:|"
	for r in "${RATIOS[@]}"; do
		echo "| ${r%%|*} | ${r#*|} |"
	done
	echo
	echo "| workload | configuration | Δlog_writes | Δstate_writes | Δcommits | fsyncs per commit | fsyncs per commit, all nodes | commits per entry |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|"
	for w in "${WORKLOADS[@]}"; do
		for c in fogdb-1 leader follower; do
			k="$w $c"
			echo "| $w | ${LABEL[$c]} | ${D_LOG[$k]} | ${D_STATE[$k]} | ${D_COMMITS[$k]} |" \
				"$(fsyncs_per_commit "$k") | $(div "${D_ALL[$k]}" "${D_COMMITS[$k]}") |" \
				"$(div "${D_COMMITS[$k]}" "${D_ENTRIES[$k]}") |"
		done
	done
	for r in "${NOTES[@]}"; do
		echo
		echo "Note: $r"
	done
}

print_text
if [[ -n $BENCH_OUT ]]; then
	print_markdown >"$BENCH_OUT"
	log "markdown written to $BENCH_OUT"
fi
