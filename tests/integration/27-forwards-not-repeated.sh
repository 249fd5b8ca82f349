#!/usr/bin/env bash
# A request whose requeue or dead letter the broker acknowledged, but whose input offset was
# never committed, is delivered again to the next owner: it must not be forwarded a second
# time (SPEC 1: "accounted for exactly once ... in the dead-letter topic").
#
# Made deterministic: every OffsetCommit fails (the mock cluster's fault injection, so this
# test runs on librdkafka's mock cluster: a real broker refuses no chosen commit), so a
# worker dead-letters and requeues its whole stream without committing anything, and is then
# killed. The next worker is handed every record again; it reads the retry and dead-letter
# topics (x-source-* headers name the record each forward was made from) and resolves the
# ones forwarded already as replayed. (13 and 25 cover the same at random moments: SIGKILLs,
# and partitions lost in rebalances, on the real broker.)
IT_MOCK_BROKER=1
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_faults.sh"
it_setup
it_seed
it_install_raise_trigger

manifest="$IT_DIR/manifest.txt"
itf_gen_mixed "$IT_DIR/gen.jsonl" "$manifest" 2701 1500
# Requests refused once with 23505: the first worker requeues each to the retry topic and
# creates it on its retry, so retry-topic forwards are covered too.
MARKERS=20
itf_requeue_once_markers "$MARKERS" "$manifest" >>"$IT_DIR/gen.jsonl"
total=$(wc -l <"$manifest")
bad=$(grep -vc ' ok$' "$manifest")

dlq_count() { "$AWK" watermarks --topic assets.create.dlq 2>>"$IT_DIR/offsets.log" | awk '{s += $3} END {print s + 0}'; }
retry_count() { "$AWK" watermarks --topic assets.create.retry 2>>"$IT_DIR/offsets.log" | awk '{s += $3} END {print s + 0}'; }

# ---- 1. nothing committed at all ----
it_broker ctl push-errors OffsetCommit 12 1000000 # OFFSET_METADATA_TOO_LARGE: not retried
itf_produce_file "$IT_DIR/gen.jsonl"
it_start_worker w1
log1="$IT_DIR/worker-w1.log"
# Every request settled, every retry created on its second try, every forward acknowledged.
itf_wait_log 90 "$log1" 'outcome=(created|duplicate|dead_lettered)' "$total"
it_wait_for 30 "all $bad dead letters acknowledged" test "$(dlq_count)" -ge "$bad"
sleep 1
it_stop_worker w1 KILL
assert_eq 0 "$(itf_committed_sum assets.create)" "phase 1: no input offset was committed"
dlq1=$(dlq_count)
retry1=$(retry_count)
assert_eq "$bad" "$dlq1" "phase 1: one dead letter per bad request"
assert_eq "$MARKERS" "$retry1" "phase 1: one requeue per request refused with 23505"
it_broker ctl clear-errors OffsetCommit

it_run_drain
log2="$IT_LAST_LOG"
echo "# worker 2: $(grep summary_final "$log2" | sed 's/.*summary_final //')"
assert_eq "$dlq1" "$(dlq_count)" "phase 2: no dead letter was sent again"
assert_eq "$retry1" "$(retry_count)" "phase 2: no requeue was sent again"
assert_eq 0 "$(itf_outcomes "$log2" dead_lettered)" "phase 2: nothing dead-lettered by the second worker"
assert_eq 0 "$(itf_outcomes "$log2" requeued)" "phase 2: nothing requeued by the second worker"
found=$(grep -c 'outcome=replayed forwarded_to=' "$log2" || true)
# Every forward is found: the dead letters, the requeues from the input topic, and the retry
# records' own outcome (created) is in the database, so those resolve through request_id.
assert_eq $((bad + MARKERS)) "$found" "phase 2: every forwarded request resolved as replayed from the topics"
assert_file_contains "$log2" "forward_scan" "phase 2: the scan is logged"
itf_account "$manifest" "after a worker whose commits all failed"
itf_wait_caught_up 30
ok "every input and retry offset committed at the end"
it_done
