#!/usr/bin/env bash
# Kafka Connect standalone with Debezium's JDBC sink connector, the peer the benchmark measures
# the worker against (SPEC 8): Apache Kafka's and Debezium's artifacts from Maven Central
# (scripts/connect/pom.xml), one JVM.
#
#   scripts/connect.sh start WORKER.properties CONNECTOR.properties...
#   scripts/connect.sh stop | status | url | fetch | classpath
#
# `start` copies WORKER.properties to the run dir, adding what it leaves out: a REST listener
# on a free loopback port (`listeners`) and `offset.storage.file.filename` in the run dir. It
# returns once the REST API answers and every connector's tasks are RUNNING; a task that
# FAILED is an error. `status` prints each connector's and task's state, `url` the REST API's
# base URL. Files in ${AW_RUN_DIR:-<repo>/.run}/connect: connect.pid, connect.log (the JVM's
# output), worker.properties, offsets. The jars are cached in
# ${AW_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/asset-worker}/connect-<pom digest>. JVM heap:
# AW_CONNECT_HEAP (default 2g, as Kafka's connect-standalone.sh); `start` waits up to
# AW_CONNECT_START_TIMEOUT seconds (120). `status` exits 0 when running, 3 when not; every
# failure is one line on stderr and exit 1.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
source "$here/maven_libs.sh"
run_dir="${AW_RUN_DIR:-$repo/.run}/connect"
pom="$here/connect/pom.xml"
pid_file="$run_dir/connect.pid"
log_file="$run_dir/connect.log"
props="$run_dir/worker.properties"
heap="${AW_CONNECT_HEAP:-2g}"
start_timeout="${AW_CONNECT_START_TIMEOUT:-120}"

die() {
	echo "connect.sh: $*" >&2
	exit 1
}

cmd_fetch() { maven_fetch connect "$pom" "Kafka Connect and Debezium's JDBC sink"; }
cmd_classpath() { maven_classpath connect "$pom" "Kafka Connect and Debezium's JDBC sink"; }

# Prints the pid of our running Connect; fails when there is none. The pid must still be our
# ConnectStandalone on our properties file, so a recycled pid is never mistaken for it.
running_pid() {
	local pid
	[[ -f "$pid_file" ]] || return 1
	pid="$(<"$pid_file")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "ConnectStandalone $props" || return 1
	echo "$pid"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port nobody listens on, below the kernel's ephemeral range (see scripts/kafka.sh).
free_port() {
	local p i low
	low="$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
	((low > 12000)) || low=32768
	for ((i = 0; i < 50; i++)); do
		p=$((10000 + RANDOM % (low - 10000)))
		port_in_use "$p" || {
			echo "$p"
			return 0
		}
	done
	die "no free port found"
}

has_prop() { grep -qE "^[[:space:]]*$1[[:space:]]*[=:]" "$2"; }

rest_url() {
	local l
	l="$(sed -n 's/^[[:space:]]*listeners[[:space:]]*[=:][[:space:]]*//p' "$props" | cut -d, -f1)"
	echo "${l/0.0.0.0/127.0.0.1}"
}

# GET PATH on the REST API; fails when it does not answer.
rest() { curl -fsS --max-time 5 "$(rest_url)$1" 2>/dev/null; }

# One line per connector and task: "NAME connector RUNNING", "NAME task 0 FAILED: why", where
# why is the trace's deepest SQLException line if any (the database's refusal), else its first.
states() {
	rest "/connectors?expand=status" | jq -r '.[] | .status | .name as $n
		| "\($n) connector \(.connector.state)",
		  (.tasks[] | "\($n) task \(.id) \(.state)\(if .trace then ": " + (.trace | split("\n")
			| (map(select(test("SQLException"))) | last) // .[0]) else "" end)")'
}

cmd_start() {
	(($# >= 2)) || die "usage: scripts/connect.sh start WORKER.properties CONNECTOR.properties..."
	local worker="$1" pid cp f
	shift
	for f in "$worker" "$@"; do [[ -r "$f" ]] || die "cannot read $f"; done
	if pid="$(running_pid)"; then
		echo "connect.sh: already running on $(rest_url) (pid $pid)"
		return 0
	fi
	command -v java >/dev/null 2>&1 || die "no java (Java 17 or newer); run scripts/install-deps.sh"
	command -v curl >/dev/null 2>&1 && command -v jq >/dev/null 2>&1 || die "needs curl and jq"
	cp="$(cmd_classpath)"
	mkdir -p "$run_dir"
	rm -f "$pid_file"
	cp "$worker" "$props"
	has_prop listeners "$props" || echo "listeners=http://127.0.0.1:$(free_port)" >>"$props"
	has_prop offset.storage.file.filename "$props" ||
		echo "offset.storage.file.filename=$run_dir/offsets" >>"$props"
	# Everything, Debezium included, on the class path rather than plugin.path: Maven resolved
	# one consistent set of jars (the connector was built against this Kafka), so the plugin
	# class loader's isolation buys nothing, and Connect finds the connector on the class path
	# as well (plugin.discovery's default scans both).
	# JVM options: those of Kafka's connect-standalone.sh (G1, 20 ms pause target), so Connect
	# runs as an operator would run it.
	nohup java -Xms256m -Xmx"$heap" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
		-XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
		-Djava.awt.headless=true -Dlog4j2.configurationFile="$here/connect/log4j2.properties" \
		-cp "$cp" org.apache.kafka.connect.cli.ConnectStandalone "$props" "$@" \
		>>"$log_file" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$pid_file"
	# Every task RUNNING, a task FAILED, or the JVM dead: whichever comes first.
	local deadline=$((SECONDS + start_timeout)) st
	while ((SECONDS < deadline)); do
		kill -0 "$pid" 2>/dev/null || {
			rm -f "$pid_file"
			die "Connect exited during startup: $(grep -m 1 -E 'ERROR|Exception' "$log_file" | cut -c1-300); see $log_file"
		}
		if st="$(states)" && [[ -n "$st" ]]; then
			if grep -q ' FAILED' <<<"$st"; then
				die "$(grep -m 1 ' FAILED' <<<"$st" | cut -c1-300); see $log_file (still running: scripts/connect.sh stop)"
			fi
			# Standalone creates the connectors from the files at startup: once each has a
			# task and nothing is anything but RUNNING, it is up.
			if ! grep -qv ' RUNNING$' <<<"$st" && grep -q ' task ' <<<"$st"; then
				echo "connect.sh: running on $(rest_url) (pid $pid)"
				return 0
			fi
		fi
		sleep 0.2
	done
	die "connectors not running after $start_timeout s; see $log_file (still running: scripts/connect.sh stop)"
}

cmd_stop() {
	local pid i
	if ! pid="$(running_pid)"; then
		rm -f "$pid_file"
		echo "connect.sh: not running"
		return 0
	fi
	kill -CONT "$pid" 2>/dev/null || true
	kill -TERM "$pid"
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
		echo "connect.sh: pid $pid did not stop in 30 s, killed" >&2
	fi
	rm -f "$pid_file"
	echo "connect.sh: stopped"
}

cmd_status() {
	local pid
	if pid="$(running_pid)"; then
		echo "connect.sh: running on $(rest_url) (pid $pid)"
		states || echo "connect.sh: the REST API does not answer"
		return 0
	fi
	echo "connect.sh: not running"
	return 3
}

cmd_url() {
	running_pid >/dev/null || die "not running"
	rest_url
}

case "${1:-}" in
start)
	shift
	cmd_start "$@"
	;;
stop) cmd_stop ;;
status) cmd_status ;;
url) cmd_url ;;
fetch) cmd_fetch ;;
classpath) cmd_classpath ;;
*)
	echo "usage: scripts/connect.sh start WORKER.properties CONNECTOR.properties...|stop|status|url|fetch|classpath" >&2
	exit 2
	;;
esac
