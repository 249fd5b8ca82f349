/* Retry records that are not yet due (x-retry-not-before in the future) wait here, in memory,
 * ordered by due time, while the loop keeps consuming: waiting for a retry never blocks the
 * input topic. Their input offsets stay open in the offset tracker, so a crash redelivers
 * them. */
#ifndef AW_RETRY_DELAY_H
#define AW_RETRY_DELAY_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "offset_tracker.h"

struct delayed_record {
	int64_t due_wall_ms;
	rd_kafka_message_t *msg; /* owned */
	struct tracked_offset input;
};

struct retry_delay {
	struct delayed_record *heap;
	size_t count, cap;
};

void retry_delay_init(struct retry_delay *d);
/* Takes ownership of msg. */
void retry_delay_hold(struct retry_delay *d, rd_kafka_message_t *msg,
		      const struct tracked_offset *input, int64_t due_wall_ms);
/* Pops the earliest record if due at now_wall_ms; returns 0 and fills *out, else -1. */
int retry_delay_pop_due(struct retry_delay *d, int64_t now_wall_ms, struct delayed_record *out);
/* Milliseconds until the earliest record is due (0 if due now), or -1 if none. */
int64_t retry_delay_next_in(const struct retry_delay *d, int64_t now_wall_ms);
/* Drops (destroys) records of a revoked partition. Returns how many. */
size_t retry_delay_drop_partition(struct retry_delay *d, const char *topic, int32_t partition);
void retry_delay_cleanup(struct retry_delay *d);

#endif
