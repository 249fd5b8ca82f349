/* Requeue and dead-letter: a copy of the input record (key, value, the producer's headers)
 * with the decision's x-* headers, produced into the worker's open Kafka transaction
 * (kafka_txn.h). It is settled when that transaction commits, together with its input offset;
 * if the transaction aborts, the input record is consumed again and decided again.
 *
 * A decided forward waits in the outbox (built, its request still open) until its record is
 * the first open one of its partition and no commit is under way: then the offset committed
 * with it covers it and every record before it, so no later owner of the partition consumes
 * it again (exactly once, SPEC 1), and the batch never waits for a commit. */
#ifndef AW_FORWARD_H
#define AW_FORWARD_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "kafka_txn.h"
#include "offset_tracker.h"
#include "record_headers.h"

/* Why a record is forwarded: becomes the x-error-* headers. */
struct forward_reason {
	const char *error_class;
	const char *sqlstate;   /* NULL or "" when the database did not answer */
	const char *constraint; /* NULL or "" when none */
	const char *message;
};

/* A forward ready to be produced: owns its copies. */
struct forward_out {
	struct forward_out *next;
	struct tracked_offset input; /* the record it settles */
	char *topic;
	void *key, *value;
	size_t key_len, value_len;
	rd_kafka_headers_t *hdrs;
};

/* Builds the copy of `in` for `topic` with the decision's headers. `attempts` = tries made so
 * far; `not_before_ms` > 0 adds x-retry-not-before. */
struct forward_out *forward_build(const char *worker_id, const rd_kafka_message_t *in,
				  const struct tracked_offset *input,
				  const struct record_origin *origin, const char *topic,
				  const struct forward_reason *why, int attempts,
				  int64_t not_before_ms);
/* Produces it into the open transaction and frees it. Returns 0, or -1 when it could not be
 * produced (the transaction is then doomed: see kafka_txn.h). */
int forward_send(struct kafka_txn *txn, struct forward_out *f);
void forward_out_free(struct forward_out *f);

/* Forwards decided and not yet produced, in decision order (few: a list). */
struct forward_outbox {
	struct forward_out *head;
	size_t count;
};

void forward_outbox_push(struct forward_outbox *o, struct forward_out *f);
/* Unlinks *pp (a link of the list) and returns it. */
struct forward_out *forward_outbox_unlink(struct forward_outbox *o, struct forward_out **pp);
void forward_outbox_cleanup(struct forward_outbox *o);

#endif
