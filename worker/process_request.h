/* One request, from its Kafka record to its final state: decode, run the transaction,
 * classify a failure by SQLSTATE, then commit, requeue, dead-letter or retry in place. */
#ifndef AW_PROCESS_REQUEST_H
#define AW_PROCESS_REQUEST_H

#include <librdkafka/rdkafka.h>

#include "record_headers.h"
#include "worker.h"

/* Does not take msg. On return the request is final, or in flight to the retry or dead-letter
 * topic, or abandoned (revoked or shutting down: its offset stays open, it is redelivered). */
void process_request(struct worker *w, const rd_kafka_message_t *msg,
		     const struct tracked_offset *input, const struct record_origin *origin);

/* Connects to PostgreSQL, waiting with backoff while it is unavailable. Returns 0, or -1 if
 * the worker must stop (signal) first. */
int process_request_connect(struct worker *w);

#endif
