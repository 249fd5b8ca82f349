#!/usr/bin/env bash
# Classification for a real database (SPEC 1, 5, 6):
#  1. the database turned read-only under load (default_transaction_read_only, as on a
#     standby after a failover) and back: 25006 is transient, the worker reconnects until it
#     finds a writable server; nothing is dead-lettered, nothing lost;
#  2. one request whose trigger sleeps past statement_timeout (57014), always, while
#     thousands of others commit: after retry.max_in_place_attempts it takes the requeue path,
#     which with retry.max_attempts 1 ends at once as retries_exhausted with its SQLSTATE in
#     the headers; no partition is held. (With more attempts its retry, read back only once
#     its transaction commits, may come when the stream is over: a request alone with nothing
#     else to run keeps retrying in place, a known limit; so this runs with one attempt.);
#  3. classify: in worker.yaml overrides the built-in action ({"23503": requeue}), and a
#     SIGHUP takes it back out;
#  4. a request refused at COMMIT (a deferred constraint trigger) is settled by its own
#     SQLSTATE, logged, once; the others of its batch commit;
#  5. check-config tries every kafka.properties entry on librdkafka and parses
#     postgres.conninfo with libpq: exit 2 with file:line:col, before any connection.
export IT_STATEMENT_TIMEOUT_MS=500 IT_MAX_IN_PLACE_ATTEMPTS=3 IT_MAX_ATTEMPTS=2
export IT_MAX_BACKOFF_MS=300
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_faults.sh"
it_setup
it_seed
it_install_raise_trigger

# ---- 1. read-only and back, under load ----
manifest="$IT_DIR/manifest.txt"
itf_gen "$IT_DIR/ro.jsonl" "$manifest" 3001 3000 --fk 1 --check 1
itf_produce_file "$IT_DIR/ro.jsonl"
it_start_worker ro
log="$IT_DIR/worker-ro.log"
itf_wait_log 60 "$log" 'outcome=' 300
# New sessions of this database are read-only; the worker's is cut, as by a failover.
it_sql "ALTER DATABASE $IT_DB SET default_transaction_read_only = on" >/dev/null
it_sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()" >/dev/null
itf_wait_log 60 "$log" 'database_unavailable.*sqlstate=25006' 3
ok "read-only database: 25006 retried in place (database_unavailable sqlstate=25006)"
n=$(itf_outcomes "$log")
sleep 2
assert_eq "$n" "$(itf_outcomes "$log")" "read-only database: nothing settled while every write is refused"
# (From another database: sessions of this one cannot ALTER anything now.)
psql -X -q -d postgres -c "ALTER DATABASE $IT_DB RESET default_transaction_read_only" >/dev/null
itf_wait_log 60 "$log" 'outcome=' $((n + 300))
ok "writable again: the worker reconnected and carries on"
itf_wait_caught_up 120
it_stop_worker ro TERM
assert_eq 0 "$IT_RC" "SIGTERM exit 0"
assert_eq 0 "$(grep -c 'outcome=dead_lettered.*sqlstate=25006' "$log" || true)" "no request dead-lettered for 25006"
itf_account "$manifest" "after read-only and back"

# ---- 2. one request failing alone with 57014 while others commit ----
POISON=$(it_uuid)
it_raise_rule "poison.bin" "" "" 1000 # sleeps 1 s, every try: past the 500 ms statement_timeout
itf_gen "$IT_DIR/flow.jsonl" "$IT_DIR/flow.manifest" 3002 2000
{
	head -n 300 "$IT_DIR/flow.jsonl"
	it_request "$POISON" 990001 | jq -c '{value: (.name = "poison.bin" | tojson), partition: 0}'
	tail -n +301 "$IT_DIR/flow.jsonl"
} >"$IT_DIR/flow-with-poison.jsonl"
itf_produce_file "$IT_DIR/flow-with-poison.jsonl"
sed -i 's/^  max_attempts: .*/  max_attempts: 1/' "$IT_CONFIG"
it_run_drain
sed -i "s/^  max_attempts: .*/  max_attempts: $IT_MAX_ATTEMPTS/" "$IT_CONFIG"
LOG=$IT_LAST_LOG
assert_ge 2000 "$(grep -cE 'outcome=(created|duplicate)' "$LOG" || true)" "the other 2000 requests were stored"
assert_ge 1 "$(grep -c "request_failing_alone.*request_id=$POISON.*sqlstate=57014" "$LOG" || true)" \
	"the request failing alone was taken out of the in-place loop (logged with 57014)"
RETRY=$(it_dump_file assets.create.retry)
assert_eq 0 "$(jq -c --arg r "$POISON" 'select(.value | fromjson? | .request_id == $r)' "$RETRY" | grep -c . || true)" \
	"not requeued (max_attempts 1)"
DLQ=$(it_dump_file assets.create.dlq)
rec=$(jq -c --arg r "$POISON" 'select(.value | fromjson? | .request_id == $r)' "$DLQ")
assert_eq retries_exhausted "$(it_hdr x-error-class <<<"$rec")" "then dead-lettered as retries_exhausted"
assert_eq 57014 "$(it_hdr x-error-sqlstate <<<"$rec")" "with SQLSTATE 57014"
assert_eq 0 "$(it_sql "SELECT count(*) FROM asset_requests WHERE request_id = '$POISON'")" "the poison request has no row"

# ---- 3. classify: overrides, reloaded ----
cat >>"$IT_CONFIG" <<'YAML'
classify:
  "23503": requeue
YAML
"$WORKER" check-config --config "$IT_CONFIG" >/dev/null || fail "check-config refused a valid classify:"
FK=$(it_uuid)
it_request "$FK" 990002 "\"folder_id\":\"$(it_uuid)\"" | it_produce_values assets.create 1
it_start_worker cls
clog="$IT_DIR/worker-cls.log"
itf_wait_log 60 "$clog" "request_id=$FK.*outcome=dead_lettered" 1
assert_match "outcome=requeued error_class=foreign_key_violation sqlstate=23503" \
	"$(grep "request_id=$FK" "$clog" | grep outcome=requeued)" "classify {23503: requeue}: a foreign-key violation is requeued"
assert_match "error_class=retries_exhausted" "$(grep "request_id=$FK" "$clog" | grep outcome=dead_lettered)" \
	"classify {23503: requeue}: then retries_exhausted"
# Taken back out by a reload: the built-in rule (dead-letter at once) again.
sed -i '/^classify:/,$d' "$IT_CONFIG"
kill -HUP "$IT_PID_cls"
itf_wait_log 20 "$clog" 'config_reloaded key=classify' 1
ok "SIGHUP: classify reloaded"
FK2=$(it_uuid)
it_request "$FK2" 990003 "\"folder_id\":\"$(it_uuid)\"" | it_produce_values assets.create 1
itf_wait_log 60 "$clog" "request_id=$FK2.*outcome=dead_lettered" 1
assert_eq 0 "$(grep "request_id=$FK2" "$clog" | grep -c outcome=requeued || true)" "after the reload a foreign-key violation is not requeued"
assert_match "attempt=1 outcome=dead_lettered error_class=foreign_key_violation" \
	"$(grep "request_id=$FK2" "$clog" | grep outcome=dead_lettered)" "after the reload: dead-lettered at once"
it_stop_worker cls TERM

# ---- 4. refused at COMMIT ----
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE FUNCTION it_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.name = 'refused-at-commit.bin' THEN
        RAISE EXCEPTION USING ERRCODE = '23514', MESSAGE = 'it_at_commit: refused at COMMIT',
            CONSTRAINT = 'it_at_commit_check';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER it_at_commit AFTER INSERT ON assets DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION it_at_commit();
SQL
AT_COMMIT=$(it_uuid)
itf_gen "$IT_DIR/commit.jsonl" "$IT_DIR/commit.manifest" 3004 200
{
	head -n 100 "$IT_DIR/commit.jsonl"
	it_request "$AT_COMMIT" 990004 | jq -c '{value: (.name = "refused-at-commit.bin" | tojson), partition: 2}'
	tail -n +101 "$IT_DIR/commit.jsonl"
} >"$IT_DIR/commit-all.jsonl"
itf_produce_file "$IT_DIR/commit-all.jsonl"
it_run_drain
LOG=$IT_LAST_LOG
assert_eq 1 "$(grep -c "commit_refused.*request_id=$AT_COMMIT.*sqlstate=23514" "$LOG" || true)" "refused at COMMIT: logged once"
assert_match "outcome=dead_lettered error_class=check_violation sqlstate=23514 constraint=it_at_commit_check" \
	"$(grep "request_id=$AT_COMMIT" "$LOG" | grep outcome=)" "refused at COMMIT: dead-lettered by its own SQLSTATE and constraint"
assert_eq 1 "$(grep "request_id=$AT_COMMIT" "$LOG" | grep -c outcome= || true)" "refused at COMMIT: settled once, not looped"
assert_ge 200 "$(grep -cE 'outcome=(created|duplicate)' "$LOG" || true)" "the other 200 requests were stored"

# ---- 5. check-config: librdkafka and libpq say what they cannot take ----
bad="$IT_DIR/bad.yaml"
cat >"$bad" <<'YAML'
kafka:
  brokers: "127.0.0.1:9"
  properties:
    sesion.timeout.ms: "6000"
    enable.idempotence: maybe
postgres:
  conninfo: "host=127.0.0.1 port=9 password"
classify:
  "23503": retry
YAML
rc=0
out=$(timeout 10 "$WORKER" check-config --config "$bad" 2>&1) || rc=$?
assert_eq 2 "$rc" "check-config: exit 2"
assert_match "bad.yaml:4:5: kafka.properties.sesion.timeout.ms: No such configuration property" "$out" "unknown librdkafka property at its line:col"
assert_match "bad.yaml:5:25: kafka.properties.enable.idempotence: Expected bool value" "$out" "invalid librdkafka value at its line:col"
assert_match "bad.yaml:7:13: postgres.conninfo: libpq cannot parse it" "$out" "unparsable conninfo at its line:col"
assert_match "bad.yaml:9:12: classify.23503: \"retry\": expected transient, requeue or dead_letter" "$out" "bad classify action at its line:col"
rc=0
timeout 10 "$WORKER" run --config "$bad" 2>"$IT_DIR/run-bad.log" || rc=$?
assert_eq 2 "$rc" "run with the same file: exit 2 before any connection"
it_done
