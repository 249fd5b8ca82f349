#!/usr/bin/python3
"""Small admin steps of scripts/kafka.sh, through Debian's python3-confluent-kafka (librdkafka's
admin client: no JVM to start, so a call takes milliseconds, not seconds).

  admin.py wait BOOTSTRAP SECONDS                 until the broker serves metadata
  admin.py create BOOTSTRAP NAME:PARTITIONS[:KEY=VALUE,...]...
                                                  create topics (existing ones are kept) and
                                                  wait until every partition has a leader
  admin.py config BOOTSTRAP TOPIC KEY=VALUE...    set topic configs (others keep theirs)
Exit 0 on success, 1 with one line on stderr otherwise."""
import sys
import time

try:
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic
except ImportError:
    sys.exit("kafka admin: python3-confluent-kafka is missing; run scripts/install-deps.sh")


def client(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000,
                        "log_level": 0})


def metadata(admin):
    try:
        return admin.list_topics(timeout=1)
    except KafkaException:
        return None


def wait(bootstrap, seconds):
    admin = client(bootstrap)
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        md = metadata(admin)
        if md is not None and md.brokers:
            return 0
        time.sleep(0.1)
    sys.exit(f"kafka admin: no metadata from {bootstrap} after {seconds} s")


def parse_spec(spec):
    parts = spec.split(":", 2)
    if len(parts) < 2 or not parts[1].isdigit() or int(parts[1]) < 1:
        sys.exit(f"kafka admin: bad topic {spec!r}: want NAME:PARTITIONS[:KEY=VALUE,...]")
    config = {}
    if len(parts) == 3 and parts[2]:
        for kv in parts[2].split(","):
            key, sep, value = kv.partition("=")
            if not sep:
                sys.exit(f"kafka admin: bad topic config {kv!r} in {spec!r}")
            config[key] = value
    return NewTopic(parts[0], num_partitions=int(parts[1]), replication_factor=1,
                    config=config)


def create(bootstrap, specs):
    admin = client(bootstrap)
    topics = [parse_spec(s) for s in specs]
    for name, future in admin.create_topics(topics, request_timeout=15).items():
        try:
            future.result()
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                sys.exit(f"kafka admin: create {name}: {e.args[0].str()}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = metadata(admin)
        if md is not None and all(
                t.topic in md.topics and len(md.topics[t.topic].partitions) >= t.num_partitions
                and all(p.leader >= 0 for p in md.topics[t.topic].partitions.values())
                for t in topics):
            return 0
        time.sleep(0.1)
    sys.exit("kafka admin: topics created but their partitions have no leader after 30 s")


def config(bootstrap, topic, pairs):
    admin = client(bootstrap)
    resource = ConfigResource("topic", topic)
    # alter_configs replaces the topic's whole dynamic config: start from what is set now.
    try:
        current = admin.describe_configs([resource])[resource].result(timeout=15)
    except KafkaException as e:
        sys.exit(f"kafka admin: describe {topic}: {e.args[0].str()}")
    for name, entry in current.items():
        if entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value:
            resource.set_config(name, entry.value)
    for kv in pairs:
        key, sep, value = kv.partition("=")
        if not sep:
            sys.exit(f"kafka admin: bad config {kv!r}: want KEY=VALUE")
        resource.set_config(key, value)
    try:
        admin.alter_configs([resource])[resource].result(timeout=15)
    except KafkaException as e:
        sys.exit(f"kafka admin: alter {topic}: {e.args[0].str()}")
    return 0


def main(argv):
    if len(argv) == 3 and argv[0] == "wait":
        return wait(argv[1], argv[2])
    if len(argv) >= 3 and argv[0] == "create":
        return create(argv[1], argv[2:])
    if len(argv) >= 4 and argv[0] == "config":
        return config(argv[1], argv[2], argv[3:])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
