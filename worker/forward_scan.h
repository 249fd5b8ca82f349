/* On assignment: which of the partition's uncommitted records were forwarded already.
 *
 * A redelivered record whose requeue or dead letter is already in the retry or dead-letter
 * topic must not be forwarded again (SPEC 1: accounted for exactly once). Forwards name the
 * record they were made from (x-source-topic/partition/offset). For the partitions just
 * assigned, the scan reads the committed offsets and their floors (forward_ledger.h), then
 * reads the retry and dead-letter topics from the lowest floor to their end, and keeps every
 * forward made from an offset at or past the committed one. */
#ifndef AW_FORWARD_SCAN_H
#define AW_FORWARD_SCAN_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "forward_ledger.h"

/* A record already forwarded: from (topic, partition, offset) to (to_topic, ...). */
struct forwarded_record {
	char *topic;
	int32_t partition;
	int64_t offset;
	char *to_topic;
	int32_t to_partition;
	int64_t to_offset;
	uint64_t digest; /* of the forward's key and value: the record's own, kept as they were */
};

/* The digest forwarded_set_take compares: a forward keeps its record's key and value, so a
 * mismatch means the same place holds another record (a topic deleted and created again). */
uint64_t forwarded_digest(const rd_kafka_message_t *m);

/* Sorted by (topic, partition, offset) once a scan is done. */
struct forwarded_set {
	struct forwarded_record *items;
	size_t count, cap;
};

/* Whether the record `m` of (topic, partition, offset) was forwarded; if so removes it and
 * copies it into `out` (the strings stay owned by `out`: free them with
 * forwarded_record_cleanup). Returns 1, 0, or -1 when a forward names that place but holds
 * other bytes (removed; the record is not taken for forwarded). */
int forwarded_set_take(struct forwarded_set *s, const rd_kafka_message_t *m, const char *topic,
		       int32_t partition, int64_t offset, struct forwarded_record *out);
void forwarded_set_drop_partition(struct forwarded_set *s, const char *topic,
				  int32_t partition);
void forwarded_set_cleanup(struct forwarded_set *s);
void forwarded_record_cleanup(struct forwarded_record *r);

struct forward_scanner {
	rd_kafka_t *rk; /* a consumer outside the group, reading by assign() */
	const char *retry_topic, *dlq_topic;
	struct forward_ledger *ledger; /* borrowed */
};

int forward_scanner_setup(struct forward_scanner *s, const struct config *cfg,
			  const char *client_id, struct forward_ledger *ledger, char *errbuf,
			  size_t errsize);
void forward_scanner_cleanup(struct forward_scanner *s);

/* Raises the ledger's floors to the current ends of the retry and dead-letter partitions:
 * every forward produced from now on lands there or beyond. Only valid while none of ours
 * is in flight (one could land below the end read). Returns 0 or -1. */
int forward_scanner_raise_floors(struct forward_scanner *s, int timeout_ms);

/* Scans for the partitions in `parts`, just assigned to `consumer`. On return each element's
 * offset is its committed offset (RD_KAFKA_OFFSET_INVALID when none). What is found goes to
 * `found` and to the ledger. The caller has waited for its own forwards in flight, so they
 * are in the topics; `raise_floors` when none is left in flight (see above). Returns 0, or
 * -1 when the scan could not be completed within timeout_ms (what was found is kept; the
 * rest may be forwarded twice). */
int forward_scanner_run(struct forward_scanner *s, rd_kafka_t *consumer,
			rd_kafka_topic_partition_list_t *parts, struct forwarded_set *found,
			int raise_floors, int timeout_ms);

#endif
