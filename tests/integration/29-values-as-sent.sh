#!/usr/bin/env bash
# Values are stored as the producer wrote them (SPEC 2): for every metadata document of a
# generated corpus (numbers with many digits, integers far beyond int64, exponents, -0.0,
# unicode and escapes, nested arrays, odd whitespace), what PostgreSQL stores equals
# '<sent text>'::jsonb; size_bytes at the edge of bigint is stored exactly, and one past it
# reaches PostgreSQL and is dead-lettered with its SQLSTATE (22003), not rounded or refused
# as malformed by the worker.
source "$(dirname "$0")/lib.sh"
it_setup
it_seed

CORPUS="$IT_DIR/corpus.csv"
# One request per document: request_id, content number, metadata text (CSV, for \copy).
python3 - "$CORPUS" "$IT_TENANT" <<'PY' | it_produce_values assets.create
import csv, json, random, sys, uuid

rng = random.Random(2901)
out = csv.writer(open(sys.argv[1], "w", newline=""))
tenant = sys.argv[2]

def number():
    kind = rng.randrange(8)
    if kind == 0:
        return str(rng.randrange(10 ** 30, 10 ** 40))           # beyond int64 and double
    if kind == 1:
        return "-" + str(rng.randrange(2 ** 63, 2 ** 64))      # just beyond int64
    if kind == 2:
        return f"{rng.randrange(10 ** 6)}.{rng.randrange(10 ** 17):017d}"  # 17+ digits
    if kind == 3:
        return rng.choice(["0.1", "19.99", "1e-7", "1E+2", "-0.0", "-0", "5e-324", "1.7976931348623157e308"])
    if kind == 4:
        return f"{rng.randrange(1, 10)}.{rng.randrange(10 ** 9)}e{rng.randrange(-300, 300)}"
    return str(rng.randrange(-10 ** 9, 10 ** 9))

def text():
    return json.dumps(rng.choice(["é", "日本語", "emoji \U0001F600", "tab\tquote\"back\\slash",
                                  "}]", "\u2028", "a/b", ""]), ensure_ascii=rng.random() < 0.5)

def value(depth):
    r = rng.random()
    if depth > 3 or r < 0.4:
        return number()
    if r < 0.6:
        return text()
    if r < 0.7:
        return rng.choice(["true", "false", "null"])
    ws = rng.choice(["", " ", "\n  "])
    if r < 0.85:
        return "[" + ws + ("," + ws).join(value(depth + 1) for _ in range(rng.randrange(4))) + "]"
    return obj(depth + 1)

def obj(depth):
    ws = rng.choice(["", " ", "\n\t"])
    keys = rng.sample(["a", "price", "order id", "é", "x\\u0079z", "n", "nested", "k"], rng.randrange(5))
    return "{" + ws + ("," + ws).join(f'"{k}"{ws}:{ws}{value(depth)}' for k in keys) + ws + "}"

for i in range(400):
    rid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    # One message per line: newlines between tokens become spaces (still whitespace).
    meta = obj(0).replace("\n", " ")
    out.writerow([rid, i + 1, meta])
    sha = f"{i + 1:064x}"
    print(f'{{"type":"asset.create","version":1,"request_id":"{rid}","tenant_id":"{tenant}",'
          f'"name":"m-{i}","content_sha256":"{sha}","size_bytes":{i},"storage_uri":"s3://it/{i}",'
          f'"metadata":{meta}}}')
PY
ok "produced $(wc -l <"$CORPUS") requests, each with its own metadata document"

# size_bytes at and past the edge of bigint.
R_MAX=$(it_uuid) R_PAST=$(it_uuid) R_NEG=$(it_uuid)
{
	it_request "$R_MAX" 9001 | sed 's/"size_bytes":100/"size_bytes":9223372036854775807/'
	echo
	it_request "$R_PAST" 9002 | sed 's/"size_bytes":100/"size_bytes":9223372036854775808/'
	echo
	it_request "$R_NEG" 9003 | sed 's/"size_bytes":100/"size_bytes":-99999999999999999999/'
	echo
} | it_produce_values assets.create
it_run_drain

psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE TABLE it_sent (request_id uuid, n int, metadata text);
\copy it_sent FROM '$CORPUS' WITH (FORMAT csv)
SQL
stored=$(it_sql "SELECT count(*) FROM it_sent s JOIN asset_requests r USING (request_id) JOIN assets a ON a.id = r.asset_id")
differ=$(it_sql "SELECT count(*) FROM it_sent s JOIN asset_requests r USING (request_id) JOIN assets a ON a.id = r.asset_id
                 WHERE a.metadata IS DISTINCT FROM s.metadata::jsonb")
assert_eq 400 "$stored" "every corpus request is stored"
assert_eq 0 "$differ" "for every document, the stored metadata equals '<sent text>'::jsonb"
it_sql "SELECT s.metadata, a.metadata FROM it_sent s JOIN asset_requests r USING (request_id) JOIN assets a ON a.id = r.asset_id
        WHERE a.metadata IS DISTINCT FROM s.metadata::jsonb LIMIT 3" | sed 's/^/#   /'
assert_eq "123456789012345678901234567890" \
	"$(it_sql "SELECT '{\"order\":123456789012345678901234567890}'::jsonb ->> 'order'")" "(PostgreSQL keeps a 30-digit integer in jsonb)"
big=$(it_sql "SELECT count(*) FROM assets WHERE metadata::text ~ '[0-9]{20,}'")
assert_ge 20 "$big" "integers beyond int64 reached PostgreSQL ($big assets hold one)"

assert_eq 9223372036854775807 "$(it_sql "SELECT size_bytes FROM assets a JOIN asset_requests r ON r.asset_id = a.id WHERE r.request_id = '$R_MAX'")" \
	"size_bytes 2^63-1 stored exactly"
DLQ=$(it_dump_file assets.create.dlq)
for r in "$R_PAST" "$R_NEG"; do
	rec=$(jq -c --arg r "$r" 'select(.value | fromjson? | .request_id == $r)' "$DLQ")
	assert_eq 1 "$(grep -c . <<<"$rec")" "size_bytes beyond bigint: one dead letter"
	assert_eq data_exception "$(it_hdr x-error-class <<<"$rec")" "size_bytes beyond bigint: data_exception, from PostgreSQL"
	assert_eq 22003 "$(it_hdr x-error-sqlstate <<<"$rec")" "size_bytes beyond bigint: SQLSTATE 22003"
done
assert_eq 2 "$(wc -l <"$DLQ")" "nothing else dead-lettered"
it_done
