#include "offset_tracker.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* Open offsets of one partition, oldest first, in a growable ring. */
struct partition_track {
	char *topic;
	int32_t partition;
	int assigned;
	uint32_t generation;
	int64_t last_opened; /* -1 after assign */
	int64_t *offsets;
	uint8_t *closed;
	size_t head, count, cap;
};

struct offset_tracker {
	struct partition_track *parts;
	size_t nparts, capparts;
	uint32_t next_generation;
};

struct offset_tracker *offset_tracker_new(void)
{
	struct offset_tracker *t = calloc(1, sizeof *t);
	if (t)
		t->next_generation = 1;
	return t;
}

void offset_tracker_free(struct offset_tracker *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nparts; i++) {
		free(t->parts[i].topic);
		free(t->parts[i].offsets);
		free(t->parts[i].closed);
	}
	free(t->parts);
	free(t);
}

static struct partition_track *find(const struct offset_tracker *t, const char *topic,
				    int32_t partition)
{
	for (size_t i = 0; i < t->nparts; i++)
		if (t->parts[i].partition == partition && strcmp(t->parts[i].topic, topic) == 0)
			return &t->parts[i];
	return NULL;
}

void offset_tracker_assign(struct offset_tracker *t, const char *topic, int32_t partition)
{
	struct partition_track *p = find(t, topic, partition);
	if (!p) {
		if (t->nparts == t->capparts) {
			size_t cap = t->capparts ? t->capparts * 2 : 16;
			struct partition_track *np = realloc(t->parts, cap * sizeof *np);
			if (!np)
				abort(); /* out of memory while tracking offsets: cannot stay correct */
			t->parts = np;
			t->capparts = cap;
		}
		p = &t->parts[t->nparts++];
		memset(p, 0, sizeof *p);
		p->topic = xstrdup(topic);
		p->partition = partition;
	}
	p->assigned = 1;
	p->generation = t->next_generation++;
	p->last_opened = -1;
	p->head = p->count = 0;
}

void offset_tracker_revoke(struct offset_tracker *t, const char *topic, int32_t partition)
{
	struct partition_track *p = find(t, topic, partition);
	if (p) {
		p->assigned = 0;
		p->head = p->count = 0;
	}
}

int offset_tracker_is_assigned(const struct offset_tracker *t, const char *topic,
			       int32_t partition)
{
	const struct partition_track *p = find(t, topic, partition);
	return p && p->assigned;
}

int offset_tracker_is_current(const struct offset_tracker *t, const struct tracked_offset *ref)
{
	const struct partition_track *p = find(t, ref->topic, ref->partition);
	return p && p->assigned && p->generation == ref->generation;
}

static void grow(struct partition_track *p)
{
	size_t cap = p->cap ? p->cap * 2 : 64;
	int64_t *offs = malloc(cap * sizeof *offs);
	uint8_t *closed = malloc(cap);
	if (!offs || !closed)
		abort();
	for (size_t i = 0; i < p->count; i++) {
		offs[i] = p->offsets[(p->head + i) % p->cap];
		closed[i] = p->closed[(p->head + i) % p->cap];
	}
	free(p->offsets);
	free(p->closed);
	p->offsets = offs;
	p->closed = closed;
	p->cap = cap;
	p->head = 0;
}

int offset_tracker_open(struct offset_tracker *t, const char *topic, int32_t partition,
			int64_t offset, struct tracked_offset *out)
{
	struct partition_track *p = find(t, topic, partition);
	/* A record already opened in this assignment (librdkafka re-fetching after a resume)
	 * is in hand already: opening it twice would break the order the search relies on. */
	if (!p || !p->assigned || offset <= p->last_opened)
		return -1;
	p->last_opened = offset;
	if (p->count == p->cap)
		grow(p);
	size_t slot = (p->head + p->count) % p->cap;
	p->offsets[slot] = offset;
	p->closed[slot] = 0;
	p->count++;
	*out = (struct tracked_offset){ p->topic, partition, offset, p->generation };
	return 0;
}

int64_t offset_tracker_close(struct offset_tracker *t, const struct tracked_offset *ref)
{
	struct partition_track *p = find(t, ref->topic, ref->partition);
	int64_t committable = -1;
	if (!p || !p->assigned || p->generation != ref->generation)
		return -1;
	/* Binary search: open offsets are increasing along the ring. */
	size_t lo = 0, hi = p->count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (p->offsets[(p->head + mid) % p->cap] < ref->offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == p->count || p->offsets[(p->head + lo) % p->cap] != ref->offset)
		return -1;
	p->closed[(p->head + lo) % p->cap] = 1;
	while (p->count > 0 && p->closed[p->head]) {
		committable = p->offsets[p->head] + 1;
		p->head = (p->head + 1) % p->cap;
		p->count--;
	}
	return committable;
}

int64_t offset_tracker_committable(const struct offset_tracker *t, const char *topic,
				   int32_t partition)
{
	const struct partition_track *p = find(t, topic, partition);
	if (!p || !p->assigned || p->last_opened < 0)
		return -1;
	return p->count > 0 ? p->offsets[p->head] : p->last_opened + 1;
}

int64_t offset_tracker_at_end(struct offset_tracker *t, const char *topic, int32_t partition,
			      int64_t end)
{
	struct partition_track *p = find(t, topic, partition);
	if (!p || !p->assigned || p->count > 0 || end <= p->last_opened + 1)
		return -1;
	p->last_opened = end - 1; /* nothing below `end` may be opened in this assignment now */
	return end;
}

size_t offset_tracker_open_count(const struct offset_tracker *t)
{
	size_t n = 0;
	for (size_t i = 0; i < t->nparts; i++)
		n += t->parts[i].count;
	return n;
}
