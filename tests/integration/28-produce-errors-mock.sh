#!/usr/bin/env bash
# Produce and OffsetCommit requests refused with exact error codes, under a steady stream of
# mixed requests: a few dozen produce requests failing with NOT_LEADER_FOR_PARTITION, then a
# window of several seconds in which every produce fails (REQUEST_TIMED_OUT), long enough for
# the worker's own deliveries to time out and be sent again, then OffsetCommit refused with
# REBALANCE_IN_PROGRESS and NOT_COORDINATOR.
#
# On librdkafka's mock cluster (IT_MOCK_BROKER=1): a real single-node broker cannot refuse the
# produce requests to one topic while it serves the rest (Kafka 4 caps min.insync.replicas at
# the replication factor), nor answer a chosen error code. The real broker's faults (killed,
# frozen, connections cut) are test 21.
#
# Throughout, a sampler reads the group's committed input offsets and then the high watermarks
# of the retry and dead-letter topics. SPEC section 1: "an input offset is committed only after
# its request has reached a final state". So for every sample, every forward (x-attempt 1,
# input record at x-original-partition/offset) that the broker appended only after that sample
# (its offset at or beyond the sampled watermark) must lie at or above the committed offset of
# its input partition. At the end every request is accounted for exactly once.
IT_MOCK_BROKER=1
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_faults.sh"
source "$(dirname "$0")/lib_hostile.sh"
it_setup
it_seed
ith_throttle_install 0
it_install_raise_trigger

# Adds a kafka.properties entry to the worker's config.
kafka_property() { sed -i "/^  properties:/a\\    $1: \"$2\"" "$IT_CONFIG"; }

manifest="$IT_DIR/manifest.txt"
itf_gen_mixed "$IT_DIR/gen.jsonl" "$manifest" 2101 5000
# Requests refused once with 23505: they make retry-topic traffic.
MARKERS=60
itf_requeue_once_markers "$MARKERS" "$manifest" >"$IT_DIR/markers.jsonl"
# Two parts, the markers spread over them.
split -n l/2 -d "$IT_DIR/markers.jsonl" "$IT_DIR/m-"
mix() { cat "$@" | shuf --random-source=<(yes); }
mix <(head -n 2600 "$IT_DIR/gen.jsonl") "$IT_DIR/m-00" >"$IT_DIR/part1.jsonl"
mix <(tail -n +2601 "$IT_DIR/gen.jsonl") "$IT_DIR/m-01" >"$IT_DIR/part2.jsonl"
total=$(wc -l <"$manifest")
echo "# $total requests ($MARKERS requeued once by design)"

samples="$IT_DIR/samples.txt"
: >"$samples"
ith_sampler_start "$samples"

dlq_high() { "$AWK" watermarks --topic assets.create.dlq 2>>"$IT_DIR/offsets.log" | awk '{s += $3} END {print s + 0}'; }
dlq_at_least() { (($(dlq_high) >= $1)); }
committed_at_least() { (($(itf_committed_sum assets.create) >= $1)); }

# librdkafka 2.0.2's mock cluster does not check the sequence numbers of an idempotent
# producer: when an injected error fails one batch and the next batch of the same partition,
# already in flight, succeeds, the client counts the failed one as "implicitly acknowledged by
# a subsequent batch" although the mock never appended it (seen here: retry records reported
# delivered, absent from the topic). A real broker refuses the out-of-order batch. One request
# in flight per connection keeps the batches in order, so what this test finds is the worker's.
kafka_property max.in.flight.requests.per.connection 1

# ---- 1. produce failing ----
# The worker's deliveries time out after 2.5 s here (the shipped default is 120 s), so a long
# produce outage reaches the worker's own resend path, not only librdkafka's retries.
kafka_property message.timeout.ms 2500
itf_produce_file "$IT_DIR/part1.jsonl"
ith_throttle 2 # ~2 ms per new row: the part lasts several seconds
it_start_worker w1
log1="$IT_DIR/worker-w1.log"
itf_wait_log 60 "$log1" 'outcome=' 200

# 1a. A few dozen produce requests fail with NOT_LEADER_FOR_PARTITION (retriable).
h0=$(dlq_high)
it_broker ctl push-errors Produce 6 40
it_wait_for 30 "dead letters acknowledged again after 40 produce errors" dlq_at_least $((h0 + 15))
ok "40 failed produce requests: dead letters are acknowledged again afterwards"
it_broker ctl clear-errors Produce

# 1b. Every produce fails (REQUEST_TIMED_OUT) for 6 s while the worker keeps taking input.
before_window=$(itf_outcomes "$log1")
((before_window < $(wc -l <"$IT_DIR/part1.jsonl") - 500)) || fail "part 1 was nearly done before the produce outage ($before_window outcomes)"
retries_before=$(grep -c 'forward_retry' "$log1" || true)
it_broker ctl push-errors Produce 7 1000000
sleep 1 # let forwards already in flight land; from here on nothing is appended
h1=$(dlq_high)
dl1=$(itf_outcomes "$log1" dead_lettered)
t_end=$((SECONDS + 5))
while ((SECONDS < t_end)); do
	itf_alive "$IT_PID_w1" || fail "the worker exited while produce requests failed"
	sleep 0.2
done
h2=$(dlq_high)
dl2=$(itf_outcomes "$log1" dead_lettered)
during=$(($(itf_outcomes "$log1") - before_window))
echo "# produce outage: $during outcomes, $((dl2 - dl1)) dead letters sent, DLQ high watermark $h1 -> $h2"
assert_eq "$h1" "$h2" "produce outage: nothing was appended to the dead-letter topic"
assert_ge 10 $((dl2 - dl1)) "produce outage: the worker kept taking input and sent dead letters that were not acknowledged"
itf_wait_log 30 "$log1" 'forward_retry' $((retries_before + 1))
ok "produce outage: timed-out deliveries are sent again by the worker (forward_retry)"
it_broker ctl clear-errors Produce
it_wait_for 60 "the dead letters of the outage acknowledged" dlq_at_least $((h2 + dl2 - dl1))
ok "after the produce outage the dead letters are acknowledged"

# ---- 2. OffsetCommit failing ----
c0=$(itf_committed_sum assets.create)
it_broker ctl push-errors OffsetCommit 27 4 # REBALANCE_IN_PROGRESS
it_broker ctl push-errors OffsetCommit 16 4 # NOT_COORDINATOR
itf_produce_file "$IT_DIR/part2.jsonl"
itf_wait_log 60 "$log1" 'outcome=' $(($(itf_outcomes "$log1") + 400))
it_wait_for 60 "offset commits succeed again after OffsetCommit errors" committed_at_least $((c0 + 300))
ok "OffsetCommit errors: commits go through again afterwards"

it_stop_worker w1 TERM
assert_eq 0 "$IT_RC" "worker 1: SIGTERM exit 0"
ith_sampler_stop
ith_throttle 0
it_run_drain

# ---- the property and the accounting ----
ith_check_samples "$samples"
echo "# samples: $ITH_SAMPLES, sample/forward pairs: $ITH_PAIRS, violations: $ITH_VIOLATIONS, smallest gap: $ITH_MIN_GAP"
assert_ge 20 "$ITH_SAMPLES" "committed offsets sampled throughout the run"
assert_ge 50 "$ITH_PAIRS" "unacknowledged forwards seen by the samples"
assert_eq 0 "$ITH_VIOLATIONS" "no input offset was committed past a request whose retry or dead letter was not acknowledged"
assert_eq 1 $((ITH_MIN_GAP <= 3)) "the commits went up to the unacknowledged forwards (smallest gap $ITH_MIN_GAP <= 3)"
final=$(itf_committed_are_final)
assert_match '^checked=[0-9]+ unfinal=0$' "$final" "every committed input record is final ($final)"
assert_ge "$MARKERS" "$(it_dump assets.create.retry | jq -r 'select(.headers["x-error-class"] == "unique_violation") | .headers["x-original-offset"]' | wc -l)" \
	"the requeued markers went through the retry topic"
# Checked before the accounting, which stops at its first failure.
assert_eq 0 "$(it_dump assets.create.dlq | jq -r '.headers["x-error-class"]' | grep -cvE '^(malformed_message|foreign_key_violation|check_violation|not_null_violation)$' || true)" \
	"no dead letter of another class (retries_exhausted, transient, ...)"
assert_eq 0 "$(it_sql "SELECT count(*) FROM (SELECT 1 FROM assets GROUP BY tenant_id, content_sha256 HAVING count(*) > 1) x")" \
	"no (tenant_id, content_sha256) with two assets"
itf_account "$manifest" "after produce and commit errors"
it_done
