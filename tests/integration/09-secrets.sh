#!/usr/bin/env bash
# Secrets never appear in logs (SPEC 6): the PostgreSQL password of the conninfo (URI and
# key=value forms) and kafka.properties sasl.password, at log.level debug, in json and text,
# through connection failures and configuration errors. JSON log lines are valid JSON.
source "$(dirname "$0")/lib.sh"
it_setup
it_seed
it_install_raise_trigger

PG_SECRET='S3cr3t-XYZ-123'
KAFKA_SECRET='Kafka-S3cret-987'
# Cluster-wide role: created once, its password reset on every run. The server trusts
# 127.0.0.1, so the password is sent but not checked.
it_sql "DO \$\$ BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'it_secret') THEN
		ALTER ROLE it_secret LOGIN SUPERUSER PASSWORD '$PG_SECRET';
	ELSE
		CREATE ROLE it_secret LOGIN SUPERUSER PASSWORD '$PG_SECRET';
	END IF;
END \$\$" >/dev/null

URI="postgresql://it_secret:$PG_SECRET@127.0.0.1:$PGPORT/$IT_DB"
KV="host=127.0.0.1 port=$PGPORT dbname=$IT_DB user=it_secret password=$PG_SECRET"
# secret_config FILE FORMAT CONNINFO [GROUP]
secret_config() {
	cat >"$1" <<YAML
kafka:
  brokers: "\${KAFKA_BROKERS}"
  group_id: ${4:-it-09-secrets}
  properties:
    session.timeout.ms: "6000"
    heartbeat.interval.ms: "500"
    security.protocol: plaintext
    sasl.username: it-user
    sasl.password: "$KAFKA_SECRET"
    debug: "security,conf,generic"
postgres:
  conninfo: "$3"
  statement_timeout_ms: 5000
retry:
  initial_backoff_ms: 50
  max_backoff_ms: 400
  max_attempts: 2
log:
  level: debug
  format: $2
  summary_interval_ms: 500
YAML
}
# Requests that make the worker log every kind of line: created, duplicate, dead letters from
# the database and from the decoder, a requeue.
produce_mix() {
	local n=$1
	{
		it_request "$(it_uuid)" "$n"
		echo
		it_request "$(it_uuid)" "$n"
		echo
		it_request "$(it_uuid)" "$((n + 1))" | jq -c '.tenant_id = "5a0e8f3c-9999-4a4a-8a8a-000000000999"'
		echo 'not json'
		it_request "$(it_uuid)" "$((n + 2))" | jq -c '.name = "raise:23505"'
	} | it_produce_values assets.create 0
}
assert_no_secret() { # file description
	assert_file_lacks "$1" "$PG_SECRET" "$2: no PostgreSQL password"
	assert_file_lacks "$1" "$KAFKA_SECRET" "$2: no SASL password"
}
assert_json_lines() { # file description
	local lines objects
	lines=$(grep -c . "$1" || true)
	objects=$(jq -c 'select(type == "object" and (.ts | type) == "string" and (.level | type) == "string" and (.event | type) == "string")' "$1" 2>"$IT_DIR/jq.err" | wc -l) || true
	assert_ge 5 "$lines" "$2: has log lines"
	assert_eq "$lines" "$objects" "$2: every line is a JSON object with ts, level, event"
}

# ---- json, URI conninfo ----
secret_config "$IT_DIR/json.yaml" json "$URI" it-09-json
produce_mix 1
RC=0
timeout 120 "$WORKER" run --config "$IT_DIR/json.yaml" --drain >"$IT_DIR/json.out" 2>"$IT_DIR/json.log" || RC=$?
assert_eq 0 "$RC" "json run drains"
assert_eq created "$(it_sql "SELECT string_agg(DISTINCT outcome, ',') FROM asset_requests WHERE outcome = 'created'")" \
	"the worker worked through the password conninfo"
assert_ge 1 "$(grep -c '"event":"kafka_log"' "$IT_DIR/json.log")" "librdkafka debug lines are logged"
assert_ge 1 "$(grep -c '"outcome":"dead_lettered"' "$IT_DIR/json.log")" "dead letters are logged"
assert_ge 1 "$(grep -c '"outcome":"requeued"' "$IT_DIR/json.log")" "requeues are logged"
assert_no_secret "$IT_DIR/json.log" "json log"
assert_no_secret "$IT_DIR/json.out" "json run stdout"
assert_json_lines "$IT_DIR/json.log" "json log"

# ---- text, key=value conninfo ----
secret_config "$IT_DIR/text.yaml" text "$KV" it-09-text
produce_mix 10
RC=0
timeout 120 "$WORKER" run --config "$IT_DIR/text.yaml" --drain >"$IT_DIR/text.out" 2>"$IT_DIR/text.log" || RC=$?
assert_eq 0 "$RC" "text run drains"
assert_ge 1 "$(grep -c 'outcome=created' "$IT_DIR/text.log")" "text run created requests"
assert_no_secret "$IT_DIR/text.log" "text log"
assert_no_secret "$IT_DIR/text.out" "text run stdout"

# ---- migrate and replay-dlq with the secrets ----
RC=0
"$WORKER" migrate --config "$IT_DIR/json.yaml" >"$IT_DIR/migrate2.out" 2>"$IT_DIR/migrate2.log" || RC=$?
assert_eq 0 "$RC" "migrate with the password conninfo"
assert_no_secret "$IT_DIR/migrate2.log" "migrate log"
RC=0
timeout 60 "$WORKER" replay-dlq --config "$IT_DIR/json.yaml" --limit 1 >"$IT_DIR/replay.out" 2>"$IT_DIR/replay.log" || RC=$?
assert_eq 0 "$RC" "replay-dlq with the secrets"
assert_no_secret "$IT_DIR/replay.log" "replay-dlq log"
assert_no_secret "$IT_DIR/replay.out" "replay-dlq stdout"

# ---- connection errors: wrong database name, in both forms ----
for form in uri kv; do
	if [[ $form == uri ]]; then conn="postgresql://it_secret:$PG_SECRET@127.0.0.1:$PGPORT/it_no_such_db"; fmt=json
	else conn="host=127.0.0.1 port=$PGPORT dbname=it_no_such_db user=it_secret password=$PG_SECRET"; fmt=text; fi
	secret_config "$IT_DIR/nodb-$form.yaml" "$fmt" "$conn" "it-09-nodb-$form"
	"$WORKER" run --config "$IT_DIR/nodb-$form.yaml" >"$IT_DIR/nodb-$form.out" 2>"$IT_DIR/nodb-$form.log" &
	pid=$!
	IT_WORKER_PIDS+=("$pid")
	it_wait_for 30 "connection failure logged ($form)" grep -q 'database_connect_failed.*it_no_such_db' "$IT_DIR/nodb-$form.log"
	kill -TERM "$pid"
	wait "$pid" || true
	ok "worker with a wrong database name ($form) logged the connection failure and stopped"
	assert_no_secret "$IT_DIR/nodb-$form.log" "wrong database ($form) log"
	RC=0
	"$WORKER" migrate --config "$IT_DIR/nodb-$form.yaml" >/dev/null 2>"$IT_DIR/nodb-migrate-$form.log" || RC=$?
	assert_eq 1 "$RC" "migrate against a missing database exits 1 ($form)"
	assert_file_contains "$IT_DIR/nodb-migrate-$form.log" "it_no_such_db" "migrate says which database ($form)"
	assert_no_secret "$IT_DIR/nodb-migrate-$form.log" "migrate to a missing database ($form)"
done
assert_json_lines "$IT_DIR/nodb-uri.log" "wrong database json log"

# ---- configuration errors next to the secrets ----
cat >"$IT_DIR/bad-secrets.yaml" <<YAML
kafka:
  brokers: "\${KAFKA_BROKERS}"
  properties:
    security.protocol: plaintext
    sasl.password: [ "$KAFKA_SECRET" ]
    ssl.key.password: "\${AW_TEST_NEVER_SET}$KAFKA_SECRET"
postgres:
  conninfo: "$URI"
  conninfoo: "password=$PG_SECRET"
  statement_timeout_ms: soon
log:
  level: debug
YAML
cat >"$IT_DIR/bad-conninfo.yaml" <<YAML
postgres:
  conninfo: [ "$KV" ]
  statement_timeout_ms: -1
YAML
# ${...} errors inside the secret values: the message must not quote what follows.
cat >"$IT_DIR/bad-env.yaml" <<YAML
postgres:
  conninfo: "host=db \${PGX password=$PG_SECRET dbname=a"
kafka:
  properties:
    sasl.password: "\${KX $KAFKA_SECRET"
    sasl.jaas.config: "a \${B:-$KAFKA_SECRET"
YAML
for f in bad-secrets bad-conninfo bad-env; do
	RC=0
	env -u AW_TEST_NEVER_SET "$WORKER" check-config --config "$IT_DIR/$f.yaml" >"$IT_DIR/$f.out" 2>"$IT_DIR/$f.err" || RC=$?
	assert_eq 2 "$RC" "check-config $f exits 2"
	assert_file_contains "$IT_DIR/$f.err" "$IT_DIR/$f.yaml:" "check-config $f reports file:line:col"
	assert_no_secret "$IT_DIR/$f.err" "check-config $f stderr"
	assert_no_secret "$IT_DIR/$f.out" "check-config $f stdout"
done
assert_ge 4 "$(grep -c "^$IT_DIR/bad-secrets.yaml:[0-9]*:[0-9]*: " "$IT_DIR/bad-secrets.err")" "every error next to a secret is reported"
assert_eq 3 "$(grep -c "^$IT_DIR/bad-env.yaml:[0-9]*:[0-9]*: " "$IT_DIR/bad-env.err")" "every \${...} error in a secret is reported"
it_done
