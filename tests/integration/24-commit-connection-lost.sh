#!/usr/bin/env bash
# The connection lost during COMMIT, under a steady stream: the worker cannot know whether
# the transaction committed, and must not guess (SPEC section 1, issue 3): it retries, and
# request_id resolves what did commit (replayed) from what did not (created now). Both sides:
#  1. not committed: a deferred constraint trigger on asset_requests, run by COMMIT itself,
#     makes the backend of a marker request's transaction terminate itself (FATAL 57P01) before
#     the commit record: the batch is gone, the retry creates it;
#  2. committed: the marker's COMMIT waits for a synchronous standby that does not exist
#     (synchronous_standby_names set for this phase; every other session of this database runs
#     with synchronous_commit = local, the marker's trigger switches it on for its own
#     transaction). The commit record is written, the backend waits in SyncRep, the test
#     terminates it: PostgreSQL says "the transaction has already committed locally" and closes
#     the connection before the COMMIT result is sent. The retry must find the request recorded
#     (replayed), change nothing, and dead-letter nothing.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_faults.sh"
source "$(dirname "$0")/lib_hostile.sh"
it_setup
it_seed

# synchronous_standby_names is server-wide: it is set for phase 2 only, reset by the exit trap,
# and, should this script be killed before its trap runs, by a detached process 60 s later.
reset_sync_standby() {
	psql -X -q -d postgres -c "ALTER SYSTEM RESET synchronous_standby_names" -c "SELECT pg_reload_conf()" >/dev/null 2>&1
}
it24_cleanup() {
	local rc=$?
	set +e
	reset_sync_standby || true
	(exit "$rc")
	itf_cleanup
}
trap it24_cleanup EXIT
reset_sync_standby

psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
ALTER DATABASE $IT_DB SET synchronous_commit = local;
CREATE TABLE it_commit_faults (request_id uuid PRIMARY KEY, action text NOT NULL, seq text NOT NULL);
CREATE FUNCTION it_commit_fault() RETURNS trigger LANGUAGE plpgsql AS \$\$
DECLARE
    r it_commit_faults;
BEGIN
    SELECT * INTO r FROM it_commit_faults WHERE request_id = NEW.request_id;
    IF FOUND AND nextval(r.seq) = 1 THEN
        IF r.action = 'terminate' THEN
            PERFORM pg_terminate_backend(pg_backend_pid());
            PERFORM pg_sleep(10); -- the termination ends it
        ELSIF r.action = 'syncrep' THEN
            PERFORM set_config('synchronous_commit', 'on', true);
        END IF;
    END IF;
    RETURN NULL;
END \$\$;
-- Deferred: runs inside COMMIT, after every statement of the batch succeeded.
CREATE CONSTRAINT TRIGGER it_commit_fault AFTER INSERT ON asset_requests
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION it_commit_fault();
SQL
# A marker request whose transaction meets ACTION at COMMIT, once.
add_marker() { # REQUEST_ID ACTION
	it_sql "CREATE SEQUENCE it_commit_seq_${2}; INSERT INTO it_commit_faults VALUES ('$1', '$2', 'it_commit_seq_${2}')" >/dev/null
	echo "$1 ok" >>"$manifest"
}
trigger_runs() { it_sql "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM it_commit_seq_$1"; }

manifest="$IT_DIR/manifest.txt"
itf_gen_mixed "$IT_DIR/stream.jsonl" "$manifest" 2401 3500
total=$(wc -l <"$manifest")
m1=$(it_uuid) m2=$(it_uuid)
add_marker "$m1" terminate
add_marker "$m2" syncrep
log="$IT_DIR/worker-w.log"
it_start_worker w
itf_wait_log 60 "$log" 'partitions_assigned count=[1-9]' 1
ith_feed_start s "$IT_DIR/stream.jsonl" 20 0.1

lost_lines() { grep -c ' database_unavailable .*error_class=connection_lost' "$log" || true; }
mid_stream() {
	itf_wait_log 60 "$log" 'outcome=' $(($(itf_outcomes "$log") + 300))
	local fed
	fed=$(ith_feed_progress s)
	((fed < total - 400)) || fail "the stream was nearly over ($fed of $total fed)"
}

# ---- 1. the backend dies inside COMMIT: nothing committed ----
mid_stream
lost0=$(lost_lines)
it_request "$m1" 8240001 | it_produce_values assets.create
itf_wait_log 30 "$log" "request_id=$m1 .*outcome=" 1
assert_ge $((lost0 + 1)) "$(lost_lines)" "terminated in COMMIT: the worker saw the connection lost (database_unavailable error_class=connection_lost)"
assert_eq 2 "$(trigger_runs terminate)" "terminated in COMMIT: the marker's COMMIT ran twice (lost, then retried)"
assert_match 'outcome=created' "$(grep "request_id=$m1 .*outcome=" "$log")" \
	"terminated in COMMIT: the retry created the request (the first COMMIT did not happen)"
assert_eq 1 "$(grep -c "request_id=$m1 .*outcome=" "$log")" "terminated in COMMIT: one outcome for the marker"

# ---- 2. the connection lost after the commit record: committed ----
mid_stream
lost0=$(lost_lines)
psql -X -q -d postgres -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET synchronous_standby_names = 'it_24_nobody'" \
	-c "SELECT pg_reload_conf()" >/dev/null
setsid bash -c "sleep 60; PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=$PGUSER psql -X -q -d postgres \
	-c 'ALTER SYSTEM RESET synchronous_standby_names' -c 'SELECT pg_reload_conf()'" >/dev/null 2>&1 </dev/null &
it_wait_for 10 "synchronous_standby_names in effect" \
	bash -c "[[ \$(psql -X -A -t -c 'SHOW synchronous_standby_names') == it_24_nobody ]]"
it_request "$m2" 8240002 | it_produce_values assets.create
waiting_pid() {
	WAITING=$(it_sql "SELECT pid FROM pg_stat_activity WHERE datname = '$IT_DB' AND wait_event = 'SyncRep'")
	[[ -n "$WAITING" ]]
}
it_wait_for 30 "the marker's COMMIT waiting for the standby" waiting_pid
ok "committed, not confirmed: the marker's COMMIT wrote its commit record and waits (SyncRep, pid $WAITING)"
stuck_line=$(wc -l <"$log")
it_sql "SELECT pg_terminate_backend($WAITING)" >/dev/null
reset_sync_standby
itf_wait_log 30 "$log" "request_id=$m2 .*outcome=" 1
assert_ge $((lost0 + 1)) "$(lost_lines)" "committed, not confirmed: the worker saw the connection lost during COMMIT"
assert_file_contains "$log" "already committed locally" "committed, not confirmed: PostgreSQL's warning reached the log (database_notice)"
assert_match 'outcome=replayed' "$(grep "request_id=$m2 .*outcome=" "$log")" \
	"committed, not confirmed: the retry resolved the marker as replayed through request_id"
assert_eq 1 "$(grep -c "request_id=$m2 .*outcome=" "$log")" "committed, not confirmed: one outcome for the marker"
assert_eq 1 "$(trigger_runs syncrep)" "committed, not confirmed: the retry inserted nothing (the deferred trigger ran once)"
assert_eq "created" "$(it_sql "SELECT outcome FROM asset_requests WHERE request_id = '$m2'")" \
	"committed, not confirmed: the marker's row is the one the lost COMMIT wrote"
# Its batch-mates committed with it: their retries are replays too, and each settled once.
replayed=$(tail -n +"$((stuck_line + 1))" "$log" | grep -c 'outcome=replayed' || true)
assert_ge 1 "$replayed" "committed, not confirmed: the batch's retry resolved its requests as replayed ($replayed)"

# ---- the end ----
ith_feed_wait s 90
itf_wait_caught_up 90
ok "every input and retry offset committed"
it_stop_worker w TERM
assert_eq 0 "$IT_RC" "SIGTERM at the end: exit code 0"
itf_account "$manifest" "after connections lost during COMMIT"
assert_eq 0 "$(jq -r '.headers["x-error-class"]' "$ITF_DLQ_FILE" | grep -cvE '^(malformed_message|foreign_key_violation|check_violation|not_null_violation)$' || true)" \
	"no dead letter of a transient (or unexpected) class"
assert_eq 0 "$(it_sql "SELECT count(*) FROM asset_requests WHERE outcome NOT IN ('created', 'duplicate')")" \
	"stored outcomes are created or duplicate only"
it_done
