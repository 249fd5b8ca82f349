#!/usr/bin/env bash
# PostgreSQL refusing connections for a while, under a steady stream of mixed requests:
#  1. too many connections (53300): the worker's role gets CONNECTION LIMIT 0 and its session
#     is terminated, so every reconnect is refused ("too many connections for role");
#  2. the database closed (ALTER DATABASE ... ALLOW_CONNECTIONS false, session terminated):
#     every reconnect is refused (55000, "not currently accepting connections");
#  3. the server paused (SIGSTOP to every server process) for a few seconds.
# SPEC section 1: transient, so retry in place with backoff as long as it takes, consumption
# paused meanwhile, never dead-lettered, never lost. Each outage is checked in the worker's log:
# no request settled while the database refuses, reconnects follow the backoff (each attempt
# at least the announced retry_in_ms after the previous one, so no busy loop), consumption
# paused and resumed; at the end every request is accounted for exactly once.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_faults.sh"
source "$(dirname "$0")/lib_hostile.sh"
IT_MAX_BACKOFF_MS=1000 it_setup # initial 50 ms, x2, at most 1 s
it_seed

OUTAGE_SECS=5
ROLE=it_22_worker
# The server processes, for SIGSTOP/SIGCONT: the postmaster (first line of postmaster.pid) and
# its children. A paused server is always resumed, whatever happens to the test.
pg_pids() {
	local data pm
	data="$(readlink -f "$IT_PG_RUN/pg")/data"
	pm=$(head -n 1 "$data/postmaster.pid")
	echo "$pm"
	pgrep -P "$pm" || true
}
resume_server() { for pid in $(pg_pids); do kill -CONT "$pid" 2>/dev/null || true; done; }
it22_cleanup() {
	local rc=$?
	set +e
	resume_server
	psql -X -q -d postgres -c "ALTER DATABASE $IT_DB ALLOW_CONNECTIONS true" >/dev/null 2>&1 || true
	(exit "$rc")
	itf_cleanup
}
trap it22_cleanup EXIT

# The worker connects as an ordinary role (a connection limit does not bind a superuser).
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$ROLE') THEN CREATE ROLE $ROLE LOGIN; END IF;
END \$\$;
ALTER ROLE $ROLE CONNECTION LIMIT -1;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO $ROLE;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO $ROLE;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO $ROLE;
SQL
export PG_CONNINFO="postgresql://$ROLE@127.0.0.1:$PGPORT/$IT_DB"

manifest="$IT_DIR/manifest.txt"
itf_gen_mixed "$IT_DIR/stream.jsonl" "$manifest" 2201 4000
total=$(wc -l <"$manifest")
log="$IT_DIR/worker-w.log"
it_start_worker w
itf_wait_log 60 "$log" 'partitions_assigned count=[1-9]' 1
ith_feed_start s "$IT_DIR/stream.jsonl" 20 0.1

terminate_worker_sessions() {
	psql -X -q -d postgres -v ON_ERROR_STOP=1 -c \
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '$ROLE'" >/dev/null
}

# Checks one outage in the log lines written from its start up to the first
# database_connected after it: no request settled meanwhile, consumption paused, each
# reconnect attempt at least retry_in_ms (as announced by the previous attempt) after it, and
# at most as many attempts as the backoff allows in that time.
check_outage() { # LABEL LINES_BEFORE ERROR_TEXT
	local label="$1" before="$2" text="$3" window="$IT_DIR/outage.log"
	# awk reads to the end (no early exit): tail would be killed by SIGPIPE, and pipefail
	# would fail the test on it.
	tail -n +"$((before + 1))" "$log" | awk '!done { print } / database_connected / { done = 1 }' >"$window"
	local failed settled first_ms last_ms connected_ms span
	failed=$(grep -c ' database_connect_failed ' "$window" || true)
	echo "# $label: $failed refused reconnects, retry_in_ms: $(grep ' database_connect_failed ' "$window" | ith_field retry_in_ms | paste -sd' ')"
	assert_ge 2 "$failed" "$label: the worker kept trying to reconnect (database_connect_failed)"
	# libpq gives no SQLSTATE for a refused connection; the server's message says why.
	assert_eq "$failed" "$(grep ' database_connect_failed ' "$window" | grep -c "$text" || true)" \
		"$label: every refused reconnect says \"$text\""
	assert_file_contains "$window" "consumption_paused" "$label: consumption paused"
	# Nothing is settled between the first refused reconnect and the reconnection.
	settled=$(awk '/ database_connect_failed / { on = 1 } on && /outcome=/' "$window" | wc -l)
	assert_eq 0 "$settled" "$label: no request settled while the database refused connections"
	# The backoff: the gap before each attempt >= the retry_in_ms announced (5 ms of slack for
	# the log's millisecond timestamps).
	local gaps lines="$IT_DIR/outage-failed.log"
	grep ' database_connect_failed ' "$window" >"$lines"
	gaps=$(paste <(ith_log_ms <"$lines") <(ith_field retry_in_ms <"$lines") |
		awk 'NR > 1 && $1 - prev_t < prev_d - 5 { bad++ } { prev_t = $1; prev_d = $2 } END { print bad + 0 }')
	assert_eq 0 "$gaps" "$label: every reconnect came at least retry_in_ms after the previous one"
	first_ms=$(grep -m 1 ' database_connect_failed ' "$window" | ith_log_ms)
	last_ms=$(grep ' database_connect_failed ' "$window" | tail -n 1 | ith_log_ms)
	connected_ms=$(grep ' database_connected ' "$window" | ith_log_ms)
	span=$((last_ms - first_ms))
	# Most attempts the backoff allows in that span: delays are at least half the nominal
	# min(50 * 2^(k-1), 1000) ms.
	local most
	most=$(awk -v span="$span" 'BEGIN { n = 1; t = 0; d = 50
		while (1) { lo = (d > 1000 ? 1000 : d) / 2; if (t + lo > span) break; t += lo; n++; d *= 2 }
		print n }')
	echo "# $label: refused for $((connected_ms - first_ms)) ms; first to last attempt $span ms, at most $most attempts allowed"
	assert_ge "$failed" "$most" "$label: no busy loop ($failed attempts in $span ms, backoff allows $most)"
	assert_ge 400 "$(grep ' database_connect_failed ' "$window" | tail -n 1 | ith_field retry_in_ms)" \
		"$label: the backoff grew towards retry.max_backoff_ms"
	assert_file_contains "$window" "database_connected" "$label: reconnected by itself once the database accepted connections"
}

# Starts an outage once the worker has settled MIN more requests; the stream must still run.
outage_start() { # MIN
	itf_wait_log 60 "$log" 'outcome=' $(($(itf_outcomes "$log") + $1))
	local fed
	fed=$(ith_feed_progress s)
	((fed < total - 400)) || fail "the stream was nearly over before the outage ($fed of $total fed)"
	BEFORE=$(wc -l <"$log")
}
# Waits out the outage; the worker must stay up.
outage_hold() { # LABEL
	local t0=$SECONDS
	while ((SECONDS - t0 < OUTAGE_SECS)); do
		itf_alive "$IT_PID_w" || fail "$1: the worker exited during the outage"
		sleep 0.2
	done
}

# ---- 1. too many connections for the role (53300) ----
outage_start 300
psql -X -q -v ON_ERROR_STOP=1 -c "ALTER ROLE $ROLE CONNECTION LIMIT 0" >/dev/null
terminate_worker_sessions
itf_wait_log 30 "$log" ' database_connect_failed .*too many connections' 1
ok "too many connections: the worker's reconnects are refused (too many connections)"
outage_hold "53300"
# Counted before the database is opened again: the reconnect may come before psql returns.
connected=$(grep -c ' database_connected ' "$log" || true)
psql -X -q -v ON_ERROR_STOP=1 -c "ALTER ROLE $ROLE CONNECTION LIMIT -1" >/dev/null
itf_wait_log 30 "$log" ' database_connected ' $((connected + 1))
check_outage "too many connections" "$BEFORE" "too many connections for role"

# ---- 2. the database does not accept connections (55000) ----
outage_start 300
psql -X -q -d postgres -v ON_ERROR_STOP=1 -c "ALTER DATABASE $IT_DB ALLOW_CONNECTIONS false" >/dev/null
terminate_worker_sessions
itf_wait_log 30 "$log" ' database_connect_failed .*not currently accepting connections' 1
ok "database closed: the worker's reconnects are refused (database not accepting connections)"
outage_hold "55000"
connected=$(grep -c ' database_connected ' "$log" || true)
psql -X -q -d postgres -v ON_ERROR_STOP=1 -c "ALTER DATABASE $IT_DB ALLOW_CONNECTIONS true" >/dev/null
itf_wait_log 30 "$log" ' database_connected ' $((connected + 1))
check_outage "database closed" "$BEFORE" "is not currently accepting connections"

# ---- 3. the server paused ----
outage_start 300
paused_at=$(itf_outcomes "$log")
for pid in $(pg_pids); do kill -STOP "$pid"; done
sleep 1 # whatever the worker had in flight is now stuck on the paused server
stuck=$(itf_outcomes "$log")
outage_hold "server paused"
assert_eq "$stuck" "$(itf_outcomes "$log")" "server paused: no request settled while the server was stopped"
resume_server
itf_wait_log 60 "$log" 'outcome=' $((stuck + 200))
ok "server paused: the worker carried on once the server resumed ($((stuck - paused_at)) settled in the first second)"

# ---- the end ----
ith_feed_wait s 90
itf_wait_caught_up 90
ok "every input and retry offset committed"
it_stop_worker w TERM
assert_eq 0 "$IT_RC" "SIGTERM at the end: exit code 0"
assert_ge 2 "$(grep -c ' consumption_resumed ' "$log")" "consumption resumed after each refusal"
itf_account "$manifest" "after PostgreSQL refused connections"
assert_eq 0 "$(jq -r '.headers["x-error-class"]' "$ITF_DLQ_FILE" | grep -cvE '^(malformed_message|foreign_key_violation|check_violation|not_null_violation)$' || true)" \
	"no dead letter of a transient (or unexpected) class"
assert_eq 0 "$(jq -r 'select(.headers["x-error-sqlstate"] // "" | test("^(08|53|55|57|40)")) | .offset' "$ITF_DLQ_FILE" | wc -l)" \
	"no dead letter with a transient SQLSTATE"
it_done
