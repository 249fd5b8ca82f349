#!/usr/bin/env bash
# A throwaway PostgreSQL server for the demo and the tests.
#
#   scripts/pg.sh start | stop | stop-immediate | restart | status | env | psql [ARGS...]
#
# Listens on 127.0.0.1:${AW_PG_PORT:-55432} and on a unix socket under the run directory
# (${AW_RUN_DIR:-<repo>/.run}/pg/sock). Trust authentication, superuser "postgres", database
# "assets". `eval "$(scripts/pg.sh env)"` sets PG_CONNINFO, PGHOST, PGPORT, PGUSER, PGDATABASE.
# `status` exits 0 when running, 3 when not. AW_PG_BINDIR overrides the newest
# /usr/lib/postgresql/*/bin.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
run_dir="${AW_RUN_DIR:-$repo/.run}"
port="${AW_PG_PORT:-55432}"
pg_link="$run_dir/pg"
db=assets
superuser=postgres

die() {
	echo "pg.sh: $*" >&2
	exit 1
}

find_bindir() {
	if [[ -n "${AW_PG_BINDIR:-}" ]]; then
		echo "$AW_PG_BINDIR"
		return
	fi
	local newest
	newest="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null |
		sort -V | tail -n 1)"
	[[ -n "$newest" ]] || die "no /usr/lib/postgresql/*/bin; run scripts/install-deps.sh"
	echo "$newest"
}
bindir="$(find_bindir)"

# PostgreSQL refuses to run as root. As root, the server runs as the "postgres" system user,
# which must be able to reach its data directory; the run directory may sit somewhere it cannot
# traverse (a checkout under /root, mode 700). So as root the data lives in a fresh directory
# under /tmp (world-traversable, sticky), owned by postgres, and $run_dir/pg is a symlink to it:
# the path in the run directory works for everyone, and the server is given the real path.
# Without root everything runs as the caller, in $run_dir/pg itself.
as_pg() {
	if ((EUID == 0)); then
		(cd / && runuser -u "$superuser" -- "$@")
	else
		"$@"
	fi
}

ensure_pg_user() {
	((EUID == 0)) || return 0
	if ! id -u "$superuser" >/dev/null 2>&1; then
		useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
			--shell /usr/sbin/nologin "$superuser"
	fi
}

# Prints the real directory holding data/, sock/ and server.log, creating it when asked.
pg_root() {
	local create="${1:-}"
	if [[ -L "$pg_link" && ! -d "$pg_link" ]]; then
		rm -f "$pg_link" # its /tmp directory is gone (reboot, cleanup): start afresh
	fi
	if [[ ! -e "$pg_link" && "$create" == create ]]; then
		mkdir -p "$run_dir"
		if ((EUID == 0)); then
			local dir
			dir="$(mktemp -d /tmp/aw-pg.XXXXXXXX)"
			chown "$superuser:" "$dir"
			chmod 755 "$dir"
			ln -sfn "$dir" "$pg_link"
		else
			mkdir -p "$pg_link"
		fi
	fi
	[[ -d "$pg_link" ]] || return 1
	readlink -f "$pg_link"
}

pg_paths() {
	root="$1"
	data="$root/data"
	sock="$root/sock"
	server_log="$root/server.log"
}

is_running() {
	[[ -f "$data/PG_VERSION" ]] && as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1
}

psql_cmd() {
	"$bindir/psql" -X -q -h 127.0.0.1 -p "$port" -U "$superuser" "$@"
}

init_cluster() {
	as_pg mkdir -p "$data" "$sock"
	as_pg chmod 700 "$data"
	as_pg "$bindir/initdb" -D "$data" -U "$superuser" --auth=trust --encoding=UTF8 \
		--locale=C >"$root/initdb.log" 2>&1 ||
		die "initdb failed; see $root/initdb.log"
	# A development server: durable (fsync on, crash tests rely on it), quiet, local only.
	# Port, address and socket directory are passed at start, so AW_PG_PORT may change.
	as_pg tee -a "$data/postgresql.conf" >/dev/null <<-EOF

		# --- asset-worker dev server (scripts/pg.sh) ---
		fsync = on
		max_connections = 100
		log_min_messages = warning
		logging_collector = off
		shared_buffers = 128MB
	EOF
}

cmd_start() {
	local root i
	ensure_pg_user
	root="$(pg_root create)" || die "cannot create $pg_link"
	pg_paths "$root"
	if is_running; then
		echo "pg.sh: already running on 127.0.0.1:$port ($data)"
	else
		[[ -f "$data/PG_VERSION" ]] || init_cluster
		as_pg mkdir -p "$sock"
		# 9>&-: the server must not inherit (and so hold) our lock.
		as_pg "$bindir/pg_ctl" -D "$data" -l "$server_log" -w -t 60 -o \
			"-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$sock" \
			start >/dev/null 9>&- ||
			die "server did not start; see $server_log"
	fi
	for ((i = 0; i < 60; i++)); do
		"$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" && break
		sleep 0.5
	done
	"$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" || die "not ready on 127.0.0.1:$port"
	if [[ "$(psql_cmd -d postgres -tAc "select 1 from pg_database where datname = '$db'")" != 1 ]]; then
		psql_cmd -d postgres -c "create database $db" >/dev/null
	fi
	echo "pg.sh: running on 127.0.0.1:$port, database $db ($data)"
}

cmd_stop() {
	local mode="$1" root
	root="$(pg_root)" || {
		echo "pg.sh: not initialized"
		return 0
	}
	pg_paths "$root"
	if is_running; then
		as_pg "$bindir/pg_ctl" -D "$data" -m "$mode" -w -t 60 stop >/dev/null
		echo "pg.sh: stopped ($mode)"
	else
		echo "pg.sh: not running"
	fi
}

cmd_status() {
	local root
	if root="$(pg_root)"; then
		pg_paths "$root"
		if is_running; then
			echo "pg.sh: running on 127.0.0.1:$port ($data)"
			return 0
		fi
	fi
	echo "pg.sh: not running"
	return 3
}

cmd_env() {
	cat <<-EOF
		export PG_CONNINFO='postgresql://$superuser@127.0.0.1:$port/$db'
		export PGHOST='127.0.0.1'
		export PGPORT='$port'
		export PGUSER='$superuser'
		export PGDATABASE='$db'
	EOF
}

# One at a time: tests may start the server from several places at once.
lock() {
	mkdir -p "$run_dir"
	exec 9>"$run_dir/pg.lock"
	flock -w 120 9 || die "timed out waiting for $run_dir/pg.lock"
}

case "${1:-}" in
start)
	lock
	cmd_start
	;;
stop)
	lock
	cmd_stop fast
	;;
stop-immediate)
	lock
	cmd_stop immediate
	;;
restart)
	lock
	cmd_stop fast
	cmd_start
	;;
status) cmd_status ;;
env) cmd_env ;;
psql)
	shift
	exec "$bindir/psql" -X -h 127.0.0.1 -p "$port" -U "$superuser" -d "$db" "$@"
	;;
*)
	echo "usage: scripts/pg.sh start|stop|stop-immediate|restart|status|env|psql [ARGS...]" >&2
	exit 2
	;;
esac
