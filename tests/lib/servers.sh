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
# the EXCLUDE ports (picked already, not yet bound).
spare_port() {
	local p i
	for ((i = 0; i < 500; i++)); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
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
