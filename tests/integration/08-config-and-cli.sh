#!/usr/bin/env bash
# The command line of the real binary (SPEC 5, 6): configuration errors exit 2 with
# "file:line:col: what is wrong" and touch nothing; usage errors exit 2; --version, --help;
# migrate is idempotent.
source "$(dirname "$0")/lib.sh"
it_setup

# Runs the worker; stdout, stderr and exit code in OUT, ERR, RC.
run_worker() {
	RC=0
	timeout 30 env -u AW_TEST_NEVER_SET -u AW_TEST_UNSET AW_TEST_EMPTY= "$WORKER" "$@" \
		>"$IT_DIR/cli.out" 2>"$IT_DIR/cli.err" || RC=$?
	OUT=$(cat "$IT_DIR/cli.out")
	ERR=$(cat "$IT_DIR/cli.err")
}
# True when some line of $2 starts with prefix $1 and then contains $3.
has_error_line() {
	local line
	while IFS= read -r line; do
		[[ $line == "$1"* && ${line#"$1"} == *"$3"* ]] && return 0
	done <<<"$2"
	return 1
}

# ---- every bad file: exit 2, "path:line:col: message" as its first line says ----
nbad=0
for f in "$IT_SRC"/tests/data/config/bad/*.yaml; do
	name=$(basename "$f")
	expect=$(head -n 1 "$f")
	[[ $expect =~ ^#\ expect:\ ([0-9]+):([0-9]+):\ (.*)$ ]] || fail "$name: no '# expect: L:C: text' first line"
	prefix="$f:${BASH_REMATCH[1]}:${BASH_REMATCH[2]}: "
	want=${BASH_REMATCH[3]}
	run_worker check-config --config "$f"
	assert_eq 2 "$RC" "check-config $name exits 2"
	if has_error_line "$prefix" "$ERR" "$want"; then
		ok "check-config $name prints '$prefix$want'"
	else
		fail "check-config $name: no line '$prefix...$want...' in: $ERR"
	fi
	assert_eq "" "$OUT" "check-config $name prints nothing on stdout"
	nbad=$((nbad + 1))
done
assert_ge 20 "$nbad" "at least 20 bad configuration files checked"

# ---- good files: exit 0 ----
for f in "$IT_SRC"/tests/data/config/good/*.yaml; do
	name=$(basename "$f")
	RC=0
	OUT=$(AW_TEST_BROKERS=b:9092 AW_TEST_TOPIC=t AW_TEST_SASL_PASSWORD=pw AW_TEST_ATTEMPTS=9 \
		"$WORKER" check-config --config "$f" 2>"$IT_DIR/cli.err") || RC=$?
	assert_eq 0 "$RC" "check-config $name exits 0"
	assert_eq "$f: ok" "$OUT" "check-config $name says ok"
done
run_worker check-config --config "$IT_CONFIG"
assert_eq 0 "$RC" "check-config of the test's own config exits 0"

run_worker check-config --config "$IT_DIR/no-such.yaml"
assert_eq 2 "$RC" "check-config of a missing file exits 2"
assert_match "^$IT_DIR/no-such.yaml: cannot open" "$ERR" "and names the file"

# ---- a bad config stops every command before anything is touched ----
FRESH="${IT_DB}_fresh"
psql -q -X -d postgres -c "DROP DATABASE IF EXISTS $FRESH WITH (FORCE)" -c "CREATE DATABASE $FRESH" >/dev/null
FRESH_CONNINFO="postgresql://$PGUSER@127.0.0.1:$PGPORT/$FRESH"
BAD="$IT_DIR/bad.yaml"
sed -e 's/max_attempts: .*/max_attempts: 0/' -e "s/group_id: .*/group_id: it-08-bad-group/" "$IT_CONFIG" >"$BAD"
bad_line=$(grep -n 'max_attempts:' "$BAD" | cut -d: -f1)
it_request "$(it_uuid)" 1 | it_produce_values assets.create 0
for cmd in run "run --drain" migrate replay-dlq; do
	# shellcheck disable=SC2086
	PG_CONNINFO=$FRESH_CONNINFO run_worker $cmd --config "$BAD"
	assert_eq 2 "$RC" "worker $cmd with a bad config exits 2"
	if has_error_line "$BAD:$bad_line:17: " "$ERR" 'retry.max_attempts: "0" is out of range'; then
		ok "worker $cmd names $BAD:$bad_line:17"
	else
		fail "worker $cmd: no '$BAD:$bad_line:17: retry.max_attempts' in: $ERR"
	fi
done
assert_eq 0 "$(psql -X -A -t -q -d "$FRESH" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" \
	"the database was not touched (no tables)"
assert_eq "" "$("$AWK" committed --group it-08-bad-group --topic assets.create | awk '$2 >= 0')" \
	"the bad config's group committed nothing"
assert_eq 0 "$(it_dump assets.create.dlq | wc -l)" "nothing dead-lettered"
assert_eq 0 "$(it_dump assets.create.retry | wc -l)" "nothing requeued"

# ---- usage errors: exit 2 ----
run_worker
assert_eq 2 "$RC" "no arguments: exit 2"
assert_match 'usage' "$ERR" "no arguments: usage on stderr"
for cmd in run check-config migrate replay-dlq; do
	run_worker "$cmd"
	assert_eq 2 "$RC" "$cmd without --config: exit 2"
	assert_match '--config' "$ERR" "$cmd without --config: says --config is needed"
done
run_worker frobnicate --config "$IT_CONFIG"
assert_eq 2 "$RC" "unknown command: exit 2"
assert_match 'frobnicate' "$ERR" "unknown command named"
run_worker run --config "$IT_CONFIG" --bogus
assert_eq 2 "$RC" "unknown option: exit 2"
assert_match 'bogus' "$ERR" "unknown option named"
run_worker run --config "$IT_CONFIG" extra
assert_eq 2 "$RC" "unexpected argument: exit 2"
run_worker run --config
assert_eq 2 "$RC" "--config without a value: exit 2"
for limit in abc 5x "" -1; do
	run_worker replay-dlq --config "$IT_CONFIG" --limit "$limit"
	assert_eq 2 "$RC" "replay-dlq --limit '$limit': exit 2"
done
assert_match 'limit' "$ERR" "--limit error names the option"
run_worker migrate --config "$IT_CONFIG" --drain
assert_eq 2 "$RC" "--drain with migrate: exit 2"
run_worker run --config "$IT_CONFIG" --error-class data_exception
assert_eq 2 "$RC" "--error-class with run: exit 2"

# ---- --version, --help ----
run_worker --version
assert_eq 0 "$RC" "--version exits 0"
assert_match '^worker [0-9]+\.[0-9]+\.[0-9]+' "$OUT" "--version prints 'worker X.Y.Z'"
run_worker --help
assert_eq 0 "$RC" "--help exits 0"
for key in kafka.brokers kafka.group_id kafka.input_topic kafka.retry_topic kafka.dlq_topic \
	kafka.properties postgres.conninfo postgres.statement_timeout_ms retry.initial_backoff_ms \
	retry.max_backoff_ms retry.multiplier retry.max_attempts log.level log.format; do
	if grep -qE "^[[:space:]]*$key([[:space:]]|$)" "$IT_DIR/cli.out"; then ok "--help lists $key"; else fail "--help does not list $key"; fi
done
for cmd in run check-config migrate replay-dlq; do
	assert_match "worker $cmd" "$OUT" "--help shows the $cmd command"
done

# ---- migrate is idempotent ----
PG_CONNINFO=$FRESH_CONNINFO run_worker migrate --config "$IT_CONFIG"
assert_eq 0 "$RC" "migrate of a fresh database exits 0"
nmig=$(find "$IT_SRC/worker/migrations" -name '*.sql' | wc -l)
assert_match "migrate_done applied=$nmig known=$nmig" "$ERR" "first migrate applies every migration ($nmig)"
schema() { psql -X -A -t -q -d "$FRESH" -c "SELECT string_agg(table_name || '.' || column_name || ':' || data_type, ',' ORDER BY table_name, column_name) FROM information_schema.columns WHERE table_schema = 'public'"; }
S1=$(schema)
assert_match 'assets.content_sha256' "$S1" "the schema exists"
PG_CONNINFO=$FRESH_CONNINFO run_worker migrate --config "$IT_CONFIG"
assert_eq 0 "$RC" "second migrate exits 0"
assert_match 'migrate_done applied=0' "$ERR" "second migrate applies nothing"
assert_eq "$S1" "$(schema)" "schema unchanged by the second migrate"
psql -q -X -d postgres -c "DROP DATABASE IF EXISTS $FRESH WITH (FORCE)" >/dev/null
it_done
