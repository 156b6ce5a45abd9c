#!/usr/bin/env bash
# The seed experiment at the database level: the SQL of Nova's VM boots
# over 2-8 sites, 10 and 50 ms apart, against fogdb (one node per site,
# peers across an emulated WAN), a central MariaDB (at site 0, the other
# sites' clients across the same WAN) and a local MariaDB (no delay).
#
# Builds fogdb and tests/bench/seedexp from this checkout, starts a private
# MariaDB (fresh data directory, durable: innodb_flush_log_at_trx_commit=1,
# no binary log) and runs seedexp, which starts a fresh fogdb cluster for
# each point, runs the workload, checks what every boot left and prints the
# table (seconds, statements and WAN round trips per VM, server CPU).
#
#   tests/bench/seed.sh                      # the full experiment: 500 VMs; 2,4,6,8 sites; 10 and 50 ms
#   BENCH_QUICK=1 tests/bench/seed.sh        # smoke form, as CI runs it: 2 and 3 sites, 10 ms, 20 VMs
#   BENCH_SITES=2,4 BENCH_LATENCIES=10ms BENCH_VMS=100 BENCH_OUT=seed.md BENCH_CHART=seed.png tests/bench/seed.sh
#
# Environment:
#   BENCH_SITES=2,4,6,8      site counts
#   BENCH_LATENCIES=10ms,50ms one-way delays between distinct sites
#   BENCH_VMS=500            VMs per point, spread evenly over the sites
#   BENCH_CLIENTS=2          concurrent clients per site
#   BENCH_HOSTS=4            compute hosts per site
#   BENCH_SYSTEMS=fogdb,central,local
#   BENCH_IDLE=2s            quiet window before each fogdb run, to estimate
#                            the WAN turns of background replication
#   BENCH_OUT=FILE           also write the results as markdown to FILE
#   BENCH_CHART=FILE         the PNG chart (default: in the work directory)
#   BENCH_TIMEOUT=SECONDS    give up after this long (default 14400; quick 300)
#   BENCH_POINT_TIMEOUT=DUR  give up on one system at one point after this long
#   BENCH_KEEP=1             keep the work directory (logs; kept anyway on failure)
#   BENCH_FOGDB=PATH         measure this fogdb binary instead of building one
#
# Exits non-zero, with the failing statement and the server's log tail, if
# any boot fails, a server dies, a count after the run is wrong, or the run
# overruns BENCH_TIMEOUT. Every process it started is stopped on exit.
# Needs go, and mariadb-server and the mariadb client (installed with
# apt-get when missing and running as root).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

BENCH_QUICK=${BENCH_QUICK:-0}
if [[ $BENCH_QUICK == 1 ]]; then
	BENCH_SITES=${BENCH_SITES:-2,3}
	BENCH_LATENCIES=${BENCH_LATENCIES:-10ms}
	BENCH_VMS=${BENCH_VMS:-20}
	BENCH_IDLE=${BENCH_IDLE:-1s}
	BENCH_TIMEOUT=${BENCH_TIMEOUT:-300}
	BENCH_POINT_TIMEOUT=${BENCH_POINT_TIMEOUT:-90s}
fi
BENCH_SITES=${BENCH_SITES:-2,4,6,8}
BENCH_LATENCIES=${BENCH_LATENCIES:-10ms,50ms}
BENCH_VMS=${BENCH_VMS:-500}
BENCH_CLIENTS=${BENCH_CLIENTS:-2}
BENCH_HOSTS=${BENCH_HOSTS:-4}
BENCH_SYSTEMS=${BENCH_SYSTEMS:-fogdb,central,local}
BENCH_IDLE=${BENCH_IDLE:-2s}
BENCH_OUT=${BENCH_OUT:-}
BENCH_CHART=${BENCH_CHART:-}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-14400}
BENCH_POINT_TIMEOUT=${BENCH_POINT_TIMEOUT:-30m}
BENCH_KEEP=${BENCH_KEEP:-0}

[[ $BENCH_TIMEOUT =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_TIMEOUT: seconds" >&2; exit 2; }
for v in BENCH_OUT BENCH_CHART; do
	if [[ -n ${!v} && ${!v} != /* ]]; then
		printf -v "$v" '%s' "$PWD/${!v}"
	fi
done

log() { printf '[seed-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "FAILED: $*"
	exit 1
}

WORK=""
SEED_PID=""

# port_in_use, spare_port, mysql_at, wait_tcp, stop_pid,
# start_private_mariadb, end_work and trap_cleanup.
# shellcheck source=../lib/servers.sh
source "$REPO/tests/lib/servers.sh"
# stop_pids, install_tools, build_fogdb (MARIA_PID is set by
# start_private_mariadb).
# shellcheck source=lib.sh
source "$REPO/tests/bench/lib.sh"

# stop_seedexp: seedexp runs under timeout(1) in a process group of its
# own, with the fogdb nodes it started: SIGTERM to the group, then SIGKILL
# to whatever is left after 60 s.
stop_seedexp() {
	local i
	[[ -n $SEED_PID ]] || return 0
	kill -TERM -- "-$SEED_PID" 2>/dev/null || true
	for ((i = 0; i < 600; i++)); do
		kill -0 -- "-$SEED_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 -- "-$SEED_PID" 2>/dev/null; then
		log "seedexp's processes ignored SIGTERM; killing them"
		kill -KILL -- "-$SEED_PID" 2>/dev/null || true
	fi
	wait "$SEED_PID" 2>/dev/null || true
	SEED_PID=""
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_seedexp
	stop_pid "$MARIA_PID" mariadbd
	end_work "$rc" "$BENCH_KEEP"
}
trap_cleanup

# shellcheck disable=SC2119 # no extra commands to install
install_tools
WORK=$(mktemp -d /tmp/fogdb-seed-bench.XXXXXX)
build_fogdb
log "building tests/bench/seedexp"
(cd "$REPO" && go build -o "$WORK/seedexp" ./tests/bench/seedexp) || die "go build ./tests/bench/seedexp"
CHART_KEPT=1
if [[ -z $BENCH_CHART ]]; then
	BENCH_CHART=$WORK/seed.png
	CHART_KEPT=$BENCH_KEEP
fi

# shellcheck disable=SC2119 # no port to exclude
MARIA_PORT=$(spare_port)
log "starting MariaDB on 127.0.0.1:$MARIA_PORT"
start_private_mariadb --innodb-flush-log-at-trx-commit=1 --max-connections=300

log "seed experiment: sites $BENCH_SITES, one-way delays $BENCH_LATENCIES, $BENCH_VMS VMs," \
	"$BENCH_CLIENTS clients per site, systems $BENCH_SYSTEMS (at most $BENCH_TIMEOUT s)"
args=(
	--fogdb "$WORK/fogdb" --fogdb-version "$FOG_COMMIT" --work "$WORK"
	--mariadb "127.0.0.1:$MARIA_PORT" --mariadb-pid "$MARIA_PID"
	--sites "$BENCH_SITES" --latencies "$BENCH_LATENCIES" --vms "$BENCH_VMS"
	--clients "$BENCH_CLIENTS" --hosts-per-site "$BENCH_HOSTS" --systems "$BENCH_SYSTEMS"
	--idle "$BENCH_IDLE" --point-timeout "$BENCH_POINT_TIMEOUT"
	--placement "$REPO/docs/placement/openstack.yaml" --chart "$BENCH_CHART"
)
if [[ -n $BENCH_OUT ]]; then
	args+=(--out "$BENCH_OUT")
fi
if ((BENCH_KEEP == 1)); then
	args+=(--keep)
fi

# timeout(1) puts itself and seedexp in a new process group (the nodes
# seedexp starts join it), so cleanup can stop them all together.
timeout -k 30 "$BENCH_TIMEOUT" "$WORK/seedexp" "${args[@]}" &
SEED_PID=$!
rc=0
wait "$SEED_PID" || rc=$?
SEED_PID=""
case $rc in
0) ;;
124 | 137) die "seedexp did not finish within $BENCH_TIMEOUT s (logs in $WORK)" ;;
*) die "seedexp exit $rc (logs in $WORK)" ;;
esac
kill -0 "$MARIA_PID" 2>/dev/null || die "mariadbd died during the run (see $WORK/mariadb.log)"
[[ -s $BENCH_CHART ]] || die "no chart written to $BENCH_CHART"
if ((CHART_KEPT == 1)); then
	log "chart: $BENCH_CHART"
else
	log "chart drawn (BENCH_CHART=FILE keeps it)"
fi
if [[ -n $BENCH_OUT ]]; then
	log "markdown written to $BENCH_OUT"
fi
