/* The x-* headers of SPEC section 4: their names, and reading/writing them on records. */
#ifndef AW_RECORD_HEADERS_H
#define AW_RECORD_HEADERS_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#define HDR_ERROR_CLASS "x-error-class"
#define HDR_ERROR_SQLSTATE "x-error-sqlstate"
#define HDR_ERROR_CONSTRAINT "x-error-constraint"
#define HDR_ERROR_MESSAGE "x-error-message"
#define HDR_ORIGINAL_TOPIC "x-original-topic"
#define HDR_ORIGINAL_PARTITION "x-original-partition"
#define HDR_ORIGINAL_OFFSET "x-original-offset"
#define HDR_ATTEMPT "x-attempt"
#define HDR_RETRY_NOT_BEFORE "x-retry-not-before"
#define HDR_WORKER_ID "x-worker-id"
#define HDR_REPLAYED "x-replayed"

/* Where a request first arrived and how often it was tried, read from a record. */
struct record_origin {
	char topic[256];
	int32_t partition;
	int64_t offset;
	int attempts;          /* x-attempt, 0 when absent */
	int64_t not_before_ms; /* x-retry-not-before, 0 when absent */
};

/* Fills `o` from the record's x-original-* (or, on a first arrival, the record's own place),
 * and, for a record of `retry_topic` only, x-attempt and x-retry-not-before (on any other
 * topic they are a producer's, not ours). Malformed header values count as absent. */
void record_origin_read(const rd_kafka_message_t *m, const char *retry_topic,
			struct record_origin *o);

/* Reads the last header `name` as a decimal integer. Returns 0, or -1 if absent/invalid. */
int record_header_int(rd_kafka_headers_t *hdrs, const char *name, int64_t *out);

/* Removes every header this worker writes when deciding (x-error-*, x-attempt,
 * x-retry-not-before, x-worker-id), keeping the producer's own and x-original-*. */
void record_headers_strip_decision(rd_kafka_headers_t *hdrs);

/* Adds a header with a decimal value. */
void record_header_add_int(rd_kafka_headers_t *hdrs, const char *name, int64_t v);

#endif
