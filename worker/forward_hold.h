/* Input partitions held back because the forward of one of their records failed. The failed
 * transaction is aborted and the consumer rewound (kafka_txn.h); the records before the failed
 * one are consumed and committed again as usual, but from the failed one on nothing of the
 * partition is taken until the hold ends: after a backoff for a retriable failure, after
 * retry.max_backoff_ms for a refusal no resend cures until an operator acts (too large for
 * the topic, not authorized). Then consumption resumes at that record, which is decided and
 * forwarded again. So one record the broker will not take stops its own partition, with the
 * committed offset right before it, and nothing else. */
#ifndef AW_FORWARD_HOLD_H
#define AW_FORWARD_HOLD_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

struct hold_entry {
	char *topic;
	int32_t partition;
	int64_t offset;    /* the record whose forward failed */
	int64_t until_ms;  /* monotonic */
	int failures;      /* in a row at this record: the backoff's attempt */
	int permanent;     /* refused for good: counted in /metrics, fails /readyz */
	int released;      /* its time is up: the held record alone may be consumed again; what
			    * follows it waits until it is settled */
	int forwarded;     /* released, and its forward is produced: settled when delivered */
	int reached;       /* the consumer went past the held record (records after it dropped):
			    * the release must seek back to it */
	int paused;        /* the consumer's partition is paused by us */
};

struct forward_hold {
	struct hold_entry *items;
	size_t n, cap;
};

/* Whether librdkafka's error is one no resend cures until an operator acts. */
int forward_error_is_permanent(rd_kafka_resp_err_t err);

/* Holds (topic, partition) from `offset` on, for `delay_ms` from now. Returns the entry. */
struct hold_entry *forward_hold_add(struct forward_hold *h, const char *topic,
				    int32_t partition, int64_t offset, int permanent,
				    int64_t now_ms);
struct hold_entry *forward_hold_find(struct forward_hold *h, const char *topic,
				     int32_t partition);
/* Whether a consumed record must be dropped: at or after the held one while held; after it
 * once released (the held record goes first, alone). */
int forward_hold_blocks(struct forward_hold *h, const char *topic, int32_t partition,
			int64_t offset);
/* Ends the holds whose time has come: adds each to `out`, for the caller to resume, with the
 * held record's offset to seek back to when the consumer went past it, else
 * RD_KAFKA_OFFSET_INVALID (the consumer is still on its way to it, after a rewind: a seek
 * forward would skip what lies between). */
void forward_hold_due(struct forward_hold *h, int64_t now_ms,
		      rd_kafka_topic_partition_list_t *out);
void forward_hold_drop(struct forward_hold *h, const char *topic, int32_t partition);
/* Holds refused for good (the /metrics gauge). */
size_t forward_hold_refused(const struct forward_hold *h);
void forward_hold_cleanup(struct forward_hold *h);

#endif
