/* Requests, from their Kafka records to their final state: decode, run the transaction for
 * a batch, then commit, requeue, dead-letter or retry in place. The shell: the decisions
 * (classification by SQLSTATE, requeue or dead letter, retry in place, which requests run
 * next) are worker/decide.h's; this file does the I/O (libpq, Kafka, logs, metrics). */
#ifndef AW_PROCESS_REQUEST_H
#define AW_PROCESS_REQUEST_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "record_headers.h"
#include "worker.h"

/* One record in a batch. The batch does not own msg. */
struct request_entry {
	const rd_kafka_message_t *msg;
	struct tracked_offset input;
	struct record_origin origin;
};

/* Settles every entry: on return each request is final, or in flight to the retry or
 * dead-letter topic, or handed back (partition revoked or shutting down: its offset stays
 * open and it is redelivered). Records of one partition must be in offset order. */
void process_batch(struct worker *w, struct request_entry *entries, size_t n);

/* Produces the forwards that waited for a commit to end (see forward.h), once none is under
 * way. */
void process_request_flush_forwards(struct worker *w);

/* Connects to PostgreSQL, waiting with backoff while it is unavailable. Returns 0, or -1 if
 * the worker must stop (signal) first. */
int process_request_connect(struct worker *w);

#endif
