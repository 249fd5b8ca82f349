#!/usr/bin/env bash
# Unique violation (SPEC 1, 4): two writers race on the same content. The loser rolls back,
# is requeued to the retry topic with backoff and, on the retry, resolves as `duplicate` of
# the winner. A request that keeps hitting 23505 is dead-lettered as retries_exhausted after
# retry.max_attempts, with one retry record per earlier attempt.
export IT_MAX_ATTEMPTS=3 IT_INITIAL_BACKOFF_MS=200 IT_MAX_BACKOFF_MS=400
source "$(dirname "$0")/lib.sh"
it_setup
it_seed
it_install_raise_trigger

# ---- 1. a real race, made deterministic ----
# A second session inserts content 7 and keeps its transaction open until the worker's
# INSERT of the same content waits on the unique index; then it commits and the worker gets
# 23505 from assets_tenant_content_key.
BLOCKER_RID=$(it_uuid)
it_blocker_hold "$BLOCKER_RID" 7

R=$(it_uuid) AFTER=$(it_uuid)
T0=$(it_now_ms)
{
	it_request "$R" 7
	echo
	it_request "$AFTER" 8 # behind the loser on the same partition: not held up by its retry
	echo
} | it_produce_values assets.create 0
it_start_worker race --drain
it_blocker_waited_on "the worker's INSERT waiting on the blocker"
ok "the worker's INSERT of the same content waits on the open transaction"
T_COMMIT=$(it_now_ms)
it_blocker_commit
it_wait_worker race 60
assert_eq 0 "$IT_RC" "worker --drain exits 0"
LOG=$IT_DIR/worker-race.log

RETRY=$(it_dump_file assets.create.retry)
rec=$(jq -c --arg r "$R" 'select(.value | fromjson? | .request_id == $r)' "$RETRY")
assert_eq 1 "$(grep -c . <<<"$rec")" "the loser is requeued once"
assert_eq unique_violation "$(it_hdr x-error-class <<<"$rec")" "x-error-class unique_violation"
assert_eq 23505 "$(it_hdr x-error-sqlstate <<<"$rec")" "x-error-sqlstate 23505"
assert_eq assets_tenant_content_key "$(it_hdr x-error-constraint <<<"$rec")" "x-error-constraint names the dedup key"
assert_match 'duplicate key' "$(it_hdr x-error-message <<<"$rec")" "x-error-message is the server's"
assert_eq 1 "$(it_hdr x-attempt <<<"$rec")" "x-attempt 1"
assert_eq "assets.create|0|0" "$(jq -r '[.headers["x-original-topic"], .headers["x-original-partition"], .headers["x-original-offset"]] | join("|")' <<<"$rec")" \
	"x-original-* is the input record's place"
assert_match '^[^[:space:]]+$' "$(it_hdr x-worker-id <<<"$rec")" "x-worker-id present"
assert_eq "$(it_request "$R" 7)" "$(jq -j .value <<<"$rec")" "the requeued value is the original"
nb=$(it_hdr x-retry-not-before <<<"$rec")
assert_match '^[1-9][0-9]{12}$' "$nb" "x-retry-not-before is decimal epoch milliseconds"
ts=$(jq -r .timestamp <<<"$rec")
assert_ge "$((T0 + 1))" "$nb" "x-retry-not-before is later than the request's produce time"
assert_ge "$((T_COMMIT + 1))" "$nb" "x-retry-not-before is later than the winner's commit"
assert_ge "$((ts + 1))" "$nb" "x-retry-not-before is in the future of the retry record's creation"
assert_ge "$nb" "$((ts + IT_MAX_BACKOFF_MS))" "x-retry-not-before is at most max_backoff_ms after the requeue"

assert_eq duplicate "$(it_sql "SELECT outcome FROM asset_requests WHERE request_id = '$R'")" "the loser resolves as duplicate"
assert_eq t "$(it_sql "SELECT a.asset_id = b.asset_id FROM asset_requests a, asset_requests b WHERE a.request_id = '$R' AND b.request_id = '$BLOCKER_RID'")" \
	"the duplicate links to the winner's asset"
assert_eq 1 "$(it_sql "SELECT count(*) FROM assets WHERE content_sha256 = '$(it_sha 7)'")" "one asset for the content"
assert_eq created "$(it_sql "SELECT outcome FROM asset_requests WHERE request_id = '$AFTER'")" "the next request is created"
assert_eq 0 "$(it_dump assets.create.dlq | wc -l)" "nothing dead-lettered"
assert_match "outcome=requeued error_class=unique_violation sqlstate=23505 constraint=assets_tenant_content_key" \
	"$(grep "request_id=$R" "$LOG" | grep outcome=requeued)" "requeue logged with class, SQLSTATE and constraint"
assert_match "attempt=2 outcome=duplicate" "$(grep "request_id=$R" "$LOG" | grep outcome=duplicate)" \
	"the retry is attempt 2 and logs duplicate"
line_after=$(grep -n "request_id=$AFTER.*outcome=created" "$LOG" | cut -d: -f1)
line_dup=$(grep -n "request_id=$R.*outcome=duplicate" "$LOG" | cut -d: -f1)
assert_ge "$((line_after + 1))" "$line_dup" "the request behind the loser did not wait for the retry"
committed=$("$AWK" committed --group "$IT_GROUP" --topic assets.create | awk '$1 == 0 {print $2}')
assert_eq 2 "$committed" "both input offsets committed"

# ---- 2. retries exhausted ----
it_raise_rule always-23505 23505 "" 0 "" assets_tenant_content_key
X=$(it_uuid)
it_request "$X" 9 | jq -c '.name = "always-23505"' | it_produce_values assets.create 1
it_run_drain

assert_eq 3 "$(it_raise_tries always-23505)" "tried exactly retry.max_attempts (3) times"
DLQ=$(it_dump_file assets.create.dlq)
assert_eq 1 "$(wc -l <"$DLQ")" "one dead letter"
rec=$(cat "$DLQ")
assert_eq retries_exhausted "$(it_hdr x-error-class <<<"$rec")" "x-error-class retries_exhausted"
assert_eq 23505 "$(it_hdr x-error-sqlstate <<<"$rec")" "x-error-sqlstate 23505"
assert_eq assets_tenant_content_key "$(it_hdr x-error-constraint <<<"$rec")" "x-error-constraint kept"
assert_eq 3 "$(it_hdr x-attempt <<<"$rec")" "x-attempt 3"
assert_eq "assets.create|1|0" "$(jq -r '[.headers["x-original-topic"], .headers["x-original-partition"], .headers["x-original-offset"]] | join("|")' <<<"$rec")" \
	"x-original-* is the input topic's place, not the retry topic's"
assert_eq "<absent>" "$(it_hdr x-retry-not-before <<<"$rec")" "no x-retry-not-before on the dead letter"
assert_eq "$(it_request "$X" 9 | jq -c '.name = "always-23505"')" "$(jq -j .value <<<"$rec")" "the dead-lettered value is the original"
RETRY=$(it_dump_file assets.create.retry)
recs=$(jq -c --arg r "$X" 'select(.value | fromjson? | .request_id == $r)' "$RETRY")
assert_eq 2 "$(grep -c . <<<"$recs")" "two retry records for it"
assert_eq "1,2" "$(jq -r '.headers["x-attempt"]' <<<"$recs" | sort -n | paste -sd,)" "retry records of attempts 1 and 2"
assert_eq "assets.create|1|0" "$(jq -r '[.headers["x-original-topic"], .headers["x-original-partition"], .headers["x-original-offset"]] | join("|")' <<<"$recs" | sort -u)" \
	"both retry records point at the input topic's place"
assert_eq "unique_violation" "$(jq -r '.headers["x-error-class"]' <<<"$recs" | sort -u)" "both retry records say unique_violation"
assert_eq ok "$(jq -rs 'if map((.headers["x-retry-not-before"] | tonumber) - .timestamp) | all(. > 0 and . <= 400) then "ok" else "bad" end' <<<"$recs")" \
	"each retry waits more than 0 and at most max_backoff_ms"
assert_eq 0 "$(it_sql "SELECT count(*) FROM asset_requests WHERE request_id = '$X'")" "no row for the exhausted request"
it_done
