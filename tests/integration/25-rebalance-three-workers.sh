#!/usr/bin/env bash
# Rebalances under a steady stream of mixed requests (with cross-partition races, so workers
# meet on the same content): two workers in one group, a third joins mid-stream, then one is
# killed with SIGKILL mid-stream (no revoke, no commit: the group finds out after
# session.timeout.ms and hands its partitions to the others). The stream keeps going through
# all of it. Every worker takes part; at the end the two survivors own all partitions between
# them, every request is accounted for exactly once, and no request was created twice.
# (The loopback broker's rebalances take session.timeout.ms - 1 s, about 5 s each.)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_faults.sh"
source "$(dirname "$0")/lib_hostile.sh"
it_setup
it_seed

manifest="$IT_DIR/manifest.txt"
itf_gen_mixed "$IT_DIR/stream.jsonl" "$manifest" 2501 4500
total=$(wc -l <"$manifest")

# The partitions a worker owns now, from its log: assigned adds, revoked removes (one
# "topic[partition]" per line, sorted).
owned() { # NAME
	awk '/ partitions_(assigned|revoked) / {
		add = index($0, " partitions_assigned ") > 0
		match($0, /partitions=[^ ]*/); n = split(substr($0, RSTART + 11, RLENGTH - 11), ps, ",")
		for (i = 1; i <= n; i++) if (ps[i] ~ /\[[0-9]+\]$/) { if (add) own[ps[i]] = 1; else delete own[ps[i]] }
	} END { for (p in own) print p }' "$IT_DIR/worker-$1.log" | sort
}
# Whether the named workers own the 8 partitions between them.
own_all() { [[ "$(for w in "$@"; do owned "$w"; done | sort -u | wc -l)" == 8 ]]; }
# Outcomes logged by the named workers.
outcomes_of() { for w in "$@"; do cat "$IT_DIR/worker-$w.log"; done | grep -c 'outcome=' || true; }
at_least_outcomes() { # N WORKER...
	local n="$1"
	shift
	(($(outcomes_of "$@") >= n))
}
owns_some() { grep -qE 'partitions_assigned count=[1-9]' "$IT_DIR/worker-$1.log"; }
mid_stream() { # WHAT
	local fed
	fed=$(ith_feed_progress s)
	((fed < total - 600)) || fail "the stream was nearly over before $1 ($fed of $total fed)"
	echo "# $1 after $fed of $total records fed"
}

# ---- two workers ----
it_start_worker a
it_start_worker b
for w in a b; do it_wait_for 60 "worker $w owns partitions" owns_some "$w"; done
it_wait_for 30 "a and b own the 8 partitions between them" own_all a b
ith_feed_start s "$IT_DIR/stream.jsonl" 10 0.1
# Kafka's cooperative-sticky assignor may leave one worker only retry partitions (8 partitions,
# 4 each): it settles requests only once retries come. So the two are counted together.
it_wait_for 60 "a and b settle the stream" at_least_outcomes 200 a b
ok "two workers share the stream"

# ---- a third joins ----
mid_stream "the third worker joins"
it_start_worker c
it_wait_for 60 "worker c owns partitions" owns_some c
it_wait_for 60 "the three carry on" at_least_outcomes $(($(outcomes_of a b c) + 200)) a b c
ok "the third worker took partitions and the group carries on"
for w in a b; do
	assert_file_contains "$IT_DIR/worker-$w.log" "partitions_revoked" "worker $w handed partitions over when c joined"
done

# ---- one is killed ----
mid_stream "worker b is killed"
b_before=$(itf_outcomes "$IT_DIR/worker-b.log")
it_stop_worker b KILL
assert_eq 137 "$IT_RC" "worker b killed by SIGKILL (after $b_before outcomes)"
assert_file_lacks "$IT_DIR/worker-b.log" "worker_stopping" "worker b ran no cleanup"
it_wait_for 60 "a and c own all 8 partitions after b's death" own_all a c
ok "after b's death its partitions went to a and c"
it_wait_for 60 "a and c carry on" at_least_outcomes $(($(outcomes_of a c) + 200)) a c
ok "a and c carry on after the rebalance"

# ---- the end ----
ith_feed_wait s 90
itf_wait_caught_up 90
ok "every input and retry offset committed"
assert_eq "" "$(comm -12 <(owned a) <(owned c))" "a and c own disjoint partitions"
assert_eq 8 "$( (owned a; owned c) | sort -u | wc -l)" "a and c own all 8 partitions"
for w in a c; do
	it_stop_worker "$w" TERM
	assert_eq 0 "$IT_RC" "worker $w: SIGTERM exit 0"
done
for w in a b c; do
	echo "# outcomes $w: $(grep -o 'outcome=[a-z_]*' "$IT_DIR/worker-$w.log" | sort | uniq -c | tr '\n' ' ')"
	assert_ge 100 "$(itf_outcomes "$IT_DIR/worker-$w.log")" "worker $w took part"
done
# Whatever b had done but not committed was done again by a or c: as replays, never twice.
assert_eq 0 "$(cat "$IT_DIR"/worker-*.log | grep -E 'outcome=(created|duplicate)' | grep -o 'request_id=[^ ]*' | sort | uniq -d | wc -l)" \
	"no request created (or linked as duplicate) twice across the workers"
assert_eq 0 "$(it_sql "SELECT count(*) FROM asset_requests WHERE outcome NOT IN ('created', 'duplicate')")" \
	"stored outcomes are created or duplicate only"
# Checked before the accounting, which stops at its first failure.
final=$(itf_committed_are_final)
assert_match '^checked=[0-9]+ unfinal=0$' "$final" "every committed input record is final ($final)"
assert_eq 0 "$(it_dump assets.create.dlq | jq -r '.headers["x-error-class"]' | grep -cvE '^(malformed_message|foreign_key_violation|check_violation|not_null_violation)$' || true)" \
	"no dead letter of another class (retries_exhausted, transient, ...)"
assert_eq 0 "$(it_sql "SELECT count(*) FROM (SELECT 1 FROM assets GROUP BY tenant_id, content_sha256 HAVING count(*) > 1) x")" \
	"no (tenant_id, content_sha256) with two assets"
# Requests redelivered after their dead letter was acknowledged but before their offset was
# committed (the killed worker's, and partitions lost in a rebalance) resolve as replayed
# from the dead-letter topic: exactly one dead letter each (SPEC section 1).
echo "# transactions aborted: $(cat "$IT_DIR"/*.log | grep -c transaction_aborted || true)"
itf_account "$manifest" "after a join and a SIGKILL"
it_done
