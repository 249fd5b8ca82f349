#!/usr/bin/env bash
# worker replay-dlq's filters (issue 5): --error-class, --sqlstate, --constraint and --since each
# select exactly the dead letters they name, alone and combined; every filter set keeps its own
# progress (a consumer group <group>.replay-dlq.<hash>, logged), so a second identical run sends
# nothing; --dry-run prints one JSON line per record it would send and neither sends nor
# commits anything.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_faults.sh"
it_setup
it_seed

MISSING=5a0e8f3c-9999-4a4a-8a8a-000000000009 # a tenant that does not exist: foreign key

# Runs replay-dlq: run_replay NAME [args]; exit code in RC, stdout in $IT_DIR/replay-NAME.out,
# log in $IT_DIR/replay-NAME.log; SENT: the request_ids it added to the input topic, sorted.
run_replay() {
	local name="$1" before="$IT_DIR/replayed-before-$1.txt" after="$IT_DIR/replayed-after-$1.txt"
	shift
	replayed_ids >"$before"
	RC=0
	timeout 120 "$WORKER" replay-dlq --config "$IT_CONFIG" "$@" \
		>"$IT_DIR/replay-$name.out" 2>"$IT_DIR/replay-$name.log" || RC=$?
	REPLAY_LOG="$IT_DIR/replay-$name.log"
	REPLAY_OUT="$IT_DIR/replay-$name.out"
	replayed_ids >"$after"
	SENT=$(comm -13 "$before" "$after" | tr '\n' ' ' | sed 's/ $//')
}
# request_ids of the replayed records on the input topic, sorted (repeats kept).
replayed_ids() {
	it_dump assets.create | jq -r 'select(.headers["x-replayed"] != null) | .value | fromjson | .request_id' | sort
}
# The request_ids of the given cases, sorted, space separated.
ids() {
	local c
	for c in "$@"; do echo "${ID[$c]}"; done | sort | tr '\n' ' ' | sed 's/ $//'
}

declare -A ID
new_id() { ID[$1]=$(it_uuid); }

# Batch 1: two foreign-key violations, two CHECK violations on different constraints, a NOT NULL
# violation (no constraint name) and a malformed message (no SQLSTATE).
for c in fk1 fk2 ck_size ck_name nn mal fk3 ck_size2; do new_id "$c"; done
{
	it_envelope "$(it_request_jq "${ID[fk1]}" 1 ".tenant_id = \"$MISSING\"")" 0 fk1
	it_envelope "$(it_request_jq "${ID[fk2]}" 2 ".tenant_id = \"$MISSING\"")" 1 fk2
	it_envelope "$(it_request_jq "${ID[ck_size]}" 3 '.size_bytes = -1')" 0 ck_size
	it_envelope "$(it_request_jq "${ID[ck_name]}" 4 '.name = ""')" 1 ck_name
	it_envelope "$(it_request_jq "${ID[nn]}" 5 'del(.name)')" 0 nn
	it_envelope "$(it_request_jq "${ID[mal]}" 6 '.name = 12345')" 1 mal
} | it_produce_envelopes
it_run_drain
# --since: every dead letter so far is older than SINCE_S; the next batch is younger.
SINCE_S=$(($(date +%s) + 1))
while (($(date +%s) <= SINCE_S)); do sleep 0.1; done
SINCE_ISO=$(date -u -d "@$SINCE_S" +%Y-%m-%dT%H:%M:%SZ)
# Batch 2: one more of each of two classes.
{
	it_envelope "$(it_request_jq "${ID[fk3]}" 7 ".tenant_id = \"$MISSING\"")" 0 fk3
	it_envelope "$(it_request_jq "${ID[ck_size2]}" 8 '.size_bytes = -5')" 1 ck_size2
} | it_produce_envelopes
it_run_drain

dlq="$IT_DIR/dlq.jsonl"
it_dump assets.create.dlq >"$dlq"
assert_eq 8 "$(wc -l <"$dlq")" "eight dead letters"
assert_eq "check_violation|23514|assets_size_bytes_nonnegative" \
	"$(it_by_case "$dlq" ck_size | jq -r '[.headers["x-error-class"], .headers["x-error-sqlstate"], .headers["x-error-constraint"]] | join("|")')" \
	"the negative size is a check_violation on assets_size_bytes_nonnegative"
assert_eq "check_violation|23514|assets_name_length" \
	"$(it_by_case "$dlq" ck_name | jq -r '[.headers["x-error-class"], .headers["x-error-sqlstate"], .headers["x-error-constraint"]] | join("|")')" \
	"the empty name is a check_violation on assets_name_length"
assert_eq "foreign_key_violation|23503|assets_tenant_fkey" \
	"$(it_by_case "$dlq" fk3 | jq -r '[.headers["x-error-class"], .headers["x-error-sqlstate"], .headers["x-error-constraint"]] | join("|")')" \
	"the unknown tenant is a foreign_key_violation on assets_tenant_fkey"
assert_eq 1 "$(jq -r --argjson s "$((SINCE_S * 1000))" 'select(.timestamp < $s) | .headers["it-case"]' "$dlq" | grep -c '^mal$')" \
	"batch 1 was dead-lettered before --since"
assert_eq "ck_size2 fk3" "$(jq -r --argjson s "$((SINCE_S * 1000))" 'select(.timestamp >= $s) | .headers["it-case"]' "$dlq" | sort | tr '\n' ' ' | sed 's/ $//')" \
	"batch 2 was dead-lettered at or after --since"

# ---- --dry-run: prints, sends nothing, commits nothing ----
run_replay dry --error-class foreign_key_violation --dry-run
assert_eq 0 "$RC" "--dry-run: exit 0"
assert_eq "" "$SENT" "--dry-run: nothing sent to the input topic"
assert_eq 3 "$(wc -l <"$REPLAY_OUT")" "--dry-run: one line per record it would send"
assert_eq "$(ids fk1 fk2 fk3)" "$(jq -r '.value | fromjson | .request_id' "$REPLAY_OUT" | sort | tr '\n' ' ' | sed 's/ $//')" \
	"--dry-run: the lines are the three foreign-key dead letters"
assert_eq "assets.create|foreign_key_violation|23503|assets_tenant_fkey|1|" \
	"$(jq -r 'select(.value | fromjson | .request_id == "'"${ID[fk1]}"'")
		| [.topic, .error.class, .error.sqlstate, .error.constraint, .headers["x-replayed"],
		   ([.headers | keys[] | select(startswith("x-error-"))] | join(","))] | join("|")' "$REPLAY_OUT")" \
	"--dry-run: a line names the target topic, why it was dead-lettered, and the headers it would carry"
assert_eq "$(it_by_case "$dlq" fk1 | jq -c '[.key, .value, .headers["it-trace"]]')" \
	"$(jq -c 'select(.headers["it-case"] == "fk1") | [.key, .value, .headers["it-trace"]]' "$REPLAY_OUT")" \
	"--dry-run: key, value and producer headers as they would be sent"
assert_eq 3 "$(itf_log_field "$REPLAY_LOG" replay_dlq_dry_run_done would_replay)" "--dry-run: would_replay=3 logged"
FK_GROUP=$(itf_log_field "$REPLAY_LOG" replay_dlq_start group)
assert_match "^$IT_GROUP\\.replay-dlq\\.[0-9a-f]{12}\$" "$FK_GROUP" "the progress group is logged: <group>.replay-dlq.<hash>"
assert_eq 0 "$(itf_committed_sum assets.create.dlq "$FK_GROUP")" "--dry-run: no progress committed"

# ---- each filter selects exactly its dead letters ----
run_replay fk --error-class foreign_key_violation
assert_eq 0 "$RC" "--error-class foreign_key_violation: exit 0"
assert_eq "$(ids fk1 fk2 fk3)" "$SENT" "--error-class foreign_key_violation: the three foreign-key dead letters (the dry run committed nothing)"
assert_eq "$FK_GROUP" "$(itf_log_field "$REPLAY_LOG" replay_dlq_start group)" "--dry-run and the real run share the filter set's group"
# "The end": past the last dead letter (the worker writes the topic in transactions, so a
# commit marker may follow it; the progress offset may stop before or after that marker).
DLQ_LAST=$(jq -s 'map(.offset) | max' "$(it_dump_file assets.create.dlq)")
FK_DONE=$(itf_committed_sum assets.create.dlq "$FK_GROUP")
assert_ge $((DLQ_LAST + 1)) "$FK_DONE" "--error-class foreign_key_violation: progress committed past the last dead letter"

run_replay ck --error-class check_violation
assert_eq "$(ids ck_size ck_name ck_size2)" "$SENT" "--error-class check_violation: the three CHECK dead letters"
assert_eq 5 "$(itf_log_field "$REPLAY_LOG" replay_dlq_done skipped)" "--error-class check_violation: skipped=5 logged"

run_replay sqlstate --sqlstate 23503
assert_eq "$(ids fk1 fk2 fk3)" "$SENT" "--sqlstate 23503: the foreign-key dead letters"

run_replay sqlstate_nn --sqlstate 23502
assert_eq "$(ids nn)" "$SENT" "--sqlstate 23502: the NOT NULL dead letter"

run_replay constraint --constraint assets_size_bytes_nonnegative
assert_eq "$(ids ck_size ck_size2)" "$SENT" "--constraint assets_size_bytes_nonnegative: the two negative sizes, not the empty name"

run_replay combined --error-class check_violation --constraint assets_name_length
assert_eq "$(ids ck_name)" "$SENT" "--error-class check_violation --constraint assets_name_length: the empty name only"

run_replay since --since "$SINCE_ISO"
assert_eq 0 "$RC" "--since $SINCE_ISO: exit 0"
assert_eq "$(ids fk3 ck_size2)" "$SENT" "--since (ISO-8601): the two dead letters of batch 2"

run_replay since_ms --since "$((SINCE_S * 1000))" --sqlstate 23514
assert_eq "$(ids ck_size2)" "$SENT" "--since (epoch ms) --sqlstate 23514: the one CHECK dead letter of batch 2"

run_replay malformed --error-class malformed_message
assert_eq "$(ids mal)" "$SENT" "--error-class malformed_message: the malformed message"

run_replay nothing --sqlstate 23503 --constraint assets_folder_fkey
assert_eq 0 "$RC" "a filter set that matches nothing: exit 0"
assert_eq "" "$SENT" "a filter set that matches nothing: nothing sent"

# ---- a second identical run sends nothing ----
run_replay ck_again --error-class check_violation
assert_eq 0 "$RC" "second --error-class check_violation: exit 0"
assert_eq "" "$SENT" "second --error-class check_violation: nothing sent"
assert_eq 0 "$(itf_log_field "$REPLAY_LOG" replay_dlq_done replayed)" "second --error-class check_violation: replayed=0 logged"
run_replay since_again --since "$SINCE_ISO"
assert_eq "" "$SENT" "second --since: nothing sent"
run_replay dry_again --error-class foreign_key_violation --dry-run
assert_eq 0 "$(wc -l <"$REPLAY_OUT")" "--dry-run after the real run: nothing it would send"

# ---- usage errors ----
run_replay bad_class --error-class foreign_key
assert_eq 2 "$RC" "an unknown --error-class is a usage error (exit 2)"
run_replay bad_since --since 2026-11-26T10:00:00
assert_eq 2 "$RC" "--since without a zone is a usage error (exit 2)"
run_replay bad_sqlstate --sqlstate 235
assert_eq 2 "$RC" "--sqlstate of three characters is a usage error (exit 2)"
it_done
