#!/usr/bin/env bash
# x-retry-not-before (SPEC section 4: "epoch milliseconds before which it must not run"): a
# retry-topic record does not run before its time, waiting for it does not block the input
# topic, and --drain does not exit while it waits.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_faults.sh"
# retry.max_backoff_ms as shipped (30 s): the worker itself writes delays up to that.
IT_MAX_BACKOFF_MS=30000 it_setup
it_seed

# One scenario: a retry record whose time lies DELAY_MS ahead of its production (beyond the
# group join, about 3 s, so the input records that come after it are fetched while it still
# waits), then 50 input records, then `worker run --drain`.
scenario() { # LABEL RETRY_PARTITION CONTENT_BASE DELAY_MS
	local label="$1" partition="$2" base="$3" delay="$4"
	local retry_rid now_ms not_before value log i
	retry_rid=$(it_uuid)
	now_ms=$(date +%s%3N)
	not_before=$((now_ms + delay))
	value=$(it_request "$retry_rid" "$base")
	# As a worker would have written it: first arrival at assets.create[0] offset 7, tried once.
	jq -cn --arg v "$value" --arg nb "$not_before" --argjson p "$partition" '{key: "retry-key",
		partition: $p, value: $v, headers: {"x-error-class": "unique_violation",
		"x-error-sqlstate": "23505", "x-error-constraint": "assets_tenant_content_key",
		"x-original-topic": "assets.create", "x-original-partition": "0",
		"x-original-offset": "7", "x-attempt": "1", "x-retry-not-before": $nb,
		"x-worker-id": "it-worker"}}' | it_produce_envelopes assets.create.retry
	for ((i = 1; i <= 50; i++)); do
		it_request "$(it_uuid)" $((base + i))
		echo
	done | it_produce_values assets.create

	local t0_ms t1_ms
	t0_ms=$(date +%s%3N)
	it_run_drain
	t1_ms=$(date +%s%3N)
	log="$IT_LAST_LOG"
	echo "# $label: --drain ran $((t1_ms - t0_ms)) ms; not-before was $((not_before - t0_ms)) ms after its start"

	# The input records did not wait for the retry: all of them committed before it, while it
	# waited.
	assert_eq 50 "$(grep -v "request_id=$retry_rid" "$log" | grep -c 'outcome=created')" \
		"$label: the 50 input records were processed"
	local last_input_at first_retry_line last_input_line
	last_input_at=$(it_sql "SELECT floor(extract(epoch FROM max(processed_at)) * 1000)::bigint
		FROM asset_requests WHERE request_id <> '$retry_rid'")
	assert_eq 1 "$(awk -v a="$last_input_at" -v b="$not_before" 'BEGIN {print (a < b)}')" \
		"$label: the input records were processed while the retry record waited"
	first_retry_line=$(grep -n "request_id=$retry_rid" "$log" | grep 'outcome=' | head -n 1 | cut -d: -f1)
	assert_match '^[0-9]+$' "$first_retry_line" "$label: the retry record was processed"
	last_input_line=$(grep -n 'outcome=' "$log" | grep -v "request_id=$retry_rid" | tail -n 1 | cut -d: -f1)
	assert_ge $((last_input_line + 1)) "$first_retry_line" "$label: log order: the 50 input outcomes before the retry outcome"
	assert_eq 1 "$(grep "request_id=$retry_rid" "$log" | grep -c 'outcome=')" "$label: the retry record was processed once"
	assert_match 'attempt=2 outcome=created' "$(grep "request_id=$retry_rid" "$log" | grep 'outcome=')" \
		"$label: the retry record ran as attempt 2 and created its asset"

	# --drain waited for it: it exited after the retry record was committed.
	local drained_line
	drained_line=$(grep -n ' drained ' "$log" | cut -d: -f1)
	assert_match '^[0-9]+$' "$drained_line" "$label: --drain logged drained"
	assert_ge $((first_retry_line + 1)) "$drained_line" "$label: --drain exited only after the retry record"
	assert_eq "0 0" "$(itf_caught_up && echo 0 0 || echo not caught up)" \
		"$label: every input and retry offset (the retry record's included) committed"
	assert_eq 0 "$(it_dump assets.create.dlq | wc -l)" "$label: nothing dead-lettered"

	# Not before its time.
	local retry_at
	retry_at=$(it_sql "SELECT floor(extract(epoch FROM processed_at) * 1000)::bigint FROM asset_requests WHERE request_id = '$retry_rid'")
	assert_match '^[0-9]+$' "$retry_at" "$label: the retry record has its asset_requests row"
	assert_ge "$not_before" "$t1_ms" "$label: --drain did not exit before the retry's not-before"
	assert_ge "$not_before" "$retry_at" \
		"$label: processed_at ($retry_at) >= x-retry-not-before ($not_before), i.e. $((retry_at - not_before)) ms after it"
}

scenario "max_backoff 30 s" 0 1000 6000

# The same with retry.max_backoff_ms: 400. The record's time is further ahead than this
# worker would ever delay (another worker's config, a hand-made record): the SPEC still says
# it must not run before it.
IT_MAX_BACKOFF_MS=400 it_write_config
scenario "max_backoff 400 ms" 1 2000 8000
it_done
