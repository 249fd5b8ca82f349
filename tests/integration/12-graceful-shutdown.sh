#!/usr/bin/env bash
# SIGTERM / SIGINT stop gracefully (SPEC section 5): stop fetching, finish or hand back what is
# in flight, commit offsets, leave the group, exit 0. Committed offsets never run ahead of what
# is final, and a restart finishes the stream with every request accounted for exactly once.
# A second signal cuts the stop short (fast exit), still without losing anything.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_faults.sh"
source "$(dirname "$0")/lib_hostile.sh"
it_setup
it_seed
ith_throttle_install 0

manifest="$IT_DIR/manifest.txt"
: >"$manifest"

# Produces a fresh mixed stream and adds it to the cumulative manifest.
add_stream() { # NAME SEED COUNT
	itf_gen_mixed "$IT_DIR/$1.jsonl" "$IT_DIR/$1.manifest" "$2" "$3"
	cat "$IT_DIR/$1.manifest" >>"$manifest"
	itf_produce_file "$IT_DIR/$1.jsonl"
}

# After a stop: offsets were committed, and only for records that are final.
check_committed() { # LABEL PROCESSED COMMITTED_BEFORE
	local label="$1" processed="$2" before="$3" committed res
	committed=$(itf_committed_sum assets.create)
	assert_ge $((before + 1)) "$committed" "$label: the stop committed offsets"
	assert_ge $((committed - before)) "$processed" \
		"$label: newly committed offsets ($((committed - before))) <= requests processed ($processed)"
	res=$(itf_committed_are_final)
	assert_eq "checked=$committed unfinal=0" "$res" "$label: every committed request is in PostgreSQL, the DLQ or the retry topic"
}

# Runs a worker on a stream, signals it after some hundreds of outcomes, checks the stop.
stop_mid_stream() { # NAME SIGNAL
	local name="$1" sig="$2" log="$IT_DIR/worker-$1.log"
	BEFORE=$(itf_committed_sum assets.create)
	it_start_worker "$name"
	local var="IT_PID_$name"
	itf_wait_log 60 "$log" 'outcome=' 300
	local t0=$EPOCHREALTIME
	kill -"$sig" "${!var}"
	IT_RC=0
	wait "${!var}" || IT_RC=$?
	STOP_SECS=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')
	echo "# $name: exit $IT_RC ${STOP_SECS}s after the signal"
	PROCESSED=$(itf_outcomes "$log")
	echo "# $name: $PROCESSED outcomes before the stop"
	assert_eq 0 "$IT_RC" "$name: exit code 0 after SIG$sig"
	assert_file_contains "$log" "partitions_revoked" "$name: partitions revoked (left the group)"
	assert_file_contains "$log" "worker_stopped exit_code=0" "$name: logged worker_stopped"
}

# ---- 1. SIGTERM mid-stream, then a restart with --drain ----
add_stream a 1201 5000
stop_mid_stream term TERM
assert_file_contains "$IT_DIR/worker-term.log" "worker_stopping stage=draining" "SIGTERM: stage=draining"
assert_file_lacks "$IT_DIR/worker-term.log" "stage=fast_exit" "SIGTERM: no fast exit"
assert_eq 1 $((PROCESSED < 5000)) "SIGTERM came mid-stream ($PROCESSED of 5000 processed)"
check_committed "SIGTERM" "$PROCESSED" "$BEFORE"
it_run_drain
itf_account "$manifest" "after SIGTERM + restart"

# ---- 2. a second signal cuts a slow graceful stop short (fast exit) ----
# The broker is frozen (SIGSTOP) mid-stream: the worker's Kafka transaction (dead letters
# and offsets) can neither commit nor abort. The first SIGTERM waits for it (graceful), the
# second one, right after, must end the wait at once. The transaction is left to the broker
# (aborted after transaction.timeout.ms); its requests keep their offsets uncommitted and
# come back after the restart.
add_stream b 1202 3000
BEFORE=$(itf_committed_sum assets.create)
ith_throttle 3 # ~3 ms per row: the stream outlasts the freeze, fetched but not yet processed
it_start_worker fast
itf_wait_log 60 "$IT_DIR/worker-fast.log" 'outcome=dead_lettered' 3
itf_wait_log 60 "$IT_DIR/worker-fast.log" 'outcome=' 300
committed_above() { (($(itf_committed_sum assets.create) > $1)); }
it_wait_for 30 "a first commit of the worker" committed_above "$BEFORE"
it_broker freeze
sleep 2
itf_alive "$IT_PID_fast" || fail "broker frozen: the worker died"
ok "broker frozen: the worker keeps running, its transaction waiting for the broker"
kill -TERM "$IT_PID_fast"
itf_wait_log 10 "$IT_DIR/worker-fast.log" 'worker_stopping stage=draining' 1
ok "first SIGTERM: graceful stop started (stage=draining)"
sleep 1 # the graceful stop waits up to 30 s for its last transaction
itf_alive "$IT_PID_fast" || fail "first SIGTERM: the worker did not wait for its transaction"
ok "first SIGTERM: still waiting for its transaction after 1 s"
t0=$EPOCHREALTIME
kill -TERM "$IT_PID_fast"
IT_RC=0
wait "$IT_PID_fast" || IT_RC=$?
secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')
PROCESSED=$(itf_outcomes "$IT_DIR/worker-fast.log")
echo "# fast: exit $IT_RC ${secs}s after the second signal; $PROCESSED outcomes"
assert_eq 0 "$IT_RC" "second SIGTERM: exit code 0"
assert_eq 1 "$(awk -v s="$secs" 'BEGIN {print (s < 3)}')" "second SIGTERM: exited promptly (${secs}s < 3s)"
assert_file_contains "$IT_DIR/worker-fast.log" "transaction_abandoned" "second SIGTERM: the Kafka transaction with unacknowledged dead letters abandoned (logged)"
assert_file_contains "$IT_DIR/worker-fast.log" "worker_stopped exit_code=0" "second SIGTERM: logged worker_stopped"
assert_eq 1 $((PROCESSED < 3000)) "two signals came mid-stream ($PROCESSED of 3000 processed)"
it_broker thaw
ith_throttle 0
check_committed "two signals" "$PROCESSED" "$BEFORE"
it_run_drain
itf_account "$manifest" "after fast exit + restart"

# ---- 3. SIGINT behaves like SIGTERM ----
add_stream c 1203 3000
stop_mid_stream int INT
assert_file_contains "$IT_DIR/worker-int.log" "worker_stopping stage=draining" "SIGINT: stage=draining"
assert_file_lacks "$IT_DIR/worker-int.log" "stage=fast_exit" "SIGINT: no fast exit"
assert_eq 1 $((PROCESSED < 3000)) "SIGINT came mid-stream ($PROCESSED of 3000 processed)"
check_committed "SIGINT" "$PROCESSED" "$BEFORE"
it_run_drain
itf_account "$manifest" "after SIGINT + restart"
itf_wait_caught_up 30
ok "every input and retry offset committed at the end"
it_done
