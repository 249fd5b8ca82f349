#!/usr/bin/env bash
# A statement that hangs on a lock held by another session runs into statement_timeout
# (postgres.statement_timeout_ms: 500 here): PostgreSQL cancels it with SQLSTATE 57014
# (query_canceled). SPEC section 1: transient, so roll back and retry in place with backoff,
# consumption paused, never dead-lettered. Two locks, each held ~3 s under a steady stream:
#  1. LOCK TABLE assets IN ACCESS EXCLUSIVE MODE: every request waits;
#  2. a row lock: another session has inserted, uncommitted, the asset a marker request is
#     about to create (same tenant and content), so the worker's INSERT waits on the unique
#     index; the session then rolls back and the marker is created, once.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_faults.sh"
source "$(dirname "$0")/lib_hostile.sh"
IT_STATEMENT_TIMEOUT_MS=500 it_setup
it_seed

HOLD_SECS=3
manifest="$IT_DIR/manifest.txt"
itf_gen_mixed "$IT_DIR/stream.jsonl" "$manifest" 2301 3500
total=$(wc -l <"$manifest")
log="$IT_DIR/worker-w.log"
it_start_worker w
itf_wait_log 60 "$log" 'partitions_assigned count=[1-9]' 1
ith_feed_start s "$IT_DIR/stream.jsonl" 20 0.1

# A psql session the test drives line by line (through a FIFO), to hold a lock as long as it
# wants. Its output goes to $IT_DIR/holder-N.log.
HOLDER_N=0
holder_start() {
	HOLDER_N=$((HOLDER_N + 1))
	local fifo="$IT_DIR/holder-$HOLDER_N.fifo"
	mkfifo "$fifo"
	psql -X -q -v ON_ERROR_STOP=1 <"$fifo" >"$IT_DIR/holder-$HOLDER_N.log" 2>&1 &
	HOLDER_PID=$!
	IT_WORKER_PIDS+=("$HOLDER_PID")
	exec 7>"$fifo"
}
holder_send() { printf '%s\n' "$1" >&7; }
holder_end() {
	holder_send "$1"
	exec 7>&-
	local rc=0
	wait "$HOLDER_PID" || rc=$?
	assert_eq 0 "$rc" "the lock-holding session ended cleanly ($1)"
}
# Whether the holder's session (application_name it-holder) holds a granted lock of MODE on
# RELATION.
lock_held() { # RELATION MODE
	[[ "$(it_sql "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
		WHERE a.application_name = 'it-holder' AND l.granted AND l.mode = '$2'
		AND l.relation = '$1'::regclass")" -ge 1 ]]
}

# Checks the log from line BEFORE on: the cancelled statements (database_unavailable with
# sqlstate=57014) and nothing settled between the first of them and the release: no request
# at all (a table lock holds every one), or not the one request the lock holds (a row lock:
# the others of its batch run without it, SPEC 1).
check_hold() { # LABEL BEFORE RELEASE_LINE HELD_MS [REQUEST_ID]
	local label="$1" before="$2" release="$3" held_ms="$4" only="${5:-}" window="$IT_DIR/hold.log"
	sed -n "$((before + 1)),${release}p" "$log" >"$window"
	local canceled other settled
	canceled=$(grep -c ' database_unavailable .*sqlstate=57014' "$window" || true)
	other=$(grep ' database_unavailable ' "$window" | grep -vc 'sqlstate=57014' || true)
	echo "# $label: $canceled statements cancelled by statement_timeout while the lock was held," \
		"tries $(grep ' database_unavailable ' "$window" | ith_field tries | paste -sd,)"
	assert_ge 2 "$canceled" "$label: statements cancelled with 57014 and retried (database_unavailable sqlstate=57014)"
	assert_eq 0 "$other" "$label: no other database error meanwhile"
	assert_eq "$canceled" "$(grep ' database_unavailable .*sqlstate=57014' "$window" | grep -c 'error_class=query_canceled' || true)" \
		"$label: classified as query_canceled"
	assert_file_contains "$window" "consumption_paused" "$label: consumption paused while retrying"
	settled=$(awk '/ database_unavailable / { on = 1 } on && /outcome=/' "$window" | grep -c "request_id=$only" || true)
	assert_eq 0 "$settled" "$label: ${only:-nothing}${only:+ not} settled while the lock was held (it waits, in place)"
	# No busy loop: each try waits out the 500 ms timeout (then a backoff).
	assert_ge "$canceled" $((held_ms / 500 + 1)) "$label: at most one try per statement_timeout ($canceled tries, lock held $held_ms ms)"
}

# ---- 1. the table locked ----
itf_wait_log 60 "$log" 'outcome=' 300
fed=$(ith_feed_progress s)
((fed < total - 400)) || fail "the stream was nearly over before the lock ($fed of $total fed)"
before=$(wc -l <"$log")
holder_start
holder_send "SET application_name = 'it-holder';"
holder_send "BEGIN;"
holder_send "LOCK TABLE assets IN ACCESS EXCLUSIVE MODE;"
it_wait_for 10 "the table lock is held" lock_held assets AccessExclusiveLock
held_at=$(it_now_ms)
itf_wait_log 20 "$log" ' database_unavailable .*sqlstate=57014' $(($(grep -c 'sqlstate=57014' "$log" || true) + 1))
ok "table lock: the worker's statement was cancelled by statement_timeout (57014)"
while (($(it_now_ms) - held_at < HOLD_SECS * 1000)); do
	itf_alive "$IT_PID_w" || fail "table lock: the worker exited"
	sleep 0.2
done
release=$(wc -l <"$log")
held_ms=$(($(it_now_ms) - held_at))
holder_end "COMMIT;"
n=$(itf_outcomes "$log")
itf_wait_log 30 "$log" 'outcome=' $((n + 100))
ok "table lock: the worker carried on once the lock was released"
check_hold "table lock" "$before" "$release" "$held_ms"

# ---- 2. a row lock on the unique index ----
marker=$(it_uuid)
content=7230001
echo "$marker ok" >>"$manifest"
itf_wait_log 60 "$log" 'outcome=' $(($(itf_outcomes "$log") + 200))
fed=$(ith_feed_progress s)
((fed < total - 300)) || fail "the stream was nearly over before the row lock ($fed of $total fed)"
before=$(wc -l <"$log")
holder_start
holder_send "SET application_name = 'it-holder';"
holder_send "BEGIN;"
holder_send "INSERT INTO assets (tenant_id, name, content_sha256, size_bytes, storage_uri) VALUES ('$IT_TENANT', 'it-holder', '$(it_sha "$content")', 1, 's3://it/holder');"
it_wait_for 10 "the holder's insert is in" lock_held assets RowExclusiveLock
held_at=$(it_now_ms)
it_request "$marker" "$content" | it_produce_values assets.create
itf_wait_log 20 "$log" " database_unavailable .*request_id=$marker.*sqlstate=57014" 1
ok "row lock: the marker's INSERT waited on the uncommitted row and was cancelled (57014)"
while (($(it_now_ms) - held_at < HOLD_SECS * 1000)); do
	itf_alive "$IT_PID_w" || fail "row lock: the worker exited"
	sleep 0.2
done
release=$(wc -l <"$log")
held_ms=$(($(it_now_ms) - held_at))
holder_end "ROLLBACK;"
itf_wait_log 30 "$log" "request_id=$marker .*outcome=created" 1
ok "row lock: once the other session rolled back, the marker was created"
check_hold "row lock" "$before" "$release" "$held_ms" "$marker"
assert_ge 2 "$(sed -n "$((before + 1)),${release}p" "$log" | grep ' database_unavailable ' | grep -c "request_id=$marker" || true)" \
	"row lock: the retries name the marker request"
assert_eq 1 "$(grep "request_id=$marker" "$log" | grep -c 'outcome=')" "row lock: the marker settled once"
assert_eq "created 1" "$(it_sql "SELECT r.outcome || ' ' || (SELECT count(*) FROM assets WHERE content_sha256 = '$(it_sha "$content")') FROM asset_requests r WHERE r.request_id = '$marker'")" \
	"row lock: the marker's asset exists once, created by the worker"

# ---- the end ----
ith_feed_wait s 90
itf_wait_caught_up 90
ok "every input and retry offset committed"
it_stop_worker w TERM
assert_eq 0 "$IT_RC" "SIGTERM at the end: exit code 0"
itf_account "$manifest" "after statements hung on locks"
assert_eq 0 "$(jq -r 'select(.headers["x-error-sqlstate"] // "" | test("^(57|40|08|53)")) | .offset' "$ITF_DLQ_FILE" | wc -l)" \
	"no dead letter with a transient SQLSTATE (57014 included)"
assert_eq 0 "$(jq -r '.headers["x-error-class"]' "$ITF_DLQ_FILE" | grep -cvE '^(malformed_message|foreign_key_violation|check_violation|not_null_violation)$' || true)" \
	"no dead letter of an unexpected class"
it_done
