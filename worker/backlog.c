#include "backlog.h"

#include <stdlib.h>
#include <string.h>

void backlog_push(struct backlog *b, rd_kafka_message_t *msg, const struct tracked_offset *input)
{
	if (b->count == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct backlog_entry *items = malloc(cap * sizeof *items);
		if (!items)
			abort();
		for (size_t i = 0; i < b->count; i++)
			items[i] = b->items[(b->head + i) % b->cap];
		free(b->items);
		b->items = items;
		b->cap = cap;
		b->head = 0;
	}
	b->items[(b->head + b->count++) % b->cap] = (struct backlog_entry){ msg, *input };
}

int backlog_pop(struct backlog *b, struct backlog_entry *out)
{
	if (b->count == 0)
		return -1;
	*out = b->items[b->head];
	b->head = (b->head + 1) % b->cap;
	b->count--;
	return 0;
}

void backlog_drop_partition(struct backlog *b, const char *topic, int32_t partition)
{
	size_t kept = 0;
	for (size_t i = 0; i < b->count; i++) {
		struct backlog_entry e = b->items[(b->head + i) % b->cap];
		if (e.input.partition == partition && strcmp(e.input.topic, topic) == 0)
			rd_kafka_message_destroy(e.msg);
		else
			b->items[(b->head + kept++) % b->cap] = e;
	}
	b->count = kept;
}

void backlog_cleanup(struct backlog *b)
{
	struct backlog_entry e;
	while (backlog_pop(b, &e) == 0)
		rd_kafka_message_destroy(e.msg);
	free(b->items);
	memset(b, 0, sizeof *b);
}
