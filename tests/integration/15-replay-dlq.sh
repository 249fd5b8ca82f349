#!/usr/bin/env bash
# worker replay-dlq (SPEC section 5): dead letters go back to the input topic once their cause
# is fixed (here: the missing tenant is created), without the x-error-* headers and with
# x-replayed; progress is committed so a second run sends nothing; --error-class filters and
# --limit caps what is sent.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_faults.sh"
it_setup
it_seed

TENANT2=5a0e8f3c-3333-4a4a-8a8a-000000000003
TENANT3=5a0e8f3c-4444-4a4a-8a8a-000000000004

# Runs replay-dlq: run_replay NAME [args]; exit code in RC, log in $IT_DIR/replay-NAME.log.
run_replay() {
	local name="$1"
	shift
	RC=0
	timeout 120 "$WORKER" replay-dlq --config "$IT_CONFIG" "$@" 2>"$IT_DIR/replay-$name.log" || RC=$?
	REPLAY_LOG="$IT_DIR/replay-$name.log"
}
input_count() { it_dump assets.create | wc -l; }

# A request for a tenant that does not exist yet (foreign key), and a malformed one (another
# class, which a foreign_key_violation filter must leave alone).
r1=$(it_uuid) bad=$(it_uuid)
{
	printf '{"key":"k-r1","value":%s}\n' "$(jq -cn --arg v "$(it_request "$r1" 1)" --arg t "$TENANT2" '$v | fromjson | .tenant_id = $t')"
	printf '{"key":"k-bad","value":{"type":"asset.create","version":1,"request_id":"%s","tenant_id":"%s","name":12345}}\n' \
		"$bad" "$IT_TENANT"
} | it_produce_envelopes
it_run_drain
dlq="$IT_DIR/dlq.jsonl"
it_dump assets.create.dlq >"$dlq"
assert_eq 2 "$(wc -l <"$dlq")" "two dead letters"
assert_eq "foreign_key_violation" "$(jq -r --arg r "$r1" 'select(.value | fromjson | .request_id == $r) | .headers["x-error-class"]' "$dlq")" \
	"the unknown tenant's request is dead-lettered as foreign_key_violation"

# The cause is fixed; the dead letter goes back.
it_sql "INSERT INTO tenants VALUES ('$TENANT2', 'late tenant')" >/dev/null
before=$(input_count)
run_replay first --error-class foreign_key_violation
assert_eq 0 "$RC" "replay-dlq --error-class foreign_key_violation: exit 0"
assert_eq 1 "$(itf_log_field "$REPLAY_LOG" replay_dlq_done replayed)" "replay-dlq: replayed=1 logged"
input="$IT_DIR/input-1.jsonl"
it_dump assets.create >"$input"
assert_eq $((before + 1)) "$(wc -l <"$input")" "one record republished to the input topic"
replayed=$(jq -c 'select(.headers["x-replayed"] != null)' "$input")
assert_eq 1 "$(grep -c . <<<"$replayed")" "one record on the input topic carries x-replayed"
assert_eq "$r1" "$(jq -r '.value | fromjson | .request_id' <<<"$replayed")" "the republished record is the foreign-key dead letter"
assert_eq "$(jq -c --arg r "$r1" 'select(.value | fromjson | .request_id == $r) | [.key, .value]' "$dlq")" \
	"$(jq -c '[.key, .value]' <<<"$replayed")" "key and value unchanged"
assert_eq "" "$(jq -r '.headers | keys[] | select(startswith("x-error-"))' <<<"$replayed")" "x-error-* headers removed"
assert_eq "1" "$(jq -r '.headers["x-replayed"]' <<<"$replayed")" "x-replayed is \"1\""
assert_eq 1 "$(jq -r '.value | fromjson | .request_id' "$input" | grep -c "$bad")" \
	"the malformed dead letter (another class) was not replayed (only its original is there)"
assert_eq 1 "$(itf_log_field "$REPLAY_LOG" replay_dlq_done skipped)" "replay-dlq: skipped=1 logged (the malformed one)"

# The worker now creates the asset.
it_run_drain
assert_eq created "$(it_sql "SELECT outcome FROM asset_requests WHERE request_id = '$r1'")" "after the replay the asset is created"
assert_eq "$TENANT2" "$(it_sql "SELECT a.tenant_id FROM assets a JOIN asset_requests r ON r.asset_id = a.id WHERE r.request_id = '$r1'")" \
	"the asset belongs to the new tenant"
assert_eq 2 "$(it_dump assets.create.dlq | wc -l)" "not dead-lettered again"

# A second run sends nothing: its progress was committed.
before=$(input_count)
run_replay second --error-class foreign_key_violation
assert_eq 0 "$RC" "second replay-dlq: exit 0"
assert_eq 0 "$(itf_log_field "$REPLAY_LOG" replay_dlq_done replayed)" "second replay-dlq: replayed=0 logged"
assert_eq "$before" "$(input_count)" "second replay-dlq: nothing sent"

# --limit 1 with three new dead letters sends exactly one, the oldest; the next run the next.
new=()
for i in 1 2 3; do
	rid=$(it_uuid)
	new+=("$rid")
	printf '{"key":"k-%s","value":%s}\n' "$i" "$(jq -cn --arg v "$(it_request "$rid" $((10 + i)))" --arg t "$TENANT3" '$v | fromjson | .tenant_id = $t')"
done | it_produce_envelopes assets.create
it_run_drain
assert_eq 5 "$(it_dump assets.create.dlq | wc -l)" "three more dead letters"
before=$(input_count)
run_replay limit --error-class foreign_key_violation --limit 1
assert_eq 0 "$RC" "replay-dlq --limit 1: exit 0"
it_dump assets.create >"$input"
assert_eq $((before + 1)) "$(wc -l <"$input")" "replay-dlq --limit 1: exactly one record sent"
assert_eq 1 "$(itf_log_field "$REPLAY_LOG" replay_dlq_done replayed)" "replay-dlq --limit 1: replayed=1 logged"
# The three were produced without a partition, so their order on the one DLQ partition is the
# order the worker dead-lettered them: the first of them there is the one to go.
oldest=$(it_dump assets.create.dlq | tail -n 3 | head -n 1 | jq -r '.value | fromjson | .request_id')
assert_eq "$oldest" "$(jq -r --arg t "$TENANT3" 'select(.headers["x-replayed"] != null) | .value | fromjson
	| select(.tenant_id == $t) | .request_id' "$input")" "replay-dlq --limit 1: the oldest of the three"
run_replay limit2 --error-class foreign_key_violation --limit 1
assert_eq 0 "$RC" "second replay-dlq --limit 1: exit 0"
assert_eq $((before + 2)) "$(input_count)" "second replay-dlq --limit 1: one more sent"
second=$(it_dump assets.create.dlq | tail -n 2 | head -n 1 | jq -r '.value | fromjson | .request_id')
assert_eq 1 "$(it_dump assets.create | jq -r 'select(.headers["x-replayed"] != null) | .value | fromjson | .request_id' | grep -c "$second")" \
	"second replay-dlq --limit 1: the next dead letter, not the first again"

# A filter that matches nothing sends nothing.
before=$(input_count)
run_replay none --error-class exclusion_violation
assert_eq 0 "$RC" "replay-dlq --error-class exclusion_violation: exit 0"
assert_eq 0 "$(itf_log_field "$REPLAY_LOG" replay_dlq_done replayed)" "no match: replayed=0 logged"
assert_eq "$before" "$(input_count)" "no match: nothing sent"
it_done
