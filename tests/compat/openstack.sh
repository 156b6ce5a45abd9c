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
#    loopback ports, and runs against each, unmodified:
#      nova:     api_db sync; cell_v2 map_cell0; db sync (main and cell0);
#                cell_v2 create_cell; nova_seed.py (four instances made and
#                two destroyed through Nova's DB API, so that archiving and
#                purging have rows to move); db online_data_migrations;
#                db archive_deleted_rows --all-cells; db purge --all
#                --all-cells; then api_db sync and db sync again
#      keystone: db_sync; fernet_setup (files only); bootstrap (admin user,
#                project, roles, region, endpoints); then db_sync again
#      glance:   db_sync; then db_sync again
# 3. Dumps each service's databases from both servers with schema.py
#    (tables; columns with types, defaults and nullability; indexes; foreign
#    keys; checks; triggers; migration version rows; row counts), with the
#    spellings that differ between MariaDB and MySQL 8 normalised, and
#    compares them; also compares what archiving and purging reported, and
#    the dumps taken before and after the second sync on each server (it
#    must change nothing).
# 4. Runs oslo_check.py against fogdb (and, as a control, MariaDB): rows of
#    Nova's instances and Keystone's user tables through oslo.db's
#    enginefacade, DBDuplicateEntry with the right columns, and two sessions
#    updating one instance concurrently through Nova's DB API.
#
# Prints one line per check, `nova: PASS` or `nova: FAIL <first difference>`
# (then keystone, glance, oslo), and last `openstack: N passed, M failed`.
# Exits non-zero when any check fails. Details go to stderr; the work
# directory (logs of every command, dumps, diffs) is kept when a check fails.
#
# Environment:
#   OS_KEEP=1          keep the work directory even when all checks pass
#   OS_STEP_TIMEOUT=300  seconds one command may take
#   OS_FOGDB_ARGS="--log-level debug"   extra fogdb flags
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/tests/compat
PY=/usr/bin/python3 # Debian's: a python3 earlier on PATH may not see its packages
OS_KEEP=${OS_KEEP:-0}
OS_STEP_TIMEOUT=${OS_STEP_TIMEOUT:-300}
OS_FOGDB_ARGS=${OS_FOGDB_ARGS:-}
SERVICES=(nova keystone glance)

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
T0=$(date +%s)

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_pid "$FOG_PID" fogdb
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

# start_mariadb: the character set and collation Debian's mariadb-server
# configures (and MySQL 8's default character set); otherwise stock settings.
start_mariadb() {
	start_private_mariadb --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci
	create_databases "$MARIA_PORT" mariadb
}

# ---------------------------------------------------------------- services

# write_configs SERVER PORT: minimal configuration files in $WORK/SERVER.
write_configs() {
	local srv=$1 port=$2 d=$WORK/$1
	local url="mysql+pymysql://root@127.0.0.1:$port"
	mkdir -p "$d/state" "$d/lock" "$d/logs"
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

STEP_N=0

# step SERVER SERVICE NAME WANT_RC CMD...: runs one command, logs it, and
# records the first failure of SERVICE on SERVER in $WORK/SERVER/SERVICE.fail.
# Returns non-zero on failure (the service's later steps are then skipped).
step() {
	local srv=$1 svc=$2 name=$3 want=$4
	shift 4
	STEP_N=$((STEP_N + 1))
	local logf
	logf=$(printf '%s/%s/logs/%02d-%s-%s.log' "$WORK" "$srv" "$STEP_N" "$svc" "${name// /_}")
	local t0 t1 rc=0
	t0=$(date +%s.%N)
	timeout --kill-after=10 "$OS_STEP_TIMEOUT" "$@" >"$logf" 2>&1 || rc=$?
	t1=$(date +%s.%N)
	local secs
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	printf '%s\t%s\t%s\t%s\t%s\n' "$srv" "$svc" "$name" "$rc" "$secs" >>"$WORK/timings.tsv"
	if [[ " $want " == *" $rc "* ]]; then
		log "$srv: $svc: $name: ok (${secs}s)"
		return 0
	fi
	local why
	if ((rc == 124 || rc == 137)); then
		why="timed out after ${OS_STEP_TIMEOUT}s"
	else
		why="exit $rc, want $want"
	fi
	local err
	err=$(error_summary "$logf")
	log "$srv: $svc: $name: FAILED ($why, ${secs}s; log $logf)"
	[[ -z $err ]] || printf '    %s\n' "$err" >&2
	[[ -e $WORK/$srv/$svc.fail ]] ||
		printf '"%s" on %s: %s%s\n' "$name" "$srv" "$why" "${err:+: $err}" >"$WORK/$srv/$svc.fail"
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

run_nova() {
	local srv=$1 port=$2 d=$WORK/$1
	local nm=("${NOVA_MANAGE[@]}" --config-file "$d/nova.conf")
	step "$srv" nova "api_db sync" 0 "${nm[@]}" api_db sync &&
		step "$srv" nova "cell_v2 map_cell0" 0 "${nm[@]}" cell_v2 map_cell0 &&
		step "$srv" nova "db sync" 0 "${nm[@]}" db sync &&
		step "$srv" nova "cell_v2 create_cell" 0 "${nm[@]}" cell_v2 create_cell --name cell1 --verbose &&
		step "$srv" nova "seed instances (nova_seed.py)" 0 "$PY" "$HERE/nova_seed.py" "$d/nova.conf" &&
		step "$srv" nova "db online_data_migrations" 0 "${nm[@]}" db online_data_migrations &&
		# Exit 1: rows were archived (0 would mean none were).
		step "$srv" nova "db archive_deleted_rows --all-cells" 1 \
			"${nm[@]}" db archive_deleted_rows --all-cells --verbose &&
		# Exit 0: rows were purged (3 would mean none were).
		step "$srv" nova "db purge --all --all-cells" 0 "${nm[@]}" db purge --all --all-cells --verbose &&
		step "$srv" nova "dump before the second sync" 0 \
			"$PY" "$HERE/schema.py" dump --port "$port" --out "$d/nova-before.json" nova_api nova nova_cell0 &&
		step "$srv" nova "api_db sync (again)" 0 "${nm[@]}" api_db sync &&
		step "$srv" nova "db sync (again)" 0 "${nm[@]}" db sync &&
		step "$srv" nova "dump" 0 "$PY" "$HERE/schema.py" dump --port "$port" --out "$d/nova.json" nova_api nova nova_cell0
}

run_keystone() {
	local srv=$1 port=$2 d=$WORK/$1
	local km=("${KEYSTONE_MANAGE[@]}" --config-file "$d/keystone.conf")
	step "$srv" keystone "db_sync" 0 "${km[@]}" db_sync &&
		step "$srv" keystone "fernet_setup" 0 "${km[@]}" fernet_setup \
			--keystone-user "$(id -un)" --keystone-group "$(id -gn)" &&
		step "$srv" keystone "bootstrap" 0 "${km[@]}" bootstrap \
			--bootstrap-password 'compat-S3cret' --bootstrap-username admin \
			--bootstrap-project-name admin --bootstrap-role-name admin \
			--bootstrap-service-name keystone --bootstrap-region-id RegionOne \
			--bootstrap-admin-url http://127.0.0.1:5000/v3/ \
			--bootstrap-internal-url http://127.0.0.1:5000/v3/ \
			--bootstrap-public-url http://127.0.0.1:5000/v3/ &&
		step "$srv" keystone "dump before the second sync" 0 \
			"$PY" "$HERE/schema.py" dump --port "$port" --out "$d/keystone-before.json" keystone &&
		step "$srv" keystone "db_sync (again)" 0 "${km[@]}" db_sync &&
		step "$srv" keystone "dump" 0 "$PY" "$HERE/schema.py" dump --port "$port" --out "$d/keystone.json" keystone
}

run_glance() {
	local srv=$1 port=$2 d=$WORK/$1
	local gm=("${GLANCE_MANAGE[@]}" --config-file "$d/glance-api.conf")
	step "$srv" glance "db_sync" 0 "${gm[@]}" db_sync &&
		step "$srv" glance "dump before the second sync" 0 \
			"$PY" "$HERE/schema.py" dump --port "$port" --out "$d/glance-before.json" glance &&
		step "$srv" glance "db_sync (again)" 0 "${gm[@]}" db_sync &&
		step "$srv" glance "dump" 0 "$PY" "$HERE/schema.py" dump --port "$port" --out "$d/glance.json" glance
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

# verdict SERVICE: compares the two servers' runs of SERVICE.
verdict() {
	local svc=$1 m=$WORK/mariadb f=$WORK/fogdb out=$WORK/$1.diff
	: >"$out"
	if [[ -e $m/$svc.fail ]]; then
		RESULT[$svc]="FAIL (on MariaDB, the reference: the check itself is broken) $(cat "$m/$svc.fail")"
		return
	fi
	if [[ -e $f/$svc.fail ]]; then
		RESULT[$svc]="FAIL $(cat "$f/$svc.fail")"
		return
	fi
	# The second sync changed nothing, on either server.
	local srv
	for srv in mariadb fogdb; do
		if ! "$PY" "$HERE/schema.py" diff --labels before,after \
			"$WORK/$srv/$svc-before.json" "$WORK/$srv/$svc.json" >"$WORK/$srv/$svc-resync.diff"; then
			sed "s/^/$srv: second sync changed /" "$WORK/$srv/$svc-resync.diff" >>"$out"
		fi
	done
	# The same schema, versions and row counts on both.
	"$PY" "$HERE/schema.py" diff --labels mariadb,fogdb "$m/$svc.json" "$f/$svc.json" >>"$out" || true
	if [[ $svc == nova ]] && ! diff <(nova_reports mariadb) <(nova_reports fogdb) >"$WORK/nova-reports.diff"; then
		sed 's/^/archive or purge reported differently (< mariadb, > fogdb): /' \
			"$WORK/nova-reports.diff" | grep -E ': [<>]' >>"$out"
	fi
	if [[ -s $out ]]; then
		RESULT[$svc]="FAIL $(head -n 1 "$out") ($(wc -l <"$out") differences, all in $out)"
	else
		RESULT[$svc]=PASS
	fi
}

# ---------------------------------------------------------------- main

install_packages
command -v go >/dev/null 2>&1 || die "go not found"
"$PY" "$HERE/schema.py" selftest >&2 || die "schema.py selftest"

WORK=$(mktemp -d /tmp/fogdb-openstack.XXXXXX)
: >"$WORK/timings.tsv"
log "work directory $WORK"
log "building fogdb from $REPO"
(cd "$REPO" && go build -o "$WORK/bin/fogdb" ./cmd/fogdb) || die "go build ./cmd/fogdb"

FOG_PORT=$(spare_port)
MARIA_PORT=$(spare_port "$FOG_PORT")
log "starting fogdb on 127.0.0.1:$FOG_PORT and MariaDB on 127.0.0.1:$MARIA_PORT"
start_fogdb
start_mariadb
T_SETUP=$(($(date +%s) - T0))

for srv in mariadb fogdb; do
	if [[ $srv == mariadb ]]; then port=$MARIA_PORT; else port=$FOG_PORT; fi
	write_configs "$srv" "$port"
	for svc in "${SERVICES[@]}"; do
		"run_$svc" "$srv" "$port" || true
	done
	# The runtime check, after the dumps (it adds rows).
	step "$srv" oslo "oslo_check.py" 0 "$PY" "$HERE/oslo_check.py" --port "$port" \
		--server "$srv" --nova-conf "$WORK/$srv/nova.conf" || true
done

for svc in "${SERVICES[@]}"; do
	verdict "$svc"
done
if [[ -e $WORK/mariadb/oslo.fail ]]; then
	RESULT[oslo]="FAIL (on MariaDB, the reference: the check itself is broken) $(cat "$WORK/mariadb/oslo.fail")"
elif [[ -e $WORK/fogdb/oslo.fail ]]; then
	RESULT[oslo]="FAIL $(cat "$WORK/fogdb/oslo.fail")"
	for svc in nova keystone; do
		[[ ! -e $WORK/fogdb/$svc.fail ]] || RESULT[oslo]+=" (and $svc's commands failed on fogdb before it)"
	done
else
	RESULT[oslo]=PASS
fi

# Timings: each step on each server.
{
	echo "seconds per step (mariadb / fogdb):"
	awk -F'\t' '{ k = $2 ": " $3; if (!(k in seen)) { seen[k] = 1; order[++n] = k } t[$1, k] = $5 }
		END { for (i = 1; i <= n; i++) { k = order[i]
			printf "  %-48s %6s / %6s\n", k, (("mariadb", k) in t) ? t["mariadb", k] : "-", (("fogdb", k) in t) ? t["fogdb", k] : "-" } }' \
		"$WORK/timings.tsv"
	echo "  setup (build, start servers): ${T_SETUP}s; total: $(($(date +%s) - T0))s"
} >&2

passed=0 failed=0
for check in "${SERVICES[@]}" oslo; do
	echo "$check: ${RESULT[$check]}"
	if [[ ${RESULT[$check]} == PASS ]]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
done
echo "openstack: $passed passed, $failed failed"
((failed == 0))
