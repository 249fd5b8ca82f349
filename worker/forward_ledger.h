/* Where the retry and dead-letter records forwarded from an input partition can be found.
 *
 * A forward is final once the broker acknowledged it, but its input offset is committed
 * later (asynchronously, and not at all if the worker dies or loses the partition first).
 * The next owner is then handed the record again and would forward it a second time. To
 * prevent that, every input offset is committed with metadata naming, per retry and
 * dead-letter partition, a floor: no forward made from that offset or a later one lies
 * below it. The next owner reads the two topics from the floors to their end
 * (forward_scan.c) and skips what was forwarded already.
 *
 * The floor of a partition is the lower of: where this worker's future forwards will land
 * (the partition's end when the worker started, raised by every acknowledgement: the
 * idempotent producer keeps each partition in order), and the forwards acknowledged (or
 * found by a scan) for offsets not yet committed. */
#ifndef AW_FORWARD_LEDGER_H
#define AW_FORWARD_LEDGER_H

#include <stddef.h>
#include <stdint.h>

/* Kafka brokers keep at most offset.metadata.max.bytes (4096 by default) per commit. */
#define FORWARD_LEDGER_METADATA_MAX 4000

struct forward_ledger;

/* The two topics forwards go to, in the order the metadata lists them. */
struct forward_ledger *forward_ledger_new(const char *retry_topic, const char *dlq_topic);
void forward_ledger_free(struct forward_ledger *l);

/* Every forward of this worker to (topic, partition) will land at `offset` or beyond. */
void forward_ledger_raise_floor(struct forward_ledger *l, const char *topic, int32_t partition,
				int64_t offset);

/* The record at (in_topic, in_partition, in_offset) was forwarded to (topic, partition,
 * offset): acknowledged now, or found by a scan. */
void forward_ledger_add(struct forward_ledger *l, const char *in_topic, int32_t in_partition,
			int64_t in_offset, const char *topic, int32_t partition, int64_t offset);

/* The input partition's offsets below `committed` are committed: their forwards can no
 * longer be redelivered. A negative `committed` forgets the whole partition (revoked). */
void forward_ledger_committed(struct forward_ledger *l, const char *in_topic,
			      int32_t in_partition, int64_t committed);

/* Writes the metadata to commit with an offset of (in_topic, in_partition), NUL-terminated.
 * Returns its length, or -1 when it would not fit FORWARD_LEDGER_METADATA_MAX or `size`
 * (then commit without: the next owner reads the topics from their beginning). */
int forward_ledger_metadata(const struct forward_ledger *l, const char *in_topic,
			    int32_t in_partition, char *buf, size_t size);

/* Floors read back from commit metadata. */
struct forward_floors {
	int valid;    /* 0: no usable metadata: read from the beginning */
	int64_t *retry, *dlq; /* per partition, -1 when unknown */
	int nretry, ndlq;
};

/* Parses metadata written by forward_ledger_metadata for the same two topics. Anything else
 * (absent, another tool's, other topics) gives valid = 0. */
void forward_floors_parse(struct forward_floors *f, const void *meta, size_t len,
			  const char *retry_topic, const char *dlq_topic);
/* The floor of (topic, partition), or -1 when unknown (read from the beginning). */
int64_t forward_floors_get(const struct forward_floors *f, const char *retry_topic,
			   const char *topic, int32_t partition);
void forward_floors_cleanup(struct forward_floors *f);

#endif
