#!/usr/bin/env bash
# The loopback Kafka broker (tools/dev_broker.c) for the demo and the tests.
#
#   scripts/broker.sh start [aw-dev-broker ARGS...]   e.g. start --brokers 3 --topic assets.create:8
#   scripts/broker.sh stop | status | env
#   scripts/broker.sh ctl COMMAND...                  e.g. ctl broker-down 1; ctl push-errors Produce 6 3
#
# Files in ${AW_RUN_DIR:-<repo>/.run}: broker.pid, broker.addr (bootstrap list), broker.ctl
# (control FIFO), broker.log. The binary is ${AW_BUILD_DIR:-<repo>/build}/tools/aw-dev-broker.
# `eval "$(scripts/broker.sh env)"` sets KAFKA_BROKERS. `status` exits 0 when running, 3 when not.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
run_dir="${AW_RUN_DIR:-$repo/.run}"
build_dir="${AW_BUILD_DIR:-$repo/build}"
binary="$build_dir/tools/aw-dev-broker"
pid_file="$run_dir/broker.pid"
addr_file="$run_dir/broker.addr"
ctl_fifo="$run_dir/broker.ctl"
log_file="$run_dir/broker.log"

die() {
	echo "broker.sh: $*" >&2
	exit 1
}

# Prints the pid of our running broker; fails when there is none. The pid must still be an
# aw-dev-broker, so a recycled pid is never mistaken for it (or killed).
running_pid() {
	local pid
	[[ -f "$pid_file" ]] || return 1
	pid="$(<"$pid_file")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'aw-dev-broker' || return 1
	echo "$pid"
}

cmd_start() {
	local pid i
	if pid="$(running_pid)"; then
		(($# == 0)) || echo "broker.sh: already running (pid $pid); arguments ignored: $*" >&2
		echo "broker.sh: already running on $(<"$addr_file") (pid $pid)"
		return 0
	fi
	[[ -x "$binary" ]] || die "no $binary; build first (cmake --build $build_dir)"
	mkdir -p "$run_dir"
	rm -f "$addr_file" "$pid_file"
	nohup "$binary" --address-file "$addr_file" --control "$ctl_fifo" "$@" \
		>>"$log_file" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$pid_file"
	for ((i = 0; i < 100; i++)); do
		[[ -s "$addr_file" ]] && break
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$log_file" >&2 || true
			rm -f "$pid_file"
			die "aw-dev-broker exited during startup; see $log_file"
		fi
		sleep 0.1
	done
	[[ -s "$addr_file" ]] || die "no address after 10 s; see $log_file"
	echo "broker.sh: running on $(<"$addr_file") (pid $pid)"
}

cmd_stop() {
	local pid i
	if ! pid="$(running_pid)"; then
		rm -f "$pid_file" "$addr_file"
		echo "broker.sh: not running"
		return 0
	fi
	kill -TERM "$pid"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
		echo "broker.sh: pid $pid did not stop in 10 s, killed" >&2
	fi
	rm -f "$pid_file" "$addr_file" "$ctl_fifo"
	echo "broker.sh: stopped"
}

cmd_status() {
	local pid
	if pid="$(running_pid)" && [[ -s "$addr_file" ]]; then
		echo "broker.sh: running on $(<"$addr_file") (pid $pid)"
		return 0
	fi
	echo "broker.sh: not running"
	return 3
}

cmd_env() {
	if ! running_pid >/dev/null || [[ ! -s "$addr_file" ]]; then
		die "not running; scripts/broker.sh start"
	fi
	echo "export KAFKA_BROKERS='$(<"$addr_file")'"
}

# Writing to a FIFO nobody reads would block forever, hence the checks and the timeout.
cmd_ctl() {
	(($# > 0)) || die "usage: scripts/broker.sh ctl COMMAND..."
	if ! running_pid >/dev/null || [[ ! -p "$ctl_fifo" ]]; then
		die "not running"
	fi
	# shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
	timeout 5 bash -c 'printf "%s\n" "$1" >"$2"' ctl "$*" "$ctl_fifo" ||
		die "could not write to $ctl_fifo"
}

case "${1:-}" in
start)
	shift
	cmd_start "$@"
	;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
ctl)
	shift
	cmd_ctl "$@"
	;;
*)
	echo "usage: scripts/broker.sh start [ARGS...]|stop|status|env|ctl COMMAND..." >&2
	exit 2
	;;
esac
