#!/usr/bin/env bash
# Regenerates the asset_message_decode corpus in tests/data/messages/ (committed; run once
# after editing). One file per case, named <expected>--<what>.json, holding the Kafka value
# byte for byte: no trailing newline unless the case is about one. An optional
# <same name>.expect lists checks on the decode result, one per line:
#   field=value     the decoded field equals value (rest of the line, verbatim)
#   field           the decoded field is NULL
#   reason~text     the reason contains text
# Fields: request_id tenant_id folder_id name content_sha256 size_bytes mime_type
# storage_uri metadata. The 5 MB cases are built by the test itself.
set -euo pipefail
cd "$(dirname "$0")/messages"
rm -f -- *.json *.expect

RID=0b5c2f8e-6a3d-4c1e-9f7a-2d4e6b8a1c3f
TID=7d1e4f2a-3b5c-4d6e-8f9a-1b2c3d4e5f60
FID=c3a1b2d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d
SHA=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
HEAD='"type":"asset.create","version":1'
IDS="\"request_id\":\"$RID\",\"tenant_id\":\"$TID\""
REST="\"content_sha256\":\"$SHA\",\"size_bytes\":1024,\"storage_uri\":\"s3://assets/t/report.pdf\""
BASE="{$HEAD,$IDS,\"folder_id\":\"$FID\",\"name\":\"report.pdf\",$REST,\"mime_type\":\"application/pdf\",\"metadata\":{\"pages\":12}}"

# txt FILE TEXT: the text verbatim. raw FILE FORMAT: printf FORMAT (for \xNN bytes only).
txt() { printf '%s' "$2" > "$1.json"; }
raw() { printf "$2" > "$1.json"; }
expect() { local f=$1; shift; printf '%s\n' "$@" > "$f.expect"; }
# msg FILE FIELDS...: a valid message whose fields (after type and version) are replaced.
msg() { local f=$1; shift; local IFS=,; txt "$f" "{$HEAD,$*}"; }

# ---- ok: decodes; values are PostgreSQL's business --------------------------------------
txt ok--basic "$BASE"
expect ok--basic "request_id=$RID" "tenant_id=$TID" "folder_id=$FID" "name=report.pdf" \
	"content_sha256=$SHA" "size_bytes=1024" "mime_type=application/pdf" \
	"storage_uri=s3://assets/t/report.pdf" 'metadata={"pages":12}'
txt ok--pretty_printed "$(printf '{\n  "type": "asset.create",\n  "version": 1,\n  "request_id": "%s",\n  "tenant_id": "%s",\n  "name": "a b",\n  "content_sha256": "%s",\n  "size_bytes": 7,\n  "storage_uri": "file:///x"\n}\n' "$RID" "$TID" "$SHA")"
printf '\n' >> ok--pretty_printed.json
expect ok--pretty_printed "request_id=$RID" "name=a b" "size_bytes=7" "folder_id" "metadata"
msg ok--minimal_required "$IDS" '"name":"n"' "$REST"
expect ok--minimal_required "request_id=$RID" "name=n" "folder_id" "mime_type" "metadata"
txt ok--fields_before_type "{$IDS,\"name\":\"n\",$REST,\"version\":1,\"type\":\"asset.create\"}"
expect ok--fields_before_type "request_id=$RID" "size_bytes=1024"
msg ok--unknown_extra_fields "$IDS" '"name":"n"' "$REST" '"extra":[1,{"x":null}]' '"priority":"high"' '"v2_field":{"deep":[true,false]}'
expect ok--unknown_extra_fields "request_id=$RID" "name=n" "metadata"
msg ok--folder_id_null "$IDS" '"folder_id":null' '"name":"n"' "$REST"
expect ok--folder_id_null "folder_id" "request_id=$RID"
msg ok--mime_type_null "$IDS" '"name":"n"' "$REST" '"mime_type":null'
expect ok--mime_type_null "mime_type" "name=n"
msg ok--metadata_null "$IDS" '"name":"n"' "$REST" '"metadata":null'
expect ok--metadata_null "metadata"
msg ok--name_null "$IDS" '"name":null' "$REST"
expect ok--name_null "name" "request_id=$RID"
msg ok--name_missing "$IDS" "$REST"
expect ok--name_missing "name" "size_bytes=1024"
msg ok--request_id_missing "\"tenant_id\":\"$TID\"" '"name":"n"' "$REST"
expect ok--request_id_missing "request_id" "tenant_id=$TID"
msg ok--every_field_null '"request_id":null' '"tenant_id":null' '"folder_id":null' '"name":null' \
	'"content_sha256":null' '"size_bytes":null' '"mime_type":null' '"storage_uri":null' '"metadata":null'
expect ok--every_field_null request_id tenant_id folder_id name content_sha256 size_bytes \
	mime_type storage_uri metadata
msg ok--bad_uuid_text '"request_id":"not-a-uuid"' '"tenant_id":"also not"' '"folder_id":"{}"' '"name":"n"' "$REST"
expect ok--bad_uuid_text "request_id=not-a-uuid" "tenant_id=also not" "folder_id={}"
NAME2000=$(head -c 2000 /dev/zero | tr '\0' 'n')
msg ok--name_2000_chars "$IDS" "\"name\":\"$NAME2000\"" "$REST"
expect ok--name_2000_chars "name=$NAME2000"
msg ok--name_empty "$IDS" '"name":""' "$REST"
expect ok--name_empty "name="
msg ok--sha256_uppercase "$IDS" '"name":"n"' "\"content_sha256\":\"${SHA^^}\"" '"size_bytes":1' '"storage_uri":"u"'
expect ok--sha256_uppercase "content_sha256=${SHA^^}"
msg ok--sha256_short "$IDS" '"name":"n"' '"content_sha256":"abc"' '"size_bytes":1' '"storage_uri":"u"'
expect ok--sha256_short "content_sha256=abc"
SQL="'); DROP TABLE assets; --"
msg ok--sql_in_every_string "\"request_id\":\"$SQL\"" "\"tenant_id\":\"$SQL\"" "\"folder_id\":\"$SQL\"" \
	"\"name\":\"$SQL\"" "\"content_sha256\":\"$SQL\"" '"size_bytes":0' "\"mime_type\":\"$SQL\"" \
	"\"storage_uri\":\"$SQL\"" "\"metadata\":{\"$SQL\":\"$SQL\"}"
expect ok--sql_in_every_string "request_id=$SQL" "tenant_id=$SQL" "folder_id=$SQL" "name=$SQL" \
	"content_sha256=$SQL" "size_bytes=0" "mime_type=$SQL" "storage_uri=$SQL" \
	"metadata={\"$SQL\":\"$SQL\"}"
msg ok--sql_backslash_quote "$IDS" '"name":"x\\'"'"'; SELECT pg_sleep(10); --"' "$REST"
expect ok--sql_backslash_quote "name=x\\'; SELECT pg_sleep(10); --"
msg ok--metadata_nested "$IDS" '"name":"n"' "$REST" \
	'"metadata":{"camera":{"make":"Fuji","lens":[23,35.5,null,true]},"tags":["a","\u00e9"],"n":-1,"empty":{}}'
# metadata and size_bytes go on as the producer's text: PostgreSQL casts them (SPEC 2).
expect ok--metadata_nested 'metadata={"camera":{"make":"Fuji","lens":[23,35.5,null,true]},"tags":["a","\u00e9"],"n":-1,"empty":{}}'
msg ok--metadata_numbers_kept "$IDS" '"name":"n"' "$REST" \
	'"metadata":{"price":19.99,"ratio":0.1,"tiny":1e-7,"order":123456789012345678901234567890,"neg":-0.0,"exp":1E+2}'
expect ok--metadata_numbers_kept 'metadata={"price":19.99,"ratio":0.1,"tiny":1e-7,"order":123456789012345678901234567890,"neg":-0.0,"exp":1E+2}'
msg ok--metadata_whitespace_kept "$IDS" '"name":"n"' "$REST" \
	'"metadata" : { "a" : [ 1 , "}" , "\"]" ] , "b" : { } }'
expect ok--metadata_whitespace_kept 'metadata={ "a" : [ 1 , "}" , "\"]" ] , "b" : { } }'
msg ok--escaped_key_size_bytes "$IDS" '"name":"n"' "\"content_sha256\":\"$SHA\"" '"size\u005fbytes":12' '"storage_uri":"u"'
expect ok--escaped_key_size_bytes "size_bytes=12"
msg ok--metadata_empty "$IDS" '"name":"n"' "$REST" '"metadata":{}'
expect ok--metadata_empty 'metadata={}'
msg ok--size_bytes_negative_zero "$IDS" '"name":"n"' "\"content_sha256\":\"$SHA\"" '"size_bytes":-0' '"storage_uri":"u"'
expect ok--size_bytes_negative_zero "size_bytes=-0"
msg ok--size_bytes_negative "$IDS" '"name":"n"' "\"content_sha256\":\"$SHA\"" '"size_bytes":-5' '"storage_uri":"u"'
expect ok--size_bytes_negative "size_bytes=-5"
msg ok--size_bytes_int64_max "$IDS" '"name":"n"' "\"content_sha256\":\"$SHA\"" '"size_bytes":9223372036854775807' '"storage_uri":"u"'
expect ok--size_bytes_int64_max "size_bytes=9223372036854775807"
msg ok--size_bytes_int64_min "$IDS" '"name":"n"' "\"content_sha256\":\"$SHA\"" '"size_bytes":-9223372036854775808' '"storage_uri":"u"'
expect ok--size_bytes_int64_min "size_bytes=-9223372036854775808"
msg ok--unicode_escapes "$IDS" '"name":"caf\u00e9 \u65e5\u672c \ud83d\ude00 \u20ac"' "$REST"
expect ok--unicode_escapes "name=café 日本 😀 €"
msg ok--unicode_raw "$IDS" '"name":"café 日本 😀 €"' "$REST" '"mime_type":"text/plain; charset=utf-8"'
expect ok--unicode_raw "name=café 日本 😀 €" "mime_type=text/plain; charset=utf-8"
msg ok--escaped_controls "$IDS" '"name":"line1\nline2\ttab \"quoted\" back\\slash \u0001 \/"' "$REST"
msg ok--del_char_raw "$IDS" "$(printf '"name":"a\x7fb"')" "$REST"
expect ok--del_char_raw "$(printf 'name=a\x7fb')"
txt ok--trailing_whitespace "$BASE"
printf ' \t\r\n\n' >> ok--trailing_whitespace.json
expect ok--trailing_whitespace "request_id=$RID"
txt ok--leading_whitespace "$(printf ' \r\n\t')$BASE"
expect ok--leading_whitespace "request_id=$RID"

# ---- malformed_message: not UTF-8 JSON, not an object, a field of the wrong JSON type -----
: > malformed_message--empty.json
expect malformed_message--empty "reason~empty"
txt malformed_message--whitespace_only "   "
txt malformed_message--not_json "asset.create request for report.pdf"
txt malformed_message--truncated "${BASE:0:100}"
expect malformed_message--truncated "request_id"
txt malformed_message--truncated_open_brace "{"
txt malformed_message--truncated_in_escape "{$HEAD,\"name\":\"ab\\u00"
txt malformed_message--two_objects "$BASE$BASE"
txt malformed_message--trailing_comma "{$HEAD,\"name\":\"n\",}"
txt malformed_message--single_quotes "{'type':'asset.create','version':1}"
txt malformed_message--comment "{$HEAD, // comment
\"name\":\"n\"}"
txt malformed_message--unquoted_key "{$HEAD,name:\"n\"}"
txt malformed_message--nan "{$HEAD,\"size_bytes\":NaN}"
txt malformed_message--infinity "{$HEAD,\"size_bytes\":Infinity}"
txt malformed_message--leading_zero "{$HEAD,\"size_bytes\":012}"
txt malformed_message--hex_number "{$HEAD,\"size_bytes\":0x10}"
raw malformed_message--bom '\xef\xbb\xbf{"type":"asset.create","version":1}'
raw malformed_message--invalid_utf8_in_string '{"type":"asset.create","version":1,"name":"bad \xff\xfe here"}'
raw malformed_message--invalid_utf8_in_key '{"type":"asset.create","version":1,"na\xc3me":"n"}'
raw malformed_message--invalid_utf8_raw '{"type":"asset.create","version":1}\xff'
raw malformed_message--invalid_utf8_latin1 '{"type":"asset.create","version":1,"name":"caf\xe9"}'
raw malformed_message--utf8_overlong '{"type":"asset.create","version":1,"name":"\xc0\xaf"}'
raw malformed_message--utf8_surrogate '{"type":"asset.create","version":1,"name":"\xed\xa0\x80"}'
raw malformed_message--utf8_truncated_sequence '{"type":"asset.create","version":1,"name":"\xe6\x97"}'
raw malformed_message--utf8_beyond_unicode '{"type":"asset.create","version":1,"name":"\xf4\x90\x80\x80"}'
txt malformed_message--lone_surrogate_escape "{$HEAD,\"name\":\"\\ud800\"}"
raw malformed_message--nul_raw_in_string '{"type":"asset.create","version":1,"name":"a\x00b"}'
raw malformed_message--nul_raw_after_object '{"type":"asset.create","version":1}\x00'
raw malformed_message--nul_raw_first '\x00{"type":"asset.create","version":1}'
txt malformed_message--nul_escape "{$HEAD,$IDS,\"name\":\"a\\u0000b\",$REST}"
txt malformed_message--nul_escape_in_type '{"type":"asset.create\u0000","version":1}'
raw malformed_message--control_char_raw_top '\x01'
raw malformed_message--control_char_raw_value '{"type":"asset.create","version":\x01}'
raw malformed_message--del_raw_top '\x7f'
raw malformed_message--tab_raw_in_string '{"type":"asset.create","version":1,"name":"a\tb"}'
raw malformed_message--newline_raw_in_string '{"type":"asset.create","version":1,"name":"a\nb"}'
txt malformed_message--top_level_array "[$BASE]"
expect malformed_message--top_level_array "reason~array"
txt malformed_message--top_level_string '"asset.create"'
expect malformed_message--top_level_string "reason~invalid JSON"
txt malformed_message--top_level_number "1"
txt malformed_message--top_level_null "null"
expect malformed_message--top_level_null "reason~invalid JSON"
txt malformed_message--top_level_true "true"
txt malformed_message--top_level_empty_array "[]"
head -c 100000 /dev/zero | tr '\0' '[' > malformed_message--deep_nesting_100000.json
{ printf '{"type":"asset.create","version":1,"metadata":'
  head -c 3000 /dev/zero | tr '\0' '['
  head -c 3000 /dev/zero | tr '\0' ']'
  printf '}'; } > malformed_message--deep_nesting_3000_in_metadata.json
{ printf '{"type":"asset.create","version":1,"metadata":'
  for _ in $(seq 2100); do printf '{"a":'; done; printf '1'
  head -c 2100 /dev/zero | tr '\0' '}'; printf '}'; } > malformed_message--deep_objects_in_metadata.json
msg malformed_message--request_id_number '"request_id":5' "\"tenant_id\":\"$TID\"" '"name":"n"' "$REST"
expect malformed_message--request_id_number "reason~request_id" "request_id"
msg malformed_message--tenant_id_true "$IDS" '"tenant_id":true' '"name":"n"' "$REST"
msg malformed_message--tenant_id_true_only "\"request_id\":\"$RID\"" '"tenant_id":true' '"name":"n"' "$REST"
expect malformed_message--tenant_id_true_only "reason~tenant_id" "request_id=$RID"
msg malformed_message--name_number "$IDS" '"name":12345' "$REST"
expect malformed_message--name_number "reason~name" "request_id=$RID"
msg malformed_message--content_sha256_array "$IDS" '"name":"n"' '"content_sha256":[]' '"size_bytes":1' '"storage_uri":"u"'
expect malformed_message--content_sha256_array "reason~content_sha256"
msg malformed_message--size_bytes_string "$IDS" '"name":"n"' "\"content_sha256\":\"$SHA\"" '"size_bytes":"10"' '"storage_uri":"u"'
expect malformed_message--size_bytes_string "reason~size_bytes"
msg malformed_message--size_bytes_real "$IDS" '"name":"n"' "\"content_sha256\":\"$SHA\"" '"size_bytes":1.5' '"storage_uri":"u"'
expect malformed_message--size_bytes_real "reason~size_bytes"
msg malformed_message--size_bytes_real_integral "$IDS" '"name":"n"' "\"content_sha256\":\"$SHA\"" '"size_bytes":10.0' '"storage_uri":"u"'
msg malformed_message--size_bytes_exponent "$IDS" '"name":"n"' "\"content_sha256\":\"$SHA\"" '"size_bytes":1e3' '"storage_uri":"u"'
msg malformed_message--size_bytes_true "$IDS" '"name":"n"' "\"content_sha256\":\"$SHA\"" '"size_bytes":true' '"storage_uri":"u"'
# Integers beyond bigint are integers: PostgreSQL refuses them (22003), the dead letter says so.
msg ok--size_bytes_beyond_int64 "$IDS" '"name":"n"' "\"content_sha256\":\"$SHA\"" '"size_bytes":99999999999999999999' '"storage_uri":"u"'
expect ok--size_bytes_beyond_int64 "size_bytes=99999999999999999999"
msg ok--size_bytes_int64_max_plus_1 "$IDS" '"name":"n"' "\"content_sha256\":\"$SHA\"" '"size_bytes":9223372036854775808' '"storage_uri":"u"'
expect ok--size_bytes_int64_max_plus_1 "size_bytes=9223372036854775808"
msg ok--size_bytes_int64_min_minus_1 "$IDS" '"name":"n"' "\"content_sha256\":\"$SHA\"" '"size_bytes":-9223372036854775809' '"storage_uri":"u"'
expect ok--size_bytes_int64_min_minus_1 "size_bytes=-9223372036854775809"
msg malformed_message--size_bytes_1e400 "$IDS" '"name":"n"' "\"content_sha256\":\"$SHA\"" '"size_bytes":1e400' '"storage_uri":"u"'
msg malformed_message--metadata_string "$IDS" '"name":"n"' "$REST" '"metadata":"x"'
expect malformed_message--metadata_string "reason~metadata"
msg malformed_message--metadata_array "$IDS" '"name":"n"' "$REST" '"metadata":[]'
expect malformed_message--metadata_array "reason~metadata"
msg malformed_message--metadata_number "$IDS" '"name":"n"' "$REST" '"metadata":0'
msg malformed_message--folder_id_number "$IDS" '"folder_id":7' '"name":"n"' "$REST"
expect malformed_message--folder_id_number "reason~folder_id"
msg malformed_message--mime_type_object "$IDS" '"name":"n"' "$REST" '"mime_type":{}'
expect malformed_message--mime_type_object "reason~mime_type"
msg malformed_message--storage_uri_false "$IDS" '"name":"n"' "\"content_sha256\":\"$SHA\"" '"size_bytes":1' '"storage_uri":false'
expect malformed_message--storage_uri_false "reason~storage_uri"
txt malformed_message--version_string "{\"type\":\"asset.create\",\"version\":\"1\",$IDS}"
expect malformed_message--version_string "reason~version" "request_id=$RID"
txt malformed_message--version_real "{\"type\":\"asset.create\",\"version\":1.0,$IDS}"
expect malformed_message--version_real "reason~version"
txt malformed_message--version_null "{\"type\":\"asset.create\",\"version\":null,$IDS}"
txt malformed_message--version_missing "{\"type\":\"asset.create\",$IDS,\"name\":\"n\",$REST}"
expect malformed_message--version_missing "reason~version" "request_id=$RID"
txt malformed_message--type_missing "{\"version\":1,$IDS,\"name\":\"n\",$REST}"
expect malformed_message--type_missing "reason~type" "request_id=$RID"
txt malformed_message--type_number "{\"type\":5,\"version\":1,$IDS}"
expect malformed_message--type_number "reason~type"
txt malformed_message--type_null "{\"type\":null,\"version\":1,$IDS}"
txt malformed_message--type_array "{\"type\":[\"asset.create\"],\"version\":1}"
txt malformed_message--empty_object "{}"
txt malformed_message--duplicate_keys "{$HEAD,$IDS,\"name\":\"a\",\"name\":\"b\",$REST}"
expect malformed_message--duplicate_keys "reason~duplicate"
txt malformed_message--duplicate_type "{$HEAD,\"type\":\"asset.create\",$IDS}"
txt malformed_message--duplicate_key_in_metadata "{$HEAD,$IDS,\"name\":\"n\",$REST,\"metadata\":{\"k\":1,\"k\":2}}"

# ---- unsupported_message: well-formed, unknown type or version --------------------------
txt unsupported_message--version_2 "{\"type\":\"asset.create\",\"version\":2,$IDS,\"name\":\"n\",$REST}"
expect unsupported_message--version_2 "reason~version" "request_id=$RID"
txt unsupported_message--version_0 "{\"type\":\"asset.create\",\"version\":0,$IDS}"
txt unsupported_message--version_negative_zero "{\"type\":\"asset.create\",\"version\":-0}"
txt unsupported_message--version_negative "{\"type\":\"asset.create\",\"version\":-1}"
txt unsupported_message--version_int64_max "{\"type\":\"asset.create\",\"version\":9223372036854775807}"
txt unsupported_message--version_beyond_int64 "{\"type\":\"asset.create\",\"version\":99999999999999999999}"
expect unsupported_message--version_beyond_int64 "reason~version 99999999999999999999"
txt unsupported_message--version_4294967297 "{\"type\":\"asset.create\",\"version\":4294967297}"
txt unsupported_message--type_asset_delete "{\"type\":\"asset.delete\",\"version\":1,$IDS}"
expect unsupported_message--type_asset_delete "reason~asset.delete" "request_id=$RID"
txt unsupported_message--type_delete_bad_version "{\"type\":\"asset.delete\",\"version\":\"x\"}"
txt unsupported_message--type_empty "{\"type\":\"\",\"version\":1}"
txt unsupported_message--type_case "{\"type\":\"Asset.Create\",\"version\":1}"
txt unsupported_message--type_trailing_space "{\"type\":\"asset.create \",\"version\":1}"
txt unsupported_message--type_prefix "{\"type\":\"asset.createx\",\"version\":1}"
txt unsupported_message--version_2_wrong_fields "{\"type\":\"asset.create\",\"version\":2,\"name\":5,\"size_bytes\":\"x\"}"
# A long type of 2-byte characters: the reason quotes (part of) it and must stay UTF-8.
LONGTYPE="a$(for _ in $(seq 150); do printf 'é'; done)"
txt unsupported_message--type_long_multibyte "{\"type\":\"$LONGTYPE\",\"version\":1}"
LONGTYPE2="$(head -c 5000 /dev/zero | tr '\0' 't')"
txt unsupported_message--type_5000_chars "{\"type\":\"$LONGTYPE2\",\"version\":1}"

ls | grep -c '\.json$'
