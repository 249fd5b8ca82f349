#!/usr/bin/env bash
# Forward failures told apart (SPEC 1, 4): the dead-letter topic's max.message.bytes (2000) is
# smaller than a malformed request (about 5 KB), so the broker refuses its dead letter for
# good (MSG_SIZE_TOO_LARGE). The Kafka transaction holding it aborts; the worker logs an error
# naming the topic, the input partition and offset and the reason, counts it in /metrics,
# fails /readyz, commits up to the request and never past it, and stops that partition at it:
# records produced to it afterwards wait in Kafka. Every retry.max_backoff_ms the partition
# resumes at the request, which is decided and forwarded again; once the operator raises the
# topic's limit, that is accepted and the worker carries on by itself.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_faults.sh"
it_setup --topic assets.create:1 --topic assets.create.retry:1 \
	--topic assets.create.dlq:1:max.message.bytes=2000
it_seed
printf 'metrics:\n  listen: "127.0.0.1:0"\n' >>"$IT_CONFIG"

BIG="not json: $(head -c 5000 /dev/zero | tr '\0' 'x')"
{
	for i in 1 2 3; do it_request "$(it_uuid)" "$i"; echo; done
	echo "$BIG"
	for i in 4 5 6; do it_request "$(it_uuid)" "$i"; echo; done
} | it_produce_values assets.create 0
it_start_worker w
log="$IT_DIR/worker-w.log"
it_wait_for 30 "metrics port in the log" grep -q 'metrics_listening' "$log"
port=$(grep -o 'port=[0-9]*' "$log" | head -n 1 | cut -d= -f2)

itf_wait_log 60 "$log" 'forward_refused' 2
line=$(grep 'forward_refused' "$log" | head -n 1)
assert_match 'error +forward_refused topic=assets.create.dlq' "$line" "an error event names the dead-letter topic"
assert_match 'input_topic=assets.create input_partition=0 input_offset=3' "$line" "... and the input record"
assert_match 'error="Broker: Message size too large"' "$line" "... and the reason"
itf_wait_log 30 "$log" 'transaction_aborted' 1
ok "the Kafka transaction holding the refused record is aborted"
itf_wait_log 60 "$log" 'outcome=created' 6
ok "the requests already fetched are processed"
itf_wait_log 30 "$log" 'partitions_paused_for_refused_forward count=1 partitions=assets.create\[0\]' 1
ok "the input partition is paused"
LATE=$(it_uuid)
it_request "$LATE" 7 | it_produce_values assets.create 0
sleep 3
assert_eq 0 "$(grep -c "request_id=$LATE" "$log" || true)" "a request produced to the paused partition waits in Kafka"
assert_eq 1 "$(metric "$port" asset_worker_forwards_refused)" "/metrics: asset_worker_forwards_refused 1"
assert_eq 503 "$(http_get "$port" /readyz | head -n 1)" "/readyz fails while a forward is refused"
sleep 2
assert_eq 3 "$(itf_committed_sum assets.create)" "never committed past the refused request (offset 3)"
assert_eq 0 "$(grep -c 'forward_retry' "$log" || true)" "not taken for a retriable error"

it_broker topic-config assets.create.dlq max.message.bytes=1048588 >/dev/null
itf_wait_log 60 "$log" 'forward_accepted topic=assets.create.dlq' 1
ok "after the topic's limit is raised, the resend is accepted"
assert_file_contains "$log" "partitions_resumed_to_resend" "the partition was resumed at the request to send it again"
itf_wait_log 30 "$log" "request_id=$LATE.*outcome=created" 1
ok "the partition resumes: the waiting request is created"
itf_wait_caught_up 30
ok "every input offset committed"
assert_eq 0 "$(metric "$port" asset_worker_forwards_refused)" "/metrics: asset_worker_forwards_refused 0"
it_wait_for 20 "/readyz 200 again" bash -c "[[ \$(exec 3<>/dev/tcp/127.0.0.1/$port; printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3; head -n 1 <&3 | awk '{print \$2}') == 200 ]]"
ok "/readyz is 200 again"
DLQ=$(it_dump_file assets.create.dlq)
assert_eq 1 "$(wc -l <"$DLQ")" "exactly one dead letter"
assert_eq malformed_message "$(it_hdr x-error-class <"$DLQ")" "the dead letter is the malformed request"
it_stop_worker w TERM
assert_eq 0 "$IT_RC" "SIGTERM exit 0"
it_done
