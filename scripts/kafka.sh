#!/usr/bin/env bash
# A real Apache Kafka broker on loopback for the demo, the tests and the benchmark: Apache's
# own release artifacts from Maven Central (scripts/kafka/pom.xml), one JVM in KRaft mode
# (broker and controller), replication factor 1.
#
#   scripts/kafka.sh start [--topic NAME:PARTITIONS[:KEY=VALUE,...]]...
#   scripts/kafka.sh stop | status | env | fetch | classpath
#   scripts/kafka.sh kill | freeze | thaw     faults: SIGKILL (then `start` again on the same
#                                             log dir), SIGSTOP, SIGCONT
#   scripts/kafka.sh cut | heal               faults: every client connection cut and refused,
#                                             then accepted again (only with AW_KAFKA_PROXY=1)
#   scripts/kafka.sh topic-config TOPIC KEY=VALUE...   e.g. max.message.bytes=512: larger
#                                             records are refused (MSG_SIZE_TOO_LARGE)
#   scripts/kafka.sh tool CLASS ARGS...       one of Kafka's own tools from the same jars, e.g.
#                                             tool org.apache.kafka.tools.GetOffsetShell ...
#
# Default topics: assets.create:4, assets.create.retry:4, assets.create.dlq:1 (`--topic`
# replaces them). Files in ${AW_RUN_DIR:-<repo>/.run}/kafka: kafka.pid, kafka.addr (bootstrap),
# kafka.log, server.properties, data/. The jars are cached in
# ${AW_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/asset-worker}/kafka-<pom digest>; once there,
# nothing is fetched again. Ports: AW_KAFKA_PORT (default: any free port, kept across restarts).
# With AW_KAFKA_PROXY=1 clients reach the broker through a socat proxy on the advertised port,
# so `cut` can drop every connection at once. `eval "$(scripts/kafka.sh env)"` sets
# KAFKA_BROKERS. `status` exits 0 when running, 3 when not; every failure is one line on
# stderr and exit 1.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
source "$here/maven_libs.sh"
run_dir="${AW_RUN_DIR:-$repo/.run}/kafka"
pom="$here/kafka/pom.xml"
admin="$here/kafka/admin.py"
pid_file="$run_dir/kafka.pid"
proxy_pid_file="$run_dir/proxy.pid"
addr_file="$run_dir/kafka.addr"
log_file="$run_dir/kafka.log"
props="$run_dir/server.properties"
heap="${AW_KAFKA_HEAP:-512m}"
start_timeout="${AW_KAFKA_START_TIMEOUT:-90}"

die() {
	echo "kafka.sh: $*" >&2
	exit 1
}

cmd_fetch() { maven_fetch kafka "$pom" "Apache Kafka"; }
cmd_classpath() { maven_classpath kafka "$pom" "Apache Kafka"; }

java_bin() {
	command -v java >/dev/null 2>&1 || die "no java (Java 17 or newer); run scripts/install-deps.sh"
	echo java
}

# Prints the pid of our running broker; fails when there is none. The pid must still be our
# kafka.Kafka on our properties file, so a recycled pid is never mistaken for it (or killed).
running_pid() {
	local pid
	[[ -f "$pid_file" ]] || return 1
	pid="$(<"$pid_file")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $props" || return 1
	echo "$pid"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port nobody listens on now, below the kernel's ephemeral range: a port from that range
# could be handed to some client's outgoing connection between this check and the broker's
# bind (seen once: "Unable to start acceptor"), and again before a restart on the same ports.
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

prop() { sed -n "s/^$1=//p" "$props"; }

write_properties() {
	local broker_port controller_port advertised_port
	broker_port="${AW_KAFKA_PORT:-$(free_port)}"
	port_in_use "$broker_port" && die "port $broker_port is in use (AW_KAFKA_PORT)"
	controller_port="$(free_port)"
	advertised_port="$broker_port"
	if [[ "${AW_KAFKA_PROXY:-0}" == 1 ]]; then
		broker_port="$(free_port)"
	fi
	cat >"$props" <<EOF
# Written by scripts/kafka.sh: one node, broker and controller in one JVM, on loopback.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$broker_port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$advertised_port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$run_dir/data
auto.create.topics.enable=false
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
# Internal topics: one partition, one replica (a fresh broker creates them in milliseconds).
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
# A transaction left open by a killed or frozen worker is aborted within ~1 s of its timeout
# (the worker's transaction.timeout.ms), not ~10 s: the tests' failovers stay short.
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# A group's first rebalance starts at once, not after 3 s.
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
# Topics that tests fill with hundreds of thousands of requests: keep everything.
log.retention.hours=-1
log.retention.bytes=-1
EOF
	# The proxy's listening port, for `cut`/`heal` and restarts.
	echo "proxy.port=$advertised_port" >"$run_dir/proxy.properties"
}

proxy_running() {
	local pid
	[[ -f "$proxy_pid_file" ]] || return 1
	pid="$(<"$proxy_pid_file")"
	kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q '^socat '
}

proxy_start() {
	local pport bport i
	proxy_running && return 0
	command -v socat >/dev/null 2>&1 || die "no socat; run scripts/install-deps.sh"
	pport="$(sed -n 's/^proxy.port=//p' "$run_dir/proxy.properties")"
	bport="$(prop listeners | sed -n 's/^PLAINTEXT:\/\/127.0.0.1:\([0-9]*\),.*/\1/p')"
	nohup socat "TCP-LISTEN:$pport,bind=127.0.0.1,fork,reuseaddr" "TCP:127.0.0.1:$bport" \
		>>"$run_dir/proxy.log" 2>&1 </dev/null &
	echo $! >"$proxy_pid_file"
	for ((i = 0; i < 50; i++)); do
		port_in_use "$pport" && return 0
		sleep 0.1
	done
	die "the proxy did not listen on $pport"
}

proxy_stop() {
	proxy_running || return 0
	local pid
	pid="$(<"$proxy_pid_file")"
	# The listener and every forked connection: the whole process group of socat's children
	# would be ours too, so kill by parent.
	pkill -KILL -P "$pid" 2>/dev/null || true
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$proxy_pid_file"
}

uses_proxy() { [[ -f "$run_dir/proxy.properties" ]] && [[ "$(prop advertised.listeners)" != "$(prop listeners | cut -d, -f1)" ]]; }

bootstrap() { prop advertised.listeners | sed 's#^PLAINTEXT://##'; }

cmd_start() {
	local topics=() pid java cp topic_args=("$@")
	while (($#)); do
		case "$1" in
		--topic)
			(($# >= 2)) || die "--topic needs NAME:PARTITIONS"
			topics+=("$2")
			shift 2
			;;
		*) die "unknown argument: $1" ;;
		esac
	done
	((${#topics[@]})) || topics=(assets.create:4 assets.create.retry:4 assets.create.dlq:1)
	if pid="$(running_pid)"; then
		echo "kafka.sh: already running on $(<"$addr_file") (pid $pid)"
		return 0
	fi
	java="$(java_bin)"
	[[ -x "$admin" ]] && /usr/bin/python3 -c 'import confluent_kafka' 2>/dev/null ||
		die "no python3-confluent-kafka; run scripts/install-deps.sh"
	cp="$(cmd_classpath)"
	mkdir -p "$run_dir"
	rm -f "$addr_file" "$pid_file"
	# A new broker is formatted once; a restart (after stop or kill) keeps its log dir.
	local fresh=0
	if [[ ! -f "$run_dir/data/meta.properties" ]]; then
		fresh=1
		write_properties
		local cluster_id
		# 16 random bytes in URL-safe base64, as Kafka's own random-uuid prints (it may begin
		# with '-', hence --cluster-id=).
		cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
		"$java" -cp "$cp" -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
			kafka.tools.StorageTool format --ignore-formatted --cluster-id="$cluster_id" -c "$props" \
			>>"$log_file" 2>&1 || die "formatting the log dir failed; see $log_file"
	fi
	local bport
	bport="$(prop listeners | sed -n 's/^PLAINTEXT:\/\/127.0.0.1:\([0-9]*\),.*/\1/p')"
	port_in_use "$bport" && die "port $bport is in use; another broker? (scripts/kafka.sh stop)"
	nohup "$java" -Xms128m -Xmx"$heap" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
		-Djava.awt.headless=true -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
		-cp "$cp" kafka.Kafka "$props" >>"$log_file" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$pid_file"
	uses_proxy && proxy_start
	# Serving metadata, or dead: whichever comes first.
	local deadline=$((SECONDS + start_timeout))
	while ((SECONDS < deadline)); do
		kill -0 "$pid" 2>/dev/null || {
			rm -f "$pid_file"
			# A new broker whose port was taken between our check and its bind: once more,
			# on other ports.
			if ((fresh)) && [[ -z "${AW_KAFKA_PORT:-}" && -z "${KAFKA_SH_RETRIED:-}" ]] &&
				grep -q 'Unable to start acceptor\|Address already in use' "$log_file"; then
				echo "kafka.sh: a port was taken during startup; trying other ports" >&2
				proxy_stop
				rm -rf "$run_dir/data" "$props" "$run_dir/proxy.properties"
				KAFKA_SH_RETRIED=1 cmd_start "${topic_args[@]}"
				return
			fi
			die "the broker exited during startup: $(grep -m 1 -E 'ERROR|Exception' "$log_file" | cut -c1-300); see $log_file"
		}
		"$admin" wait "$(bootstrap)" 1 2>/dev/null && break
	done
	"$admin" wait "$(bootstrap)" 1 2>/dev/null || {
		kill -KILL "$pid" 2>/dev/null || true
		rm -f "$pid_file"
		die "no metadata after $start_timeout s; see $log_file"
	}
	"$admin" create "$(bootstrap)" "${topics[@]}" || die "creating topics failed"
	bootstrap >"$addr_file"
	echo "kafka.sh: running on $(<"$addr_file") (pid $pid)"
}

cmd_stop() {
	local pid i
	proxy_stop
	if ! pid="$(running_pid)"; then
		rm -f "$pid_file" "$addr_file"
		echo "kafka.sh: not running"
		return 0
	fi
	kill -CONT "$pid" 2>/dev/null || true # a frozen broker cannot stop
	kill -TERM "$pid"
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
		echo "kafka.sh: pid $pid did not stop in 30 s, killed" >&2
	fi
	rm -f "$pid_file" "$addr_file"
	echo "kafka.sh: stopped"
}

cmd_signal() { # SIGNAL
	local pid
	pid="$(running_pid)" || die "not running"
	kill -"$1" "$pid"
	if [[ "$1" == KILL ]]; then
		while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
		rm -f "$pid_file"
	fi
}

cmd_status() {
	local pid
	if pid="$(running_pid)" && [[ -s "$addr_file" ]]; then
		echo "kafka.sh: running on $(<"$addr_file") (pid $pid)"
		return 0
	fi
	echo "kafka.sh: not running"
	return 3
}

cmd_env() {
	if ! running_pid >/dev/null || [[ ! -s "$addr_file" ]]; then
		die "not running; scripts/kafka.sh start"
	fi
	echo "export KAFKA_BROKERS='$(<"$addr_file")'"
}

cmd_tool() {
	(($# >= 1)) || die "usage: scripts/kafka.sh tool CLASS ARGS..."
	local cp
	cp="$(cmd_classpath)"
	exec "$(java_bin)" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
		-Dlog4j2.configurationFile="$here/kafka/log4j2.properties" -cp "$cp" "$@"
}

case "${1:-}" in
start)
	shift
	cmd_start "$@"
	;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
fetch) cmd_fetch ;;
classpath) cmd_classpath ;;
kill) cmd_signal KILL ;;
freeze) cmd_signal STOP ;;
thaw) cmd_signal CONT ;;
cut)
	uses_proxy || die "cut needs a broker started with AW_KAFKA_PROXY=1"
	proxy_stop
	;;
heal)
	uses_proxy || die "heal needs a broker started with AW_KAFKA_PROXY=1"
	proxy_start
	;;
tool)
	shift
	cmd_tool "$@"
	;;
topic-config)
	shift
	(($# >= 2)) || die "usage: scripts/kafka.sh topic-config TOPIC KEY=VALUE..."
	running_pid >/dev/null || die "not running"
	"$admin" config "$(bootstrap)" "$@"
	;;
*)
	echo "usage: scripts/kafka.sh start [--topic NAME:PARTITIONS]...|stop|status|env|fetch|classpath|kill|freeze|thaw|cut|heal|topic-config TOPIC K=V...|tool CLASS ARGS..." >&2
	exit 2
	;;
esac
