#!/usr/bin/env bash
# PostgreSQL goes away under a running worker, twice: a fast shutdown (sessions terminated,
# 57P01) and an immediate one (a crash: no goodbye, recovery at the next start), each for about
# 5 s, in the middle of the stream. The worker waits it out by itself (transient: retry in
# place, pause consumption, reconnect), then carries on; nothing is dead-lettered for it,
# nothing is lost, and SIGTERM at the end exits 0.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_faults.sh"
it_setup
it_seed

OUTAGE_SECS=5
log="$IT_DIR/worker-w.log"
manifest="$IT_DIR/manifest.txt"
itf_gen_mixed "$IT_DIR/stream.jsonl" "$manifest" 1101 3000
# Each outage also produces the next part while PostgreSQL is down: an idle worker only
# notices at its next request, and a fast one may have settled everything before the stop.
head -n 1500 "$IT_DIR/stream.jsonl" >"$IT_DIR/part1.jsonl"
sed -n 1501,2250p "$IT_DIR/stream.jsonl" >"$IT_DIR/part2.jsonl"
tail -n +2251 "$IT_DIR/stream.jsonl" >"$IT_DIR/part3.jsonl"

itf_produce_file "$IT_DIR/part1.jsonl"
it_start_worker w

# One outage: waits for MIN outcomes, stops PostgreSQL with MODE, keeps it down OUTAGE_SECS
# (running CMD meanwhile), starts it again, and waits for the worker to reconnect.
outage() { # LABEL MODE MIN_OUTCOMES [CMD...]
	local label="$1" mode="$2" min="$3"
	shift 3
	itf_wait_log 60 "$log" 'outcome=' "$min"
	local connected_before failed_before down_at
	connected_before=$(grep -c 'database_connected' "$log" || true)
	failed_before=$(grep -cE 'database_unavailable|database_connect_failed' "$log" || true)
	it_pg "$mode" >/dev/null
	down_at=$SECONDS
	local at_stop
	at_stop=$(itf_outcomes "$log")
	echo "# $label: PostgreSQL stopped ($mode) after $at_stop outcomes"
	(($# == 0)) || "$@"
	# The worker notices (now, or at its next request) and waits.
	itf_wait_log 30 "$log" 'database_unavailable|database_connect_failed' $((failed_before + 1))
	ok "$label: the worker noticed (database_unavailable / database_connect_failed)"
	while ((SECONDS - down_at < OUTAGE_SECS)); do
		itf_alive "$IT_PID_w" || fail "$label: the worker exited while PostgreSQL was down"
		sleep 0.2
	done
	local during
	during=$(itf_outcomes "$log")
	ok "$label: the worker is still running after ${OUTAGE_SECS}s without PostgreSQL"
	it_pg start >/dev/null
	itf_wait_log 30 "$log" 'database_connected' $((connected_before + 1))
	ok "$label: the worker reconnected by itself (database_connected)"
	echo "# $label: $((during - at_stop)) outcomes while PostgreSQL was down"
}

outage "fast shutdown" stop 300 itf_produce_file "$IT_DIR/part2.jsonl"
assert_file_contains "$log" "consumption_paused" "fast shutdown: consumption paused while the database is unavailable"
assert_file_contains "$log" "consumption_resumed" "fast shutdown: consumption resumed after reconnecting"
n=$(itf_outcomes "$log")
outage "immediate shutdown" stop-immediate $((n + 300)) itf_produce_file "$IT_DIR/part3.jsonl"

itf_wait_caught_up 60
ok "the worker caught up: every input and retry offset committed"
it_stop_worker w TERM
assert_eq 0 "$IT_RC" "SIGTERM at the end: exit code 0"

assert_ge 2 "$(grep -cE 'database_unavailable|database_connect_failed' "$log")" "database_unavailable / database_connect_failed logged"
assert_ge 2 "$(grep -c 'database_connected' "$log")" "database_connected logged after each outage"
retries=$(itf_log_field "$log" summary_final db_retries)
echo "# summary_final: $(grep summary_final "$log" | sed 's/.*summary_final //')"
assert_match '^[0-9]+$' "$retries" "summary_final reports db_retries"
assert_ge 1 "$retries" "db_retries > 0 in the final summary"

itf_account "$manifest" "after two PostgreSQL outages"
transient=$(jq -r '.headers["x-error-class"]' "$ITF_DLQ_FILE" |
	grep -cvE '^(malformed_message|foreign_key_violation|check_violation|not_null_violation)$' || true)
assert_eq 0 "$transient" "no dead letter of a transient (or unexpected) class"
assert_eq 0 "$(jq -r 'select(.headers["x-error-sqlstate"] // "" | test("^(08|57|40|53)")) | .offset' "$ITF_DLQ_FILE" | wc -l)" \
	"no dead letter with a transient SQLSTATE"
# SPEC section 7: one line per event on stderr, in the configured format (text here). A stray
# line (e.g. a libpq notice printed as is) would break a log parser.
stray=$(grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (debug|info|warn|error) +[a-z_]+' "$log" || true)
[[ "$stray" == 0 ]] || grep -vE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (debug|info|warn|error) +[a-z_]+' "$log" | head -n 3 | sed 's/^/# stray: /'
assert_eq 0 "$stray" "every line the worker wrote to stderr is a log event in the configured format"
it_done
