# shellcheck shell=bash
# Helpers shared by the scripts that start servers of their own
# (tests/bench/sysbench.sh, tests/bench/cluster.sh, tests/compat/openstack.sh).
# Source it after defining die MESSAGE and log MESSAGE. Servers are reached
# on loopback only.

port_in_use() {
	# A successful connect means something listens there.
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# spare_port [EXCLUDE...]: a loopback port nothing listens on, other than
# the EXCLUDE ports (picked already, not yet bound). Drawn from 20000-31999,
# below Linux's ephemeral range (32768-60999), as internal/freeport does:
# there no outgoing connection (a client's, or a node dialling its peers)
# can take the port as its source port before the server binds it.
spare_port() {
	local p i
	for ((i = 0; i < 500; i++)); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
		[[ " $* " != *" $p "* ]] || continue
		if ! port_in_use "$p"; then
			echo "$p"
			return 0
		fi
	done
	die "no spare loopback port found"
}

MYSQL_CLIENT=(mariadb --no-defaults --protocol=TCP -h127.0.0.1 -uroot --connect-timeout=2)

# mysql_at PORT [ARGS...]: MYSQL_CLIENT against 127.0.0.1:PORT, given up
# after MYSQL_AT_TIMEOUT seconds (default 60).
mysql_at() {
	local port=$1
	shift
	timeout -k 5 "${MYSQL_AT_TIMEOUT:-60}" "${MYSQL_CLIENT[@]}" -P"$port" "$@"
}

# wait_tcp NAME PID PORT LOG: until the server answers on PORT (and is still ours).
wait_tcp() {
	local name=$1 pid=$2 port=$3 logf=$4 deadline=$((SECONDS + 60))
	while ((SECONDS < deadline)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$logf" >&2 || true
			die "$name exited during startup (log above, $logf)"
		fi
		if MYSQL_AT_TIMEOUT=5 mysql_at "$port" -e 'SELECT 1' >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	tail -n 30 "$logf" >&2 || true
	die "$name did not answer on 127.0.0.1:$port within 60 s"
}

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

# find_mariadbd: the path of the MariaDB server binary.
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

# start_private_mariadb [MARIADBD FLAG...]: a MariaDB of this script's own
# on MARIA_PORT (loopback only) with its data, socket and logs in WORK, root
# reachable over TCP from loopback without a password (like fogdb's root);
# sets MARIA_PID. The flags are added to the server's command line.
start_private_mariadb() {
	local mariadbd dir=$WORK/mariadb-data sock=$WORK/mariadb.sock i sockport
	mariadbd=$(find_mariadbd) || die "mariadbd not found"
	mkdir -p "$dir" "$WORK/mariadb-tmp"
	mariadb-install-db --no-defaults --datadir="$dir" --user=root \
		--auth-root-authentication-method=socket --skip-test-db \
		>"$WORK/mariadb-install.log" 2>&1 ||
		{
			tail -n 30 "$WORK/mariadb-install.log" >&2
			die "mariadb-install-db"
		}
	"$mariadbd" --no-defaults --user=root --datadir="$dir" \
		--socket="$sock" --port="$MARIA_PORT" --bind-address=127.0.0.1 \
		--pid-file="$WORK/mariadb.pid" --log-error="$WORK/mariadb.log" \
		--tmpdir="$WORK/mariadb-tmp" --skip-name-resolve "$@" \
		>"$WORK/mariadb.out" 2>&1 &
	MARIA_PID=$!
	for ((i = 0; i < 600; i++)); do
		kill -0 "$MARIA_PID" 2>/dev/null || {
			tail -n 30 "$WORK/mariadb.log" "$WORK/mariadb.out" >&2 || true
			die "mariadbd exited during startup"
		}
		[[ -S $sock ]] && mariadb --no-defaults --socket="$sock" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
		sleep 0.1
	done
	((i < 600)) || die "mariadbd did not answer on $sock within 60 s"
	timeout 60 mariadb --no-defaults --socket="$sock" -uroot -e "
		CREATE USER 'root'@'127.0.0.1';
		GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;" ||
		die "creating MariaDB's TCP root user"
	wait_tcp mariadbd "$MARIA_PID" "$MARIA_PORT" "$WORK/mariadb.log"
	# With the socket answering as our root, check TCP reaches the same server.
	sockport=$(mysql_at "$MARIA_PORT" -N -e 'SELECT @@port') || die "MariaDB over TCP"
	[[ $sockport == "$MARIA_PORT" ]] || die "something else answers on 127.0.0.1:$MARIA_PORT"
}

# end_work RC KEEP: the end of a script's cleanup: WORK is kept (and named)
# when KEEP is 1 or the script failed, removed otherwise; exits with RC.
end_work() {
	local rc=$1 keep=$2
	if [[ -n $WORK && -d $WORK ]]; then
		if [[ $keep == 1 || $rc -ne 0 ]]; then
			log "work directory kept: $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	exit "$rc"
}

# trap_cleanup: run the script's cleanup function on exit, and exit with
# the signal's status on SIGINT and SIGTERM (so cleanup runs then too).
trap_cleanup() {
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}
