#include "retry_delay.h"

#include <stdlib.h>
#include <string.h>

void retry_delay_init(struct retry_delay *d) { memset(d, 0, sizeof *d); }

static void swap(struct delayed_record *a, struct delayed_record *b)
{
	struct delayed_record t = *a;
	*a = *b;
	*b = t;
}

static void sift_up(struct retry_delay *d, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (d->heap[parent].due_wall_ms <= d->heap[i].due_wall_ms)
			break;
		swap(&d->heap[parent], &d->heap[i]);
		i = parent;
	}
}

static void sift_down(struct retry_delay *d, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;
		if (l < d->count && d->heap[l].due_wall_ms < d->heap[min].due_wall_ms)
			min = l;
		if (r < d->count && d->heap[r].due_wall_ms < d->heap[min].due_wall_ms)
			min = r;
		if (min == i)
			return;
		swap(&d->heap[i], &d->heap[min]);
		i = min;
	}
}

void retry_delay_hold(struct retry_delay *d, rd_kafka_message_t *msg,
		      const struct tracked_offset *input, int64_t due_wall_ms)
{
	if (d->count == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct delayed_record *h = realloc(d->heap, cap * sizeof *h);
		if (!h)
			abort();
		d->heap = h;
		d->cap = cap;
	}
	d->heap[d->count] = (struct delayed_record){ due_wall_ms, msg, *input };
	sift_up(d, d->count++);
}

int retry_delay_pop_due(struct retry_delay *d, int64_t now_wall_ms, struct delayed_record *out)
{
	if (d->count == 0 || d->heap[0].due_wall_ms > now_wall_ms)
		return -1;
	*out = d->heap[0];
	d->heap[0] = d->heap[--d->count];
	sift_down(d, 0);
	return 0;
}

int64_t retry_delay_next_in(const struct retry_delay *d, int64_t now_wall_ms)
{
	if (d->count == 0)
		return -1;
	int64_t in = d->heap[0].due_wall_ms - now_wall_ms;
	return in > 0 ? in : 0;
}

size_t retry_delay_drop_partition(struct retry_delay *d, const char *topic, int32_t partition)
{
	size_t dropped = 0;
	for (size_t i = 0; i < d->count;) {
		struct delayed_record *r = &d->heap[i];
		if (r->input.partition == partition && strcmp(r->input.topic, topic) == 0) {
			rd_kafka_message_destroy(r->msg);
			d->heap[i] = d->heap[--d->count];
			dropped++;
		} else {
			i++;
		}
	}
	/* Rebuild the heap after arbitrary removals. */
	for (size_t i = d->count / 2 + 1; i-- > 0;)
		sift_down(d, i);
	return dropped;
}

void retry_delay_cleanup(struct retry_delay *d)
{
	for (size_t i = 0; i < d->count; i++)
		rd_kafka_message_destroy(d->heap[i].msg);
	free(d->heap);
	memset(d, 0, sizeof *d);
}
