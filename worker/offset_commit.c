#include "offset_commit.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

void offset_commits_init(struct offset_commits *c)
{
	memset(c, 0, sizeof *c);
	c->next = rd_kafka_topic_partition_list_new(16);
	c->sent = rd_kafka_topic_partition_list_new(16);
	c->last_ms = c->refreshed_ms = clock_mono_ms();
}

void offset_commits_cleanup(struct offset_commits *c)
{
	if (c->next)
		rd_kafka_topic_partition_list_destroy(c->next);
	if (c->sent)
		rd_kafka_topic_partition_list_destroy(c->sent);
	memset(c, 0, sizeof *c);
}

void partition_list_set(rd_kafka_topic_partition_list_t *l, const char *topic,
			int32_t partition, int64_t offset)
{
	rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(l, topic, partition);
	if (!p)
		p = rd_kafka_topic_partition_list_add(l, topic, partition);
	p->offset = offset;
}

void offset_commits_set(struct offset_commits *c, const char *topic, int32_t partition,
			int64_t next)
{
	partition_list_set(c->next, topic, partition, next);
}

void offset_commits_known(struct offset_commits *c, const char *topic, int32_t partition,
			  int64_t committed)
{
	partition_list_set(c->next, topic, partition, committed);
	partition_list_set(c->sent, topic, partition, committed);
}

void offset_commits_forget(struct offset_commits *c, const char *topic, int32_t partition)
{
	rd_kafka_topic_partition_list_del(c->next, topic, partition);
	rd_kafka_topic_partition_list_del(c->sent, topic, partition);
}

/* Adds (topic, partition) at `offset` to `out`, with the ledger's floors as metadata. */
static void add_with_floors(rd_kafka_topic_partition_list_t *out,
			    const struct forward_ledger *ledger, const char *topic,
			    int32_t partition, int64_t offset)
{
	char meta[FORWARD_LEDGER_METADATA_MAX + 1];
	rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_add(out, topic, partition);
	int len = forward_ledger_metadata(ledger, topic, partition, meta, sizeof meta);

	p->offset = offset;
	if (len < 0) {
		static int warned;
		if (!warned++)
			log_warn("commit_metadata_too_large",
				 LOG_S("reason", "too many retry/dead-letter partitions to name in "
						 "a commit; the next owner reads those topics from "
						 "their beginning"));
		return;
	}
	p->metadata = malloc((size_t)len);
	if (!p->metadata)
		abort();
	memcpy(p->metadata, meta, (size_t)len);
	p->metadata_size = (size_t)len;
}

/* Commits the partitions of `which` (NULL: all known) whose offset moved, or all of them
 * when `all`. */
static int commit(struct offset_commits *c, rd_kafka_t *consumer,
		  const struct forward_ledger *ledger,
		  const rd_kafka_topic_partition_list_t *which, int all, rd_kafka_queue_t *replyq)
{
	int sent = 0;
	rd_kafka_topic_partition_list_t *out = rd_kafka_topic_partition_list_new(c->next->cnt + 1);

	for (int i = 0; i < c->next->cnt; i++) {
		const rd_kafka_topic_partition_t *n = &c->next->elems[i];
		const rd_kafka_topic_partition_t *s =
			rd_kafka_topic_partition_list_find(c->sent, n->topic, n->partition);
		if (n->offset < 0 ||
		    (which && !rd_kafka_topic_partition_list_find(which, n->topic, n->partition)))
			continue;
		if (all || !s || s->offset != n->offset)
			add_with_floors(out, ledger, n->topic, n->partition, n->offset);
	}
	if (out->cnt > 0) {
		/* With a reply queue the answer comes there; without, to the commit callback. */
		rd_kafka_resp_err_t err = replyq ? rd_kafka_commit_queue(consumer, out, replyq,
									   NULL, NULL)
						 : rd_kafka_commit(consumer, out, 1);
		sent = !err;
		if (err)
			log_warn("commit_failed", LOG_S("error", rd_kafka_err2str(err)));
		/* Sent; whether it landed is the callback's to say (a failure is retried when the
		 * offset next moves, or at the next refresh). */
		for (int i = 0; i < out->cnt; i++)
			partition_list_set(c->sent, out->elems[i].topic, out->elems[i].partition,
				 out->elems[i].offset);
	}
	rd_kafka_topic_partition_list_destroy(out);
	return sent;
}

void offset_commits_tick(struct offset_commits *c, rd_kafka_t *consumer,
			 const struct forward_ledger *ledger)
{
	int64_t now = clock_mono_ms();
	int refresh = now - c->refreshed_ms >= COMMIT_REFRESH_MS;

	if (!c->soon && !refresh && now - c->last_ms < COMMIT_INTERVAL_MS)
		return;
	commit(c, consumer, ledger, NULL, refresh, NULL);
	c->soon = 0;
	c->last_ms = now;
	if (refresh)
		c->refreshed_ms = now;
}

void offset_commits_sync(struct offset_commits *c, rd_kafka_t *consumer,
			 struct forward_ledger *ledger, const rd_kafka_topic_partition_list_t *parts,
			 int timeout_ms, int (*keep_waiting)(void *), void *arg)
{
	/* Not rd_kafka_commit(..., async=0): it waits without a deadline, and a coordinator
	 * that keeps the connection open but never answers (a frozen broker) holds it forever. */
	rd_kafka_queue_t *replyq = rd_kafka_queue_new(consumer);
	int64_t deadline = clock_mono_ms() + timeout_ms;
	int answered = 0;

	if (commit(c, consumer, ledger, parts, 0, replyq)) {
		while (!answered && clock_mono_ms() < deadline && keep_waiting(arg)) {
			rd_kafka_event_t *ev = rd_kafka_queue_poll(replyq, 100);
			if (!ev)
				continue;
			if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT) {
				offset_commits_landed(c, ledger, rd_kafka_event_error(ev),
						      rd_kafka_event_topic_partition_list(ev));
				answered = 1;
			}
			rd_kafka_event_destroy(ev);
		}
		if (!answered)
			log_warn("commit_unanswered",
				 LOG_S("reason", "no answer from the group coordinator; offsets "
						 "not known to be committed are redelivered"));
	}
	rd_kafka_queue_destroy(replyq);
}

void offset_commits_landed(struct offset_commits *c, struct forward_ledger *ledger,
			   rd_kafka_resp_err_t err, const rd_kafka_topic_partition_list_t *offsets)
{
	if (!offsets)
		return;
	for (int i = 0; i < offsets->cnt; i++) {
		const rd_kafka_topic_partition_t *p = &offsets->elems[i];
		rd_kafka_resp_err_t perr = err ? err : p->err;
		rd_kafka_topic_partition_t *s;

		if (!perr) {
			if (p->offset >= 0)
				forward_ledger_committed(ledger, p->topic, p->partition, p->offset);
			continue;
		}
		if (perr == RD_KAFKA_RESP_ERR__NO_OFFSET)
			continue;
		log_warn("commit_failed", LOG_S("topic", p->topic), LOG_I("partition", p->partition),
			 LOG_I("offset", p->offset), LOG_S("error", rd_kafka_err2str(perr)));
		s = rd_kafka_topic_partition_list_find(c->sent, p->topic, p->partition);
		if (s && s->offset == p->offset)
			s->offset = RD_KAFKA_OFFSET_INVALID; /* differs from any offset: resent */
	}
}
