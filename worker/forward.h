/* Requeue and dead-letter: a copy of the input record (key, value, the producer's headers)
 * with the decision's x-* headers, produced into the worker's open Kafka transaction
 * (kafka_txn.h). It is settled when that transaction commits, together with its input offset;
 * if the transaction aborts, the input record is consumed again and decided again. */
#ifndef AW_FORWARD_H
#define AW_FORWARD_H

#include <librdkafka/rdkafka.h>

#include "kafka_txn.h"
#include "record_headers.h"

/* Why a record is forwarded: becomes the x-error-* headers. */
struct forward_reason {
	const char *error_class;
	const char *sqlstate;   /* NULL or "" when the database did not answer */
	const char *constraint; /* NULL or "" when none */
	const char *message;
};

/* Produces a copy of `in` to `topic` with the decision's headers. `attempts` = tries made so
 * far; `not_before_ms` > 0 adds x-retry-not-before. Returns 0, or -1 when it could not be
 * produced (the transaction is then doomed and aborted at the next tick: see kafka_txn.h). */
int forward_record(struct kafka_txn *txn, const char *worker_id, const rd_kafka_message_t *in,
		   const struct txn_input *input, const struct record_origin *origin,
		   const char *topic, const struct forward_reason *why, int attempts,
		   int64_t not_before_ms);

#endif
