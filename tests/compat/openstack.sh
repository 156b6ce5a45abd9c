#!/usr/bin/env bash
# Do unmodified OpenStack services build and use their schemas on fogdb as
# they do on MySQL? Checks Debian 12's packages of the "Zed" release: Nova 26
# (python3-nova), Keystone 22 (python3-keystone) and Glance 25
# (python3-glance).
#
#   tests/compat/openstack.sh
#
# 1. Installs what is missing (as root): python3-nova, python3-keystone,
#    python3-glance, python3-sqlalchemy, python3-pymysql, python3-oslo.db,
#    mariadb-server, mariadb-client; a policy-rc.d keeps their maintainer
#    scripts from starting any service. The services' own command modules are
#    run with /usr/bin/python3 (nova.cmd.manage, keystone.cmd.manage,
#    glance.cmd.manage: the code behind nova-manage, keystone-manage and
#    glance-manage), so nova-common and glance-common and their debconf
#    questions are not needed.
# 2. Builds fogdb from this checkout and starts it and a private MariaDB (own
#    data directory, character set as Debian's configuration sets it) on spare
#    loopback ports, then a fogdb cluster of three sites (below), and runs
#    against each, unmodified:
#      nova:     api_db sync; cell_v2 map_cell0; db sync (main and cell0);
#                cell_v2 create_cell (both cell mappings as URL templates
#                that each service fills in from its own configuration,
#                so that every site reaches the cells through its own
#                node); nova_seed.py (four instances made and
#                two destroyed through Nova's DB API, so that archiving and
#                purging have rows to move); db online_data_migrations;
#                db archive_deleted_rows --all-cells; db purge --all
#                --all-cells; then api_db sync and db sync again
#      keystone: db_sync; fernet_setup (files only); bootstrap (admin user,
#                project, roles, region, endpoints); then db_sync again
#      glance:   db_sync; then db_sync again
# 3. Dumps each service's databases from every server with schema.py
#    (tables; columns with types, defaults and nullability; indexes; foreign
#    keys; checks; triggers; migration version rows; row counts), with the
#    spellings that differ between MariaDB and MySQL 8 normalised, and
#    compares them with MariaDB's; also compares what archiving and purging
#    reported, and the dumps taken before and after the second sync on each
#    server (it must change nothing).
# 4. Runs oslo_check.py against fogdb (and, as a control, MariaDB): rows of
#    Nova's instances and Keystone's user tables through oslo.db's
#    enginefacade, DBDuplicateEntry with the right columns, and two sessions
#    updating one instance concurrently through Nova's DB API.
#
# The three-site cluster: one fogdb node per site (paris, rennes, nantes,
# the sites docs/placement/openstack.yaml names), the first bootstrapping
# the cluster with that placement file and the others joining it, a cluster
# secret made up for the run, every byte between nodes through a WAN
# emulator (fogwan, OS_WAN_DELAY each way). The work is spread as a
# deployment spreads it: the schema migrations (and keystone's bootstrap)
# run at paris; nova_seed.py, online data migrations, archiving and purging
# at rennes; the second syncs and oslo_check.py at nantes, its second
# session through paris; the dumps at every site, each of which must match
# MariaDB's, and the nodes' SHOW CREATE TABLE texts each other's (less
# AUTO_INCREMENT=N: each site hands out its own values). Then sites.py
# checks that every table holds its rows where the placement file puts it
# (fogdb.placements), and that the instances nova_seed.py made are stored
# at rennes: read there without a round trip to another site, from paris
# with some. Work moves to another site once every node has applied what
# the cluster committed before (sites.py caught-up): a node reads global
# tables from its own replica, within the table's staleness bound.
#
# Prints one line per check, `nova: PASS` or `nova: FAIL <first difference>`
# (then keystone, glance, oslo, and the same four for the three sites,
# `nova (3 sites): PASS`), and last `openstack: N passed, M failed`.
# Exits non-zero when any check fails. Details go to stderr; the work
# directory (logs of every command, dumps, diffs) is kept when a check fails.
#
# Environment:
#   OS_KEEP=1          keep the work directory even when all checks pass
#   OS_STEP_TIMEOUT=300  seconds one command may take
#   OS_FOGDB_ARGS="--log-level debug"   extra fogdb flags (every node)
#   OS_RUNS="fogdb sites"  the fogdb runs compared with MariaDB: `fogdb`
#                      (one node, no placement), `sites` (three sites)
#   OS_WAN_DELAY=1ms   one-way delay between two sites of the cluster
#   OS_FOGDB=PATH      test this fogdb binary instead of building one
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/tests/compat
PY=/usr/bin/python3 # Debian's: a python3 earlier on PATH may not see its packages
OS_KEEP=${OS_KEEP:-0}
OS_STEP_TIMEOUT=${OS_STEP_TIMEOUT:-300}
OS_FOGDB_ARGS=${OS_FOGDB_ARGS:-}
OS_RUNS=${OS_RUNS:-fogdb sites}
OS_WAN_DELAY=${OS_WAN_DELAY:-1ms}
OS_FOGDB=${OS_FOGDB:-}
SERVICES=(nova keystone glance)
# The three-site cluster's sites, and the site each part of the work runs
# at (an index into SITES).
SITES=(paris rennes nantes)
declare -A ROLE_SITE=([migrate]=0 [work]=1 [check]=2 [resync]=2)

log() { printf '[openstack %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "FAILED: $*"
	exit 1
}

# port_in_use, spare_port, MYSQL_CLIENT, wait_tcp, stop_pid,
# start_private_mariadb, end_work and trap_cleanup (the exit trap below uses
# them).
# shellcheck source=../lib/servers.sh
source "$REPO/tests/lib/servers.sh"

WORK=""
FOG_PID=""
MARIA_PID=""
WAN_PID=""
SITE_PID=()
T0=$(date +%s)

cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	stop_pid "$FOG_PID" fogdb
	# Joiners first, the node that bootstrapped the cluster last.
	for ((i = ${#SITE_PID[@]} - 1; i >= 0; i--)); do
		stop_pid "${SITE_PID[i]}" "fogdb at ${SITES[i]}"
	done
	stop_pid "$WAN_PID" fogwan
	stop_pid "$MARIA_PID" mariadbd
	end_work "$rc" "$OS_KEEP"
}
trap_cleanup

# ---------------------------------------------------------------- packages

PY_MODULES=(nova.cmd.manage keystone.cmd.manage glance.cmd.manage sqlalchemy pymysql oslo_db)
PACKAGES=(python3-nova python3-keystone python3-glance python3-sqlalchemy
	python3-pymysql python3-oslo.db mariadb-server mariadb-client)

have_packages() {
	[[ -x $PY ]] &&
		"$PY" -c "import importlib.util, sys
sys.exit(any(importlib.util.find_spec(m) is None for m in sys.argv[1:]))" "${PY_MODULES[@]}" >/dev/null 2>&1 &&
		[[ -x /usr/sbin/mariadbd ]] && command -v mariadb-install-db >/dev/null 2>&1 &&
		command -v mariadb >/dev/null 2>&1
}

install_packages() {
	have_packages && return 0
	[[ $(id -u) == 0 ]] || die "missing packages (${PACKAGES[*]}): run as root, or install them first"
	log "installing ${PACKAGES[*]}"
	# invoke-rc.d and deb-systemd-invoke honour policy-rc.d: exit status 101
	# forbids starting services. An existing policy is left as it is.
	local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		made_policy=1
	fi
	{
		apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
				-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
				"${PACKAGES[@]}"
	} >&2 || rc=$?
	if ((made_policy)); then
		rm -f "$policy"
	fi
	((rc == 0)) || die "apt-get install (exit $rc)"
	have_packages || die "packages installed, but $PY cannot import: ${PY_MODULES[*]}"
}

# ---------------------------------------------------------------- servers

DATABASES=(nova_api nova nova_cell0 keystone glance)

create_databases() {
	local port=$1 name=$2 sql="" db
	for db in "${DATABASES[@]}"; do
		sql+="CREATE DATABASE \`$db\`; "
	done
	"${MYSQL_CLIENT[@]}" -P"$port" -e "$sql" || die "creating the databases on $name"
}

start_fogdb() {
	local logf=$WORK/fogdb.log
	# shellcheck disable=SC2086 # OS_FOGDB_ARGS is a list of flags
	"$WORK/bin/fogdb" --mysql-addr "127.0.0.1:$FOG_PORT" --data-dir "$WORK/fogdb-data" --admin-addr 127.0.0.1:0 --peer-addr 127.0.0.1:0 \
		$OS_FOGDB_ARGS >"$logf" 2>&1 &
	FOG_PID=$!
	wait_tcp fogdb "$FOG_PID" "$FOG_PORT" "$logf"
	grep -Eq "fogdb serving MySQL.* addr=127\.0\.0\.1:$FOG_PORT( |\$)" "$logf" ||
		die "something else answers on 127.0.0.1:$FOG_PORT (see $logf)"
	create_databases "$FOG_PORT" fogdb
}

# pick_port VAR: sets VAR to a spare loopback port, none picked before.
PICKED=()
pick_port() {
	local p
	p=$(spare_port "${PICKED[@]}") || die "no spare port"
	PICKED+=("$p")
	printf -v "$1" '%s' "$p"
}

# start_sites: the three-site cluster. A fogwan process carries every
# connection between nodes, one link per node: each node advertises its
# link as its peer address, so the others dial it through the emulator.
# Nodes on one host all connect from 127.0.0.1, so fogwan cannot tell their
# sites apart and delays every link by its default (OS_WAN_DELAY each way).
# Sets SITE_PORT, SITE_ADMIN and SITE_PID, one entry per site.
start_sites() {
	local d=$WORK/sites i logf secret
	local peer=() link=() args=()
	mkdir -p "$d"
	for i in "${!SITES[@]}"; do
		pick_port "SITE_PORT[$i]"
		pick_port "SITE_ADMIN[$i]"
		pick_port "peer[$i]"
		pick_port "link[$i]"
	done
	args=(--control-addr= --default-delay "$OS_WAN_DELAY")
	for i in "${!SITES[@]}"; do
		args+=(--link "n$((i + 1))=*:${SITES[i]},listen=127.0.0.1:${link[i]},target=127.0.0.1:${peer[i]}")
	done
	"$WORK/bin/fogwan" "${args[@]}" >"$d/fogwan.log" 2>&1 &
	WAN_PID=$!
	local deadline=$((SECONDS + 30))
	while (($(grep -c 'msg=link ' "$d/fogwan.log" || true) < ${#SITES[@]})); do
		kill -0 "$WAN_PID" 2>/dev/null || die "fogwan exited during startup (see $d/fogwan.log)"
		((SECONDS < deadline)) || die "fogwan did not open its links within 30 s (see $d/fogwan.log)"
		sleep 0.1
	done
	# Made up for this run; passed in the environment, out of ps.
	secret=$(head -c 32 /dev/urandom | base64)
	for i in "${!SITES[@]}"; do
		logf=$d/fogdb-${SITES[i]}.log
		args=(--mysql-addr "127.0.0.1:${SITE_PORT[i]}" --admin-addr "127.0.0.1:${SITE_ADMIN[i]}"
			--data-dir "$d/data-${SITES[i]}" --node-id "${SITES[i]}-1" --site "${SITES[i]}"
			--peer-addr "127.0.0.1:${peer[i]}" --advertise-peer-addr "127.0.0.1:${link[i]}")
		if ((i == 0)); then
			args+=(--placement "$REPO/docs/placement/openstack.yaml")
		else
			args+=(--join "127.0.0.1:${link[0]}")
		fi
		# shellcheck disable=SC2086 # OS_FOGDB_ARGS is a list of flags
		FOGDB_CLUSTER_SECRET=$secret "$WORK/bin/fogdb" "${args[@]}" $OS_FOGDB_ARGS >"$logf" 2>&1 &
		SITE_PID[i]=$!
		wait_tcp "fogdb at ${SITES[i]}" "${SITE_PID[i]}" "${SITE_PORT[i]}" "$logf"
		grep -Eq "fogdb serving MySQL.* addr=127\.0\.0\.1:${SITE_PORT[i]}( |\$)" "$logf" ||
			die "something else answers on 127.0.0.1:${SITE_PORT[i]} (see $logf)"
	done
	"$PY" "$HERE/sites.py" formed --timeout 120 "${SITE_ADMIN[@]/#/127.0.0.1:}" ||
		die "the three-site cluster did not form (logs in $d)"
	create_databases "${SITE_PORT[${ROLE_SITE[migrate]}]}" "the three-site cluster"
}

# start_mariadb: the character set and collation Debian's mariadb-server
# configures (and MySQL 8's default character set); otherwise stock settings.
start_mariadb() {
	start_private_mariadb --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci
	create_databases "$MARIA_PORT" mariadb
}

# ---------------------------------------------------------------- services

# write_configs DIR PORT: minimal configuration files in DIR, for the
# server on PORT.
write_configs() {
	local d=$1 port=$2
	local url="mysql+pymysql://root@127.0.0.1:$port"
	mkdir -p "$d/state" "$d/lock"
	cat >"$d/nova.conf" <<-EOF
		[DEFAULT]
		# create_cell records it; nothing connects to it.
		transport_url = rabbit://guest:guest@127.0.0.1:9/
		state_path = $d/state
		[api_database]
		connection = $url/nova_api
		[database]
		connection = $url/nova
		[oslo_concurrency]
		lock_path = $d/lock
	EOF
	cat >"$d/keystone.conf" <<-EOF
		[database]
		connection = $url/keystone
		[fernet_tokens]
		key_repository = $d/fernet-keys
		[fernet_receipts]
		key_repository = $d/fernet-keys
	EOF
	cat >"$d/glance-api.conf" <<-EOF
		[database]
		connection = $url/glance
	EOF
}

NOVA_MANAGE=("$PY" -c 'import sys; sys.argv[0] = "nova-manage"; from nova.cmd.manage import main; sys.exit(main())')
KEYSTONE_MANAGE=("$PY" -c 'import sys; sys.argv[0] = "keystone-manage"; from keystone.cmd.manage import main; sys.exit(main())')
GLANCE_MANAGE=("$PY" -c 'import sys; sys.argv[0] = "glance-manage"; from glance.cmd.manage import main; sys.exit(main())')

# on SERVER ROLE: where SERVER does ROLE's part of the work (migrate, work,
# check, resync; see ROLE_SITE): sets ON (the server, with @SITE for a node
# of the three-site cluster), PORT and CONF (its configuration directory).
on() {
	local srv=$1 role=$2 i
	case $srv in
	mariadb) ON=mariadb PORT=$MARIA_PORT CONF=$WORK/mariadb ;;
	fogdb) ON=fogdb PORT=$FOG_PORT CONF=$WORK/fogdb ;;
	sites)
		i=${ROLE_SITE[$role]}
		ON=sites@${SITES[i]} PORT=${SITE_PORT[i]} CONF=$WORK/sites/${SITES[i]}
		;;
	*) die "unknown server $srv" ;;
	esac
}

# nodes SERVER: "LABEL PORT" for each node of SERVER (the sites' names for
# the three-site cluster, "-" for a server of one node).
nodes() {
	local i
	if [[ $1 == sites ]]; then
		for i in "${!SITES[@]}"; do
			echo "${SITES[i]} ${SITE_PORT[i]}"
		done
	else
		on "$1" migrate
		echo "- $PORT"
	fi
}

STEP_N=0

# step SERVER[@SITE] SERVICE NAME WANT_RC CMD...: runs one command, logs it,
# and records the first failure of SERVICE on SERVER in
# $WORK/SERVER/SERVICE.fail. Returns non-zero on failure (the service's later
# steps are then skipped). On the three-site cluster a step starts once
# every node has applied what the cluster had committed.
step() {
	local srv=${1%@*} at=$1 svc=$2 name=$3 want=$4
	shift 4
	STEP_N=$((STEP_N + 1))
	local logf
	logf=$(printf '%s/%s/logs/%02d-%s-%s.log' "$WORK" "$srv" "$STEP_N" "$svc" "${name// /_}")
	local t0 t1 rc=0
	t0=$(date +%s.%N)
	if [[ $srv == sites ]] &&
		! "$PY" "$HERE/sites.py" caught-up --timeout 60 "${SITE_ADMIN[@]/#/127.0.0.1:}" >"$logf" 2>&1; then
		rc=125
	else
		echo "# at $at" >"$logf"
		timeout --kill-after=10 "$OS_STEP_TIMEOUT" "$@" >>"$logf" 2>&1 || rc=$?
	fi
	t1=$(date +%s.%N)
	local secs
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	printf '%s\t%s\t%s\t%s\t%s\n' "$srv" "$svc" "$name" "$rc" "$secs" >>"$WORK/timings.tsv"
	if [[ " $want " == *" $rc "* ]]; then
		log "$at: $svc: $name: ok (${secs}s)"
		return 0
	fi
	local why
	if ((rc == 124 || rc == 137)); then
		why="timed out after ${OS_STEP_TIMEOUT}s"
	elif ((rc == 125)) && [[ $srv == sites ]]; then
		why="the nodes did not catch up with each other"
	else
		why="exit $rc, want $want"
	fi
	local err
	err=$(error_summary "$logf")
	log "$at: $svc: $name: FAILED ($why, ${secs}s; log $logf)"
	[[ -z $err ]] || printf '    %s\n' "$err" >&2
	[[ -e $WORK/$srv/$svc.fail ]] ||
		printf '"%s" on %s: %s%s\n' "$name" "$at" "$why" "${err:+: $err}" >"$WORK/$srv/$svc.fail"
	return 1
}

# error_summary LOG: the last error a command printed, with the SQL
# statement that caused it when SQLAlchemy reported one.
error_summary() {
	"$PY" - "$1" <<-'EOF'
		import re, sys
		text = open(sys.argv[1], errors="replace").read()
		lines = [re.sub(r"\x1b\[[0-9;]*m", "", l) for l in text.splitlines()]
		# Strip oslo.log's "date pid LEVEL logger [req]" prefix.
		lines = [re.sub(r"^\d{4}-\d\d-\d\d [\d:.]+ \d+ [A-Z]+ [\w.]+ (\[[^\]]*\] )?", "", l)
		         for l in lines]
		def one_line(s, n):
		    s = " ".join(s.split())
		    return s if len(s) <= n else s[:n] + " ..."
		# oslo_check.py says which check failed.
		checks = [l for l in lines if l.startswith("CHECK FAILED: ")]
		if checks:
		    print(one_line(checks[0][len("CHECK FAILED: "):], 700))
		    sys.exit()
		# Else the last MySQL error reported, "(1105, '...')", and the
		# statement SQLAlchemy printed after it.
		at = None
		for i, l in enumerate(lines):
		    if re.search(r"\(\d{4}, ['\"]", l) and not l.startswith("[SQL: "):
		        at = i
		if at is None:
		    for i, l in enumerate(lines):
		        if re.search(r"(Error|Exception)\b", l) and "Background on this error" not in l \
		                and "Exception ignored" not in l and "getcurrent" not in l \
		                and not l.startswith((" ", "Traceback")):
		            at = i
		if at is None:
		    tail = [l for l in lines if l.strip()]
		    print(one_line(tail[-1], 400) if tail else "")
		    sys.exit()
		out = one_line(lines[at], 400)
		for j in range(at, min(at + 60, len(lines))):
		    if lines[j].startswith("[SQL: "):
		        s, k = lines[j][6:], j + 1
		        while not s.rstrip().endswith("]") and k < len(lines) and k < j + 200:
		            s += " " + lines[k]
		            k += 1
		        out += " [SQL: " + one_line(s.rstrip().rstrip("]"), 300) + "]"
		        break
		print(out)
	EOF
}

# dump_final SERVER SERVICE DB...: the dump the verdict compares, from every
# node of SERVER: $WORK/SERVER/SERVICE.json from a server of one node,
# SERVICE@SITE.json from each site's node.
dump_final() {
	local srv=$1 svc=$2 label port out rc=0
	shift 2
	while read -r label port; do
		if [[ $label == - ]]; then
			out=$WORK/$srv/$svc.json
			step "$srv" "$svc" "dump" 0 "$PY" "$HERE/schema.py" dump --port "$port" --out "$out" "$@" || rc=1
		else
			out=$WORK/$srv/$svc@$label.json
			step "$srv@$label" "$svc" "dump at $label" 0 "$PY" "$HERE/schema.py" dump --port "$port" --out "$out" "$@" || rc=1
		fi
	done < <(nodes "$srv")
	return "$rc"
}

run_nova() {
	local srv=$1 d=$WORK/$1
	local m w r
	on "$srv" migrate
	m=$ON
	local nm=("${NOVA_MANAGE[@]}" --config-file "$CONF/nova.conf")
	on "$srv" work
	w=$ON
	local nw=("${NOVA_MANAGE[@]}" --config-file "$CONF/nova.conf")
	local wconf=$CONF/nova.conf
	on "$srv" resync
	r=$ON
	local nr=("${NOVA_MANAGE[@]}" --config-file "$CONF/nova.conf")
	# The cell mappings hold Nova's URL templates, which each service fills
	# in from its own [database]/connection: every site reaches the cell
	# databases through its own node, as every controller of a deployment
	# reaches them through the sidecar on its localhost.
	local cells='{scheme}://{username}@{hostname}:{port}'
	step "$m" nova "api_db sync" 0 "${nm[@]}" api_db sync &&
		step "$m" nova "cell_v2 map_cell0" 0 "${nm[@]}" cell_v2 map_cell0 --database_connection "$cells/nova_cell0" &&
		step "$m" nova "db sync" 0 "${nm[@]}" db sync &&
		step "$m" nova "cell_v2 create_cell" 0 "${nm[@]}" cell_v2 create_cell --name cell1 \
			--database_connection "$cells/nova" --verbose &&
		step "$w" nova "seed instances (nova_seed.py)" 0 "$PY" "$HERE/nova_seed.py" "$wconf" &&
		step "$w" nova "db online_data_migrations" 0 "${nw[@]}" db online_data_migrations &&
		# Exit 1: rows were archived (0 would mean none were).
		step "$w" nova "db archive_deleted_rows --all-cells" 1 \
			"${nw[@]}" db archive_deleted_rows --all-cells --verbose &&
		# Exit 0: rows were purged (3 would mean none were).
		step "$w" nova "db purge --all --all-cells" 0 "${nw[@]}" db purge --all --all-cells --verbose &&
		step "$r" nova "dump before the second sync" 0 \
			"$PY" "$HERE/schema.py" dump --port "$PORT" --out "$d/nova-before.json" nova_api nova nova_cell0 &&
		step "$r" nova "api_db sync (again)" 0 "${nr[@]}" api_db sync &&
		step "$r" nova "db sync (again)" 0 "${nr[@]}" db sync &&
		dump_final "$srv" nova nova_api nova nova_cell0 &&
		check_placed "$srv" nova --local nova.instances --local nova.instance_extra \
			--local nova.instance_id_mappings --local nova.tags --local nova.shadow_instances \
			--local nova_cell0.instances nova_api nova nova_cell0 &&
		check_at_home "$srv" nova "SELECT uuid, deleted FROM nova.instances WHERE host = 'compute-1'"
}

# check_placed SERVER SERVICE [--local DB.TABLE]... DB...: on the three-site
# cluster, every table of the service's databases holds its rows where the
# placement file puts it, and the tables named are local (sites.py placed).
check_placed() {
	local srv=$1 svc=$2
	shift 2
	[[ $srv == sites ]] || return 0
	on "$srv" check
	step "$ON" "$svc" "tables placed as the placement file says" 0 "$PY" "$HERE/sites.py" placed --port "$PORT" "$@"
}

# check_at_home SERVER SERVICE SQL: on the three-site cluster, the rows SQL
# reads are stored at the site that wrote them (the work site): read there
# without a round trip to another site, and from another site with some.
check_at_home() {
	local srv=$1 svc=$2 query=$3 home away
	[[ $srv == sites ]] || return 0
	on "$srv" work
	home=$PORT
	on "$srv" migrate
	away=$PORT
	on "$srv" work
	step "$ON" "$svc" "rows stored at their site" 0 "$PY" "$HERE/sites.py" at-home --home "$home" --away "$away" "$query"
}

run_keystone() {
	local srv=$1 d=$WORK/$1
	local m r
	on "$srv" migrate
	m=$ON
	local km=("${KEYSTONE_MANAGE[@]}" --config-file "$CONF/keystone.conf")
	on "$srv" resync
	r=$ON
	local kr=("${KEYSTONE_MANAGE[@]}" --config-file "$CONF/keystone.conf")
	step "$m" keystone "db_sync" 0 "${km[@]}" db_sync &&
		step "$m" keystone "fernet_setup" 0 "${km[@]}" fernet_setup \
			--keystone-user "$(id -un)" --keystone-group "$(id -gn)" &&
		step "$m" keystone "bootstrap" 0 "${km[@]}" bootstrap \
			--bootstrap-password 'compat-S3cret' --bootstrap-username admin \
			--bootstrap-project-name admin --bootstrap-role-name admin \
			--bootstrap-service-name keystone --bootstrap-region-id RegionOne \
			--bootstrap-admin-url http://127.0.0.1:5000/v3/ \
			--bootstrap-internal-url http://127.0.0.1:5000/v3/ \
			--bootstrap-public-url http://127.0.0.1:5000/v3/ &&
		step "$r" keystone "dump before the second sync" 0 \
			"$PY" "$HERE/schema.py" dump --port "$PORT" --out "$d/keystone-before.json" keystone &&
		step "$r" keystone "db_sync (again)" 0 "${kr[@]}" db_sync &&
		dump_final "$srv" keystone keystone &&
		check_placed "$srv" keystone keystone
}

run_glance() {
	local srv=$1 d=$WORK/$1
	local m r
	on "$srv" migrate
	m=$ON
	local gm=("${GLANCE_MANAGE[@]}" --config-file "$CONF/glance-api.conf")
	on "$srv" resync
	r=$ON
	local gr=("${GLANCE_MANAGE[@]}" --config-file "$CONF/glance-api.conf")
	step "$m" glance "db_sync" 0 "${gm[@]}" db_sync &&
		step "$r" glance "dump before the second sync" 0 \
			"$PY" "$HERE/schema.py" dump --port "$PORT" --out "$d/glance-before.json" glance &&
		step "$r" glance "db_sync (again)" 0 "${gr[@]}" db_sync &&
		dump_final "$srv" glance glance &&
		check_placed "$srv" glance glance
}

# nova_reports SERVER: what archiving and purging said they did, without
# the cell UUIDs.
nova_reports() {
	local logs=$WORK/$1/logs
	{
		grep -h '^|' "$logs"/*-nova-db_archive_deleted_rows* | grep -v -E '^\| Table ' | tr -s ' ' || true
		grep -h -o 'Deleted [0-9]* rows from .*' "$logs"/*-nova-db_purge* || true
	}
}

# ---------------------------------------------------------------- verdicts

declare -A RESULT

# label SERVER: how the checks of SERVER are named in the results.
label() {
	case $1 in
	sites) echo " (3 sites)" ;;
	*) echo "" ;;
	esac
}

# verdict SERVICE SERVER: compares SERVER's run of SERVICE with MariaDB's.
verdict() {
	local svc=$1 srv=$2 m=$WORK/mariadb f=$WORK/$2 key out
	key=$svc$(label "$srv")
	out=$WORK/$svc-$srv.diff
	: >"$out"
	if [[ -e $m/$svc.fail ]]; then
		RESULT[$key]="FAIL (on MariaDB, the reference: the check itself is broken) $(cat "$m/$svc.fail")"
		return
	fi
	if [[ -e $f/$svc.fail ]]; then
		RESULT[$key]="FAIL $(cat "$f/$svc.fail")"
		return
	fi
	# The second sync changed nothing, on either server (on the node that
	# ran it).
	local s after node port
	for s in mariadb "$srv"; do
		on "$s" resync
		after=$WORK/$s/$svc.json
		[[ $s != sites ]] || after=$WORK/$s/$svc@${ON#*@}.json
		if ! "$PY" "$HERE/schema.py" diff --labels before,after \
			"$WORK/$s/$svc-before.json" "$after" >"$WORK/$s/$svc-resync.diff"; then
			sed "s/^/$ON: second sync changed /" "$WORK/$s/$svc-resync.diff" >>"$out"
		fi
	done
	# The same schema, versions and row counts as MariaDB's, on every node;
	# and on every node of the cluster, the same definitions as printed.
	local first=""
	while read -r node port; do
		if [[ $node == - ]]; then
			"$PY" "$HERE/schema.py" diff --labels "mariadb,$srv" "$m/$svc.json" "$f/$svc.json" >>"$out" || true
			continue
		fi
		"$PY" "$HERE/schema.py" diff --labels "mariadb,$srv@$node" "$m/$svc.json" "$f/$svc@$node.json" >>"$out" || true
		if [[ -z $first ]]; then
			first=$node
		else
			"$PY" "$HERE/schema.py" diff --raw --labels "$srv@$first,$srv@$node" \
				"$f/$svc@$first.json" "$f/$svc@$node.json" >>"$out" || true
		fi
	done < <(nodes "$srv")
	if [[ $svc == nova ]] && ! diff <(nova_reports mariadb) <(nova_reports "$srv") >"$WORK/nova-reports-$srv.diff"; then
		sed "s/^/archive or purge reported differently (< mariadb, > $srv): /" \
			"$WORK/nova-reports-$srv.diff" | grep -E ': [<>]' >>"$out"
	fi
	if [[ -s $out ]]; then
		RESULT[$key]="FAIL $(head -n 1 "$out") ($(wc -l <"$out") differences, all in $out)"
	else
		RESULT[$key]=PASS
	fi
}

# verdict_oslo SERVER: oslo_check.py's outcome on SERVER.
verdict_oslo() {
	local srv=$1 key svc
	key=oslo$(label "$srv")
	if [[ -e $WORK/mariadb/oslo.fail ]]; then
		RESULT[$key]="FAIL (on MariaDB, the reference: the check itself is broken) $(cat "$WORK/mariadb/oslo.fail")"
	elif [[ -e $WORK/$srv/oslo.fail ]]; then
		RESULT[$key]="FAIL $(cat "$WORK/$srv/oslo.fail")"
		for svc in nova keystone; do
			[[ ! -e $WORK/$srv/$svc.fail ]] || RESULT[$key]+=" (and $svc's commands failed on $srv before it)"
		done
	else
		RESULT[$key]=PASS
	fi
}

# ---------------------------------------------------------------- main

install_packages
command -v go >/dev/null 2>&1 || die "go not found"
"$PY" "$HERE/schema.py" selftest >&2 || die "schema.py selftest"
RUNS=(mariadb)
for r in $OS_RUNS; do
	case $r in
	fogdb | sites) RUNS+=("$r") ;;
	*) die "OS_RUNS: unknown run $r (fogdb, sites)" ;;
	esac
done

WORK=$(mktemp -d /tmp/fogdb-openstack.XXXXXX)
: >"$WORK/timings.tsv"
log "work directory $WORK"
log "building fogdb and fogwan from $REPO"
if [[ -n $OS_FOGDB ]]; then
	log "using fogdb binary $OS_FOGDB"
	mkdir -p "$WORK/bin"
	cp "$OS_FOGDB" "$WORK/bin/fogdb" || die "copying $OS_FOGDB"
else
	(cd "$REPO" && go build -o "$WORK/bin/fogdb" ./cmd/fogdb) || die "go build ./cmd/fogdb"
fi
(cd "$REPO" && go build -o "$WORK/bin/fogwan" ./cmd/fogwan) || die "go build ./cmd/fogwan"

pick_port FOG_PORT
pick_port MARIA_PORT
log "starting fogdb on 127.0.0.1:$FOG_PORT and MariaDB on 127.0.0.1:$MARIA_PORT"
start_fogdb
start_mariadb
if [[ " ${RUNS[*]} " == *" sites "* ]]; then
	t_sites=$(date +%s)
	log "starting fogdb at ${SITES[*]}, $OS_WAN_DELAY apart each way"
	start_sites
	log "three-site cluster formed in $(($(date +%s) - t_sites))s: MySQL at ${SITES[*]} on ports ${SITE_PORT[*]}"
fi
T_SETUP=$(($(date +%s) - T0))
declare -A T_RUN

for srv in "${RUNS[@]}"; do
	t_run=$(date +%s)
	mkdir -p "$WORK/$srv/logs"
	if [[ $srv == sites ]]; then
		for i in "${!SITES[@]}"; do
			write_configs "$WORK/sites/${SITES[i]}" "${SITE_PORT[i]}"
		done
	else
		on "$srv" migrate
		write_configs "$CONF" "$PORT"
	fi
	for svc in "${SERVICES[@]}"; do
		"run_$svc" "$srv" || true
	done
	# The runtime check, after the dumps (it adds rows). On the three
	# sites, the second of the two sessions updating one instance goes
	# through the node of another site than the first.
	other=()
	if [[ $srv == sites ]]; then
		on "$srv" migrate
		other=(--other-port "$PORT")
	fi
	on "$srv" check
	step "$ON" oslo "oslo_check.py" 0 "$PY" "$HERE/oslo_check.py" --port "$PORT" \
		--server "$srv" --nova-conf "$CONF/nova.conf" "${other[@]}" || true
	T_RUN[$srv]=$(($(date +%s) - t_run))
done

CHECKS=()
for srv in "${RUNS[@]:1}"; do
	for svc in "${SERVICES[@]}"; do
		verdict "$svc" "$srv"
		CHECKS+=("$svc$(label "$srv")")
	done
	verdict_oslo "$srv"
	CHECKS+=("oslo$(label "$srv")")
done

# Timings: each step on each server.
{
	echo "seconds per step (${RUNS[*]}):"
	awk -F'\t' -v runs="${RUNS[*]}" '
		BEGIN { nr = split(runs, r, " ") }
		{ k = $2 ": " $3; if (!(k in seen)) { seen[k] = 1; order[++n] = k } t[$1, k] = $5 }
		END { for (i = 1; i <= n; i++) { k = order[i]; line = sprintf("  %-48s", k)
			for (j = 1; j <= nr; j++) line = line sprintf(" %s%6s", j > 1 ? "/ " : "", ((r[j], k) in t) ? t[r[j], k] : "-")
			print line } }' "$WORK/timings.tsv"
	printf '  setup (build, start the servers): %ss;' "$T_SETUP"
	for srv in "${RUNS[@]}"; do
		printf ' %s run: %ss;' "$srv" "${T_RUN[$srv]}"
	done
	echo " total: $(($(date +%s) - T0))s"
} >&2

passed=0 failed=0
for check in "${CHECKS[@]}"; do
	echo "$check: ${RESULT[$check]}"
	if [[ ${RESULT[$check]} == PASS ]]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
done
echo "openstack: $passed passed, $failed failed"
((failed == 0))
