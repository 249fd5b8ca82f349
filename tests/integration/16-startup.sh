#!/usr/bin/env bash
# Starting up. Against a database without the schema the worker refuses to run (exit 1, names
# `worker migrate`) before taking a single record: nothing dead-lettered, no offset committed.
# With PostgreSQL down it waits (retrying, saying so) instead of exiting, and once PostgreSQL
# is up it processes everything.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_faults.sh"
it_setup
it_seed

manifest="$IT_DIR/manifest.txt"
itf_gen_mixed "$IT_DIR/stream.jsonl" "$manifest" 1601 400
itf_produce_file "$IT_DIR/stream.jsonl"

# ---- 1. PostgreSQL down at startup ----
it_pg stop >/dev/null
it_start_worker w --drain
log="$IT_DIR/worker-w.log"
itf_wait_log 30 "$log" 'database_connect_failed' 3
itf_alive "$IT_PID_w" || fail "PostgreSQL down: the worker exited instead of waiting"
ok "PostgreSQL down: the worker waits, logging database_connect_failed"
# A few more attempts, still alive and still doing nothing.
n=$(grep -c 'database_connect_failed' "$log")
itf_wait_log 30 "$log" 'database_connect_failed' $((n + 3))
itf_alive "$IT_PID_w" || fail "PostgreSQL down: the worker exited while retrying"
ok "PostgreSQL down: still retrying (database_connect_failed keeps coming)"
assert_eq 0 "$(itf_outcomes "$log")" "PostgreSQL down: no request processed"
assert_eq 0 "$(it_dump assets.create.dlq | wc -l)" "PostgreSQL down: nothing dead-lettered"
assert_file_lacks "$log" "startup_failed" "PostgreSQL down: no startup failure"
it_pg start >/dev/null
itf_wait_log 30 "$log" 'database_connected' 1
ok "after PostgreSQL started: database_connected logged"
itf_wait_log 45 "$log" 'outcome=' 400
ok "after PostgreSQL started: every request processed"
deadline=$((SECONDS + 30))
while itf_alive "$IT_PID_w"; do
	((SECONDS < deadline)) || fail "the worker did not drain within 30 s of processing everything"
	sleep 0.2
done
it_stop_worker w TERM # reaps it; the exit code is the drain's
assert_eq 0 "$IT_RC" "after PostgreSQL started: --drain exited 0"
assert_eq 400 "$(itf_outcomes "$log")" "after PostgreSQL started: one outcome per request"
itf_account "$manifest" "startup"
itf_wait_caught_up 30
ok "every input offset committed"

# ---- 2. an unmigrated database ----
# A group of its own, which has never committed anything: the same stream is there to take.
config2="$IT_DIR/worker-unmigrated.yaml"
sed "s/group_id: $IT_GROUP\$/group_id: $IT_GROUP-unmigrated/" "$IT_CONFIG" >"$config2"
assert_eq 1 "$(grep -c "group_id: $IT_GROUP-unmigrated" "$config2")" "a second config with its own group"
bare="${IT_DB}_bare"
psql -q -X -d postgres -c "DROP DATABASE IF EXISTS $bare WITH (FORCE)" -c "CREATE DATABASE $bare" >/dev/null
log="$IT_DIR/unmigrated.log"
dlq_before=$(it_dump assets.create.dlq | wc -l)
retry_before=$(it_dump assets.create.retry | wc -l)
rc=0
PG_CONNINFO="postgresql://$PGUSER@127.0.0.1:$PGPORT/$bare" timeout 20 "$WORKER" run --config "$config2" 2>"$log" || rc=$?
assert_eq 0 "$(itf_outcomes "$log")" "unmigrated database: no request processed"
assert_eq "-1 -1 -1 -1" "$("$AWK" committed --group "$IT_GROUP-unmigrated" --topic assets.create | awk '{print $2}' | paste -sd' ')" \
	"unmigrated database: no input offset committed"
assert_eq "$dlq_before" "$(it_dump assets.create.dlq | wc -l)" "unmigrated database: nothing dead-lettered"
assert_eq "$retry_before" "$(it_dump assets.create.retry | wc -l)" "unmigrated database: nothing requeued"
assert_eq 0 "$(PGDATABASE=$bare it_sql "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" \
	"unmigrated database: left untouched (no tables created)"
echo "# unmigrated database: exit $rc; $(grep -c database_connect_failed "$log" || true) database_connect_failed lines"
assert_eq 1 "$rc" "unmigrated database: exits by itself with code 1 (124: still running after 20 s)"
assert_file_contains "$log" "worker migrate" "unmigrated database: the error names \`worker migrate\`"
psql -q -X -d postgres -c "DROP DATABASE $bare WITH (FORCE)" >/dev/null

it_done
