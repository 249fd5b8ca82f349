/* Records taken from the consumer and not yet processed (fetched while the loop was busy),
 * in arrival order. */
#ifndef AW_BACKLOG_H
#define AW_BACKLOG_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "offset_tracker.h"

struct backlog_entry {
	rd_kafka_message_t *msg; /* owned by the backlog while in it */
	struct tracked_offset input;
};

struct backlog {
	struct backlog_entry *items;
	size_t head, count, cap;
};

/* Takes ownership of msg. */
void backlog_push(struct backlog *b, rd_kafka_message_t *msg, const struct tracked_offset *input);
/* Hands the oldest record (and its ownership) to *out. Returns 0, or -1 when empty. */
int backlog_pop(struct backlog *b, struct backlog_entry *out);
/* Drops (destroys) the records of one partition, keeping the order of the rest. */
void backlog_drop_partition(struct backlog *b, const char *topic, int32_t partition);
void backlog_cleanup(struct backlog *b);

#endif
