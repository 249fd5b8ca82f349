#!/usr/bin/env bash
# SIGHUP reloads worker.yaml (issue 5): log level and format and the retry policy take effect
# in the running worker; keys that cannot change live are reported and kept; a bad file is
# logged with file:line:col and the running configuration stays.
source "$(dirname "$0")/lib.sh"
it_setup
it_seed
it_install_raise_trigger
it_raise_rule "always-23505" 23505 # unique violation on every try

it_start_worker r
log="$IT_DIR/worker-r.log"
it_wait_for 30 "assignment" grep -q partitions_assigned "$log"
pid=$IT_PID_r

reload() { # wait until the worker logged the N-th reload request
	local before
	before=$(grep -c config_reload_requested "$log" || true)
	kill -HUP "$pid"
	it_wait_for 20 "reload $((before + 1))" \
		bash -c "[[ \$(grep -c config_reload_requested '$log') -gt $before ]]"
	sleep 0.3
}

# 1. log format text -> json, retry.max_attempts 5 -> 1
sed -i -e 's/format: text/format: json/' -e 's/max_attempts: 5/max_attempts: 1/' "$IT_CONFIG"
reload
assert_file_contains "$log" "key=log.format" "log.format reported as reloaded"
assert_file_contains "$log" "key=retry.max_attempts" "retry.max_attempts reported as reloaded"
assert_match '"event":"config_reload_applied",[^}]*"retry_max_attempts":1' "$(cat "$log")" \
	"the new policy is applied, and logged as JSON already"
rid=$(it_uuid)
it_request "$rid" 77 | jq -c '.name = "always-23505"' | it_produce_values assets.create 0
it_wait_for 60 "the request settled" grep -q "\"request_id\":\"$rid\".*\"outcome\":\"dead_lettered\"" "$log"
ok "lines after the reload are JSON"
it_wait_for 30 "the dead letter on the topic" \
	bash -c "\"$AWK\" dump --topic assets.create.dlq 2>/dev/null | grep -q '$rid'"
dl=$(it_dump assets.create.dlq | jq -c --arg r "$rid" 'select((.value | fromjson).request_id == $r)')
assert_eq "retries_exhausted|1" "$(jq -r '.headers["x-error-class"] + "|" + .headers["x-attempt"]' <<<"$dl")" \
	"max_attempts 1 takes effect: dead-lettered on the first unique violation"
assert_eq 0 "$(it_dump assets.create.retry | wc -l)" "nothing requeued under max_attempts 1"

# 2. a key that needs a restart is reported and kept
sed -i -e "s/group_id: $IT_GROUP/group_id: another-group/" "$IT_CONFIG"
reload
assert_match '"event":"config_needs_restart"[^}]*"key":"kafka.group_id"' "$(cat "$log")" \
	"kafka.group_id change reported as needing a restart"

# 3. a bad file: rejected with file:line:col, the running configuration stays
cp "$IT_CONFIG" "$IT_DIR/good.yaml"
printf 'retry:\n  max_attempts: lots\n' >>"$IT_CONFIG"
reload
rejected=$(grep '"event":"config_reload_rejected"' "$log" | tail -n 1)
assert_match "$(basename "$IT_CONFIG"):[0-9]+:[0-9]+: " "$rejected" "rejection names file:line:col"
rid2=$(it_uuid)
it_request "$rid2" 78 | it_produce_values assets.create 0
it_wait_for 60 "still working" grep -q "\"request_id\":\"$rid2\".*\"outcome\":\"created\"" "$log"
ok "the worker carries on with the running configuration (still JSON, still processing)"

it_stop_worker r
assert_eq 0 "$IT_RC" "worker stopped cleanly"
it_done
