#!/usr/bin/env bash
# The Kafka Connect peer of the benchmark (SPEC 8): Kafka Connect standalone with Debezium's
# JDBC sink writes the same requests into PostgreSQL, on the same broker and machine.
#
#   tests/bench/connect_sink.sh --brokers ADDR --pg-conninfo CONNINFO --stream FILE --count N
#                               --out DIR [--rate R] [--tasks T] [--batch-size B]
#                               [--sink-prop KEY=VALUE]...
#
# FILE is an aw-gen stream; its first N requests are made into JsonConverter's schema'd JSON
# (connect_records.py; malformed ones are skipped and counted) and produced to a fresh topic
# of 4 partitions. The sink upserts them into connect_assets (created afresh in the
# database: the columns of assets, request_id primary key, processed_at default now()).
#
# Backlog mode (no --rate): all records are produced first, then Connect starts; the clock
# starts once its tasks run (JVM start-up and plugin scanning excluded). Paced mode: Connect
# runs first, then records are produced at R/s; latency is record CreateTime -> processed_at
# (now() of the sink's transaction), as the worker's is measured.
#
# Prints key=value lines on stdout (README: "The Kafka Connect peer"); progress on stderr.
# Never fails on a time: exits 1 when Connect could not run or rows are missing (a failed
# task included), 2 on bad usage. Everything it starts is stopped on exit; files are in DIR.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${AW_BUILD_DIR:-$repo/build-rel}"
AWK="$build/tools/aw-kafka"
records="$here/connect_records.py"
partitions=4
# No new row for this long means the sink has stopped (a failed or stuck task).
stall_s="${AW_CONNECT_STALL_S:-60}"

# The best of batch.size 500 / 1000 / 3000 x tasks.max 1 / 2, 100,000 clean requests, backlog
# mode, twice each, on 2 shared cores (others busy 0.4 to 1.5 cores: good for choosing, not
# for decimals). batch.size 3000 had the fewest CPU s per 1,000 rows at both task counts, for
# Connect (0.11-0.20 against 0.14-0.21) and PostgreSQL (0.05-0.07 against 0.07-0.09), and with
# 1 task the most rows/s (4,452 and 8,393, against at most 3,049). tasks.max 2 was not clearly
# faster (the JVM and PostgreSQL already share both cores) and costs more CPU per row; 1 task
# is one PostgreSQL connection, as one worker. README, "The Kafka Connect peer", has the table.
tasks=1
batch=3000

brokers="" conninfo="" stream="" count="" out="" rate="" sink_props=()

usage() {
	sed -n '5,7p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
die() {
	echo "connect_sink.sh: $*" >&2
	exit 1
}
say() { echo "connect_sink.sh: $*" >&2; }

while (($# > 0)); do
	case "$1" in
	--brokers) brokers="${2:?}" && shift ;;
	--pg-conninfo) conninfo="${2:?}" && shift ;;
	--stream) stream="${2:?}" && shift ;;
	--count) count="${2:?}" && shift ;;
	--out) out="${2:?}" && shift ;;
	--rate) rate="${2:?}" && shift ;;
	--tasks) tasks="${2:?}" && shift ;;
	--batch-size) batch="${2:?}" && shift ;;
	--sink-prop) sink_props+=("${2:?}") && shift ;;
	-h | --help) usage ;;
	*) echo "connect_sink.sh: unknown argument '$1'" >&2 && usage ;;
	esac
	shift
done
[[ -n "$brokers" && -n "$conninfo" && -n "$stream" && -n "$count" && -n "$out" ]] || usage
[[ -r "$stream" ]] || { echo "connect_sink.sh: cannot read $stream" >&2 && exit 2; }
for v in count tasks batch; do
	[[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "connect_sink.sh: --${v/batch/batch-size} must be a positive integer" >&2 && exit 2; }
done
[[ -z "$rate" || "$rate" =~ ^[1-9][0-9]*$ ]] || { echo "connect_sink.sh: --rate must be a positive integer" >&2 && exit 2; }
[[ -x "$AWK" ]] || die "no $AWK; build first (cmake --build build-rel), or set AW_BUILD_DIR"
/usr/bin/python3 -c 'import confluent_kafka' 2>/dev/null || die "no python3-confluent-kafka; run scripts/install-deps.sh"
pg_bindir="${AW_PG_BINDIR:-$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)}"
PSQL="$pg_bindir/psql"
[[ -x "$PSQL" ]] || die "no psql under /usr/lib/postgresql/*/bin"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
connect() { AW_RUN_DIR="$out" "$repo/scripts/connect.sh" "$@"; }
sql() { "$PSQL" -X -A -t -q -F $'\t' -v ON_ERROR_STOP=1 -d "$conninfo" -c "$1"; }
now_ns() { date +%s%N; }
calc() { awk "BEGIN { $1 }"; }
clk_tck="$(getconf CLK_TCK)"
source "$here/cpu_ticks.sh"

cleanup() {
	local rc=$?
	connect stop >/dev/null 2>&1 || true
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

connect fetch

# ---- the database: where the sink writes, and the server's processes for their CPU --------

IFS=$'\t' read -r pg_host pg_port pg_db pg_user aux < <(sql "SELECT coalesce(host(inet_server_addr()), ''),
	coalesce(inet_server_port(), 0), current_database(), current_user,
	(SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer')") ||
	die "cannot connect to PostgreSQL ($conninfo)"
[[ -n "$pg_host" ]] || die "the JDBC driver needs a TCP connection: give --pg-conninfo a host"
# The postmaster is the parent of its long-lived checkpointer (our own backend exits with
# psql); readable in /proc when the server is on this machine.
postmaster="$(awk '$1 == "PPid:" { print $2 }' "/proc/$aux/status" 2>/dev/null || true)"

# The PostgreSQL server's CPU so far, 0 when it is not on this machine.
pg_ticks() { if [[ -n "$postmaster" ]]; then pg_cpu_ticks "$postmaster"; else echo 0; fi; }

# ---- the records ----------------------------------------------------------------------------

"$records" convert "$stream" "$count" "$out/records.jsonl" >"$out/convert.txt" ||
	die "converting $stream failed"
converted="$(sed -n 's/^converted=//p' "$out/convert.txt")"
malformed="$(sed -n 's/^malformed=//p' "$out/convert.txt")"
tenant="$(sed -n 's/^tenant=//p' "$out/convert.txt")"
((converted > 0)) || die "no request of $stream could be converted"

# Fresh every run. The foreign key goes to connect_tenants, not to the worker's tenants: the
# database may be migrated by the worker before or after.
sql "SET client_min_messages = warning;
	DROP TABLE IF EXISTS connect_assets; DROP TABLE IF EXISTS connect_tenants;
	CREATE TABLE connect_tenants (id uuid PRIMARY KEY, name text NOT NULL);
	INSERT INTO connect_tenants VALUES ('$tenant', 'bench tenant');
	CREATE TABLE connect_assets (
	    request_id     uuid PRIMARY KEY,
	    tenant_id      uuid NOT NULL REFERENCES connect_tenants,
	    folder_id      uuid,
	    name           text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 1024),
	    content_sha256 text NOT NULL CHECK (content_sha256 ~ '^[0-9a-f]{64}\$'),
	    size_bytes     bigint NOT NULL CHECK (size_bytes >= 0),
	    mime_type      text,
	    storage_uri    text NOT NULL,
	    metadata       jsonb,
	    processed_at   timestamptz NOT NULL DEFAULT now(),
	    UNIQUE (tenant_id, content_sha256))" >/dev/null

# A topic and a connector (so a consumer group) of this run only.
run_id="$(date +%s)-$$"
topic="connect.assets.$run_id"
"$repo/scripts/kafka/admin.py" create "$brokers" "$topic:$partitions" || die "creating $topic failed"

# ---- Connect's configuration ------------------------------------------------------------------

cat >"$out/worker.properties" <<-EOF
	bootstrap.servers=$brokers
	# The key is the producer's opaque bytes, kept as a string; the value is schema'd JSON.
	key.converter=org.apache.kafka.connect.storage.StringConverter
	value.converter=org.apache.kafka.connect.json.JsonConverter
	value.converter.schemas.enable=true
	# Every plugin on the class path has a ServiceLoader manifest: no reflective scan.
	plugin.discovery=service_load
	# One poll = one put() = one sink transaction (Debezium's sink flushes at the end of each
	# put()): polls as large as the batch. With the default 1 MiB per partition and fetch,
	# polls of batch.size 3000 held ~1,700 records (~1.2 KB each with its schema); 8 MiB
	# fills them (measured: 2,857 rows per transaction, 100,000 requests).
	consumer.max.poll.records=$batch
	consumer.max.partition.fetch.bytes=8388608
	consumer.auto.offset.reset=earliest
	offset.flush.interval.ms=10000
EOF
cat >"$out/sink.properties" <<-EOF
	name=connect-assets-$run_id
	connector.class=io.debezium.connector.jdbc.JdbcSinkConnector
	tasks.max=$tasks
	topics=$topic
	connection.url=jdbc:postgresql://$pg_host:$pg_port/$pg_db
	connection.username=$pg_user
	connection.password=${PGPASSWORD:-}
	# Idempotent: a redelivered request overwrites its own row (INSERT ... ON CONFLICT).
	insert.mode=upsert
	primary.key.mode=record_value
	primary.key.fields=request_id
	# The table is ours; the sink must not alter it.
	schema.evolution=none
	collection.name.format=connect_assets
	batch.size=$batch
	# PostgreSQL: one INSERT ... SELECT FROM unnest(arrays) ON CONFLICT per batch instead of
	# a JDBC batch of single-row statements. Measured at batch.size 1000, 50,000 requests:
	# 3,300 rows/s, against 2,400 with the driver's reWriteBatchedInserts and 1,700 plain.
	dialect.postgres.unnest.insert.enabled=true
EOF
# --sink-prop: added last, so they win (java.util.Properties keeps the last of a key).
printf '%s\n' "${sink_props[@]}" >>"$out/sink.properties"

# ---- running and measuring --------------------------------------------------------------------

rows() { sql "SELECT count(*) FROM connect_assets"; }

# Waits until every converted request has its row, the task fails, or rows stop coming;
# sets t_end (ns, when the last row was seen) and task_error.
wait_rows() {
	local n last=-1 since url st
	url="$(connect url)"
	since="$(now_ns)"
	task_error=""
	while :; do
		n="$(rows)"
		if ((n != last)); then
			last="$n"
			since="$(now_ns)"
			t_end="$since"
		fi
		((n >= converted)) && return 0
		st="$(curl -fsS --max-time 5 "$url/connectors?expand=status" 2>/dev/null |
			jq -r '[.[].status.tasks[] | select(.state == "FAILED") | .trace | split("\n")
				| (map(select(test("SQLException"))) | last) // .[0]] | first // empty' || true)"
		if [[ -n "$st" ]]; then
			task_error="$st"
			return 0
		fi
		if (($(now_ns) - since > stall_s * 1000000000)); then
			task_error="no new row for $stall_s s"
			return 0
		fi
		sleep 0.5
	done
}

produce() { # [RATE]
	"$records" produce "$brokers" "$topic" "$out/records.jsonl" "$@" >"$out/produce.txt" ||
		die "producing to $topic failed"
}

if [[ -z "$rate" ]]; then
	say "backlog mode: producing $converted records ($malformed malformed skipped) to $topic"
	produce
	say "starting Connect (tasks.max $tasks, batch.size $batch)"
fi
# A task that fails at once (the error mix) is a finding for wait_rows, not a failure to run.
ts="$(now_ns)"
connect start "$out/worker.properties" "$out/sink.properties" >&2 ||
	connect status >/dev/null || die "Connect did not run; see $out/connect/connect.log"
jvm="$(<"$out/connect/connect.pid")"
jvm0="$(proc_cpu_ticks "$jvm")"
pg0="$(pg_ticks)"
sys0="$(sys_busy_ticks)"
t0="$(now_ns)"
if [[ -n "$rate" ]]; then
	say "paced mode: producing $converted records at $rate/s to $topic (tasks.max $tasks, batch.size $batch)"
	produce "$rate"
fi
wait_rows
sleep 0.3 # let the last transaction's backend CPU settle
jvm1="$(proc_cpu_ticks "$jvm")"
pg1="$(pg_ticks)"
sys1="$(sys_busy_ticks)"
t1="$(now_ns)"
rss="$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$jvm/status")"

IFS=$'\t' read -r got span txns < <(sql "SELECT count(*),
	coalesce(extract(epoch FROM max(processed_at) - min(processed_at)), 0), count(DISTINCT processed_at)
	FROM connect_assets")
per_k() { calc "printf \"%.3f\", ($got > 0 ? $1 / $clk_tck / ($got / 1000) : 0)"; }

echo "mode=$([[ -n "$rate" ]] && echo paced || echo backlog)"
echo "rows=$got"
echo "expected_rows=$converted"
echo "malformed_skipped=$malformed"
echo "tasks_max=$tasks"
echo "batch_size=$batch"
echo "transactions=$txns"
echo "rows_per_txn=$(calc "printf \"%.1f\", ($txns > 0 ? $got / $txns : 0)")"
# As the worker's req/s: rows over the span of commits (processed_at = the transaction's start).
echo "connect_req_per_s=$(calc "printf \"%.0f\", ($span > 0 ? $got / $span : 0)")"
echo "span_s=$span"
# From the tasks running to the last row seen (polled every 0.5 s).
wall="$(calc "printf \"%.3f\", ($t_end - $t0) / 1e9")"
echo "wall_s=$wall"
echo "connect_wall_req_per_s=$(calc "printf \"%.0f\", ($wall > 0 ? $got / $wall : 0)")"
echo "connect_cpu_s_per_1k=$(per_k $((jvm1 - jvm0)))"
if [[ -n "$postmaster" ]]; then
	echo "pg_cpu_s_per_1k=$(per_k $((pg1 - pg0)))"
else
	echo "pg_cpu_s_per_1k=" # the server is not on this machine
fi
echo "connect_peak_rss_kb=$rss"
# JVM start and plugin discovery to every task running: outside the figures above.
echo "connect_startup_s=$(calc "printf \"%.1f\", ($t0 - $ts) / 1e9")"
# Cores busy with anything but Connect and PostgreSQL (the broker, the producer in paced
# mode, other users of the machine): above ~0.3 the figures competed with someone.
echo "others_cores=$(calc "o = ($sys1 - $sys0 - ($jvm1 - $jvm0) - ($pg1 - $pg0)) / $clk_tck;
	printf \"%.2f\", (o > 0 ? o / (($t1 - $t0) / 1e9) : 0)")"

if [[ -n "$rate" ]]; then
	echo "achieved_rate=$(sed -n 's/^rate=//p' "$out/produce.txt")"
	# Latency as for the worker: the record's CreateTime (from the topic) to processed_at.
	"$AWK" dump --brokers "$brokers" --topic "$topic" 2>"$out/dump.log" |
		jq -r '(.value | fromjson? | .payload.request_id) as $r | select($r) | [$r, .timestamp] | @tsv' \
			>"$out/input.tsv"
	# All records, and the second half only (by produce time): a JVM just started runs
	# interpreted code until the JIT has compiled the hot paths, which shows in the first
	# seconds (measured at 1,000/s: p50 ~1 s in the first 2 s, 50-120 ms from the 5th on).
	IFS=$'\t' read -r p50 p99 late50 late99 < <("$PSQL" -X -A -t -q -F $'\t' -v ON_ERROR_STOP=1 -d "$conninfo" <<-SQL
		CREATE TEMP TABLE connect_in (request_id uuid, ts_ms bigint);
		\\copy connect_in FROM '$out/input.tsv'
		WITH l AS (SELECT extract(epoch FROM a.processed_at) * 1000 - i.ts_ms AS ms,
		                  ntile(2) OVER (ORDER BY i.ts_ms) AS half
		             FROM connect_assets a JOIN connect_in i USING (request_id))
		SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric),
		       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric),
		       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE half = 2))::numeric),
		       round((percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) FILTER (WHERE half = 2))::numeric)
		  FROM l;
	SQL
	)
	echo "connect_e2e_p50_ms=$p50"
	echo "connect_e2e_p99_ms=$p99"
	echo "connect_e2e_late_p50_ms=$late50"
	echo "connect_e2e_late_p99_ms=$late99"
fi

if [[ -n "$task_error" ]]; then
	echo "task_error=$task_error"
fi
if ((got < converted)); then
	say "$((converted - got)) of $converted rows missing${task_error:+ ($task_error)}; see $out/connect/connect.log"
	exit 1
fi
