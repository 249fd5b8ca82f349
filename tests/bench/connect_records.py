#!/usr/bin/python3
"""The records of tests/bench/connect_sink.sh: an aw-gen stream made into what Kafka Connect's
JsonConverter reads (schemas.enable=true), and produced. /usr/bin/python3: Debian's
python3-confluent-kafka (librdkafka, as aw-kafka and the worker use).

  connect_records.py convert STREAM COUNT OUT
      the first COUNT lines of STREAM (aw-kafka --envelope JSON Lines) to OUT, one
      {"key": ..., "value": "<{schema, payload} JSON>"} per line; prints key=value lines:
      converted, malformed (skipped: not an asset.create object of SPEC 2's JSON types, as the
      worker would dead-letter without touching the database), tenant (the most frequent
      tenant_id, for the target table's foreign key)
  connect_records.py produce BROKERS TOPIC FILE [RATE]
      FILE's records to TOPIC, as fast as possible or RATE records/s; the record timestamp is
      librdkafka's CreateTime at produce(), as aw-kafka's. Prints produced, seconds, rate.
Exit 0 on success, 1 with one line on stderr otherwise."""
import collections
import json
import sys
import time

# Debezium's semantic types make its PostgreSQL dialect bind cast(? as uuid) and
# cast(? as jsonb) (by the column's type), as the worker's SQL casts its text parameters.
UUID = "io.debezium.data.Uuid"
JSON = "io.debezium.data.Json"
# (field, Connect type, semantic name, JSON types accepted). Every field but request_id (the
# upsert key) is optional in the schema: as for the worker (SPEC 2), a missing required
# field reaches PostgreSQL and its NOT NULL constraint answers.
FIELDS = [
    ("request_id", "string", UUID, (str,)),
    ("tenant_id", "string", UUID, (str,)),
    ("folder_id", "string", UUID, (str,)),
    ("name", "string", None, (str,)),
    ("content_sha256", "string", None, (str,)),
    ("size_bytes", "int64", None, (int,)),
    ("mime_type", "string", None, (str,)),
    ("storage_uri", "string", None, (str,)),
    ("metadata", "string", JSON, (dict,)),
]
SCHEMA = {
    "type": "struct", "name": "asset_create", "optional": False,
    "fields": [dict({"field": f, "type": t, "optional": f != "request_id"},
                    **({"name": n} if n else {}))
               for f, t, n, _ in FIELDS],
}


def decode(value):
    """The payload of one request, or None when the worker would call it malformed."""
    try:
        req = json.loads(value)
    except (TypeError, ValueError):
        return None
    if (not isinstance(req, dict) or req.get("type") != "asset.create"
            or req.get("version") != 1 or isinstance(req.get("version"), bool)
            or not isinstance(req.get("request_id"), str)):
        return None
    payload = {}
    for field, _, _, types in FIELDS:
        v = req.get(field)
        if v is not None and (not isinstance(v, types) or isinstance(v, bool)):
            return None
        # metadata: its JSON text, cast to jsonb by PostgreSQL (integers keep their digits;
        # Python re-serializes, so a float's text may change, e.g. 1.10 -> 1.1).
        payload[field] = json.dumps(v, separators=(",", ":")) if field == "metadata" and v is not None else v
    return payload


def convert(stream, count, out):
    converted = malformed = 0
    tenants = collections.Counter()
    schema = json.dumps(SCHEMA, separators=(",", ":"))
    with open(stream, encoding="utf-8", errors="surrogateescape") as src, \
            open(out, "w", encoding="utf-8", errors="surrogateescape") as dst:
        for n, line in enumerate(src):
            if n >= count:
                break
            env = json.loads(line)
            value = env.get("value")
            if not isinstance(value, str) and value is not None:
                value = json.dumps(value)  # aw-kafka --envelope sends a JSON value as its text
            payload = decode(value)
            if payload is None:
                malformed += 1
                continue
            converted += 1
            tenants[payload["tenant_id"]] += 1
            record = '{"schema":%s,"payload":%s}' % (schema, json.dumps(payload, separators=(",", ":")))
            dst.write(json.dumps({"key": env.get("key"), "value": record}) + "\n")
    print(f"converted={converted}\nmalformed={malformed}")
    print(f"tenant={tenants.most_common(1)[0][0] if tenants else ''}")


def produce(brokers, topic, path, rate):
    from confluent_kafka import Producer
    failed = []
    p = Producer({"bootstrap.servers": brokers, "enable.idempotence": True, "linger.ms": 10,
                  "queue.buffering.max.messages": 500000, "log_level": 3})

    def on_delivery(err, _msg):
        if err is not None:
            failed.append(err)

    n = 0
    t0 = time.monotonic()
    with open(path, encoding="utf-8", errors="surrogateescape") as src:
        for line in src:
            rec = json.loads(line)
            if rate:
                # Paced on a schedule, not by sleeping a fixed gap: a late record is sent at
                # once, so the average stays R.
                delay = t0 + n / rate - time.monotonic()
                if delay > 0:
                    p.poll(delay)
            key = rec["key"].encode("utf-8", "surrogateescape") if rec["key"] is not None else None
            while True:
                try:
                    p.produce(topic, rec["value"].encode("utf-8", "surrogateescape"), key,
                              on_delivery=on_delivery)
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
            n += 1
    if p.flush(60) > 0 or failed:
        sys.exit(f"connect_records: produce: {failed[0] if failed else 'not all delivered in 60 s'}")
    secs = time.monotonic() - t0
    print(f"produced={n}\nseconds={secs:.3f}\nrate={n / secs if secs > 0 else 0:.0f}")


def main(argv):
    if len(argv) == 4 and argv[0] == "convert":
        return convert(argv[1], int(argv[2]), argv[3])
    if len(argv) in (4, 5) and argv[0] == "produce":
        return produce(argv[1], argv[2], argv[3], float(argv[4]) if len(argv) == 5 else 0)
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
