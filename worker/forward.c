#include "forward.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static void *dup_bytes(const void *p, size_t n)
{
	void *d;
	if (!p)
		return NULL;
	d = malloc(n ? n : 1);
	if (!d)
		abort();
	memcpy(d, p, n);
	return d;
}

struct forward_out *forward_build(const char *worker_id, const rd_kafka_message_t *in,
				  const struct tracked_offset *input,
				  const struct record_origin *origin, const char *topic,
				  const struct forward_reason *why, int attempts,
				  int64_t not_before_ms)
{
	struct forward_out *f = calloc(1, sizeof *f);
	rd_kafka_headers_t *orig = NULL, *h;

	if (!f)
		abort();
	f->input = *input;
	f->topic = xstrdup(topic);
	f->key = dup_bytes(in->key, in->key_len);
	f->key_len = in->key_len;
	f->value = dup_bytes(in->payload, in->len);
	f->value_len = in->len;

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
	f->hdrs = h;
	return f;
}

int forward_send(struct kafka_txn *txn, struct forward_out *f)
{
	struct txn_input in = { f->input.topic, f->input.partition, f->input.offset };
	int rc = kafka_txn_produce(txn, &in, f->topic, f->key, f->key_len, f->value, f->value_len,
				   f->hdrs);
	f->hdrs = NULL; /* taken by the producer, or freed on failure */
	forward_out_free(f);
	return rc;
}

void forward_out_free(struct forward_out *f)
{
	if (!f)
		return;
	free(f->topic);
	free(f->key);
	free(f->value);
	if (f->hdrs)
		rd_kafka_headers_destroy(f->hdrs);
	free(f);
}

void forward_outbox_push(struct forward_outbox *o, struct forward_out *f)
{
	struct forward_out **pp = &o->head;
	while (*pp)
		pp = &(*pp)->next;
	f->next = NULL;
	*pp = f;
	o->count++;
}

struct forward_out *forward_outbox_unlink(struct forward_outbox *o, struct forward_out **pp)
{
	struct forward_out *f = *pp;
	*pp = f->next;
	f->next = NULL;
	o->count--;
	return f;
}

void forward_outbox_cleanup(struct forward_outbox *o)
{
	while (o->head)
		forward_out_free(forward_outbox_unlink(o, &o->head));
}
