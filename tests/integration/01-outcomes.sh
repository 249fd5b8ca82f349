#!/usr/bin/env bash
# created, duplicate and replayed: the three outcomes that reach PostgreSQL.
source "$(dirname "$0")/lib.sh"
it_setup
it_seed

r1=$(it_uuid) r2=$(it_uuid) r3=$(it_uuid)
{
	it_request "$r1" 1 "\"folder_id\":\"$IT_FOLDER\",\"metadata\":{\"k\":[1,2]},\"mime_type\":\"image/png\""
	echo
	it_request "$r2" 1 # same content: duplicate
	echo
	it_request "$r3" 2
	echo
	it_request "$r1" 1 # the same request again: replayed
	echo
} | it_produce_values assets.create 0 # one partition: in this order
it_run_drain

assert_eq 2 "$(it_sql "SELECT count(*) FROM assets")" "two assets for two contents"
assert_eq created "$(it_sql "SELECT outcome FROM asset_requests WHERE request_id='$r1'")" "first request created"
assert_eq duplicate "$(it_sql "SELECT outcome FROM asset_requests WHERE request_id='$r2'")" "same content: duplicate"
assert_eq t "$(it_sql "SELECT a.asset_id = b.asset_id FROM asset_requests a, asset_requests b WHERE a.request_id='$r1' AND b.request_id='$r2'")" "duplicate links to the first asset"
assert_eq 3 "$(it_sql "SELECT count(*) FROM asset_requests")" "replayed request adds no row"
assert_eq 1 "$(it_log_count replayed)" "replay logged as replayed"
assert_eq '{"k": [1, 2]}|image/png|5a0e8f3c-2222-4a4a-8a8a-000000000002' \
	"$(it_sql "SELECT metadata::text || '|' || mime_type || '|' || folder_id FROM assets a JOIN asset_requests r ON r.asset_id = a.id WHERE r.request_id='$r1'")" \
	"metadata, mime_type and folder stored"
assert_eq "assets.create" "$(it_sql "SELECT DISTINCT source_topic FROM asset_requests")" "source topic recorded"
assert_eq 0 "$(it_dump assets.create.dlq | wc -l)" "nothing dead-lettered"
committed=$("$AWK" committed --group "$IT_GROUP" --topic assets.create | awk '$2 > 0 {s += $2} END {print s + 0}')
assert_eq 4 "$committed" "every input offset committed"
it_done
