#!/usr/bin/env bash
# /metrics, /healthz and /readyz scraped from a running worker (issue 5): counters move with
# the requests it settles, readiness follows the database.
source "$(dirname "$0")/lib.sh"
it_setup
it_seed
printf 'metrics:\n  listen: "127.0.0.1:0"\n' >>"$IT_CONFIG"


{
	for i in 1 2 3; do it_request "$(it_uuid)" "$i"; echo; done
	it_request "$(it_uuid)" 1; echo # duplicate
	printf '{"type":"asset.create","version":1,"request_id":"%s","tenant_id":"%s","name":"x","content_sha256":"%s","size_bytes":-5,"storage_uri":"s3://x"}\n' \
		"$(it_uuid)" "$IT_TENANT" "$(it_sha 9)"
	echo 'not json'
} | it_produce_values assets.create 0

it_start_worker m
log="$IT_DIR/worker-m.log"
it_wait_for 30 "metrics port in the log" grep -q 'metrics_listening' "$log"
port=$(grep -o 'port=[0-9]*' "$log" | head -n 1 | cut -d= -f2)
assert_match '^[1-9][0-9]*$' "$port" "bound an ephemeral port"

it_wait_for 60 "six requests settled" \
	bash -c "[[ \$(grep -c 'outcome=' '$log') -ge 6 ]]"
it_wait_for 30 "forwards acknowledged" \
	bash -c "[[ \$(\"$AWK\" dump --topic assets.create.dlq | wc -l) -ge 2 ]]"

assert_eq 200 "$(http_get "$port" /healthz | head -n 1)" "/healthz is 200 while the loop turns"
it_wait_for 30 "ready" \
	bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3; head -n 1 <&3 | grep -q ' 200'"
ok "/readyz is 200 once assigned and connected"
assert_eq 3 "$(metric "$port" 'asset_worker_requests_total{outcome="created"}')" "created counted"
assert_eq 1 "$(metric "$port" 'asset_worker_requests_total{outcome="duplicate"}')" "duplicate counted"
assert_eq 2 "$(metric "$port" 'asset_worker_requests_total{outcome="dead_lettered"}')" "dead letters counted"
assert_eq 1 "$(metric "$port" 'asset_worker_dead_letters_total{error_class="check_violation"}')" "dead letters by class: check"
assert_eq 1 "$(metric "$port" 'asset_worker_dead_letters_total{error_class="malformed_message"}')" "dead letters by class: malformed"
assert_eq 1 "$(metric "$port" 'asset_worker_db_errors_total{sqlstate="23514"}')" "database errors by SQLSTATE"
assert_eq 1 "$(metric "$port" 'asset_worker_db_up')" "db_up is 1"
body=$(http_get "$port" /metrics)
assert_match 'asset_worker_info\{[^}]*group="it-18-metrics"' "$body" "info carries the group"
assert_match 'asset_worker_processing_seconds_count [1-9]' "$body" "processing latency histogram observed"
assert_match '# TYPE asset_worker_processing_seconds histogram' "$body" "histogram typed"
assert_eq 404 "$(http_get "$port" /nope | head -n 1)" "unknown path is 404"

# Readiness follows the database: stop it, /readyz turns 503; start it, 200 again.
it_pg stop >/dev/null
it_request "$(it_uuid)" 20 | it_produce_values assets.create 0
it_wait_for 60 "not ready while the database is down" \
	bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3; head -n 1 <&3 | grep -q ' 503'"
ok "/readyz is 503 while PostgreSQL is down"
assert_eq 0 "$(metric "$port" 'asset_worker_db_up')" "db_up is 0"
it_pg start >/dev/null
it_wait_for 90 "ready again" \
	bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3; head -n 1 <&3 | grep -q ' 200'"
ok "/readyz is 200 again after PostgreSQL is back"
it_stop_worker m
assert_eq 0 "$IT_RC" "worker stopped cleanly"
it_done
