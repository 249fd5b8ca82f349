#include "forward_scan.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fnv1a.h"
#include "kafka_conf.h"
#include "log.h"
#include "record_headers.h"
#include "xalloc.h"

#define POLL_MS 100
#define REQUEST_MS 5000 /* one metadata, watermark or committed-offsets request */

/* ---- the set of records found forwarded ---- */

static int record_cmp(const void *a, const void *b)
{
	const struct forwarded_record *x = a, *y = b;
	int c = strcmp(x->topic, y->topic);
	if (c)
		return c;
	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* FNV-1a over the key's length, the key, and the value (a null key or value counts as
 * empty: not every client keeps the difference). */
uint64_t forwarded_digest(const rd_kafka_message_t *m)
{
	uint64_t klen = m->key ? (uint64_t)m->key_len : 0;
	uint64_t h = fnv1a_64(FNV1A_64_INIT, &klen, sizeof klen);
	if (m->key)
		h = fnv1a_64(h, m->key, m->key_len);
	if (m->payload)
		h = fnv1a_64(h, m->payload, m->len);
	return h;
}

static void set_add(struct forwarded_set *s, const char *topic, int32_t partition,
		    int64_t offset, const char *to_topic, int32_t to_partition, int64_t to_offset,
		    uint64_t digest)
{
	if (s->count == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct forwarded_record *items = realloc(s->items, cap * sizeof *items);
		if (!items)
			abort();
		s->items = items;
		s->cap = cap;
	}
	s->items[s->count++] = (struct forwarded_record){ xstrdup(topic), partition, offset,
							  xstrdup(to_topic), to_partition,
							  to_offset, digest };
}

int forwarded_set_take(struct forwarded_set *s, const rd_kafka_message_t *m, const char *topic,
		       int32_t partition, int64_t offset, struct forwarded_record *out)
{
	struct forwarded_record key = { (char *)topic, partition, offset, NULL, 0, 0, 0 };
	struct forwarded_record *hit;

	if (s->count == 0)
		return 0;
	hit = bsearch(&key, s->items, s->count, sizeof *s->items, record_cmp);
	if (!hit)
		return 0;
	*out = *hit;
	memmove(hit, hit + 1, (size_t)(s->items + s->count - (hit + 1)) * sizeof *hit);
	s->count--;
	return out->digest == forwarded_digest(m) ? 1 : -1;
}

void forwarded_record_cleanup(struct forwarded_record *r)
{
	free(r->topic);
	free(r->to_topic);
	memset(r, 0, sizeof *r);
}

void forwarded_set_drop_partition(struct forwarded_set *s, const char *topic, int32_t partition)
{
	size_t kept = 0;
	for (size_t i = 0; i < s->count; i++) {
		struct forwarded_record *r = &s->items[i];
		if (r->partition == partition && strcmp(r->topic, topic) == 0)
			forwarded_record_cleanup(r);
		else
			s->items[kept++] = *r;
	}
	s->count = kept;
}

void forwarded_set_cleanup(struct forwarded_set *s)
{
	for (size_t i = 0; i < s->count; i++)
		forwarded_record_cleanup(&s->items[i]);
	free(s->items);
	memset(s, 0, sizeof *s);
}

/* ---- the scanner ---- */

int forward_scanner_setup(struct forward_scanner *s, const struct config *cfg,
			  const char *client_id, struct forward_ledger *ledger, char *errbuf,
			  size_t errsize)
{
	char id[256], group[512];
	rd_kafka_conf_t *conf;

	memset(s, 0, sizeof *s);
	s->retry_topic = cfg->kafka.retry_topic;
	s->dlq_topic = cfg->kafka.dlq_topic;
	s->ledger = ledger;
	snprintf(id, sizeof id, "%s-scan", client_id);
	/* librdkafka wants a group.id to assign and poll; this one never joins or commits. */
	snprintf(group, sizeof group, "%s.forward-scan", cfg->kafka.group_id);
	conf = kafka_conf_new(cfg, KAFKA_CONSUMER, id, group, errbuf, errsize);
	if (!conf)
		return -1;
	s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errbuf, errsize);
	if (!s->rk) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	/* conf is now owned by s->rk */
	rd_kafka_poll_set_consumer(s->rk);
	return 0;
}

void forward_scanner_cleanup(struct forward_scanner *s)
{
	if (s->rk) {
		rd_kafka_consumer_close(s->rk);
		rd_kafka_destroy(s->rk);
	}
	memset(s, 0, sizeof *s);
}

/* One retry or dead-letter partition: where its records begin and end now. */
struct topic_end {
	const char *topic;
	int32_t partition;
	int64_t low, high;
	int64_t start; /* where the scan begins */
	int done;
};

struct ends {
	struct topic_end *items;
	size_t count;
};

/* Appends the partitions of `topic` with their watermarks. Returns 0 or -1. */
static int ends_add_topic(struct forward_scanner *s, struct ends *e, const char *topic)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(s->rk, topic, NULL);
	rd_kafka_resp_err_t err;
	int rc = -1;

	if (!rkt)
		return -1;
	err = rd_kafka_metadata(s->rk, 0, rkt, &md, REQUEST_MS);
	if (!err && md->topic_cnt == 1 &&
	    md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
		rc = 0; /* no such topic yet: nothing was forwarded there */
		goto out;
	}
	if (err || md->topic_cnt != 1 || md->topics[0].err) {
		log_warn("forward_scan_metadata_failed", LOG_S("topic", topic),
			 LOG_S("error", rd_kafka_err2str(err ? err
							     : md->topic_cnt == 1 ? md->topics[0].err
										  : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)));
		goto out;
	}
	const struct rd_kafka_metadata_topic *t = &md->topics[0];
	struct topic_end *items = realloc(e->items, (e->count + (size_t)t->partition_cnt + 1) *
							    sizeof *items);
	if (!items)
		abort();
	e->items = items;
	for (int i = 0; i < t->partition_cnt; i++) {
		struct topic_end *te = &e->items[e->count];
		*te = (struct topic_end){ topic, t->partitions[i].id, 0, 0, 0, 0 };
		err = rd_kafka_query_watermark_offsets(s->rk, topic, te->partition, &te->low,
						       &te->high, REQUEST_MS);
		if (err) {
			log_warn("forward_scan_watermarks_failed", LOG_S("topic", topic),
				 LOG_I("partition", te->partition), LOG_S("error", rd_kafka_err2str(err)));
			goto out;
		}
		e->count++;
	}
	rc = 0;
out:
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	return rc;
}

/* The retry and dead-letter partitions with their watermarks, asked again until `deadline`
 * (at least once). On failure `e` is left empty. */
static int ends_query(struct forward_scanner *s, struct ends *e, int raise_floors,
		      int64_t deadline)
{
	for (;;) {
		memset(e, 0, sizeof *e);
		if (ends_add_topic(s, e, s->retry_topic) == 0 &&
		    ends_add_topic(s, e, s->dlq_topic) == 0)
			break;
		free(e->items);
		memset(e, 0, sizeof *e);
		if (clock_mono_ms() >= deadline)
			return -1;
		rd_kafka_poll(s->rk, 500);
	}
	/* Our forwards from now on land at or beyond today's ends. */
	for (size_t i = 0; raise_floors && i < e->count; i++)
		forward_ledger_raise_floor(s->ledger, e->items[i].topic, e->items[i].partition,
					   e->items[i].high);
	return 0;
}

int forward_scanner_raise_floors(struct forward_scanner *s, int timeout_ms)
{
	struct ends e;
	int rc = ends_query(s, &e, 1, clock_mono_ms() + timeout_ms);
	free(e.items);
	return rc;
}

/* The committed offsets of `parts`, retried until the deadline. */
static int read_committed(rd_kafka_t *consumer, rd_kafka_topic_partition_list_t *parts,
			  int64_t deadline)
{
	for (;;) {
		rd_kafka_resp_err_t err = rd_kafka_committed(consumer, parts, REQUEST_MS);
		for (int i = 0; !err && i < parts->cnt; i++)
			err = parts->elems[i].err;
		if (!err)
			return 0;
		log_warn("forward_scan_committed_failed", LOG_S("error", rd_kafka_err2str(err)));
		if (clock_mono_ms() >= deadline)
			return -1;
	}
}

/* A record of the retry or dead-letter topic: if it was forwarded from one of `parts` at or
 * past its committed offset, remember it. */
static void examine(struct forward_scanner *s, const rd_kafka_message_t *m,
		    const rd_kafka_topic_partition_list_t *parts, struct forwarded_set *found)
{
	rd_kafka_headers_t *hdrs = NULL;
	const void *val;
	size_t len;
	int64_t partition, offset;
	char topic[256];

	if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    rd_kafka_header_get_last(hdrs, HDR_SOURCE_TOPIC, &val, &len) != 0 || !val ||
	    len == 0 || len >= sizeof topic ||
	    record_header_int(hdrs, HDR_SOURCE_PARTITION, &partition) < 0 ||
	    record_header_int(hdrs, HDR_SOURCE_OFFSET, &offset) < 0)
		return;
	memcpy(topic, val, len);
	topic[len] = '\0';
	for (int i = 0; i < parts->cnt; i++) {
		const rd_kafka_topic_partition_t *p = &parts->elems[i];
		if (p->partition != partition || strcmp(p->topic, topic) != 0)
			continue;
		if (p->offset >= 0 && offset < p->offset)
			return; /* committed: never redelivered */
		set_add(found, topic, p->partition, offset, rd_kafka_topic_name(m->rkt),
			m->partition, m->offset, forwarded_digest(m));
		forward_ledger_add(s->ledger, topic, p->partition, offset,
				   rd_kafka_topic_name(m->rkt), m->partition, m->offset);
		return;
	}
}

static struct topic_end *ends_find(struct ends *e, const char *topic, int32_t partition)
{
	for (size_t i = 0; i < e->count; i++)
		if (e->items[i].partition == partition && strcmp(e->items[i].topic, topic) == 0)
			return &e->items[i];
	return NULL;
}

/* Where each retry/DLQ partition's scan begins: the lowest floor among `parts`. */
static size_t plan_starts(struct forward_scanner *s, struct ends *e,
			  const rd_kafka_topic_partition_list_t *parts,
			  rd_kafka_topic_partition_list_t *assign)
{
	size_t todo = 0;
	struct forward_floors *floors = calloc((size_t)parts->cnt + 1, sizeof *floors);
	if (!floors)
		abort();
	for (int i = 0; i < parts->cnt; i++)
		forward_floors_parse(&floors[i], parts->elems[i].metadata,
				     parts->elems[i].metadata_size, s->retry_topic, s->dlq_topic);
	for (size_t k = 0; k < e->count; k++) {
		struct topic_end *te = &e->items[k];
		te->start = te->high;
		for (int i = 0; i < parts->cnt; i++) {
			int64_t f = forward_floors_get(&floors[i], s->retry_topic, te->topic,
						       te->partition);
			if (f < 0 || f < te->start)
				te->start = f < 0 ? te->low : f;
		}
		if (te->start < te->low)
			te->start = te->low;
		te->done = te->start >= te->high;
		log_debug("forward_scan_range", LOG_S("topic", te->topic),
			  LOG_I("partition", te->partition), LOG_I("from", te->start),
			  LOG_I("to", te->high));
		if (!te->done) {
			rd_kafka_topic_partition_list_add(assign, te->topic, te->partition)->offset =
				te->start;
			todo++;
		}
	}
	for (int i = 0; i < parts->cnt; i++)
		forward_floors_cleanup(&floors[i]);
	free(floors);
	return todo;
}

int forward_scanner_run(struct forward_scanner *s, rd_kafka_t *consumer,
			rd_kafka_topic_partition_list_t *parts, struct forwarded_set *found,
			int raise_floors, int timeout_ms)
{
	int64_t started = clock_mono_ms(), deadline = started + timeout_ms;
	rd_kafka_topic_partition_list_t *assign = NULL;
	size_t before = found->count, todo;
	int64_t records = 0;
	struct ends e = { 0 };
	rd_kafka_resp_err_t err;
	int rc = -1;

	if (parts->cnt == 0)
		return 0;
	if (read_committed(consumer, parts, deadline) < 0)
		goto out;
	if (ends_query(s, &e, raise_floors, deadline) < 0)
		goto out;
	assign = rd_kafka_topic_partition_list_new((int)e.count + 1);
	todo = plan_starts(s, &e, parts, assign);
	if (todo && (err = rd_kafka_assign(s->rk, assign)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		log_warn("forward_scan_assign_failed", LOG_S("error", rd_kafka_err2str(err)));
		goto out;
	}
	while (todo > 0 && clock_mono_ms() < deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(s->rk, POLL_MS);
		if (!m)
			continue;
		struct topic_end *te = m->rkt ? ends_find(&e, rd_kafka_topic_name(m->rkt),
							 m->partition)
					      : NULL;
		if (!m->err && te && !te->done && m->offset < te->high) {
			records++;
			examine(s, m, parts, found);
		}
		if (te && !te->done &&
		    ((!m->err && m->offset + 1 >= te->high) ||
		     (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && m->offset >= te->high))) {
			te->done = 1;
			todo--;
		}
		if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
			log_warn("forward_scan_error", LOG_S("error", rd_kafka_message_errstr(m)));
		rd_kafka_message_destroy(m);
	}
	rc = todo == 0 ? 0 : -1;
out:
	if (assign) {
		if (assign->cnt)
			rd_kafka_assign(s->rk, NULL);
		rd_kafka_topic_partition_list_destroy(assign);
	}
	free(e.items);
	if (found->count > 1)
		qsort(found->items, found->count, sizeof *found->items, record_cmp);
	if (rc < 0)
		log_warn("forward_scan_incomplete",
			 LOG_S("reason", "the retry and dead-letter topics could not be read to "
					 "their end in time; a redelivered request may be forwarded "
					 "twice"),
			 LOG_I("timeout_ms", timeout_ms));
	log_info("forward_scan", LOG_I("partitions", parts->cnt), LOG_I("records_read", records),
		 LOG_I("already_forwarded", (int64_t)(found->count - before)),
		 LOG_I("ms", clock_mono_ms() - started));
	return rc;
}
