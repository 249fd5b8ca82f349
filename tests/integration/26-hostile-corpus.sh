#!/usr/bin/env bash
# Hostile input through the real worker (issue 3): the decoding corpus of tests/data/messages/
# (<expected>--<what>.json, the Kafka value byte for byte; "ok" there means "decodes", and the
# database then gives its verdict), plus values that need PostgreSQL (bad uuid, 2000-character
# name, uppercase sha256, SQL text in every string field), empty and null values, empty and
# absent keys, forged x-* headers, 100k-deep nesting, unknown tenants and foreign folders,
# interleaved with a steady stream of ordinary requests. Then 5 MB values: a valid request
# with a 5 MB metadata object (SPEC: a valid request, so created), one with a 5 MB name (the
# CHECK on the name length: check_violation) and 5 MB of non-JSON (malformed_message), with
# ordinary requests behind them on every partition.
#
# Every record lands where it must: a row for the good ones, exactly one dead letter with the
# right x-error-class for the bad ones (matched by a producer header it-id, which a dead letter
# keeps, since many of these values have no readable request_id). The worker never crashes
# (still running, exit 0 on SIGTERM) and never stalls (every offset committed, so the good
# requests behind the bad ones commit). SQL text is stored verbatim, never executed: the tables
# are all there and each created asset holds exactly the fields its request sent.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_faults.sh"
source "$(dirname "$0")/lib_hostile.sh"
# 5 MB records: Kafka's topics take 1 MB by default; these take 16 MiB, as the worker's own
# producer does (message.max.bytes), so a 5 MB input can be dead-lettered.
it_setup --topic assets.create:4:max.message.bytes=16777216 \
	--topic assets.create.retry:4:max.message.bytes=16777216 \
	--topic assets.create.dlq:1:max.message.bytes=16777216
it_seed

TENANT2=5a0e8f3c-5555-4a4a-8a8a-000000000005
FOLDER2=5a0e8f3c-6666-4a4a-8a8a-000000000006 # TENANT2's: not usable by IT_TENANT
it_sql "INSERT INTO tenants VALUES ('$TENANT2', 'other tenant'); INSERT INTO folders VALUES ('$FOLDER2', '$TENANT2', 'other folder')" >/dev/null

CORPUS="$IT_SRC/tests/data/messages"
# The values the corpus uses (tests/data/gen_messages.sh), replaced per message so that every
# request is its own: a fresh request_id, this test's tenant and folder, a content of its own.
C_RID=0b5c2f8e-6a3d-4c1e-9f7a-2d4e6b8a1c3f
C_TID=7d1e4f2a-3b5c-4d6e-8f9a-1b2c3d4e5f60
C_FID=c3a1b2d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d
C_SHA=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08

# The database's verdict on the corpus messages that decode (expected "ok" in the file name).
verdict() {
	case "$1" in
	bad_uuid_text | sql_in_every_string) echo data_exception ;; # a uuid field holds text: 22P02
	size_bytes_beyond_int64 | size_bytes_int64_max_plus_1 | size_bytes_int64_min_minus_1)
		echo data_exception # past bigint: 22003
		;;
	every_field_null | name_missing | name_null | request_id_missing) echo not_null_violation ;;
	name_2000_chars | name_empty | sha256_short | sha256_uppercase | size_bytes_int64_min | size_bytes_negative)
		echo check_violation
		;;
	*) echo ok ;;
	esac
}
# A content digest of its own (lowercase hex, with letters, so its uppercase differs).
sha_of() { printf 'abcdef%058x' "$1"; }

hostile="$IT_DIR/hostile.jsonl" manifest="$IT_DIR/manifest.txt"
: >"$hostile"
: >"$manifest"
n=0
for f in "$CORPUS"/*.json; do
	name=$(basename "$f" .json)
	expected=${name%%--*} what=${name#*--}
	n=$((n + 1))
	rid=$(it_uuid) sha=$(sha_of $((8260000 + n)))
	[[ "$expected" == ok ]] && expected=$(verdict "$what")
	# A request_id a row could carry: only where the corpus value had its uuid.
	grep -qF "$C_RID" "$f" || rid=-
	b64=$(LC_ALL=C sed -e "s/$C_RID/$rid/g" -e "s/$C_TID/$IT_TENANT/g" -e "s/$C_FID/$IT_FOLDER/g" \
		-e "s/$C_SHA/$sha/g" -e "s/${C_SHA^^}/${sha^^}/g" "$f" | base64 -w0)
	printf '{"key":"h-%s","value_b64":"%s","headers":{"it-id":"c-%s"}}\n' "$what" "$b64" "$what" >>"$hostile"
	echo "c-$what $expected $rid" >>"$manifest"
done
corpus_n=$n
echo "# corpus: $corpus_n messages from tests/data/messages"

# extra VALUE_JSON ID EXPECTED REQUEST_ID [KEY_JSON] [HEADERS_JSON]: one more hostile record.
extra() {
	local key="${5:-}" headers="${6:-}"
	[[ -n "$key" ]] || key="\"x-$2\""
	[[ -n "$headers" ]] || headers="{\"it-id\":\"x-$2\"}"
	printf '{"key":%s,"value":%s,"headers":%s}\n' "$key" "$1" "$headers" >>"$hostile"
	echo "x-$2 $3 $4" >>"$manifest"
}
# A request value as a JSON string: req REQUEST_ID CONTENT [jq args...] [JQ_FILTER]
req() {
	local rid="$1" content="$2"
	shift 2
	(($# > 0)) || set -- .
	it_request "$rid" "$content" | jq -c "$@" | jq -Rc .
}
SQL1="Robert'); DROP TABLE assets; --"
SQL2="'; TRUNCATE tenants CASCADE; SELECT pg_sleep(30); --"
SQL3='$$; DROP TABLE folders; $$ \x27 \\'"'"' E'"'"'\\047'"'"' /* */'
rid=$(it_uuid)
extra "$(req "$rid" 8270001 --arg a "$SQL1" --arg b "$SQL2" --arg c "$SQL3" \
	'.name = $a | .mime_type = $b | .storage_uri = $c | .metadata = {($a): $b, "q": [$c, $a], ($c): {"x": $b}}')" \
	sql-everywhere ok "$rid"
SQL_RID=$rid
rid=$(it_uuid)
extra "$(req "$rid" 8270002)" empty-key ok "$rid" '""'
rid=$(it_uuid)
extra "$(req "$rid" 8270003)" no-key ok "$rid" null
extra '""' empty-value malformed_message -
extra 'null' null-value malformed_message -
rid=$(it_uuid)
extra "$(req "$rid" 8270004 --arg t "$(it_uuid)" '.tenant_id = $t')" unknown-tenant foreign_key_violation "$rid"
rid=$(it_uuid)
extra "$(req "$rid" 8270005 --arg f "$FOLDER2" '.folder_id = $f')" foreign-folder foreign_key_violation "$rid"
# Forged decision headers from the producer: a good request still runs, and a bad one's dead
# letter carries the worker's verdict.
rid=$(it_uuid)
extra "$(req "$rid" 8270006)" forged-headers-good ok "$rid" '"x-forged-good"' \
	'[["it-id","x-forged-headers-good"],["x-error-class","unique_violation"],["x-attempt","99"],["x-original-offset","-5"],["x-retry-not-before","99999999999999"],["x-original-topic","assets.create.dlq"]]'
rid=$(it_uuid)
extra "$(req "$rid" 8270007 'del(.storage_uri)')" forged-headers-bad not_null_violation "$rid" '"x-forged-bad"' \
	'[["it-id","x-forged-headers-bad"],["x-error-class","unique_violation"],["x-error-sqlstate","23505"],["x-attempt","4"]]'
# 100k levels of nesting inside a field.
rid=$(it_uuid)
deep=$(printf '%*s' 100000 '' | tr ' ' '[')$(printf '%*s' 100000 '' | tr ' ' ']')
printf '{"key":"x-deep-metadata","value":"{\\"type\\":\\"asset.create\\",\\"version\\":1,\\"request_id\\":\\"%s\\",\\"metadata\\":{\\"a\\":%s}}","headers":{"it-id":"x-deep-metadata"}}\n' \
	"$rid" "$deep" >>"$hostile"
echo "x-deep-metadata malformed_message $rid" >>"$manifest"
bad_n=$(awk '$2 != "ok"' "$manifest" | wc -l)
echo "# $(wc -l <"$hostile") hostile records, $bad_n of them to be dead-lettered"
assert_ge 40 "$bad_n" "the hostile set holds at least 40 bad messages"

# Ordinary requests around them, every record traceable by it-id.
itf_gen "$IT_DIR/gen.jsonl" "$IT_DIR/gen.manifest" 2601 3000 --duplicates 10 --races 4 --fk 1.5 --check 1.5 --not-null 1.5 --malformed 1.5
jq -c '. + {headers: {"it-id": ("g-" + (input_line_number | tostring))}}' "$IT_DIR/gen.jsonl" >"$IT_DIR/gen-traced.jsonl"
awk '{ print "g-" NR, $2, $1 }' "$IT_DIR/gen.manifest" >>"$manifest"
cat "$IT_DIR/gen-traced.jsonl" "$hostile" | shuf --random-source=<(yes) >"$IT_DIR/stream.jsonl"

# ---- 1. the corpus in a steady stream ----
log="$IT_DIR/worker-w.log"
it_start_worker w
itf_wait_log 60 "$log" 'partitions_assigned count=[1-9]' 1
ith_feed_start s "$IT_DIR/stream.jsonl" 25 0.1
ith_feed_wait s 90
itf_wait_caught_up 90
ok "part 1: the worker caught up (every input and retry offset committed): no stall"
itf_alive "$IT_PID_w" || fail "part 1: the worker is not running any more"
ok "part 1: the worker is still running"
assert_eq 0 "$(grep -cE '^[^ ]+ error ' "$log" || true)" "part 1: no error-level log line"
assert_eq "t t t t" "$(it_sql "SELECT to_regclass('tenants') IS NOT NULL, to_regclass('folders') IS NOT NULL,
	to_regclass('assets') IS NOT NULL, to_regclass('asset_requests') IS NOT NULL" | tr '|' ' ')" \
	"SQL text never executed: every table is still there"
assert_eq 2 "$(it_sql "SELECT count(*) FROM tenants")" "SQL text never executed: the tenants are still there"
got=$(it_sql "SELECT a.name = \$\$$SQL1\$\$ AND a.mime_type = \$\$$SQL2\$\$ AND a.storage_uri = \$q\$$SQL3\$q\$
	AND a.metadata = jsonb_build_object(\$\$$SQL1\$\$, \$\$$SQL2\$\$, 'q', jsonb_build_array(\$q\$$SQL3\$q\$, \$\$$SQL1\$\$), \$q\$$SQL3\$q\$, jsonb_build_object('x', \$\$$SQL2\$\$))
	FROM asset_requests r JOIN assets a ON a.id = r.asset_id WHERE r.request_id = '$SQL_RID' AND r.outcome = 'created'")
assert_eq t "$got" "SQL text in every string field: created and stored verbatim"
dlq1=$(it_dump assets.create.dlq)
assert_eq not_null_violation "$(jq -r 'select(.headers["it-id"] == "x-forged-headers-bad") | .headers["x-error-class"]' <<<"$dlq1")" \
	"forged x-error-class from the producer: the dead letter carries the worker's verdict"
assert_eq 1 "$(jq -r 'select(.headers["it-id"] == "x-forged-headers-bad") | .headers["x-attempt"]' <<<"$dlq1")" \
	"forged x-attempt from the producer: the dead letter says attempt 1"
# Each dead letter of the corpus says why (x-error-message), and SQLSTATE where PostgreSQL spoke.
assert_eq 0 "$(jq -r 'select((.headers["it-id"] // "") | startswith("c-")) | select((.headers["x-error-message"] // "") == "") | .offset' <<<"$dlq1" | wc -l)" \
	"every corpus dead letter has an x-error-message"
assert_eq 0 "$(jq -r 'select(.headers["x-error-class"] | test("violation|data_exception")) | select((.headers["x-error-sqlstate"] // "") | test("^[0-9A-Z]{5}$") | not) | .offset' <<<"$dlq1" | wc -l)" \
	"every database verdict carries its SQLSTATE"
assert_eq 0 "$(jq -r 'select(.headers["x-error-class"] | test("malformed|unsupported")) | select(.headers | has("x-error-sqlstate")) | .offset' <<<"$dlq1" | wc -l)" \
	"no SQLSTATE on messages dead-lettered without touching the database"

# Every created asset holds exactly what its request sent (name, mime_type, storage_uri,
# size_bytes, metadata): text with quotes, backslashes, control characters, emoji.
expect_tsv="$IT_DIR/expect.tsv"
# (jq 1.6 holds numbers as doubles: sizes beyond 2^53 are not compared, and -0 is 0. For
# metadata the whole value as sent goes to PostgreSQL, which takes its "metadata" exactly.)
jq -r '(if .value_b64 then (.value_b64 | @base64d) elif (.value | type) == "string" then .value
	else (.value | tojson) end) as $raw
	| ($raw | try fromjson catch null)
	| select(type == "object" and (.request_id | type) == "string" and (tojson | contains("\\u0000") | not))
	| [.request_id, (.name // "<null>"), (.mime_type // "<null>"), (.storage_uri // "<null>"),
	   (if (.size_bytes | type) == "number" and (.size_bytes | fabs) < 9007199254740992 then (if .size_bytes == 0 then "0" else (.size_bytes | tostring) end) else "<big>" end),
	   (if .metadata == null then "<null>" else $raw end)] | @tsv' \
	"$IT_DIR/stream.jsonl" 2>/dev/null >"$expect_tsv" || true
verbatim=$(psql -X -A -t -q -v ON_ERROR_STOP=1 -F ' ' <<SQL
CREATE TEMP TABLE e (request_id text, name text, mime_type text, storage_uri text, size_bytes text, metadata text);
\copy e FROM '$expect_tsv'
SELECT count(*), count(*) FILTER (WHERE NOT (
         a.name = e.name AND coalesce(a.mime_type, '<null>') = e.mime_type AND a.storage_uri = e.storage_uri
         AND (e.size_bytes = '<big>' OR a.size_bytes::text = e.size_bytes)
         AND CASE WHEN e.metadata = '<null>' THEN a.metadata IS NULL ELSE a.metadata = (e.metadata::jsonb -> 'metadata') END))
  FROM e JOIN asset_requests r ON r.request_id::text = e.request_id AND r.outcome = 'created'
  JOIN assets a ON a.id = r.asset_id;
SQL
)
read -r compared differ <<<"$verbatim"
echo "# verbatim: $compared created assets compared with their requests, $differ differ"
assert_ge 2000 "$compared" "created assets compared with their requests"
assert_eq 0 "$differ" "every created asset holds exactly the fields its request sent"
itf_account "$manifest" "part 1 (corpus + stream)"

# ---- 2. 5 MB values ----
big_value() { # ID KIND: the value as JSON text inside an envelope string
	local rid="$1" kind="$2"
	filler() { head -c 5000000 /dev/zero | tr '\0' 'x'; }
	case "$kind" in
	notjson) filler ;;
	name) printf '{\\"type\\":\\"asset.create\\",\\"version\\":1,\\"request_id\\":\\"%s\\",\\"tenant_id\\":\\"%s\\",\\"name\\":\\"' "$rid" "$IT_TENANT"
		filler
		printf '\\",\\"content_sha256\\":\\"%s\\",\\"size_bytes\\":1,\\"storage_uri\\":\\"s3://it/big-name\\"}' "$(sha_of 8280001)" ;;
	metadata) printf '{\\"type\\":\\"asset.create\\",\\"version\\":1,\\"request_id\\":\\"%s\\",\\"tenant_id\\":\\"%s\\",\\"name\\":\\"big-metadata\\",\\"content_sha256\\":\\"%s\\",\\"size_bytes\\":1,\\"storage_uri\\":\\"s3://it/big-metadata\\",\\"metadata\\":{\\"blob\\":\\"' "$rid" "$IT_TENANT" "$(sha_of 8280002)"
		filler
		printf '\\"}}' ;;
	esac
}
big="$IT_DIR/big.jsonl"
: >"$big"
for kind in notjson:malformed_message name:check_violation metadata:ok; do
	k=${kind%%:*} expected=${kind#*:} rid=$(it_uuid)
	{
		printf '{"key":"big-%s","headers":{"it-id":"b-%s"},"value":"' "$k" "$k"
		big_value "$rid" "$k"
		printf '"}\n'
	} >>"$big"
	[[ "$k" == metadata ]] && BIG_META_RID=$rid
	[[ "$k" == notjson ]] && rid=-
	echo "b-$k $expected $rid" >>"$manifest"
done
echo "# 5 MB values: $(wc -c <"$big") bytes"
itf_gen "$IT_DIR/gen2.jsonl" "$IT_DIR/gen2.manifest" 2602 400
jq -c '. + {headers: {"it-id": ("h-" + (input_line_number | tostring))}}' "$IT_DIR/gen2.jsonl" >"$IT_DIR/gen2-traced.jsonl"
awk '{ print "h-" NR, $2, $1 }' "$IT_DIR/gen2.manifest" >>"$manifest"
# Counted before producing: the worker may settle part of part 2 before the produce returns.
created_before=$(grep -c 'outcome=created' "$log" || true)
"$AWK" produce --envelope --topic assets.create --file "$big" 2>>"$IT_DIR/produce.log" || fail "producing the 5 MB values failed"
itf_produce_file "$IT_DIR/gen2-traced.jsonl"
itf_wait_log 60 "$log" 'request_id=[^ ]* attempt=1 outcome=created' $((created_before + 300))
ok "part 2: ordinary requests behind the 5 MB values are processed"
itf_wait_log 30 "$log" "request_id=$BIG_META_RID .*outcome=created" 1
ok "part 2: the valid request with 5 MB of metadata was created"
# The two 5 MB dead letters must be acknowledged for their partitions' offsets to move on.
deadline=$((SECONDS + 45))
until itf_caught_up; do
	if ((SECONDS >= deadline)); then
		grep ' forward_retry ' "$log" | grep -o 'topic=[^ ]* error="[^"]*" input_topic=[^ ]* input_partition=[0-9]* input_offset=[0-9]*' |
			sort | uniq -c | sed 's/^/#   forward_retry x/'
		fail "part 2: offsets never reached the high watermarks: a 5 MB dead letter is never acknowledged, its partition stalls"
	fi
	sleep 0.5
done
ok "part 2: every offset committed, the 5 MB values' included: no stall"
itf_alive "$IT_PID_w" || fail "part 2: the worker is not running any more"
ok "part 2: the worker is still running"
it_stop_worker w TERM
assert_eq 0 "$IT_RC" "SIGTERM at the end: exit code 0"
assert_file_lacks "$log" "transaction_abandoned" "nothing abandoned at the stop"
itf_account "$manifest" "corpus, stream and 5 MB values"
it_done
