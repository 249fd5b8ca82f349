#!/usr/bin/env bash
# Real broker faults under a steady stream of mixed requests, on the real Apache Kafka broker
# reached through a TCP proxy (AW_KAFKA_PROXY=1, so every connection can be cut at once):
#
#  1. worker 1, deliveries timing out after 2.5 s:
#     a. the broker frozen (SIGSTOP) for 2 s, shorter than session.timeout.ms (6 s): the
#        worker keeps its partitions;
#     b. a second worker joins and leaves: two cooperative rebalances while commits flow;
#     c. every connection cut for 8 s, longer than the session timeout: deliveries time out
#        and are sent again by the worker, the group drops the member, its partitions come
#        back as lost, and what was not committed is delivered again;
#  2. worker 2, the shipped delivery timeout:
#     a. the broker SIGKILLed and restarted on the same log dir;
#     b. the broker frozen for 10 s, past the session timeout, then thawed.
#
# Throughout, a sampler reads the group's committed input offsets and then the high watermarks
# of the retry and dead-letter topics. SPEC section 1: "an input offset is committed only after
# its request has reached a final state". So for every sample, every forward (x-attempt 1,
# input record at x-original-partition/offset) that the broker appended only after that sample
# (its offset at or beyond the sampled watermark) must lie at or above the committed offset of
# its input partition. At the end every request is accounted for exactly once.
# (Faults that need an exact error code on chosen requests are test 28, on the mock cluster.)
export AW_KAFKA_PROXY=1
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
split -n l/2 -d "$IT_DIR/markers.jsonl" "$IT_DIR/m-"
mix() { cat "$@" | shuf --random-source=<(yes); }
mix <(head -n 2600 "$IT_DIR/gen.jsonl") "$IT_DIR/m-00" >"$IT_DIR/part1.jsonl"
mix <(tail -n +2601 "$IT_DIR/gen.jsonl") "$IT_DIR/m-01" >"$IT_DIR/part2.jsonl"
total=$(wc -l <"$manifest")
echo "# $total requests ($MARKERS requeued once by design)"

samples="$IT_DIR/samples.txt"
: >"$samples"
ith_sampler_start "$samples"

# Runs FAULT, waits SECS with the worker alive, runs REPAIR, and waits for 150 more outcomes.
fault_for() { # WORKER LOG SECS FAULT REPAIR DESCRIPTION
	local pid="$1" log="$2" secs="$3" fault="$4" repair="$5" what="$6" at n
	$fault
	echo "# $what for $secs s, after $(itf_outcomes "$log") outcomes"
	at=$SECONDS
	while ((SECONDS - at < secs)); do
		itf_alive "$pid" || fail "the worker exited during: $what"
		sleep 0.2
	done
	ok "the worker kept running: $what for $secs s"
	$repair
	n=$(itf_outcomes "$log")
	# 150 more outcomes while the stream lasts; near its end (a slow build), all of it committed.
	if (($(ith_feed_progress "$FEED") < $(wc -l <"$IT_DIR/$FEED_FILE") - 300)); then
		itf_wait_log 120 "$log" 'outcome=' $((n + 150))
	else
		itf_wait_caught_up 120
	fi
	ok "after $what ($secs s) the worker carries on"
}
freeze() { it_broker freeze; }
thaw() { it_broker thaw; }
cut() { it_broker cut; }
heal() { it_broker heal; }
kill_broker() { it_broker kill; }
restart_broker() { it_broker start >/dev/null; }

# ---- 1. worker 1: deliveries time out after 2.5 s (the shipped default is 120 s), so a long
# outage reaches the worker's own resend path, not only librdkafka's retries ----
kafka_property message.timeout.ms 2500
ith_throttle 1 # ~1 ms per new row: the stream lasts through the faults
FEED=p1 FEED_FILE=part1.jsonl
ith_feed_start p1 "$IT_DIR/part1.jsonl" 20 0.1
it_start_worker w1
log1="$IT_DIR/worker-w1.log"
itf_wait_log 60 "$log1" 'outcome=' 200

fault_for "$IT_PID_w1" "$log1" 2 freeze thaw "broker frozen (SIGSTOP)"
assert_file_lacks "$log1" "assignment_lost" "2 s freeze: the worker kept its assignment"

# 1b. Two rebalances under load: commits go on through them.
c0=$(itf_committed_sum assets.create)
it_start_worker w1b
itf_wait_log 60 "$IT_DIR/worker-w1b.log" 'partitions_assigned count=[1-9]' 1
itf_wait_log 60 "$IT_DIR/worker-w1b.log" 'outcome=' 20
it_stop_worker w1b TERM
assert_eq 0 "$IT_RC" "the joining worker: SIGTERM exit 0"
committed_at_least() { (($(itf_committed_sum assets.create) >= $1)); }
it_wait_for 60 "offset commits after a join and a leave" committed_at_least $((c0 + 200))
ok "a worker joined and left: commits go on"

retries_before=$(grep -c 'forward_retry' "$log1" || true)
fault_for "$IT_PID_w1" "$log1" 8 cut heal "every connection cut (proxy down)"
# Mostly the group drops the member and it learns so at its first heartbeat after the cut;
# in one run of several it kept its assignment (not yet explained, see the README's known
# limits). Reported, not asserted: what must hold is the accounting and the samples below.
if itf_wait_log_quiet() { local d=$((SECONDS + 30)); until grep -q 'assignment_lost' "$log1"; do ((SECONDS < d)) || return 1; sleep 0.2; done; }; itf_wait_log_quiet; then
	echo "# 8 s cut: the session timed out (assignment lost) and the worker rejoined"
else
	echo "# 8 s cut: the worker kept its assignment"
fi
if (($(grep -c 'forward_retry' "$log1" || true) > retries_before)); then
	ok "8 s cut: timed-out deliveries were sent again by the worker (forward_retry)"
else
	echo "# 8 s cut: no forward was in flight when the connections were cut"
fi
ith_feed_wait p1 120
it_stop_worker w1 TERM
assert_eq 0 "$IT_RC" "worker 1: SIGTERM exit 0"
sed -i '/message.timeout.ms/d' "$IT_CONFIG"

# ---- 2. worker 2: the broker killed and restarted, then frozen past the session timeout ----
it_start_worker w2
log2="$IT_DIR/worker-w2.log"
itf_wait_log 60 "$log2" 'partitions_assigned count=[1-9]' 1
FEED=p2 FEED_FILE=part2.jsonl
ith_feed_start p2 "$IT_DIR/part2.jsonl" 20 0.1
itf_wait_log 60 "$log2" 'outcome=' 200
fault_for "$IT_PID_w2" "$log2" 1 kill_broker restart_broker "broker SIGKILLed, restarted on its log dir"
fault_for "$IT_PID_w2" "$log2" 10 freeze thaw "broker frozen (SIGSTOP)"
ith_throttle 0
ith_feed_wait p2 120
itf_wait_caught_up 120
ok "every input and retry offset committed at the end"
it_stop_worker w2 TERM
assert_eq 0 "$IT_RC" "worker 2: SIGTERM exit 0"
ith_sampler_stop

# ---- the property and the accounting ----
ith_check_samples "$samples"
echo "# samples: $ITH_SAMPLES, sample/forward pairs: $ITH_PAIRS, violations: $ITH_VIOLATIONS, smallest gap: $ITH_MIN_GAP"
assert_ge 20 "$ITH_SAMPLES" "committed offsets sampled throughout the run"
assert_ge 20 "$ITH_PAIRS" "unacknowledged forwards seen by the samples"
assert_eq 0 "$ITH_VIOLATIONS" "no input offset was committed past a request whose retry or dead letter was not acknowledged"
final=$(itf_committed_are_final)
assert_match '^checked=[0-9]+ unfinal=0$' "$final" "every committed input record is final ($final)"
# A marker whose requeue was in flight when its partition was lost is settled by its
# redelivery instead (its second try commits): not every one reaches the retry topic.
requeued=$(it_dump assets.create.retry | jq -r 'select(.headers["x-error-class"] == "unique_violation") | .headers["x-original-offset"]' | wc -l)
echo "# $requeued of $MARKERS markers went through the retry topic"
assert_ge 1 "$requeued" "the requeued markers made retry-topic traffic"
# Checked before the accounting, which stops at its first failure.
assert_eq 0 "$(it_dump assets.create.dlq | jq -r '.headers["x-error-class"]' | grep -cvE '^(malformed_message|foreign_key_violation|check_violation|not_null_violation)$' || true)" \
	"no dead letter of another class (retries_exhausted, transient, ...)"
assert_eq 0 "$(it_sql "SELECT count(*) FROM (SELECT 1 FROM assets GROUP BY tenant_id, content_sha256 HAVING count(*) > 1) x")" \
	"no (tenant_id, content_sha256) with two assets"
# Requests redelivered after a lost assignment whose forwards were acknowledged resolve as
# replayed from the topics: exactly one dead letter each (SPEC section 1).
echo "# transactions aborted: $(cat "$log1" "$log2" | grep -c transaction_aborted || true)"
itf_account "$manifest" "after broker faults"
it_done
