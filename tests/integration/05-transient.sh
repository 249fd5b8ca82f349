#!/usr/bin/env bash
# Transient database errors (SPEC 1): serialization failure, deadlock, too many connections,
# shutdown, connection errors and query cancelled by statement_timeout are retried in place,
# with consumption paused meanwhile, and never dead-lettered or lost; the requests behind
# them on the same partition commit too. A backend terminated mid-request (the worker's own
# connection, pg_terminate_backend) is reconnected and the request committed exactly once.
# One request per transaction, so the exact number of tries of each is known (in a batch, a
# transient failure of one request runs the others again too).
export IT_BATCH_SIZE=1
export IT_STATEMENT_TIMEOUT_MS=300 IT_LOG_FORMAT=json IT_INITIAL_BACKOFF_MS=20 IT_MAX_BACKOFF_MS=200
source "$(dirname "$0")/lib.sh"
it_setup
it_seed
it_install_raise_trigger

# marker | SQLSTATE raised ("" = none: sleeps past statement_timeout) | failing tries | class
RULES=(
	"t-40001|40001|3|serialization_failure"
	"t-40P01|40P01|2|deadlock_detected"
	"t-53300|53300|2|too_many_connections"
	"t-57P03|57P03|1|cannot_connect_now"
	"t-08006|08006|1|connection_exception"
	"t-57014||2|query_canceled"
)
declare -A RID GOOD
n=0
for spec in "${RULES[@]}"; do
	IFS='|' read -r m state times cls <<<"$spec"
	if [[ -z $state ]]; then it_raise_rule "$m" "" "$times" 1000; else it_raise_rule "$m" "$state" "$times"; fi
	RID[$m]=$(it_uuid)
	GOOD[$m]=$(it_uuid)
done
# On one partition, in order: each failing request followed by a good one.
{
	for spec in "${RULES[@]}"; do
		m=${spec%%|*}
		n=$((n + 1))
		it_request "${RID[$m]}" "$n" | jq -c --arg m "$m" '.name = $m'
		n=$((n + 1))
		it_request "${GOOD[$m]}" "$n"
		echo
	done
} | it_produce_values assets.create 0
it_run_drain
LOG=$IT_LAST_LOG

for spec in "${RULES[@]}"; do
	IFS='|' read -r m state times cls <<<"$spec"
	expect_state=${state:-57014}
	assert_eq created "$(it_sql "SELECT outcome FROM asset_requests WHERE request_id = '${RID[$m]}'")" "$m: created in the end"
	assert_eq "$((times + 1))" "$(it_raise_tries "$m")" "$m: tried $((times + 1)) times"
	events=$(jq -c --arg r "${RID[$m]}" 'select(.event == "database_unavailable" and .request_id == $r)' "$LOG")
	assert_eq "$times" "$(grep -c . <<<"$events")" "$m: one database_unavailable line per failed try"
	assert_eq "$expect_state|$cls" "$(jq -r '.sqlstate + "|" + .error_class' <<<"$events" | sort -u)" \
		"$m: database_unavailable names SQLSTATE $expect_state and class $cls"
	assert_eq "1" "$(jq -r '.attempt' <<<"$events" | sort -u)" "$m: retried in place (attempt stays 1)"
	assert_eq created "$(it_sql "SELECT outcome FROM asset_requests WHERE request_id = '${GOOD[$m]}'")" \
		"$m: the request behind it on the partition is created"
done
assert_eq 12 "$(it_sql "SELECT count(*) FROM asset_requests")" "12 requests, 12 rows"
assert_eq 0 "$(it_dump assets.create.dlq | wc -l)" "nothing dead-lettered"
assert_eq 0 "$(it_dump assets.create.retry | wc -l)" "nothing requeued"
paused=$(jq -c 'select(.event == "consumption_paused")' "$LOG" | wc -l)
resumed=$(jq -c 'select(.event == "consumption_resumed")' "$LOG" | wc -l)
assert_ge 1 "$paused" "consumption paused while the database failed"
assert_eq "$paused" "$resumed" "every pause is followed by a resume"
assert_eq consumption_resumed "$(jq -r 'select(.event | startswith("consumption_")) | .event' "$LOG" | tail -n 1)" \
	"consumption resumed at the end"
committed=$("$AWK" committed --group "$IT_GROUP" --topic assets.create | awk '$1 == 0 {print $2}')
assert_eq 12 "$committed" "every input offset committed"

# ---- the worker's backend terminated while a request runs ----
export IT_STATEMENT_TIMEOUT_MS=5000
it_write_config
it_raise_rule sleepy "" 1 4000
S=$(it_uuid) NEXT=$(it_uuid)
{
	it_request "$S" 100 | jq -c '.name = "sleepy"'
	it_request "$NEXT" 101
	echo
} | it_produce_values assets.create 0
it_start_worker term --drain
backend() {
	it_sql "SELECT pid || ' ' || application_name FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep' AND pid <> pg_backend_pid()"
}
sleeping() { [[ -n $(backend) ]]; }
it_wait_for 40 "the worker's backend sleeping in the trigger" sleeping
read -r bpid appname <<<"$(backend)"
# shellcheck disable=SC2154 # set by it_start_worker
assert_match "-${IT_PID_term}\$" "$appname" "the backend's application_name is the worker id (host-pid)"
assert_eq t "$(it_sql "SELECT pg_terminate_backend($bpid)")" "terminated the worker's backend"
it_wait_worker term 60
assert_eq 0 "$IT_RC" "worker --drain exits 0"
LOG=$IT_DIR/worker-term.log
assert_eq 1 "$(it_sql "SELECT count(*) FROM asset_requests WHERE request_id = '$S'")" "the interrupted request is recorded once"
assert_eq created "$(it_sql "SELECT outcome FROM asset_requests WHERE request_id = '$S'")" "and created"
assert_eq 1 "$(it_sql "SELECT count(*) FROM assets WHERE content_sha256 = '$(it_sha 100)'")" "one asset for it"
assert_eq 2 "$(it_raise_tries sleepy)" "tried twice: interrupted, then after the reconnect"
assert_eq created "$(it_sql "SELECT outcome FROM asset_requests WHERE request_id = '$NEXT'")" "the next request is created"
assert_ge 1 "$(jq -c --arg r "$S" 'select(.event == "database_unavailable" and .request_id == $r)' "$LOG" | wc -l)" \
	"database_unavailable logged for the interrupted request"
assert_ge 1 "$(jq -c 'select(.event == "database_connected")' "$LOG" | wc -l)" "reconnection logged"
assert_eq 1 "$(jq -c --arg r "$S" 'select(.event == "request" and .request_id == $r and .outcome == "created")' "$LOG" | wc -l)" \
	"one created line for it"
assert_eq 0 "$(it_dump assets.create.dlq | wc -l)" "still nothing dead-lettered"
assert_eq 0 "$(it_dump assets.create.retry | wc -l)" "still nothing requeued"
it_done
