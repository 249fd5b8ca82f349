#!/usr/bin/env bash
# The first command of the README: from a fresh Debian machine to a worked example.
#
# Installs what is missing, builds, starts PostgreSQL and a real Apache Kafka broker on
# loopback (scripts/kafka.sh: KRaft, one node; fetched from Maven Central once), migrates,
# produces a sample stream (new assets, duplicates, races across two workers, a foreign-key,
# a CHECK and a NOT NULL violation, malformed messages), runs two workers with --drain, and
# prints what became of every request, read back from PostgreSQL and the dead-letter topic.
#
#   scripts/demo.sh [--count N]      (default 400 generated requests, plus hand-made ones)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
build="${AW_BUILD_DIR:-$repo/build}"
run="${AW_RUN_DIR:-$repo/.run}"
count=400
if [[ "${1:-}" == "--count" ]]; then count="$2"; fi

step() { printf '\n==> %s\n' "$*"; }

step "Installing dependencies (Debian packages)"
"$here/install-deps.sh"

step "Building"
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
echo "built $build/worker/worker"

step "Starting PostgreSQL and Apache Kafka (KRaft, one node, on loopback)"
"$here/pg.sh" start
# A fresh broker each time: the demo's topics start empty.
"$here/kafka.sh" stop >/dev/null 2>&1 || true
rm -rf "$run/kafka"
"$here/kafka.sh" start
eval "$("$here/pg.sh" env)"
eval "$("$here/kafka.sh" env)"
export PG_CONNINFO KAFKA_BROKERS

step "Creating a fresh database and migrating"
psql -q -d postgres -c "DROP DATABASE IF EXISTS assets WITH (FORCE)" -c "CREATE DATABASE assets"
config="$run/demo-worker.yaml"
mkdir -p "$run"
sed -e 's/format: json/format: text/' -e 's/summary_interval_ms: 10000/summary_interval_ms: 5000/' \
	"$repo/worker.yaml" >"$config"
"$build/worker/worker" check-config --config "$config"
"$build/worker/worker" migrate --config "$config"

tenant=6f1c6c3e-8a57-4c0e-9a52-3f0d6d1e7a01
folder=0b8e3f7a-2c4d-4e6f-8a9b-1c2d3e4f5a6b
psql -q -v ON_ERROR_STOP=1 <<SQL
INSERT INTO tenants (id, name) VALUES ('$tenant', 'Demo tenant');
INSERT INTO folders (id, tenant_id, name) VALUES ('$folder', '$tenant', 'inbox');
SQL

step "Producing the sample stream"
stream="$run/demo-stream.jsonl"
# Races: the same content at the head of every input partition. The two workers start on
# different partitions at the same moment, so they insert the same content concurrently: one
# wins, the other gets unique_violation (23505), is requeued, and resolves as a duplicate.
for ((j = 0; j < 25; j++)); do
	for p in 0 1 2 3; do
		printf '{"key":"race-%d-%d","partition":%d,"value":{"type":"asset.create","version":1,"request_id":"%s","tenant_id":"%s","name":"race-%d.bin","content_sha256":"%064x","size_bytes":%d,"storage_uri":"s3://demo/race-%d"}}\n' \
			"$j" "$p" "$p" "$(cat /proc/sys/kernel/random/uuid)" "$tenant" "$j" "$((j + 4096))" "$j" "$j"
	done
done >"$stream"
"$build/tools/aw-gen" --count "$count" --tenant "$tenant" --seed 42 \
	--duplicates 8 --races 10 --fk 2 --check 2 --not-null 2 --malformed 2 \
	--manifest "$run/demo-manifest.txt" >>"$stream"
sha_a=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
{
	# Hand-made cases, one of each, so the summary shows them by name.
	printf '{"key":"k1","value":{"type":"asset.create","version":1,"request_id":"%s","tenant_id":"%s","folder_id":"%s","name":"report.pdf","content_sha256":"%s","size_bytes":1024,"mime_type":"application/pdf","storage_uri":"s3://demo/a","metadata":{"source":"demo"}}}\n' \
		"$(cat /proc/sys/kernel/random/uuid)" "$tenant" "$folder" "$sha_a"
	printf '{"key":"k2","value":{"type":"asset.create","version":1,"request_id":"%s","tenant_id":"%s","folder_id":"%s","name":"elsewhere.pdf","content_sha256":"%s","size_bytes":1,"storage_uri":"s3://demo/b"}}\n' \
		"$(cat /proc/sys/kernel/random/uuid)" "$tenant" "$(cat /proc/sys/kernel/random/uuid)" \
		bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
	printf '{"key":"k3","value":{"type":"asset.create","version":1,"request_id":"%s","tenant_id":"%s","name":"shouting.bin","content_sha256":"%s","size_bytes":1,"storage_uri":"s3://demo/c"}}\n' \
		"$(cat /proc/sys/kernel/random/uuid)" "$tenant" \
		CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC
	printf '{"key":"k4","value":"this is not JSON"}\n'
	printf '{"key":"k5","value":{"type":"asset.delete","version":1}}\n'
	printf '{"key":"k6","value":{"type":"asset.create","version":2,"request_id":"%s"}}\n' \
		"$(cat /proc/sys/kernel/random/uuid)"
} >>"$stream"
"$build/tools/aw-kafka" produce --envelope --topic assets.create --file "$stream"

step "Running two workers in one consumer group, --drain (logs in $run/demo-worker-*.log)"
pids=()
for n in 1 2; do
	"$build/worker/worker" run --config "$config" --drain 2>"$run/demo-worker-$n.log" &
	pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
tail -n 2 "$run"/demo-worker-*.log
[[ $status -eq 0 ]] || { echo "a worker failed (exit $status)"; exit 1; }

step "Summary"
produced=$(wc -l <"$stream")
echo "Requests produced: $produced"
echo
echo "In PostgreSQL (asset_requests by outcome):"
psql -X -A -t -F $'\t' -c \
	"SELECT outcome, count(*) FROM asset_requests GROUP BY outcome ORDER BY outcome" |
	while IFS=$'\t' read -r outcome n; do printf '  %-28s %6d\n' "$outcome" "$n"; done
printf '  %-28s %6d\n' "assets" "$(psql -X -A -t -c 'SELECT count(*) FROM assets')"
echo
echo "On the dead-letter topic (by x-error-class):"
# kcat reads the topic to its end; headers come as a flat [name, value, ...] list.
dump() {
	kcat -C -b "$KAFKA_BROKERS" -t "$1" -e -q -J -X isolation.level=read_committed |
		jq -c '.headers as $h | {key, partition, offset, value: .payload,
			headers: ([range(0; ($h // []) | length; 2) | {key: $h[.], value: $h[. + 1]}] | from_entries)}'
}
dump assets.create.dlq >"$run/demo-dlq.jsonl"
jq -r '.headers["x-error-class"] + "\t" + (.headers["x-error-constraint"] // "-")' "$run/demo-dlq.jsonl" |
	sort | uniq -c | while read -r n cls; do
	printf '  %-28s %6d   constraint: %s\n' "${cls%%$'\t'*}" "$n" "${cls#*$'\t'}"
done
dlq=$(wc -l <"$run/demo-dlq.jsonl")
echo
echo "Requeued on the retry topic (unique_violation races, resolved on retry):"
printf '  %-28s %6d\n' "retry records" "$(dump assets.create.retry | wc -l)"
echo "Worker log outcome counts (both workers):"
grep -ho 'outcome=[a-z_]*' "$run"/demo-worker-*.log | sort | uniq -c | sed 's/^/  /'
recorded=$(psql -X -A -t -c 'SELECT count(*) FROM asset_requests')
dupkeys=$(psql -X -A -t -c 'SELECT count(*) FROM (SELECT 1 FROM assets GROUP BY tenant_id, content_sha256 HAVING count(*) > 1) d')
echo
echo "Accounting: $produced produced, $recorded recorded in PostgreSQL, $dlq dead-lettered;" \
	"$dupkeys content keys with more than one asset."
if [[ $((recorded + dlq)) -eq $produced && $dupkeys -eq 0 ]]; then
	echo "Every request is accounted for exactly once."
else
	echo "ACCOUNTING MISMATCH"
	exit 1
fi
echo
echo "PostgreSQL and the broker are still running; stop them with:"
echo "  scripts/kafka.sh stop && scripts/pg.sh stop"
