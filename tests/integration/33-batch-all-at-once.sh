#!/usr/bin/env bash
# One batch holding every kind of request at once (issue 12): new ones, two requests with the
# same content, the same request_id twice, a request already recorded, a duplicate of an asset
# in the table, a duplicate that breaks a CHECK, refusals of five kinds, and a race with
# another transaction. Each is decided on its own, with its own SQLSTATE and constraint; the
# refusals cost the others nothing; the set path decides the whole batch without falling back
# to one request at a time; the race is requeued and resolves as a duplicate on its retry.
source "$(dirname "$0")/lib.sh"
it_setup
it_seed

OTHER_TENANT=5a0e8f3c-1111-4a4a-8a8a-0000000000b2
OTHER_FOLDER=5a0e8f3c-2222-4a4a-8a8a-0000000000b2
UNKNOWN_TENANT=5a0e8f3c-9999-4a4a-8a8a-000000000999
it_sql "INSERT INTO tenants VALUES ('$OTHER_TENANT', 'other tenant');
INSERT INTO folders VALUES ('$OTHER_FOLDER', '$OTHER_TENANT', 'other folder')" >/dev/null

# ---- a request recorded before the batch ----
R0=$(it_uuid)
it_request "$R0" 2 | it_produce_values assets.create 1
it_run_drain
assert_eq created "$(it_sql "SELECT outcome FROM asset_requests WHERE request_id = '$R0'")" "the earlier request is recorded"
R0_ASSET=$(it_sql "SELECT asset_id FROM asset_requests WHERE request_id = '$R0'")

# ---- another transaction holds content 7, uncommitted, while the batch inserts it ----
BLOCKER_RID=$(it_uuid)
it_blocker_hold "$BLOCKER_RID" 7

# ---- the batch: one partition, in this order ----
A=$(it_uuid) B=$(it_uuid) FK=$(it_uuid) CHK=$(it_uuid) RACE=$(it_uuid) NN=$(it_uuid)
BADUUID=$(it_uuid) C=$(it_uuid) D=$(it_uuid) XFOLDER=$(it_uuid) LONG=$(it_uuid)
long_name=$(printf 'n%.0s' $(seq 1 1025))
# req REQUEST_ID CONTENT [jq arguments and filter]: one request value per line.
req() {
	local rid=$1 content=$2
	shift 2
	it_request "$rid" "$content" | jq -c "${@:-.}"
}
{
	req "$A" 1                                                      # 0  created
	req "$B" 1                                                      # 1  duplicate of A, same batch
	req "$FK" 10 --arg t "$UNKNOWN_TENANT" '.tenant_id = $t'        # 2  23503 tenant
	req "$CHK" 11 '.size_bytes = -5'                                # 3  23514 size
	req "$R0" 2                                                     # 4  replayed
	req "$RACE" 7                                                   # 5  race: requeued, then duplicate
	req "$NN" 12 'del(.storage_uri)'                                # 6  23502
	req "$BADUUID" 13 '.folder_id = "not-a-uuid"'                   # 7  22P02
	req "$C" 3                                                      # 8  created
	req "$C" 3                                                      # 9  replayed: same request_id
	req "$D" 2                                                      # 10 duplicate of R0's asset
	req "$XFOLDER" 14 --arg f "$OTHER_FOLDER" '.folder_id = $f'     # 11 23503 another tenant's folder
	req "$LONG" 1 --arg n "$long_name" '.name = $n'                 # 12 23514 a duplicate must be valid too
} | it_produce_values assets.create 0
it_start_worker batch --drain
it_blocker_waited_on "the batch's INSERT waiting on the blocker"
ok "the batch's INSERT of content 7 waits on the open transaction"
it_blocker_commit
it_wait_worker batch 60
assert_eq 0 "$IT_RC" "worker --drain exits 0"
LOG=$IT_DIR/worker-batch.log

outcome() { it_sql "SELECT outcome FROM asset_requests WHERE request_id = '$1'"; }
asset() { it_sql "SELECT asset_id FROM asset_requests WHERE request_id = '$1'"; }
logged() { grep "request_id=$1 " "$LOG" | grep -o 'outcome=[a-z_]*' | tr '\n' ' ' | sed 's/ $//'; }

assert_eq created "$(outcome "$A")" "A: created"
assert_eq duplicate "$(outcome "$B")" "B: duplicate of A in the same batch"
assert_eq "$(asset "$A")" "$(asset "$B")" "B: links to A's asset"
assert_eq "outcome=replayed" "$(logged "$R0")" "R0: logged replayed"
assert_eq 1 "$(it_sql "SELECT count(*) FROM asset_requests WHERE request_id = '$R0' AND source_partition = 1")" \
	"R0: its row is the first one's, unchanged"
assert_eq created "$(outcome "$C")" "C: created"
assert_eq "outcome=created outcome=replayed" "$(logged "$C")" "C twice in one batch: created, then replayed"
assert_eq duplicate "$(outcome "$D")" "D: duplicate of an asset already in the table"
assert_eq "$R0_ASSET" "$(asset "$D")" "D: links to R0's asset"

# The race: requeued with the unique violation, then a duplicate of the winner.
RETRY=$(it_dump_file assets.create.retry)
rec=$(jq -c --arg r "$RACE" 'select(.value | fromjson? | .request_id == $r)' "$RETRY")
assert_eq 1 "$(grep -c . <<<"$rec")" "race: requeued once"
assert_eq "unique_violation|23505|assets_tenant_content_key|0|5" \
	"$(jq -r '[.headers["x-error-class"], .headers["x-error-sqlstate"], .headers["x-error-constraint"], .headers["x-original-partition"], .headers["x-original-offset"]] | join("|")' <<<"$rec")" \
	"race: unique_violation 23505 on the dedup key, from partition 0 offset 5"
assert_eq 1 "$(wc -l <"$RETRY")" "nothing else requeued"
assert_eq duplicate "$(outcome "$RACE")" "race: resolves as duplicate on its retry"
assert_eq t "$(it_sql "SELECT a.asset_id = b.asset_id FROM asset_requests a, asset_requests b WHERE a.request_id = '$RACE' AND b.request_id = '$BLOCKER_RID'")" \
	"race: links to the winner's asset"

# The refusals: each dead-lettered alone with its own SQLSTATE and constraint.
DLQ=$(it_dump_file assets.create.dlq)
assert_eq 6 "$(wc -l <"$DLQ")" "six dead letters"
dl() {
	jq -r --arg o "$1" 'select(.headers["x-original-partition"] == "0" and .headers["x-original-offset"] == $o) | [.headers["x-error-class"], .headers["x-error-sqlstate"], (.headers["x-error-constraint"] // "-")] | join("|")' "$DLQ"
}
assert_eq "foreign_key_violation|23503|assets_tenant_fkey" "$(dl 2)" "offset 2: unknown tenant"
assert_eq "check_violation|23514|assets_size_bytes_nonnegative" "$(dl 3)" "offset 3: negative size"
assert_eq "not_null_violation|23502|-" "$(dl 6)" "offset 6: no storage_uri"
assert_eq "data_exception|22P02|-" "$(dl 7)" "offset 7: a folder_id that is not a uuid"
assert_eq "foreign_key_violation|23503|assets_folder_fkey" "$(dl 11)" "offset 11: another tenant's folder"
assert_eq "check_violation|23514|assets_name_length" "$(dl 12)" "offset 12: a duplicate with a name too long is refused, not linked"
for r in "$FK" "$CHK" "$NN" "$BADUUID" "$XFOLDER" "$LONG"; do
	assert_eq 0 "$(it_sql "SELECT count(*) FROM asset_requests WHERE request_id = '$r'")" "refused $r: no row"
done

# Nothing else in the database, and the set path decided it all.
assert_eq 4 "$(it_sql "SELECT count(*) FROM assets")" "assets: contents 1 (A), 2 (R0), 3 (C), 7 (the blocker's), nothing refused"
assert_eq 7 "$(it_sql "SELECT count(*) FROM asset_requests")" "request rows: R0, blocker, A, B, C, D, race"
assert_file_lacks "$LOG" "batch_run_one_by_one" "the batch was never run one request at a time"
assert_file_lacks "$LOG" "25P02" "no poisoned transaction"
committed=$("$AWK" committed --group "$IT_GROUP" --topic assets.create | awk '$1 == 0 {print $2}')
assert_eq 13 "$committed" "every offset of the batch committed"

# ---- a refusal meeting the set path without its check ----
# After a batch without refusals the worker leaves the refusal check out; a refusal then fails
# the set statement, and the batch runs again with the check (not one by one). Each group of
# requests is produced while the worker is frozen (SIGSTOP, well inside the session timeout),
# so it arrives as one batch rather than as records trickling in one by one.
printf 'metrics:\n  listen: "127.0.0.1:0"\n' >>"$IT_CONFIG"
it_start_worker m
mlog="$IT_DIR/worker-m.log"
it_wait_for 30 "metrics port in the log" grep -q 'metrics_listening' "$mlog"
it_wait_for 60 "worker m owns partitions" grep -qE 'partitions_assigned count=[1-9]' "$mlog"
port=$(grep -o 'port=[0-9]*' "$mlog" | head -n 1 | cut -d= -f2)
batches() { metric "$port" "asset_worker_batches_total{path=\"$1\"}"; }
p2_rows() { it_sql "SELECT count(*) FROM asset_requests WHERE source_partition = 2"; }
frozen_produce() { # produces stdin to partition 2 while worker m is frozen
	kill -STOP "$IT_PID_m"
	it_produce_values assets.create 2
	sleep 1
	kill -CONT "$IT_PID_m"
}
for n in $(seq 100 119); do req "$(it_uuid)" "$n"; done | frozen_produce
it_wait_for 60 "20 clean requests committed" bash -c "[[ \$(psql -X -A -t -q -c 'SELECT count(*) FROM asset_requests WHERE source_partition = 2') == 20 ]]"
set_before=$(batches set) checked_before=$(batches set_checked) alone_before=$(batches one_by_one)
FK2=$(it_uuid)
{
	for n in $(seq 120 124); do req "$(it_uuid)" "$n"; done
	req "$FK2" 125 --arg t "$UNKNOWN_TENANT" '.tenant_id = $t'
	for n in $(seq 126 130); do req "$(it_uuid)" "$n"; done
} | frozen_produce
it_wait_for 60 "the 10 good requests committed" bash -c "[[ \$(psql -X -A -t -q -c 'SELECT count(*) FROM asset_requests WHERE source_partition = 2') == 30 ]]"
it_wait_for 30 "the refusal dead-lettered" bash -c "\"$AWK\" dump --topic assets.create.dlq | grep -q '$FK2'"
assert_eq "$((set_before + 1))" "$(batches set)" "the batch ran the set path without the check"
assert_eq "$((checked_before + 1))" "$(batches set_checked)" "and once more with the check, after the refusal"
assert_eq "$alone_before" "$(batches one_by_one)" "not one request at a time"
assert_eq 30 "$(p2_rows)" "the other 10 committed"
it_stop_worker m
assert_eq 0 "$IT_RC" "the worker stops cleanly"
it_done
