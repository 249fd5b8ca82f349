# shellcheck shell=bash
# Helpers of the fault-injection tests (10-16), sourced after lib.sh:
#
#   source "$(dirname "$0")/lib.sh"
#   source "$(dirname "$0")/lib_faults.sh"
#
# The central one is itf_account: given an aw-gen manifest ("request_id expected" lines, where
# expected is "ok" or a dead-letter class), it checks that every request ended in exactly one
# final place, reading PostgreSQL and the dead-letter topic.

# PostgreSQL is shared by the suite, and some of these tests stop it: whatever happens, it is
# running again when the test exits. Wraps lib.sh's cleanup (which sees the original status).
itf_cleanup() {
	local rc=$?
	set +e
	if ! it_pg status >/dev/null 2>&1; then
		echo "# restarting PostgreSQL (the test stopped it)"
		it_pg start >/dev/null 2>&1
	fi
	(exit "$rc")
	it_cleanup
}
trap itf_cleanup EXIT

# ---- logs ----

# Counts the request outcome lines of one log (every outcome, or those given).
itf_outcomes() { # LOG [OUTCOME]
	grep -c "outcome=${2:-}" "$1" 2>/dev/null || true
}

# Waits until a log has at least N lines matching an extended regex.
itf_wait_log() { # SECONDS LOG REGEX N
	local secs="$1" log="$2" re="$3" n="$4"
	local deadline=$((SECONDS + secs)) have
	while :; do
		have=$(grep -cE -- "$re" "$log" 2>/dev/null || true)
		((have >= n)) && return 0
		((SECONDS < deadline)) || fail "timed out after ${secs}s waiting for $n lines /$re/ in $log (have $have)"
		sleep 0.1
	done
}

# The value of a field in the last line of an event: itf_log_field LOG EVENT FIELD
itf_log_field() {
	grep -E " $2( |$)" "$1" | tail -n 1 | grep -oE "(^| )$3=[^ ]*" | head -n 1 | cut -d= -f2-
}

# Whether a background process is still running (bash reaps its children as they exit).
itf_alive() { kill -0 "$1" 2>/dev/null; }

# ---- offsets ----

# Sum of the committed offsets of the group on a topic (partitions without a commit count 0).
itf_committed_sum() { # TOPIC [GROUP]
	"$AWK" committed --group "${2:-$IT_GROUP}" --topic "$1" 2>>"$IT_DIR/offsets.log" |
		awk '$2 > 0 {s += $2} END {print s + 0}'
}

# Succeeds when the group's committed offsets equal the high watermarks on the input and
# retry topics (every record there reached a final state and its offset was committed).
itf_caught_up() { # [GROUP]
	local group="${1:-$IT_GROUP}" t
	for t in assets.create assets.create.retry; do
		local marks committed
		marks=$("$AWK" watermarks --topic "$t" 2>>"$IT_DIR/offsets.log") || return 1
		committed=$("$AWK" committed --group "$group" --topic "$t" 2>>"$IT_DIR/offsets.log") || return 1
		# partition low high / partition offset: every partition with records is committed
		# up to its high watermark.
		join <(echo "$marks" | sort) <(echo "$committed" | sort) |
			awk '$3 > 0 && $4 != $3 {bad = 1} END {exit bad}' || return 1
	done
}

itf_wait_caught_up() { # SECONDS [GROUP]
	it_wait_for "$1" "committed offsets to reach the high watermarks" itf_caught_up "${2:-}"
}

# ---- dumps ----

# Turns dumped records (aw-kafka dump lines) into "request_id<TAB>x-error-class" lines; the
# request_id is read from the JSON value ("" when the value has none).
itf_dlq_tsv() {
	jq -r '[((.value // "") | (try fromjson catch null)
	         | if type == "object" then (.request_id // "" | tostring) else "" end),
	        (.headers["x-error-class"] // "")] | @tsv'
}

# ---- transactions ----

# "topic partition LSO" of the retry and dead-letter partitions whose last stable offset is below
# the high watermark: a transaction is open there (aw-kafka's consumer is read_committed, so its
# watermarks end at the LSO; read_uncommitted ones at the high watermark). The high watermark is
# read first: without a transaction the LSO read after it cannot be below it.
itf_open_txns() {
	local t lso hw
	for t in assets.create.retry assets.create.dlq; do
		hw=$("$AWK" watermarks --topic "$t" -X isolation.level=read_uncommitted 2>>"$IT_DIR/offsets.log") || return 1
		lso=$("$AWK" watermarks --topic "$t" 2>>"$IT_DIR/offsets.log") || return 1
		join <(sort -k1,1 <<<"$lso") <(sort -k1,1 <<<"$hw") | awk -v t="$t" '$3 < $5 { print t, $1, $3 }'
	done
}
itf_no_open_txns() {
	local o
	o=$(itf_open_txns) || return 1
	[[ -z "$o" ]]
}
# A worker killed with a transaction open leaves it until the broker aborts it
# (transaction.timeout.ms, 10 s, then up to 1 s on the test broker): meanwhile a read_committed
# reader stops at its first record, even for records committed after it by another worker.
itf_wait_no_open_txns() { # SECONDS
	it_wait_for "$1" "no transaction open on the retry and dead-letter topics" itf_no_open_txns
}

# ---- accounting ----

# itf_account MANIFEST [LABEL]
#
# Every record of the manifest is in exactly one final place. Manifest lines are
# "REQUEST_ID EXPECTED" (the record's request_id is its key), or, for streams whose records may
# have no readable request_id (not JSON, invalid UTF-8, empty), "IT_ID EXPECTED REQUEST_ID":
# the key is the producer header it-id every record then carries, and REQUEST_ID ("-" when the
# record has none a row could carry) finds its row. EXPECTED is "ok" or a dead-letter class:
#   ok     -> exactly one asset_requests row, and no dead letter;
#   CLASS  -> exactly one dead letter with x-error-class CLASS, and no row;
# no (tenant_id, content_sha256) has two assets, every asset is referenced by a request, and
# nothing is there that the manifest does not name. Prints the counts; each check is one
# assertion. ITF_DLQ_FILE keeps the dead letters read (aw-kafka dump lines).
itf_account() {
	local manifest="$1" label="${2:-accounting}"
	local tsv="$IT_DIR/account-dlq.tsv" m3="$IT_DIR/account-manifest.txt" out
	ITF_DLQ_FILE="$IT_DIR/account-dlq.jsonl"
	itf_wait_no_open_txns 60
	it_dump assets.create.dlq >"$ITF_DLQ_FILE" || fail "$label: could not dump the dead-letter topic"
	if [[ "$(head -n 1 "$manifest" | wc -w)" -ge 3 ]]; then
		cp "$manifest" "$m3"
		jq -r '[(.headers["it-id"] // ""), (.headers["x-error-class"] // "")] | @tsv' 			"$ITF_DLQ_FILE" >"$tsv" || fail "$label: could not read the dead letters"
	else
		awk '{ print $1, $2, $1 }' "$manifest" >"$m3"
		itf_dlq_tsv <"$ITF_DLQ_FILE" >"$tsv" || fail "$label: could not read the dead letters"
	fi
	out=$(psql -X -A -t -q -v ON_ERROR_STOP=1 -F ' ' 2>&1 <<SQL
CREATE TEMP TABLE m (key text, expected text, request_id text);
\copy m FROM '$m3' WITH (DELIMITER ' ')
CREATE TEMP TABLE d (key text, cls text);
\copy d FROM '$tsv'
CREATE TEMP TABLE r AS SELECT request_id::text AS request_id FROM asset_requests;
SELECT
  (SELECT count(*) FROM m),
  (SELECT count(*) FROM m WHERE expected = 'ok'),
  (SELECT count(*) FROM m WHERE expected <> 'ok'),
  (SELECT count(*) FROM r),
  (SELECT count(*) FROM d),
  (SELECT count(*) FROM assets),
  (SELECT count(*) - count(DISTINCT key) FROM m),
  (SELECT count(*) FROM m WHERE expected = 'ok' AND NOT EXISTS (SELECT 1 FROM r WHERE r.request_id = m.request_id)),
  (SELECT count(*) FROM m WHERE expected = 'ok' AND EXISTS (SELECT 1 FROM d WHERE d.key = m.key)),
  (SELECT count(*) FROM m WHERE expected <> 'ok' AND EXISTS (SELECT 1 FROM r WHERE r.request_id = m.request_id)),
  (SELECT count(*) FROM m WHERE expected <> 'ok' AND NOT EXISTS (SELECT 1 FROM d WHERE d.key = m.key)),
  (SELECT count(*) FROM m WHERE expected <> 'ok' AND (SELECT count(*) FROM d WHERE d.key = m.key) > 1),
  (SELECT count(*) FROM m WHERE expected <> 'ok' AND EXISTS (SELECT 1 FROM d WHERE d.key = m.key AND d.cls <> m.expected)),
  (SELECT count(*) FROM r WHERE NOT EXISTS (SELECT 1 FROM m WHERE m.expected = 'ok' AND m.request_id = r.request_id)),
  (SELECT count(*) FROM d WHERE NOT EXISTS (SELECT 1 FROM m WHERE m.key = d.key)),
  (SELECT count(*) FROM (SELECT 1 FROM assets GROUP BY tenant_id, content_sha256 HAVING count(*) > 1) x),
  (SELECT count(*) FROM assets a WHERE NOT EXISTS (SELECT 1 FROM asset_requests q WHERE q.asset_id = a.id));
-- Details of what is wrong, for the log.
SELECT 'detail', kind, key, info FROM (
  SELECT 'ok_missing' AS kind, key, request_id AS info FROM m WHERE expected = 'ok' AND NOT EXISTS (SELECT 1 FROM r WHERE r.request_id = m.request_id)
  UNION ALL SELECT 'ok_dead_lettered', m.key, d.cls FROM m JOIN d USING (key) WHERE m.expected = 'ok'
  UNION ALL SELECT 'bad_in_database', key, expected FROM m WHERE expected <> 'ok' AND EXISTS (SELECT 1 FROM r WHERE r.request_id = m.request_id)
  UNION ALL SELECT 'bad_missing', key, expected FROM m WHERE expected <> 'ok' AND NOT EXISTS (SELECT 1 FROM d WHERE d.key = m.key)
  UNION ALL SELECT 'dead_lettered_twice', key, string_agg(cls, ',') FROM d GROUP BY key HAVING count(*) > 1
  UNION ALL SELECT 'wrong_class', m.key, 'expected ' || m.expected || ', got ' || d.cls FROM m JOIN d USING (key) WHERE m.expected <> 'ok' AND d.cls <> m.expected
  UNION ALL SELECT 'extra_row', request_id, '' FROM r WHERE NOT EXISTS (SELECT 1 FROM m WHERE m.expected = 'ok' AND m.request_id = r.request_id)
  UNION ALL SELECT 'extra_dead_letter', key, cls FROM d WHERE NOT EXISTS (SELECT 1 FROM m WHERE m.key = d.key)
) x ORDER BY 2, 3 LIMIT 40;
SQL
	) || fail "$label: accounting query failed: $out"
	local total ok bad rows dlq assets mdup ok_missing ok_dlq bad_db bad_missing bad_twice \
		bad_class extra_rows extra_dlq dup_keys orphan_assets
	read -r total ok bad rows dlq assets mdup ok_missing ok_dlq bad_db bad_missing bad_twice \
		bad_class extra_rows extra_dlq dup_keys orphan_assets <<<"$(echo "$out" | grep -v '^detail ' | head -n 1)"
	echo "# $label: manifest=$total (ok=$ok, dead-letter=$bad) asset_requests=$rows" \
		"dead_letters=$dlq assets=$assets"
	if echo "$out" | grep -q '^detail '; then
		echo "$out" | grep '^detail ' | sed 's/^detail /#   /'
	fi
	assert_ge 1 "$total" "$label: the manifest names requests"
	assert_eq 0 "$mdup" "$label: the manifest names each request once"
	assert_eq 0 "$ok_missing" "$label: every good request has its asset_requests row"
	assert_eq 0 "$ok_dlq" "$label: no good request dead-lettered"
	assert_eq 0 "$bad_db" "$label: no bad request reached asset_requests"
	assert_eq 0 "$bad_missing" "$label: every bad request is on the dead-letter topic"
	assert_eq 0 "$bad_twice" "$label: no request dead-lettered twice"
	assert_eq 0 "$bad_class" "$label: every dead letter has the expected x-error-class"
	assert_eq 0 "$extra_rows" "$label: no asset_requests row outside the manifest's good requests"
	assert_eq 0 "$extra_dlq" "$label: no dead letter outside the manifest"
	assert_eq 0 "$dup_keys" "$label: no (tenant_id, content_sha256) with two assets"
	assert_eq 0 "$orphan_assets" "$label: every asset is referenced by a request"
	assert_eq "$ok/$bad" "$rows/$dlq" "$label: rows/dead letters = good/bad requests"
}

# Prints N envelope lines of good requests that the test trigger (it_install_raise_trigger)
# refuses once with 23505, so the worker requeues each to the retry topic and creates it on
# its retry; adds them to the manifest as "ok". itf_requeue_once_markers N MANIFEST
itf_requeue_once_markers() {
	local n="$1" manifest="$2" i rid
	psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
DO \$\$ BEGIN
  FOR i IN 1..$n LOOP
    EXECUTE format('CREATE SEQUENCE it_raise_seq_m%s', i);
    INSERT INTO it_raise_rules (marker, sqlstate, times, seq)
    VALUES ('requeue-once-' || i, '23505', 1, 'it_raise_seq_m' || i);
  END LOOP;
END \$\$;
SQL
	for ((i = 1; i <= n; i++)); do
		rid=$(it_uuid)
		printf '{"key":"m-%d","value":%s}\n' "$i" "$(it_request_jq "$rid" $((9000000 + i)) ".name = \"requeue-once-$i\"")"
		echo "$rid ok" >>"$manifest"
	done
}

# Writes an aw-gen stream and its manifest: itf_gen STREAM MANIFEST SEED COUNT [aw-gen args]
# (the tenant is lib.sh's IT_TENANT, seeded by it_seed).
itf_gen() {
	local stream="$1" manifest="$2" seed="$3" count="$4"
	shift 4
	"$GEN" --count "$count" --tenant "$IT_TENANT" --seed "$seed" --manifest "$manifest" "$@" \
		>"$stream" || fail "aw-gen failed"
}

# A mixed stream: new contents, duplicates, cross-partition race pairs, and every dead-letter
# class aw-gen makes (foreign key, CHECK, NOT NULL, malformed): itf_gen_mixed STREAM MANIFEST
# SEED COUNT
itf_gen_mixed() {
	itf_gen "$1" "$2" "$3" "$4" --duplicates 10 --races 4 --fk 1.5 --check 1.5 --not-null 1.5 \
		--malformed 1.5
}

# Produces an envelope file to the input topic; asserts every line was produced.
itf_produce_file() { # FILE [TOPIC]
	local n
	n=$(wc -l <"$1")
	"$AWK" produce --envelope --topic "${2:-assets.create}" --file "$1" 2>>"$IT_DIR/produce.log" ||
		fail "producing $1 failed"
	echo "# produced $n records from $(basename "$1")"
}

# Every input record below the group's committed offset is final: in asset_requests, on the
# dead-letter topic, or requeued on the retry topic. Prints "checked=N unfinal=M"; the first
# records that are not ("partition offset request_id") go to stderr, for the test's log.
itf_committed_are_final() { # [GROUP]
	local group="${1:-$IT_GROUP}"
	local input="$IT_DIR/final-input.tsv" committed="$IT_DIR/final-committed.txt"
	local dlq="$IT_DIR/final-dlq.tsv" retry="$IT_DIR/final-retry.tsv"
	"$AWK" committed --group "$group" --topic assets.create >"$committed" 2>>"$IT_DIR/offsets.log" ||
		fail "aw-kafka committed failed"
	it_dump assets.create | jq -r '[.partition, .offset,
		((.value // "") | (try fromjson catch null)
		 | if type == "object" then (.request_id // "" | tostring) else "" end)] | @tsv' >"$input"
	it_dump assets.create.dlq | itf_dlq_tsv >"$dlq"
	it_dump assets.create.retry | itf_dlq_tsv >"$retry"
	local out
	out=$(psql -X -A -t -q -v ON_ERROR_STOP=1 -F ' ' <<SQL
CREATE TEMP TABLE i (partition int, "offset" bigint, request_id text);
\copy i FROM '$input'
CREATE TEMP TABLE c (partition int, committed bigint);
\copy c FROM '$committed' WITH (DELIMITER ' ')
CREATE TEMP TABLE f (request_id text, cls text);
\copy f FROM '$dlq'
\copy f FROM '$retry'
CREATE TEMP TABLE k AS
SELECT i.partition, i."offset", i.request_id,
       NOT EXISTS (SELECT 1 FROM asset_requests q WHERE q.request_id::text = i.request_id)
       AND NOT EXISTS (SELECT 1 FROM f WHERE f.request_id = i.request_id) AS unfinal
  FROM i JOIN c USING (partition) WHERE i."offset" < c.committed;
SELECT 'checked=' || count(*), 'unfinal=' || count(*) FILTER (WHERE unfinal) FROM k;
SELECT '#   unfinal:', partition, "offset", request_id FROM k WHERE unfinal ORDER BY 2, 3 LIMIT 20;
SQL
	) || fail "the committed-offsets query failed: $out"
	echo "$out" | grep -v '^#' || true
	echo "$out" | grep '^#' >&2 || true
}
