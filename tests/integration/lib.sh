# Shared harness of the integration tests (sourced by tests/integration/NN-*.sh).
#
# Every test drives the real `worker` binary against the real PostgreSQL server (one server
# for the suite, one fresh database per test) and its own Apache Kafka broker (a fresh KRaft
# node per test, scripts/kafka.sh, reached over TCP). Assertions print "ok"/"not ok" lines; the
# script exits non-zero on the first failure and prints the worker logs.
set -euo pipefail

IT_SRC="${AW_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
IT_BUILD="${AW_BUILD_DIR:-$IT_SRC/build}"
IT_NAME="$(basename "$0" .sh)"
WORKER="$IT_BUILD/worker/worker"
AWK="$IT_BUILD/tools/aw-kafka"
GEN="$IT_BUILD/tools/aw-gen"
IT_PASSED=0

# One PostgreSQL server for the whole suite, on its own port and run directory so the
# demo's server is left alone. The port is below the kernel's ephemeral range: tests stop and
# restart the server, and meanwhile a client's outgoing connection could take a port from that
# range (then the restart fails with "Address already in use").
export AW_PG_PORT="${AW_IT_PG_PORT:-25442}"
# Shared by every build directory (plain and sanitizer builds run against one server).
IT_PG_RUN="${AW_IT_PG_RUN:-$IT_SRC/.run/it-pg}"
IT_DIR="$(mktemp -d "/tmp/aw-it.$IT_NAME.XXXXXX")"
IT_DB="it_$(echo "$IT_NAME" | tr -c 'a-zA-Z0-9\n' '_')"
IT_GROUP="it-$IT_NAME"
IT_WORKER_PIDS=()

it_pg() { AW_RUN_DIR="$IT_PG_RUN" "$IT_SRC/scripts/pg.sh" "$@"; }
# The test's own Apache Kafka broker (scripts/kafka.sh).
it_broker() { AW_RUN_DIR="$IT_DIR" "$IT_SRC/scripts/kafka.sh" "$@"; }

it_cleanup() {
	local rc=$?
	for pid in "${IT_WORKER_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
	it_broker stop >/dev/null 2>&1 || true
	if ((rc != 0)); then
		echo "# $IT_NAME failed (exit $rc); logs in $IT_DIR:"
		for f in "$IT_DIR"/*.log; do
			[[ -f "$f" ]] || continue
			echo "# --- $f (last 60 lines)"
			tail -n 60 "$f" | sed 's/^/# /'
		done
	else
		[[ -n "${IT_KEEP:-}" ]] || rm -rf "$IT_DIR"
	fi
}
trap it_cleanup EXIT

# ---- assertions ----

ok() {
	IT_PASSED=$((IT_PASSED + 1))
	echo "ok $IT_PASSED - $*"
}
fail() {
	echo "not ok - $*"
	exit 1
}
assert_eq() { # expected actual description
	if [[ "$1" == "$2" ]]; then ok "$3"; else fail "$3: expected [$1], got [$2]"; fi
}
assert_ge() { # minimum actual description
	if (($2 >= $1)); then ok "$3"; else fail "$3: expected >= $1, got $2"; fi
}
assert_match() { # regex actual description
	if [[ "$2" =~ $1 ]]; then ok "$3"; else fail "$3: [$2] does not match /$1/"; fi
}
assert_file_contains() { # file fixed-string description
	if grep -qF -- "$2" "$1"; then ok "$3"; else fail "$3: '$2' not in $1"; fi
}
assert_file_lacks() { # file fixed-string description
	if grep -qF -- "$2" "$1"; then fail "$3: '$2' found in $1"; else ok "$3"; fi
}
it_done() { echo "$IT_PASSED passed, 0 failed"; }

# Waits until a command succeeds: it_wait_for SECONDS DESCRIPTION CMD...
it_wait_for() {
	local secs="$1" what="$2"
	shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || fail "timed out after ${secs}s waiting for: $what"
		sleep 0.2
	done
}

# ---- servers ----

# Starts what the test needs: PostgreSQL (shared) with a fresh database, a fresh broker, and
# a worker config in $IT_CONFIG. Extra broker arguments are passed through.
it_setup() {
	it_pg start >/dev/null
	eval "$(it_pg env)"
	export PGHOST PGPORT PGUSER
	export PGDATABASE="$IT_DB"
	psql -q -X -d postgres -c "DROP DATABASE IF EXISTS $IT_DB WITH (FORCE)" \
		-c "CREATE DATABASE $IT_DB" >/dev/null
	export PG_CONNINFO="postgresql://$PGUSER@127.0.0.1:$PGPORT/$IT_DB"
	it_broker start "$@" >/dev/null
	eval "$(it_broker env)"
	export KAFKA_BROKERS
	IT_CONFIG="$IT_DIR/worker.yaml"
	it_write_config
	"$WORKER" migrate --config "$IT_CONFIG" 2>"$IT_DIR/migrate.log" || fail "migrate failed"
}

# Writes $IT_CONFIG; extra YAML lines for the retry section may be given in IT_RETRY_YAML.
it_write_config() {
	cat >"$IT_CONFIG" <<YAML
kafka:
  brokers: "\${KAFKA_BROKERS}"
  group_id: $IT_GROUP
  properties:
    session.timeout.ms: "6000"
    heartbeat.interval.ms: "500"
postgres:
  conninfo: "\${PG_CONNINFO}"
  statement_timeout_ms: ${IT_STATEMENT_TIMEOUT_MS:-5000}
  batch_size: ${IT_BATCH_SIZE:-50}
retry:
  initial_backoff_ms: ${IT_INITIAL_BACKOFF_MS:-50}
  max_backoff_ms: ${IT_MAX_BACKOFF_MS:-400}
  multiplier: 2.0
  max_attempts: ${IT_MAX_ATTEMPTS:-5}
  max_in_place_attempts: ${IT_MAX_IN_PLACE_ATTEMPTS:-20}
log:
  level: ${IT_LOG_LEVEL:-info}
  format: ${IT_LOG_FORMAT:-text}
  summary_interval_ms: 2000
YAML
}

it_sql() { psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }

# ---- data ----

IT_TENANT=5a0e8f3c-1111-4a4a-8a8a-000000000001
IT_FOLDER=5a0e8f3c-2222-4a4a-8a8a-000000000002

it_seed() {
	it_sql "INSERT INTO tenants VALUES ('$IT_TENANT', 'it tenant')" >/dev/null
	it_sql "INSERT INTO folders VALUES ('$IT_FOLDER', '$IT_TENANT', 'it folder')" >/dev/null
}

it_uuid() { cat /proc/sys/kernel/random/uuid; }
it_sha() { printf '%064x' "$1"; }

# A valid request value: it_request REQUEST_ID CONTENT_NUMBER [extra JSON fields]
it_request() {
	printf '{"type":"asset.create","version":1,"request_id":"%s","tenant_id":"%s","name":"file-%s.bin","content_sha256":"%s","size_bytes":100,"storage_uri":"s3://it/%s"%s}' \
		"$1" "$IT_TENANT" "$2" "$(it_sha "$2")" "$2" "${3:+,$3}"
}

# Produces raw values, one per line: it_produce_values [TOPIC [PARTITION]]. Without a
# partition, records spread over the partitions (no key), so their order is not kept.
it_produce_values() {
	"$AWK" produce --topic "${1:-assets.create}" ${2:+--partition "$2"} 2>>"$IT_DIR/produce.log"
}
# Produces envelope lines ({"key","value","headers","partition"}).
it_produce_envelopes() {
	"$AWK" produce --envelope --topic "${1:-assets.create}" 2>>"$IT_DIR/produce.log"
}
it_dump() { "$AWK" dump --topic "$1" 2>>"$IT_DIR/dump.log"; }

# ---- the worker ----

# Runs `worker run --drain` to completion; asserts exit 0. Log: $IT_DIR/drain-N.log
IT_DRAIN_N=0
it_run_drain() {
	IT_DRAIN_N=$((IT_DRAIN_N + 1))
	IT_LAST_LOG="$IT_DIR/drain-$IT_DRAIN_N.log"
	local rc=0
	timeout 180 "$WORKER" run --config "$IT_CONFIG" --drain "$@" 2>"$IT_LAST_LOG" || rc=$?
	[[ $rc -eq 0 ]] || fail "worker run --drain exited $rc (log $IT_LAST_LOG)"
}

# Starts a worker in the background: it_start_worker NAME [args]; pid in IT_PID_<NAME>.
it_start_worker() {
	local name="$1"
	shift
	"$WORKER" run --config "$IT_CONFIG" "$@" 2>"$IT_DIR/worker-$name.log" &
	local pid=$!
	IT_WORKER_PIDS+=("$pid")
	printf -v "IT_PID_$name" '%s' "$pid"
}

# Sends a signal and waits for the exit: it_stop_worker NAME [SIGNAL]; exit code in IT_RC.
it_stop_worker() {
	local var="IT_PID_$1"
	local pid="${!var}"
	kill -"${2:-TERM}" "$pid" 2>/dev/null || true
	IT_RC=0
	wait "$pid" || IT_RC=$?
}

# ---- a race made deterministic: another session holding content uncommitted ----

# it_blocker_hold REQUEST_ID CONTENT_NUMBER: a second session (application_name it-blocker)
# stores the content through asset_create_v1 and keeps its transaction open; returns once it
# is open. BLOCKER_PID is that psql.
it_blocker_hold() {
	mkfifo "$IT_DIR/blocker.fifo"
	PGAPPNAME=it-blocker psql -X -q -v ON_ERROR_STOP=1 <"$IT_DIR/blocker.fifo" >"$IT_DIR/blocker.log" 2>&1 &
	BLOCKER_PID=$!
	exec 7>"$IT_DIR/blocker.fifo"
	echo "BEGIN; SELECT outcome FROM asset_create_v1('$1', '$IT_TENANT', NULL, 'blocker.bin', '$(it_sha "$2")', 1, NULL, 's3://it/blocker', NULL, 'blocker', 0, 0);" >&7
	it_wait_for 20 "the blocker's open transaction" it_blocker_open
}
it_blocker_open() {
	[[ $(it_sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'it-blocker' AND state = 'idle in transaction'") == 1 ]]
}
# it_blocker_waited_on DESCRIPTION: waits until another session of this database waits on a lock
# (the worker's INSERT of the blocker's content).
it_blocker_waited_on() { it_wait_for 40 "$1" it_lock_waiter; }
it_lock_waiter() {
	[[ $(it_sql "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND application_name <> 'it-blocker'") == 1 ]]
}
# it_blocker_commit: the blocker commits and its session ends.
it_blocker_commit() {
	echo "COMMIT;" >&7
	exec 7>&-
	wait "$BLOCKER_PID" || fail "the blocker session failed: $(cat "$IT_DIR/blocker.log")"
}

# ---- /metrics ----

# http_get PORT PATH -> "STATUS\nBODY"
http_get() {
	exec 3<>"/dev/tcp/127.0.0.1/$1"
	printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
	local response
	response=$(cat <&3)
	exec 3>&-
	printf '%s\n' "$(head -n 1 <<<"$response" | awk '{print $2}')"
	sed '1,/^\r$/d' <<<"$response"
}
metric() { # PORT NAME-with-labels -> value
	http_get "$1" /metrics | awk -v m="$2" '$1 == m {print $2}'
}

# Counts log lines of an outcome across the logs of this test.
it_log_count() { cat "$IT_DIR"/*.log | grep -c "outcome=$1" || true; }

# ---- helpers of tests 02-09 ----

# Test-only failure injection in the test database: a BEFORE INSERT trigger on assets.
#  - a request whose name starts with "raise:XXXXX" fails with SQLSTATE XXXXX, always;
#  - a request whose name equals a rule's marker (it_raise_rule) fails with the rule's
#    SQLSTATE (and optional constraint name and message) and/or sleeps, for its first TIMES
#    tries only. Tries are counted with a sequence per rule: nextval() is not rolled back
#    with the failed transaction, so the count survives the worker's ROLLBACK.
it_install_raise_trigger() {
	psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE TABLE it_raise_rules (
    marker     text PRIMARY KEY,
    sqlstate   text,
    times      integer,
    sleep_ms   integer NOT NULL DEFAULT 0,
    message    text,
    constraint_name text,
    seq        text NOT NULL
);
CREATE FUNCTION it_raise() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r it_raise_rules;
    n bigint;
BEGIN
    IF NEW.name LIKE 'raise:%' THEN
        RAISE EXCEPTION USING ERRCODE = substr(NEW.name, 7, 5),
            MESSAGE = 'it_raise: ' || substr(NEW.name, 7, 5) || ' for ' || NEW.name;
    END IF;
    SELECT * INTO r FROM it_raise_rules WHERE marker = NEW.name;
    IF FOUND THEN
        n := nextval(r.seq);
        IF r.times IS NULL OR n <= r.times THEN
            IF r.sleep_ms > 0 THEN
                PERFORM pg_sleep(r.sleep_ms / 1000.0);
            END IF;
            IF r.sqlstate IS NOT NULL THEN
                RAISE EXCEPTION USING ERRCODE = r.sqlstate,
                    MESSAGE = coalesce(r.message, 'it_raise: ' || r.sqlstate || ' for ' || NEW.name || ', try ' || n),
                    CONSTRAINT = coalesce(r.constraint_name, '');
            END IF;
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER it_raise BEFORE INSERT ON assets FOR EACH ROW EXECUTE FUNCTION it_raise();
SQL
}

# Adds a rule: it_raise_rule MARKER SQLSTATE|"" [TIMES|""] [SLEEP_MS] [MESSAGE] [CONSTRAINT]
# (the trigger must be installed). Empty SQLSTATE: only sleep; empty TIMES: every try.
it_raise_rule() {
	local n
	n=$(it_sql "SELECT count(*) FROM it_raise_rules")
	psql -X -q -v ON_ERROR_STOP=1 -v marker="$1" -v sqlstate="$2" -v times="${3:-}" \
		-v sleep_ms="${4:-0}" -v message="${5:-}" -v cons="${6:-}" -v seq="it_raise_seq_$n" \
		>/dev/null <<'SQL'
CREATE SEQUENCE :"seq";
INSERT INTO it_raise_rules (marker, sqlstate, times, sleep_ms, message, constraint_name, seq)
VALUES (:'marker', nullif(:'sqlstate', ''), nullif(:'times', '')::integer,
        :'sleep_ms'::integer, nullif(:'message', ''), nullif(:'cons', ''), :'seq');
SQL
}

# How many times the trigger saw the rule's marker (tries that reached the INSERT).
it_raise_tries() {
	local seq
	seq=$(psql -X -A -t -q -v ON_ERROR_STOP=1 -v marker="$1" \
		<<<"SELECT seq FROM it_raise_rules WHERE marker = :'marker'")
	it_sql "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM $seq"
}

# A request value with jq edits applied: it_request_jq REQUEST_ID CONTENT_NUMBER JQ_FILTER
it_request_jq() { it_request "$1" "$2" | jq -c "$3"; }

# One envelope line: it_envelope VALUE PARTITION CASE — key "k-CASE", producer headers
# it-case=CASE and it-trace=trace-CASE, so a forwarded record can be traced to its input.
it_envelope() {
	jq -cn --arg v "$1" --argjson p "$2" --arg c "$3" \
		'{key: ("k-" + $c), value: $v, partition: $p, headers: {"it-case": $c, "it-trace": ("trace-" + $c)}}'
}

# Dumps a topic once into $IT_DIR/dump-TOPIC.jsonl and prints the path.
it_dump_file() {
	local f="$IT_DIR/dump-$1.jsonl"
	it_dump "$1" >"$f"
	echo "$f"
}

# The records of a dump file whose producer header it-case is CASE: it_by_case FILE CASE
it_by_case() { jq -c --arg c "$2" 'select(.headers["it-case"] == $c)' "$1"; }

# A header of one dumped record (JSON on stdin), "<absent>" when missing: it_hdr NAME
it_hdr() { jq -r --arg h "$1" 'if .headers | has($h) then .headers[$h] // "<null>" else "<absent>" end'; }

# Waits for a background worker (it_start_worker) to exit by itself: it_wait_worker NAME SECS;
# exit code in IT_RC. Fails the test on timeout.
it_wait_worker() {
	local var="IT_PID_$1"
	local pid="${!var}" deadline=$((SECONDS + $2))
	while kill -0 "$pid" 2>/dev/null; do
		((SECONDS < deadline)) || fail "worker $1 still running after $2 s"
		sleep 0.2
	done
	IT_RC=0
	wait "$pid" || IT_RC=$?
}

# JSON log lines of one event in a log file (json format): it_log_events FILE EVENT
it_log_events() { grep -F "\"event\":\"$2\"" "$1" | jq -c . 2>/dev/null || true; }

# Current wall clock in epoch milliseconds.
it_now_ms() { date +%s%3N; }
