#!/usr/bin/env bash
# One bad request must not hurt the next (SPEC 1): on one partition, in order, good requests,
# a bad one, good requests. Every good one commits, the bad one alone is dead-lettered, and
# no "current transaction is aborted" (25P02) shows up anywhere.
source "$(dirname "$0")/lib.sh"
it_setup
it_seed

UNKNOWN_TENANT=5a0e8f3c-9999-4a4a-8a8a-000000000999

# Variant A, partition 1: 20 good, a foreign key violation, 20 good.
{
	for n in $(seq 1 20); do it_request "$(it_uuid)" "$n"; echo; done
	it_request "$(it_uuid)" 1000 | jq -c --arg t "$UNKNOWN_TENANT" '.tenant_id = $t'
	for n in $(seq 21 40); do it_request "$(it_uuid)" "$n"; echo; done
} | it_produce_values assets.create 1
it_run_drain
LOG_A=$IT_LAST_LOG

assert_eq 40 "$(it_sql "SELECT count(*) FROM asset_requests WHERE source_partition = 1 AND outcome = 'created'")" \
	"A: all 40 good requests created"
assert_eq 40 "$(it_sql "SELECT count(*) FROM assets")" "A: 40 assets"
assert_eq "0-19,21-40" "$(it_sql "SELECT min(source_offset) FILTER (WHERE source_offset < 20) || '-' || max(source_offset) FILTER (WHERE source_offset < 20) || ',' || min(source_offset) FILTER (WHERE source_offset > 20) || '-' || max(source_offset) FILTER (WHERE source_offset > 20) FROM asset_requests")" \
	"A: the offsets before and after the bad one are recorded"
assert_eq 0 "$(it_sql "SELECT count(*) FROM asset_requests WHERE source_offset = 20")" "A: the bad one left no row"
assert_eq 20 "$(it_sql "SELECT count(*) FROM asset_requests WHERE source_offset > 20")" \
	"A: the 20 requests after the bad one committed"
DLQ=$(it_dump_file assets.create.dlq)
assert_eq 1 "$(wc -l <"$DLQ")" "A: one dead letter"
assert_eq "foreign_key_violation|23503|assets_tenant_fkey|1|20" \
	"$(jq -r '[.headers["x-error-class"], .headers["x-error-sqlstate"], .headers["x-error-constraint"], .headers["x-original-partition"], .headers["x-original-offset"]] | join("|")' "$DLQ")" \
	"A: the dead letter is the FK violation at partition 1 offset 20"
assert_eq 1 "$(grep -c 'outcome=dead_lettered' "$LOG_A")" "A: one dead_lettered line in the log"
assert_eq 0 "$(it_dump assets.create.retry | wc -l)" "A: nothing requeued"

# Variant B, partition 2: 20 good, a CHECK violation, a malformed message, 20 good.
{
	for n in $(seq 101 120); do it_request "$(it_uuid)" "$n"; echo; done
	it_request "$(it_uuid)" 1001 '"x":1' | jq -c '.size_bytes = -5'
	echo '{"type":"asset.create","version":1,"request_id":'
	for n in $(seq 121 140); do it_request "$(it_uuid)" "$n"; echo; done
} | it_produce_values assets.create 2
it_run_drain
LOG_B=$IT_LAST_LOG

assert_eq 40 "$(it_sql "SELECT count(*) FROM asset_requests WHERE source_partition = 2 AND outcome = 'created'")" \
	"B: all 40 good requests created"
assert_eq 20 "$(it_sql "SELECT count(*) FROM asset_requests WHERE source_partition = 2 AND source_offset > 21")" \
	"B: the 20 requests after the bad ones committed"
assert_eq 0 "$(it_sql "SELECT count(*) FROM asset_requests WHERE source_partition = 2 AND source_offset IN (20, 21)")" \
	"B: the bad ones left no row"
assert_eq 80 "$(it_sql "SELECT count(*) FROM assets")" "B: 80 assets in all"
DLQ=$(it_dump_file assets.create.dlq)
assert_eq 3 "$(wc -l <"$DLQ")" "B: two more dead letters"
assert_eq "check_violation|23514|assets_size_bytes_nonnegative|2|20" \
	"$(jq -r 'select(.headers["x-original-partition"] == "2" and .headers["x-original-offset"] == "20") | [.headers["x-error-class"], .headers["x-error-sqlstate"], .headers["x-error-constraint"], .headers["x-original-partition"], .headers["x-original-offset"]] | join("|")' "$DLQ")" \
	"B: the CHECK violation is dead-lettered"
assert_eq "malformed_message|<absent>|2|21" \
	"$(jq -r 'select(.headers["x-original-partition"] == "2" and .headers["x-original-offset"] == "21") | [.headers["x-error-class"], (.headers["x-error-sqlstate"] // "<absent>"), .headers["x-original-partition"], .headers["x-original-offset"]] | join("|")' "$DLQ")" \
	"B: the malformed message is dead-lettered"
assert_eq 0 "$(it_dump assets.create.retry | wc -l)" "B: nothing requeued"

# Nowhere a poisoned transaction.
for f in "$LOG_A" "$LOG_B"; do
	assert_file_lacks "$f" "25P02" "$(basename "$f"): no 25P02"
	assert_file_lacks "$f" "current transaction is aborted" "$(basename "$f"): no aborted transaction"
	assert_file_lacks "$f" "database_unavailable" "$(basename "$f"): the database was never taken for unavailable"
done
assert_eq 0 "$(jq -r '.headers[]' "$DLQ" | grep -c -e 25P02 -e 'transaction is aborted' || true)" "no 25P02 in any header"
committed=$("$AWK" committed --group "$IT_GROUP" --topic assets.create | awk '$1 == 1 || $1 == 2 {s += $2} END {print s + 0}')
assert_eq 83 "$committed" "every offset of partitions 1 and 2 committed (41 + 42)"
it_done
