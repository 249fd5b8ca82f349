#include "forward.h"

int forward_record(struct kafka_txn *txn, const char *worker_id, const rd_kafka_message_t *in,
		   const struct txn_input *input, const struct record_origin *origin,
		   const char *topic, const struct forward_reason *why, int attempts,
		   int64_t not_before_ms)
{
	rd_kafka_headers_t *orig = NULL, *h;

	/* The producer's headers travel unchanged; our previous decision's are replaced. */
	if (rd_kafka_message_headers(in, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR)
		h = rd_kafka_headers_copy(orig);
	else
		h = rd_kafka_headers_new(12);
	record_headers_strip_decision(h);

	rd_kafka_header_add(h, HDR_ERROR_CLASS, -1, why->error_class, -1);
	if (why->sqlstate && *why->sqlstate)
		rd_kafka_header_add(h, HDR_ERROR_SQLSTATE, -1, why->sqlstate, -1);
	if (why->constraint && *why->constraint)
		rd_kafka_header_add(h, HDR_ERROR_CONSTRAINT, -1, why->constraint, -1);
	if (why->message)
		rd_kafka_header_add(h, HDR_ERROR_MESSAGE, -1, why->message, -1);
	/* origin already holds the first arrival (read from valid x-original-* headers, or
	 * this record's own place), so the three are always written together. */
	rd_kafka_header_remove(h, HDR_ORIGINAL_TOPIC);
	rd_kafka_header_remove(h, HDR_ORIGINAL_PARTITION);
	rd_kafka_header_remove(h, HDR_ORIGINAL_OFFSET);
	rd_kafka_header_add(h, HDR_ORIGINAL_TOPIC, -1, origin->topic, -1);
	record_header_add_int(h, HDR_ORIGINAL_PARTITION, origin->partition);
	record_header_add_int(h, HDR_ORIGINAL_OFFSET, origin->offset);
	record_header_add_int(h, HDR_ATTEMPT, attempts);
	if (not_before_ms > 0)
		record_header_add_int(h, HDR_RETRY_NOT_BEFORE, not_before_ms);
	rd_kafka_header_add(h, HDR_WORKER_ID, -1, worker_id, -1);

	/* h is taken by the producer, or freed on failure */
	return kafka_txn_produce(txn, input, topic, in->key, in->key_len, in->payload, in->len, h);
}
