#include "forward_hold.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

int forward_error_is_permanent(rd_kafka_resp_err_t err)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_INVALID_RECORD:
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
	case RD_KAFKA_RESP_ERR__INVALID_ARG:
		return 1;
	default:
		return 0;
	}
}

struct hold_entry *forward_hold_find(struct forward_hold *h, const char *topic,
				     int32_t partition)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->items[i].partition == partition && strcmp(h->items[i].topic, topic) == 0)
			return &h->items[i];
	return NULL;
}

struct hold_entry *forward_hold_add(struct forward_hold *h, const char *topic,
				    int32_t partition, int64_t offset, int permanent,
				    int64_t now_ms)
{
	struct hold_entry *e = forward_hold_find(h, topic, partition);
	if (!e) {
		if (h->n == h->cap) {
			h->cap = h->cap ? h->cap * 2 : 4;
			h->items = realloc(h->items, h->cap * sizeof *h->items);
			if (!h->items)
				abort();
		}
		e = &h->items[h->n++];
		memset(e, 0, sizeof *e);
		e->topic = xstrdup(topic);
		e->partition = partition;
		e->offset = offset;
	}
	/* The same record failing again counts toward its backoff; an earlier one restarts it. */
	e->failures = offset == e->offset ? e->failures + 1 : 1;
	if (offset < e->offset || e->released)
		e->offset = offset;
	e->permanent = permanent;
	e->released = 0;
	e->forwarded = 0;
	e->reached = 0;
	e->until_ms = now_ms; /* the caller sets the delay (it knows the backoff policy) */
	return e;
}

int forward_hold_blocks(struct forward_hold *h, const char *topic, int32_t partition,
			int64_t offset)
{
	const struct hold_entry *e = h->n ? forward_hold_find(h, topic, partition) : NULL;
	return e && (e->released ? offset > e->offset : offset >= e->offset);
}

void forward_hold_due(struct forward_hold *h, int64_t now_ms,
		      rd_kafka_topic_partition_list_t *out)
{
	for (size_t i = 0; i < h->n; i++) {
		struct hold_entry *e = &h->items[i];
		if (e->released || e->until_ms > now_ms)
			continue;
		e->released = 1;
		e->paused = 0;
		rd_kafka_topic_partition_list_add(out, e->topic, e->partition)->offset =
			e->reached ? e->offset : RD_KAFKA_OFFSET_INVALID;
		e->reached = 0;
	}
}

static void remove_at(struct forward_hold *h, size_t i)
{
	free(h->items[i].topic);
	h->items[i] = h->items[--h->n];
}

void forward_hold_drop(struct forward_hold *h, const char *topic, int32_t partition)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->items[i].partition == partition && strcmp(h->items[i].topic, topic) == 0) {
			remove_at(h, i);
			return;
		}
}

size_t forward_hold_refused(const struct forward_hold *h)
{
	size_t n = 0;
	for (size_t i = 0; i < h->n; i++)
		n += h->items[i].permanent != 0;
	return n;
}

void forward_hold_cleanup(struct forward_hold *h)
{
	while (h->n)
		remove_at(h, h->n - 1);
	free(h->items);
	memset(h, 0, sizeof *h);
}
