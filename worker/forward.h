/* Requeue and dead-letter: re-producing an input record to the retry or dead-letter topic
 * with the decision's headers, and completing its input offset only when the broker
 * acknowledged it (delivery report). A failed delivery is produced again after a backoff:
 * the record is never dropped and its input offset never committed before it is safe.
 * Retriable errors are resent on retry.*'s backoff; permanent ones (too large for the topic,
 * not authorized) are logged as errors (forward_refused), counted in /metrics, fail /readyz,
 * and resent every retry.max_backoff_ms, so a fixed topic config lets the worker go on. */
#ifndef AW_FORWARD_H
#define AW_FORWARD_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "backoff.h"
#include "config.h"
#include "offset_tracker.h"
#include "record_headers.h"

/* Why a record is forwarded: becomes the x-error-* headers. */
struct forward_reason {
	const char *error_class;
	const char *sqlstate;   /* NULL or "" when the database did not answer */
	const char *constraint; /* NULL or "" when none */
	const char *message;
};

/* Called when a forwarded record is acknowledged and its input offset may be completed. */
typedef void(forward_done_cb)(void *opaque, const struct tracked_offset *input,
			      const char *topic, int32_t partition, int64_t offset);

struct forward_ticket;

struct forwarder {
	rd_kafka_t *producer;
	const char *worker_id; /* borrowed */
	struct backoff_policy resend_backoff;
	forward_done_cb *done_cb;
	void *done_opaque;
	size_t inflight;                 /* produced, not yet acknowledged */
	size_t refused;                  /* waiting after a permanent refusal (too large, ACL) */
	/* The input partitions of those: offset = how many of their forwards are refused. The
	 * consume loop pauses them until every one is accepted. */
	rd_kafka_topic_partition_list_t *refused_inputs;
	int closing;                     /* shutting down: reports only free their tickets */
	int fatal;                       /* the idempotent producer failed for good: exit 1 */
	struct forward_ticket *resend;   /* failed deliveries waiting for their next try */
	/* Borrowed; when set, a failed delivery whose input partition is no longer ours (a
	 * revoke, a lost assignment) is dropped rather than sent again: the partition's new
	 * owner settles the request, and a late copy of ours would be a second one. */
	const struct offset_tracker *tracker;
};

int forwarder_setup(struct forwarder *f, const struct config *cfg, const char *worker_id,
		    forward_done_cb *done_cb, void *done_opaque, char *errbuf, size_t errsize);
/* Flushes what it can within timeout_ms; what is still unacknowledged is dropped unsent
 * (its input offset stays uncommitted, so the record is redelivered). */
void forwarder_cleanup(struct forwarder *f, int timeout_ms);

/* Produces a copy of `in` (key, value, headers) to `topic` with the decision's headers.
 * `attempts` = tries made so far; `not_before_ms` > 0 adds x-retry-not-before.
 * Returns 0, or -1 if it could not even be queued (then it is queued for a resend). */
int forward_record(struct forwarder *f, const rd_kafka_message_t *in,
		   const struct tracked_offset *input, const struct record_origin *origin,
		   const char *topic, const struct forward_reason *why, int attempts,
		   int64_t not_before_ms);

/* Serves delivery reports and due resends. Call often from the loop. */
void forwarder_poll(struct forwarder *f, int timeout_ms);
/* Waits up to timeout_ms for everything in flight to be acknowledged. Returns what is left. */
size_t forwarder_flush(struct forwarder *f, int timeout_ms);
/* Drops the failed deliveries waiting for a resend whose input partition is no longer ours
 * (see forwarder.tracker). */
void forwarder_drop_stale(struct forwarder *f);
/* Records produced or waiting for a resend. */
size_t forwarder_pending(const struct forwarder *f);

#endif
