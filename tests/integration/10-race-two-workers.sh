#!/usr/bin/env bash
# Two workers in one consumer group race on the same content: PostgreSQL's unique constraint
# decides (23505), the loser rolls back, requeues to the retry topic, and on the retry the
# dedup lookup finds the winner (duplicate). Exactly one asset per (tenant, content), one row
# per request, nothing dead-lettered, nothing lost.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_faults.sh"
# Four input partitions, two retry partitions: cooperative-sticky balances a member's count of
# partitions, not its share of each topic, and with 4 + 4 a worker joining second can be
# handed exactly the four retry partitions (no input, no race). With 4 + 2 each of the two
# holds three, so each holds input.
it_setup --topic assets.create:4 --topic assets.create.retry:2 --topic assets.create.dlq:1
it_seed

stream="$IT_DIR/stream.jsonl"
manifest="$IT_DIR/manifest.txt"

# The race block: content j at offset j of every input partition, DEPTH rows deep. Each worker
# owns two input partitions and walks them from offset 0, so both insert the same contents.
# The two rarely start within a millisecond of each other, so the test makes the races happen:
# a trigger (this test's database only; the worker knows nothing of it) holds each new race
# asset uncommitted for 10 ms. The worker that is behind only finds duplicates, catches up
# with the one inserting, and from there on they meet on the same content: the one that
# arrives second sees no committed asset, inserts, waits for the first's commit and gets 23505.
it_sql "CREATE FUNCTION it_slow_insert() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN PERFORM pg_sleep(0.01); RETURN NULL; END \$\$;
CREATE TRIGGER it_slow_insert AFTER INSERT ON assets FOR EACH ROW
WHEN (NEW.name LIKE 'race-%') EXECUTE FUNCTION it_slow_insert();" >/dev/null
DEPTH=200
for ((j = 0; j < DEPTH; j++)); do
	for p in 0 1 2 3; do
		rid=$(printf '00000000-0000-4000-8%03x-%012x' "$p" "$j")
		printf '{"key":"race-%d-%d","partition":%d,"value":{"type":"asset.create","version":1,"request_id":"%s","tenant_id":"%s","name":"race-%d.bin","content_sha256":"%064x","size_bytes":%d,"storage_uri":"s3://it/race-%d"}}\n' \
			"$j" "$p" "$p" "$rid" "$IT_TENANT" "$j" "$((j + 1000000))" "$j" "$j" >>"$stream"
		echo "$rid ok" >>"$manifest"
	done
done
# Then an ordinary stream with duplicates and cross-partition race pairs, good requests only.
itf_gen "$IT_DIR/gen.jsonl" "$IT_DIR/gen.manifest" 1010 1400 --duplicates 20 --races 20
cat "$IT_DIR/gen.jsonl" >>"$stream"
cat "$IT_DIR/gen.manifest" >>"$manifest"
total=$(wc -l <"$manifest")

# Both workers in one group, each owning partitions, before the stream arrives: the loopback
# broker's cooperative rebalances take seconds, and a worker that only joins once the other
# is done races with nobody.
it_start_worker a
it_start_worker b
for w in a b; do
	it_wait_for 60 "worker $w owns partitions" \
		grep -qE 'partitions_assigned count=[1-9]' "$IT_DIR/worker-$w.log"
done
itf_produce_file "$stream"
itf_wait_caught_up 120
for w in a b; do
	it_stop_worker "$w"
	assert_eq 0 "$IT_RC" "worker $w: stopped cleanly after the stream"
done
log_a="$IT_DIR/worker-a.log" log_b="$IT_DIR/worker-b.log"
echo "# outcomes a: $(grep -o 'outcome=[a-z_]*' "$log_a" | sort | uniq -c | tr '\n' ' ')"
echo "# outcomes b: $(grep -o 'outcome=[a-z_]*' "$log_b" | sort | uniq -c | tr '\n' ' ')"
assert_ge 100 "$(itf_outcomes "$log_a")" "worker a took part (processed requests)"
assert_ge 100 "$(itf_outcomes "$log_b")" "worker b took part (processed requests)"

requeued=$(it_log_count requeued)
races=$(cat "$log_a" "$log_b" | grep 'outcome=requeued' | grep -c 'error_class=unique_violation' || true)
echo "# requeued: $requeued (unique_violation: $races)"
assert_ge 1 "$races" "at least one race lost: requeued with error_class=unique_violation"
assert_eq "$requeued" "$races" "every requeue was a unique_violation"
assert_eq 0 "$(cat "$log_a" "$log_b" | grep 'outcome=requeued' | grep -vc 'sqlstate=23505' || true)" \
	"requeues carry sqlstate=23505"

# The retry topic holds exactly the requeued records, with the SPEC's headers.
retry="$IT_DIR/retry.jsonl"
it_dump assets.create.retry >"$retry"
assert_eq "$requeued" "$(wc -l <"$retry")" "one retry-topic record per requeue"
assert_eq 0 "$(jq -c 'select(.headers["x-error-class"] != "unique_violation" or .headers["x-error-sqlstate"] != "23505"
	or .headers["x-error-constraint"] != "assets_tenant_content_key" or .headers["x-original-topic"] != "assets.create"
	or (.headers["x-attempt"] | test("^[0-9]+$") | not) or (.headers["x-retry-not-before"] | test("^[0-9]{13}$") | not)
	or (.headers["x-worker-id"] // "") == "")' "$retry" | wc -l)" \
	"retry records carry unique_violation, 23505, the constraint, x-original-*, x-attempt, x-retry-not-before, x-worker-id"

# Every requeued request resolved as a duplicate of the winner, not as created.
lost=$(cat "$log_a" "$log_b" | grep 'outcome=requeued' | grep -o 'request_id=[0-9a-f-]*' | cut -d= -f2 | sort -u)
nlost=$(echo "$lost" | grep -c . || true)
assert_ge 1 "$nlost" "requeued requests are named in the log"
resolved=$(it_sql "SELECT count(*) FROM asset_requests WHERE outcome = 'duplicate' AND request_id::text IN ($(echo "$lost" | sed "s/.*/'&'/" | paste -sd,))")
assert_eq "$nlost" "$resolved" "every requeued request resolved as duplicate"

itf_account "$manifest" "two workers"
assert_eq "$total" "$(it_sql "SELECT count(*) FROM asset_requests")" "one asset_requests row per request ($total)"
assert_eq 0 "$(wc -l <"$ITF_DLQ_FILE")" "nothing dead-lettered"
assert_eq "$DEPTH" "$(it_sql "SELECT count(*) FROM assets WHERE name LIKE 'race-%'")" "one asset per raced content ($DEPTH)"
assert_eq "$((DEPTH * 4))" "$(it_sql "SELECT count(*) FROM asset_requests r JOIN assets a ON a.id = r.asset_id WHERE a.name LIKE 'race-%'")" \
	"the four requests of each raced content link to its one asset"
itf_wait_caught_up 30
ok "every input and retry offset committed"
it_done
