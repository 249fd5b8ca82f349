#!/usr/bin/env bash
# Every class of database refusal that is dead-lettered (SPEC 1): NOT NULL, foreign key, CHECK,
# exclusion, other 23xxx, 22xxx and "anything else", also for requests whose content already
# exists (a duplicate must be valid too). Each dead letter names the class, the
# SQLSTATE and the constraint PostgreSQL reported, carries the headers of SPEC 4, keeps the
# original key, value and producer headers byte for byte, and nothing of it stays in the
# database.
source "$(dirname "$0")/lib.sh"
it_setup
it_seed
it_install_raise_trigger

# A second tenant with its folder: a folder is only usable by its own tenant.
T2=5a0e8f3c-3333-4a4a-8a8a-000000000003
F2=5a0e8f3c-4444-4a4a-8a8a-000000000004
it_sql "INSERT INTO tenants VALUES ('$T2', 'other tenant')" >/dev/null
it_sql "INSERT INTO folders VALUES ('$F2', '$T2', 'other folder')" >/dev/null
# Test-only exclusion constraint: one storage_uri per asset.
it_sql "ALTER TABLE assets ADD CONSTRAINT it_uri_excl EXCLUDE USING btree (storage_uri WITH =)" >/dev/null
# A primary message far beyond 1 KiB, of 2-byte characters after one ASCII byte, so a cut at
# byte 1024 falls inside a character unless it is made at a character boundary.
LONG_MSG="x$(printf 'é%.0s' $(seq 2600))"
it_raise_rule long-message P0001 "" 0 "$LONG_MSG"

# case | expected class | SQLSTATE | constraint ("-": none) ; the value is built below.
CASES=(
	"nn_name|not_null_violation|23502|-"
	"nn_name_null|not_null_violation|23502|-"
	"nn_uri|not_null_violation|23502|-"
	"nn_size|not_null_violation|23502|-"
	"nn_request_id|not_null_violation|23502|-"
	"fk_tenant|foreign_key_violation|23503|assets_tenant_fkey"
	"fk_folder|foreign_key_violation|23503|assets_folder_fkey"
	"fk_folder_other_tenant|foreign_key_violation|23503|assets_folder_fkey"
	"ck_size|check_violation|23514|assets_size_bytes_nonnegative"
	"ck_sha_upper|check_violation|23514|assets_content_sha256_format"
	"ck_name_long|check_violation|23514|assets_name_length"
	"ck_name_empty|check_violation|23514|assets_name_length"
	"excl_uri|exclusion_violation|23P01|it_uri_excl"
	"dup_nn_name|not_null_violation|23502|-"
	"dup_ck_size|check_violation|23514|assets_size_bytes_nonnegative"
	"dup_fk_folder_other_tenant|foreign_key_violation|23503|assets_folder_fkey"
	"integrity_23000|integrity_violation|23000|-"
	"integrity_23001|integrity_violation|23001|-"
	"data_request_id|data_exception|22P02|-"
	"data_tenant_id|data_exception|22P02|-"
	"data_folder_id|data_exception|22P02|-"
	"data_22012|data_exception|22012|-"
	"dberr_XX001|database_error|XX001|-"
	"dberr_42P17|database_error|42P17|-"
	"dberr_long_message|database_error|P0001|-"
)

declare -A VALUE
VALUE[nn_name]=$(it_request_jq "$(it_uuid)" 1 'del(.name)')
VALUE[nn_name_null]=$(it_request_jq "$(it_uuid)" 2 '.name = null')
VALUE[nn_uri]=$(it_request_jq "$(it_uuid)" 3 'del(.storage_uri)')
VALUE[nn_size]=$(it_request_jq "$(it_uuid)" 4 'del(.size_bytes)')
# The asset row is inserted before asset_requests refuses the NULL request_id: the rollback
# must take it away too.
VALUE[nn_request_id]=$(it_request_jq "$(it_uuid)" 5 'del(.request_id)')
VALUE[fk_tenant]=$(it_request_jq "$(it_uuid)" 6 '.tenant_id = "5a0e8f3c-9999-4a4a-8a8a-000000000999"')
VALUE[fk_folder]=$(it_request_jq "$(it_uuid)" 7 '.folder_id = "5a0e8f3c-9999-4a4a-8a8a-000000000998"')
VALUE[fk_folder_other_tenant]=$(it_request_jq "$(it_uuid)" 8 ".folder_id = \"$F2\"")
# Hand-written: odd whitespace, a newline, non-ASCII text; must come back byte for byte.
VALUE[ck_size]=$(printf '{ "type" : "asset.create",\n\t"version":1, "request_id":"%s", "tenant_id":"%s",  "name":"größe-ü 🙂.bin", "content_sha256":"%s", "size_bytes": -1, "storage_uri":"s3://it/9", "extra":{"ignored":[1, 2.50]} }  ' \
	"$(it_uuid)" "$IT_TENANT" "$(it_sha 9)")
VALUE[ck_sha_upper]=$(it_request_jq "$(it_uuid)" 10 ".content_sha256 = \"$(it_sha 10 | tr a-f A-F)\" | .content_sha256 |= (.[0:63] + \"A\")")
VALUE[ck_name_long]=$(it_request_jq "$(it_uuid)" 11 ".name = \"$(printf 'n%.0s' $(seq 2000))\"")
VALUE[ck_name_empty]=$(it_request_jq "$(it_uuid)" 12 '.name = ""')
EXCL_FIRST=$(it_uuid)
VALUE[excl_first]=$(it_request_jq "$EXCL_FIRST" 13 '.storage_uri = "s3://it/shared"')
VALUE[excl_uri]=$(it_request_jq "$(it_uuid)" 14 '.storage_uri = "s3://it/shared"')
# Same content as excl_first (already an asset): a duplicate must still be a valid request.
VALUE[dup_nn_name]=$(it_request_jq "$(it_uuid)" 13 'del(.name)')
VALUE[dup_ck_size]=$(it_request_jq "$(it_uuid)" 13 '.size_bytes = -1')
VALUE[dup_fk_folder_other_tenant]=$(it_request_jq "$(it_uuid)" 13 ".folder_id = \"$F2\"")
VALUE[integrity_23000]=$(it_request_jq "$(it_uuid)" 15 '.name = "raise:23000"')
VALUE[integrity_23001]=$(it_request_jq "$(it_uuid)" 16 '.name = "raise:23001"')
VALUE[data_request_id]=$(it_request_jq "$(it_uuid)" 17 '.request_id = "not-a-uuid"')
VALUE[data_tenant_id]=$(it_request_jq "$(it_uuid)" 18 '.tenant_id = "5a0e8f3c-1111-4a4a-8a8a-00000000000Z"')
VALUE[data_folder_id]=$(it_request_jq "$(it_uuid)" 19 '.folder_id = "folder-7"')
VALUE[data_22012]=$(it_request_jq "$(it_uuid)" 20 '.name = "raise:22012"')
VALUE[dberr_XX001]=$(it_request_jq "$(it_uuid)" 21 '.name = "raise:XX001"')
VALUE[dberr_42P17]=$(it_request_jq "$(it_uuid)" 22 '.name = "raise:42P17"')
VALUE[dberr_long_message]=$(it_request_jq "$(it_uuid)" 23 '.name = "long-message"')

# The exclusion pair on partition 0, in order, and the invalid duplicates of its first after
# it; the rest spread over the 4 partitions.
{
	it_envelope "${VALUE[excl_first]}" 0 excl_first
	it_envelope "${VALUE[excl_uri]}" 0 excl_uri
	i=0
	for spec in "${CASES[@]}"; do
		c=${spec%%|*}
		[[ $c == excl_uri ]] && continue
		p=$((i % 4))
		[[ $c == dup_* ]] && p=0
		if [[ $c == fk_tenant ]]; then # a key that is not UTF-8: bytes 00 ff 10 'k'
			it_envelope "${VALUE[$c]}" "$p" "$c" | jq -c 'del(.key) | .key_b64 = "AP8Qaw=="'
		else
			it_envelope "${VALUE[$c]}" "$p" "$c"
		fi
		i=$((i + 1))
	done
} | it_produce_envelopes
it_run_drain

IN=$(it_dump_file assets.create)
DLQ=$(it_dump_file assets.create.dlq)
RETRY=$(it_dump_file assets.create.retry)

assert_eq "${#CASES[@]}" "$(wc -l <"$DLQ")" "one dead letter per bad request, no more"
assert_eq 0 "$(wc -l <"$RETRY")" "nothing requeued"
assert_eq 1 "$(it_sql "SELECT count(*) FROM assets")" "only the first of the exclusion pair is an asset"
assert_eq 1 "$(it_sql "SELECT count(*) FROM asset_requests")" "only the first of the exclusion pair is recorded"
assert_eq "created" "$(it_sql "SELECT outcome FROM asset_requests WHERE request_id = '$EXCL_FIRST'")" \
	"the first of the exclusion pair was created"
WORKER_IDS=$(jq -r '.headers["x-worker-id"]' "$DLQ" | sort -u)
assert_match '^[^[:space:]]+$' "$WORKER_IDS" "every dead letter names the same, non-empty x-worker-id"

# The long message: cut to at most 1 KiB, at a character boundary, and still the start of it.
# aw-kafka dump shows a header that is not UTF-8 with every byte >= 0x80 as U+FFFD (3 bytes),
# so the raw length is the UTF-8 length less 2 per U+FFFD.
rec=$(it_by_case "$DLQ" dberr_long_message)
assert_eq 1 "$(grep -c . <<<"$rec")" "long message: one dead letter"
bytes=$(jq -r '.headers["x-error-message"] | utf8bytelength - 2 * ([scan("\ufffd")] | length)' <<<"$rec")
assert_ge 100 "$bytes" "long x-error-message keeps a useful part"
if ((bytes <= 1024)); then ok "long x-error-message is at most 1024 bytes ($bytes)"; else fail "x-error-message is $bytes bytes"; fi
assert_eq ok "$(jq -r 'if .headers["x-error-message"] | test("\ufffd") then "bad" else "ok" end' <<<"$rec")" \
	"long x-error-message cut at a UTF-8 character boundary (header is valid UTF-8)"
msg=$(jq -r '.headers["x-error-message"]' <<<"$rec")
assert_eq "${LONG_MSG:0:${#msg}}" "$msg" "long x-error-message is a prefix of the server's message"

for spec in "${CASES[@]}"; do
	IFS='|' read -r c class state cons <<<"$spec"
	rec=$(it_by_case "$DLQ" "$c")
	inrec=$(it_by_case "$IN" "$c")
	assert_eq 1 "$(grep -c . <<<"$rec")" "$c: exactly one dead letter"
	assert_eq "$class" "$(it_hdr x-error-class <<<"$rec")" "$c: x-error-class"
	assert_eq "$state" "$(it_hdr x-error-sqlstate <<<"$rec")" "$c: x-error-sqlstate"
	if [[ $cons == - ]]; then
		assert_eq "<absent>" "$(it_hdr x-error-constraint <<<"$rec")" "$c: no x-error-constraint"
	else
		assert_eq "$cons" "$(it_hdr x-error-constraint <<<"$rec")" "$c: x-error-constraint"
	fi
	msg=$(it_hdr x-error-message <<<"$rec")
	assert_match '^.+$' "$msg" "$c: x-error-message present and not empty"
	assert_eq "assets.create" "$(it_hdr x-original-topic <<<"$rec")" "$c: x-original-topic"
	assert_eq "$(jq -r .partition <<<"$inrec")" "$(it_hdr x-original-partition <<<"$rec")" \
		"$c: x-original-partition is the input record's partition"
	assert_eq "$(jq -r .offset <<<"$inrec")" "$(it_hdr x-original-offset <<<"$rec")" \
		"$c: x-original-offset is the input record's offset"
	assert_eq 1 "$(it_hdr x-attempt <<<"$rec")" "$c: x-attempt"
	assert_eq "$WORKER_IDS" "$(it_hdr x-worker-id <<<"$rec")" "$c: x-worker-id"
	assert_eq "<absent>" "$(it_hdr x-retry-not-before <<<"$rec")" "$c: no x-retry-not-before on a dead letter"
	assert_eq "${VALUE[$c]}" "$(jq -j .value <<<"$rec")" "$c: value byte-identical to the produced one"
	assert_eq "$(jq -c '[.key, .key_b64, .value, .value_b64]' <<<"$inrec")" \
		"$(jq -c '[.key, .key_b64, .value, .value_b64]' <<<"$rec")" "$c: key and value identical to the input record's"
	assert_eq "$c|trace-$c" "$(jq -r '.headers["it-case"] + "|" + .headers["it-trace"]' <<<"$rec")" \
		"$c: producer headers preserved"
	assert_eq ok "$(jq -r 'if ([.headers["x-original-partition"], .headers["x-original-offset"], .headers["x-attempt"]]
		| map(strings | test("^(0|[1-9][0-9]*)$")) | length == 3 and all) then "ok" else "bad" end' <<<"$rec")" \
		"$c: numeric headers are plain decimal"
	assert_eq ok "$(jq -r 'if ([.headers[] | strings | test("\ufffd")] | any) then "bad" else "ok" end' <<<"$rec")" \
		"$c: every header value is valid UTF-8"
done

# The key that is not UTF-8 travels as bytes.
assert_eq "AP8Qaw==" "$(it_by_case "$DLQ" fk_tenant | jq -r .key_b64)" "binary key preserved"
# Messages name what went wrong (primary message of PostgreSQL).
assert_match 'assets_tenant_fkey' "$(it_by_case "$DLQ" fk_tenant | it_hdr x-error-message)" "FK message names the constraint"
assert_match 'uuid' "$(it_by_case "$DLQ" data_request_id | it_hdr x-error-message)" "22P02 message says uuid"
assert_match 'exclusion constraint' "$(it_by_case "$DLQ" excl_uri | it_hdr x-error-message)" "23P01 message"
assert_file_lacks "$IT_LAST_LOG" "25P02" "no aborted-transaction error in the log"
it_done
