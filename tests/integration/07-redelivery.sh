#!/usr/bin/env bash
# At-least-once delivery (SPEC 1): a request delivered again resolves as `replayed` and changes
# nothing. Twice in the stream; then the whole stream again, to a new consumer group against
# the same database.
source "$(dirname "$0")/lib.sh"
it_setup
it_seed

R1=$(it_uuid) R2=$(it_uuid) R3=$(it_uuid) R4=$(it_uuid)
V1=$(it_request "$R1" 1)
{
	echo "$V1"
	it_request "$R2" 2
	echo
	it_request "$R3" 1 # same content as R1: duplicate
	echo
	echo "$V1" # the very same record again
	it_request "$R4" 3
	echo
	it_request "$R3" 1 # the duplicate, again
	echo
} | it_produce_values assets.create 0
it_run_drain
LOG1=$IT_LAST_LOG

snapshot() {
	it_sql "SELECT (SELECT md5(string_agg(a::text, ',' ORDER BY a.id)) FROM assets a) || ' ' || (SELECT md5(string_agg(r::text, ',' ORDER BY r.request_id)) FROM asset_requests r)"
}
assert_eq 3 "$(it_sql "SELECT count(*) FROM assets")" "three contents, three assets"
assert_eq 4 "$(it_sql "SELECT count(*) FROM asset_requests")" "four requests, four rows"
assert_eq "created duplicate created created" \
	"$(it_sql "SELECT string_agg(outcome, ' ' ORDER BY request_id = '$R1' DESC, request_id = '$R3' DESC, request_id = '$R2' DESC) FROM asset_requests")" \
	"outcomes of R1 R3 R2 R4"
assert_eq "0 2" "$(it_sql "SELECT source_offset || ' ' || (SELECT source_offset FROM asset_requests WHERE request_id = '$R3') FROM asset_requests WHERE request_id = '$R1'")" \
	"rows keep the first delivery's offset"
assert_eq 2 "$(grep -c 'outcome=replayed' "$LOG1")" "the two repeated records are logged as replayed"
assert_match "offset=3 request_id=$R1 attempt=1 outcome=replayed asset_id=$(it_sql "SELECT asset_id FROM asset_requests WHERE request_id = '$R1'")" \
	"$(grep 'outcome=replayed' "$LOG1" | head -n 1)" "the replay names the request and its existing asset"
assert_eq 0 "$(it_dump assets.create.dlq | wc -l)" "nothing dead-lettered"
BEFORE=$(snapshot)

# Everything again: a new group starts from the earliest offset of the same topic.
IT_GROUP="it-07-redelivery-second"
it_write_config
it_run_drain
LOG2=$IT_LAST_LOG
assert_eq 6 "$(grep -c 'outcome=replayed' "$LOG2")" "all six records replayed by the new group"
assert_eq 0 "$(grep -c -e 'outcome=created' -e 'outcome=duplicate' "$LOG2" || true)" "nothing created or linked again"
assert_eq "$BEFORE" "$(snapshot)" "assets and asset_requests unchanged, to the byte"
assert_eq 4 "$(it_sql "SELECT count(*) FROM asset_requests")" "asset_requests count unchanged"
assert_eq 3 "$(it_sql "SELECT count(*) FROM assets")" "assets count unchanged"
assert_eq 0 "$(it_dump assets.create.dlq | wc -l)" "still nothing dead-lettered"
assert_eq 0 "$(it_dump assets.create.retry | wc -l)" "nothing requeued"
committed=$("$AWK" committed --group "$IT_GROUP" --topic assets.create | awk '$1 == 0 {print $2}')
assert_eq 6 "$committed" "the new group committed every offset"
it_done
