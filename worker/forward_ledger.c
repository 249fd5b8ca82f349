#include "forward_ledger.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* Metadata: "aw-fwd1;<retry topic>=<floor>,<floor>,...;<dlq topic>=<floor>,..." with one
 * decimal floor per partition, in partition order; an empty field is unknown. */
#define METADATA_TAG "aw-fwd1"

/* Floors of one topic, indexed by partition; -1 unknown. */
struct floor_list {
	char *topic;
	int64_t *floor;
	int n;
};

/* A forward whose input offset is not committed yet. */
struct ledger_entry {
	char *in_topic;
	int32_t in_partition;
	int64_t in_offset;
	int which; /* 0 retry, 1 dlq */
	int32_t partition;
	int64_t offset;
};

struct forward_ledger {
	struct floor_list topics[2]; /* retry, dlq */
	struct ledger_entry *entries;
	size_t count, cap;
};

struct forward_ledger *forward_ledger_new(const char *retry_topic, const char *dlq_topic)
{
	struct forward_ledger *l = calloc(1, sizeof *l);
	if (!l)
		abort();
	l->topics[0].topic = xstrdup(retry_topic);
	l->topics[1].topic = xstrdup(dlq_topic);
	return l;
}

void forward_ledger_free(struct forward_ledger *l)
{
	if (!l)
		return;
	for (int i = 0; i < 2; i++) {
		free(l->topics[i].topic);
		free(l->topics[i].floor);
	}
	for (size_t i = 0; i < l->count; i++)
		free(l->entries[i].in_topic);
	free(l->entries);
	free(l);
}

static int topic_index(const struct forward_ledger *l, const char *topic)
{
	for (int i = 0; i < 2; i++)
		if (strcmp(l->topics[i].topic, topic) == 0)
			return i;
	return -1;
}

void forward_ledger_raise_floor(struct forward_ledger *l, const char *topic, int32_t partition,
				int64_t offset)
{
	int t = topic_index(l, topic);
	if (t < 0 || partition < 0 || partition > 100000 || offset < 0)
		return;
	struct floor_list *fl = &l->topics[t];
	if (partition >= fl->n) {
		int n = partition + 1;
		int64_t *f = realloc(fl->floor, (size_t)n * sizeof *f);
		if (!f)
			abort();
		for (int i = fl->n; i < n; i++)
			f[i] = -1;
		fl->floor = f;
		fl->n = n;
	}
	if (offset > fl->floor[partition])
		fl->floor[partition] = offset;
}

void forward_ledger_add(struct forward_ledger *l, const char *in_topic, int32_t in_partition,
			int64_t in_offset, const char *topic, int32_t partition, int64_t offset)
{
	int t = topic_index(l, topic);
	if (t < 0)
		return;
	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct ledger_entry *e = realloc(l->entries, cap * sizeof *e);
		if (!e)
			abort();
		l->entries = e;
		l->cap = cap;
	}
	l->entries[l->count++] = (struct ledger_entry){ xstrdup(in_topic), in_partition,
							in_offset, t, partition, offset };
}

void forward_ledger_committed(struct forward_ledger *l, const char *in_topic,
			      int32_t in_partition, int64_t committed)
{
	size_t kept = 0;
	for (size_t i = 0; i < l->count; i++) {
		struct ledger_entry *e = &l->entries[i];
		if (e->in_partition == in_partition && strcmp(e->in_topic, in_topic) == 0 &&
		    (committed < 0 || e->in_offset < committed))
			free(e->in_topic);
		else
			l->entries[kept++] = *e;
	}
	l->count = kept;
}

/* The floor to write for partition p of topic t, for commits of the given input partition. */
static int64_t floor_for(const struct forward_ledger *l, int t, int32_t p, const char *in_topic,
			 int32_t in_partition)
{
	const struct floor_list *fl = &l->topics[t];
	int64_t f = p < fl->n ? fl->floor[p] : -1;
	if (f < 0)
		return -1; /* where our next forward lands is unknown: so is the floor */
	for (size_t i = 0; i < l->count; i++) {
		const struct ledger_entry *e = &l->entries[i];
		if (e->which == t && e->partition == p && e->in_partition == in_partition &&
		    e->offset < f && strcmp(e->in_topic, in_topic) == 0)
			f = e->offset;
	}
	return f;
}

int forward_ledger_metadata(const struct forward_ledger *l, const char *in_topic,
			    int32_t in_partition, char *buf, size_t size)
{
	size_t max = size < FORWARD_LEDGER_METADATA_MAX + 1 ? size : FORWARD_LEDGER_METADATA_MAX + 1;
	size_t n = 0;
	int w = snprintf(buf, max, "%s", METADATA_TAG);

	if (w < 0 || (size_t)w >= max)
		return -1;
	n = (size_t)w;
	for (int t = 0; t < 2; t++) {
		const struct floor_list *fl = &l->topics[t];
		w = snprintf(buf + n, max - n, ";%s=", fl->topic);
		if (w < 0 || (size_t)w >= max - n)
			return -1;
		n += (size_t)w;
		for (int p = 0; p < fl->n; p++) {
			int64_t f = floor_for(l, t, p, in_topic, in_partition);
			if (f >= 0)
				w = snprintf(buf + n, max - n, "%s%" PRId64, p ? "," : "", f);
			else
				w = snprintf(buf + n, max - n, "%s", p ? "," : "");
			if (w < 0 || (size_t)w >= max - n)
				return -1;
			n += (size_t)w;
		}
	}
	return (int)n;
}

/* Parses "<topic>=<f>,<f>,..." up to `end`; returns 0 or -1. */
static int parse_topic(const char *s, const char *end, const char *topic, int64_t **out,
		       int *nout)
{
	size_t tl = strlen(topic);
	int n = 1;

	if ((size_t)(end - s) < tl + 1 || memcmp(s, topic, tl) != 0 || s[tl] != '=')
		return -1;
	s += tl + 1;
	for (const char *c = s; c < end; c++)
		n += *c == ',';
	if (s == end)
		n = 0;
	int64_t *f = calloc((size_t)(n ? n : 1), sizeof *f);
	if (!f)
		abort();
	for (int i = 0; i < n; i++) {
		int64_t v = -1;
		if (s < end && *s != ',') {
			v = 0;
			for (; s < end && *s != ','; s++) {
				if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10) {
					free(f);
					return -1;
				}
				v = v * 10 + (*s - '0');
			}
		}
		f[i] = v;
		if (s < end)
			s++; /* the comma */
	}
	*out = f;
	*nout = n;
	return 0;
}

void forward_floors_parse(struct forward_floors *f, const void *meta, size_t len,
			  const char *retry_topic, const char *dlq_topic)
{
	const char *s = meta, *end = s ? s + len : NULL;
	const char *sep;
	size_t tag = strlen(METADATA_TAG);

	memset(f, 0, sizeof *f);
	if (!s || len < tag + 1 || memcmp(s, METADATA_TAG, tag) != 0 || s[tag] != ';' ||
	    memchr(s, '\0', len))
		return;
	s += tag + 1;
	sep = memchr(s, ';', (size_t)(end - s));
	if (!sep || parse_topic(s, sep, retry_topic, &f->retry, &f->nretry) < 0 ||
	    parse_topic(sep + 1, end, dlq_topic, &f->dlq, &f->ndlq) < 0) {
		forward_floors_cleanup(f);
		return;
	}
	f->valid = 1;
}

int64_t forward_floors_get(const struct forward_floors *f, const char *retry_topic,
			   const char *topic, int32_t partition)
{
	int retry = strcmp(topic, retry_topic) == 0;
	const int64_t *fl = retry ? f->retry : f->dlq;
	int n = retry ? f->nretry : f->ndlq;
	if (!f->valid || partition < 0 || partition >= n)
		return -1;
	return fl[partition];
}

void forward_floors_cleanup(struct forward_floors *f)
{
	free(f->retry);
	free(f->dlq);
	memset(f, 0, sizeof *f);
}
