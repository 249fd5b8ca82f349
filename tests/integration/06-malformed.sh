#!/usr/bin/env bash
# Messages that cannot be decoded (SPEC 1, 2) are dead-lettered without touching the database:
# malformed_message (not UTF-8 JSON, not an object, a field of the wrong JSON type, duplicate
# keys, empty) or unsupported_message (unknown type or version). The dead letter says what is
# wrong, has no SQLSTATE, and keeps the value byte for byte.
source "$(dirname "$0")/lib.sh"
it_setup
it_seed

req() { it_request "$(it_uuid)" "$1"; } # a valid value, content $1

# case ~ class ~ regex the x-error-message must match ~ value (raw text)
CASES=(
	"not_json~malformed_message~invalid JSON~hello, world"
	"truncated~malformed_message~invalid JSON~{\"type\":\"asset.create\",\"version\":1,\"request_id\":\""
	"array~malformed_message~JSON object.*array~[$(req 1)]"
	"string~malformed_message~JSON object|expected~\"asset.create\""
	"number~malformed_message~JSON object|expected~42"
	"name_int~malformed_message~\"name\".*string~$(req 2 | jq -c '.name = 5')"
	"size_string~malformed_message~\"size_bytes\".*integer~$(req 3 | jq -c '.size_bytes = "10"')"
	"size_real~malformed_message~\"size_bytes\".*integer~$(req 4 | jq -c '.size_bytes = 10.5')"
	"metadata_array~malformed_message~\"metadata\".*object~$(req 5 | jq -c '.metadata = []')"
	"metadata_string~malformed_message~\"metadata\".*object~$(req 6 | jq -c '.metadata = "{}"')"
	"version_string~malformed_message~\"version\"~$(req 7 | jq -c '.version = "1"')"
	"version_missing~malformed_message~\"version\"~$(req 8 | jq -c 'del(.version)')"
	"type_missing~malformed_message~\"type\"~$(req 9 | jq -c 'del(.type)')"
	"type_int~malformed_message~\"type\"~$(req 10 | jq -c '.type = 1')"
	"request_id_int~malformed_message~\"request_id\".*string~$(req 11 | jq -c '.request_id = 11')"
	"tenant_bool~malformed_message~\"tenant_id\".*string~$(req 12 | jq -c '.tenant_id = true')"
	"folder_object~malformed_message~\"folder_id\".*string~$(req 13 | jq -c '.folder_id = {}')"
	"mime_array~malformed_message~\"mime_type\".*string~$(req 14 | jq -c '.mime_type = ["a"]')"
	"duplicate_keys~malformed_message~duplicate~$(req 15 | sed 's/^{/{"name":"first.bin",/')"
	"nul_escape~malformed_message~invalid JSON~$(req 16 | jq -c '.name = "a"' | sed 's/"name":"a"/"name":"a\\u0000b"/')"
	"unknown_type~unsupported_message~asset\\.delete~$(req 17 | jq -c '.type = "asset.delete"')"
	"version_2~unsupported_message~version 2~$(req 18 | jq -c '.version = 2')"
)
# Not UTF-8: a valid request with byte 0xff in the name (sent as value_b64).
BAD_UTF8_B64=$(printf '%s' "$(req 19)" | sed 's/file-19/file-\xff\xfe-19/' | base64 -w0)

{
	i=0
	for spec in "${CASES[@]}"; do
		IFS='~' read -r c _ _ v <<<"$spec"
		it_envelope "$v" $((i % 4)) "$c"
		i=$((i + 1))
	done
	it_envelope "" 0 bad_utf8 | jq -c --arg b "$BAD_UTF8_B64" 'del(.value) | .value_b64 = $b'
	it_envelope "" 1 empty_value
	it_envelope "" 2 null_value | jq -c '.value = null'
	# Control: a valid request with an unknown extra field (ignored) is created.
	it_envelope "$(req 20 '"unknown_extra":{"a":[1]}')" 3 control
} | it_produce_envelopes
it_run_drain

IN=$(it_dump_file assets.create)
DLQ=$(it_dump_file assets.create.dlq)
NBAD=$((${#CASES[@]} + 3))
assert_eq "$NBAD" "$(wc -l <"$DLQ")" "one dead letter per undecodable message"
assert_eq 0 "$(it_dump assets.create.retry | wc -l)" "nothing requeued"
assert_eq 1 "$(it_sql "SELECT count(*) FROM asset_requests")" "PostgreSQL holds only the control request"
assert_eq 1 "$(it_sql "SELECT count(*) FROM assets")" "one asset: the control's"
assert_eq "file-20.bin" "$(it_sql "SELECT name FROM assets")" "the control request was created"

check_common() { # case record input-record
	local c=$1 rec=$2 inrec=$3
	assert_eq 1 "$(grep -c . <<<"$rec")" "$c: exactly one dead letter"
	assert_eq "<absent>" "$(it_hdr x-error-sqlstate <<<"$rec")" "$c: no x-error-sqlstate (the database was not asked)"
	assert_eq "<absent>" "$(it_hdr x-error-constraint <<<"$rec")" "$c: no x-error-constraint"
	assert_eq "assets.create|$(jq -r '"\(.partition)|\(.offset)"' <<<"$inrec")" \
		"$(jq -r '[.headers["x-original-topic"], .headers["x-original-partition"], .headers["x-original-offset"]] | join("|")' <<<"$rec")" \
		"$c: x-original-* is the input record's place"
	assert_eq 1 "$(it_hdr x-attempt <<<"$rec")" "$c: x-attempt 1"
	assert_match '^[^[:space:]]+$' "$(it_hdr x-worker-id <<<"$rec")" "$c: x-worker-id"
	assert_eq "$(jq -c '[.key, .value, .value_b64]' <<<"$inrec")" "$(jq -c '[.key, .value, .value_b64]' <<<"$rec")" \
		"$c: key and value identical to the input record's"
	assert_eq "trace-$c" "$(it_hdr it-trace <<<"$rec")" "$c: producer header kept"
}

for spec in "${CASES[@]}"; do
	IFS='~' read -r c class re v <<<"$spec"
	rec=$(it_by_case "$DLQ" "$c")
	check_common "$c" "$rec" "$(it_by_case "$IN" "$c")"
	assert_eq "$class" "$(it_hdr x-error-class <<<"$rec")" "$c: x-error-class $class"
	assert_match "$re" "$(it_hdr x-error-message <<<"$rec")" "$c: x-error-message says what is wrong"
	assert_eq "$v" "$(jq -j .value <<<"$rec")" "$c: value byte-identical to the produced one"
done

rec=$(it_by_case "$DLQ" bad_utf8)
check_common bad_utf8 "$rec" "$(it_by_case "$IN" bad_utf8)"
assert_eq malformed_message "$(it_hdr x-error-class <<<"$rec")" "bad_utf8: x-error-class"
assert_match 'invalid JSON|UTF-8|utf-8' "$(it_hdr x-error-message <<<"$rec")" "bad_utf8: x-error-message"
assert_eq "$BAD_UTF8_B64" "$(jq -r .value_b64 <<<"$rec")" "bad_utf8: the raw bytes come back unchanged"

for c in empty_value null_value; do
	rec=$(it_by_case "$DLQ" "$c")
	check_common "$c" "$rec" "$(it_by_case "$IN" "$c")"
	assert_eq malformed_message "$(it_hdr x-error-class <<<"$rec")" "$c: x-error-class"
	assert_match 'empty' "$(it_hdr x-error-message <<<"$rec")" "$c: x-error-message says empty"
done
assert_eq null "$(it_by_case "$DLQ" null_value | jq -c .value)" "null_value: the dead letter's value is null too"
assert_eq '""|null' "$(it_by_case "$DLQ" empty_value | jq -r '[(.value | tojson), (.value_b64 | tojson)] | join("|")')" \
	"empty_value: the dead letter's value is empty, not null"
assert_eq "$NBAD" "$(grep -c '"*outcome=dead_lettered' "$IT_LAST_LOG")" "one dead_lettered log line each"
it_done
