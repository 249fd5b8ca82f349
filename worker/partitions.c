#include "partitions.h"

#include <stdio.h>
#include <string.h>

#include "backoff.h"
#include "clock.h"
#include "consume_loop.h"
#include "log.h"
#include "metrics.h"
#include "process_request.h"

#define REVOKE_COMMIT_MS 10000 /* how long a revoke waits for its transaction to commit */
#define COMMITTED_MS 10000     /* one attempt to read the committed offsets at a rewind */
#define REWIND_TRIES 6
#define SEEK_MS 5000
#define COMMIT_POLL_MS 5       /* waiting for the commit thread, serving delivery reports */

void partition_list_set(rd_kafka_topic_partition_list_t *l, const char *topic,
			int32_t partition, int64_t offset)
{
	rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(l, topic, partition);
	if (!p)
		p = rd_kafka_topic_partition_list_add(l, topic, partition);
	p->offset = offset;
}

static void log_partitions(const char *event, const rd_kafka_topic_partition_list_t *l)
{
	char buf[1024];
	size_t n = 0;
	buf[0] = '\0';
	for (int i = 0; i < l->cnt && n < sizeof buf; i++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s[%d]", i ? "," : "",
				      l->elems[i].topic, l->elems[i].partition);
	log_info(event, LOG_I("count", l->cnt), LOG_S("partitions", buf));
}

/* Whether the partition is paused for the worker's own reasons (database, retry
 * backpressure), which a hold ending must not undo. */
static int paused_otherwise(const struct worker *w, const char *topic)
{
	return w->paused_for_db ||
	       (w->retry_paused && strcmp(topic, w->cfg->kafka.retry_topic) == 0);
}

/* Drops what the worker holds in memory of a partition: its records wait in Kafka. */
static void drop_local(struct worker *w, const char *t, int32_t p)
{
	retry_delay_drop_partition(&w->delayed, t, p);
	backlog_drop_partition(&w->backlog, t, p);
	offset_tracker_revoke(w->tracker, t, p);
	rd_kafka_topic_partition_list_del(w->eof, t, p);
}

static void holds_changed(struct worker *w)
{
	metrics_set_gauge(METRICS_FORWARDS_REFUSED, (int64_t)forward_hold_refused(&w->hold));
}

/* A fatal producer error: a new producer (its transaction is gone: TXN_ABORTED, the caller
 * rewinds), or the worker stops (TXN_FATAL). */
static enum txn_status renew_or_stop(struct worker *w)
{
	if (worker_stage(w) == STAGE_RUNNING && worker_renew_producer(w) == 0)
		return TXN_ABORTED;
	w->fatal = 1;
	return TXN_FATAL;
}

/* ---- assignment ---- */

static void on_assign(struct worker *w, rd_kafka_topic_partition_list_t *parts)
{
	for (int i = 0; i < parts->cnt; i++)
		offset_tracker_assign(w->tracker, parts->elems[i].topic, parts->elems[i].partition);
	/* Each partition starts at its committed offset; librdkafka reads it with
	 * require_stable (KIP-447), so a transaction still open on it (a zombie's) ends first. */
	rd_kafka_error_t *err = rd_kafka_incremental_assign(w->consumer, parts);
	if (err) {
		log_error("assign_failed", LOG_S("error", rd_kafka_error_string(err)));
		rd_kafka_error_destroy(err);
	}
	/* A new partition takes the state the worker is in: librdkafka keeps our pause flag
	 * across unassign/assign, so every partition's state is set explicitly here. */
	rd_kafka_topic_partition_list_t *pause = rd_kafka_topic_partition_list_new(parts->cnt);
	for (int i = 0; i < parts->cnt; i++)
		if (paused_otherwise(w, parts->elems[i].topic))
			rd_kafka_topic_partition_list_add(pause, parts->elems[i].topic,
							  parts->elems[i].partition);
	if (pause->cnt)
		rd_kafka_pause_partitions(w->consumer, pause);
	rd_kafka_topic_partition_list_destroy(pause);
	log_partitions("partitions_assigned", parts);
	metrics_set_gauge(METRICS_GROUP_JOINED, 1);
	metrics_add_gauge(METRICS_ASSIGNED_PARTITIONS, parts->cnt);
}

/* Whether a wait may go on: not after a second signal. */
static int not_fast_exit(const struct worker *w)
{
	return worker_stage(w) != STAGE_FAST_EXIT;
}

static void on_revoke(struct worker *w, rd_kafka_topic_partition_list_t *parts)
{
	enum txn_status st;
	int lost = rd_kafka_assignment_lost(w->consumer);

	if (!lost) {
		/* What is final goes out now, forwards and offsets in one transaction, before
		 * another worker takes over. */
		st = partitions_commit_all(w, REVOKE_COMMIT_MS);
	} else {
		metrics_set_gauge(METRICS_GROUP_JOINED, 0);
		log_warn("assignment_lost", LOG_S("reason", "partitions were taken away without a "
							    "revoke; their open requests are "
							    "redelivered"));
		/* Their forwards in the open transaction must not land (the new owner decides
		 * again): abort it, and rewind whatever partitions remain. */
		for (int i = 0; i < parts->cnt; i++)
			kafka_txn_forget(&w->txn, parts->elems[i].topic, parts->elems[i].partition);
		st = kafka_txn_abort(&w->txn);
	}
	if (st == TXN_FATAL)
		st = renew_or_stop(w);
	for (int i = 0; i < parts->cnt; i++) {
		const char *t = parts->elems[i].topic;
		int32_t p = parts->elems[i].partition;
		drop_local(w, t, p);
		kafka_txn_forget(&w->txn, t, p);
		forward_hold_drop(&w->hold, t, p);
		metrics_forget_partition(t, p);
	}
	holds_changed(w);
	metrics_add_gauge(METRICS_ASSIGNED_PARTITIONS, -parts->cnt);
	/* Our pause flag would outlive the assignment (librdkafka 2.0 keeps it on the partition
	 * object): clear it, so the partition is fetched if it comes back. */
	rd_kafka_resume_partitions(w->consumer, parts);
	rd_kafka_error_t *err = rd_kafka_incremental_unassign(w->consumer, parts);
	if (err) {
		log_error("unassign_failed", LOG_S("error", rd_kafka_error_string(err)));
		rd_kafka_error_destroy(err);
	}
	log_partitions("partitions_revoked", parts);
	if (st == TXN_ABORTED)
		partitions_rewind(w);
}

void partitions_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			     rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct worker *w = opaque;
	(void)rk;
	w->last_rebalance_ms = clock_mono_ms();
	w->caught_up_since_ms = 0;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		w->assigned_once = 1;
		on_assign(w, parts);
	} else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
		on_revoke(w, parts);
	} else {
		log_error("rebalance_failed", LOG_S("error", rd_kafka_err2str(err)));
	}
}

/* ---- transactions ---- */

enum txn_status partitions_commit_all(struct worker *w, int timeout_ms)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;
	enum txn_status st;
	/* A commit already under way first, then the forwards that waited for it and what was
	 * settled meanwhile. */
	while (((st = kafka_txn_tick(&w->txn, w->consumer, 1)) == TXN_BUSY ||
		(st == TXN_OK && (w->outbox.count || kafka_txn_pending(&w->txn)))) &&
	       not_fast_exit(w) && clock_mono_ms() < deadline) {
		kafka_txn_poll(&w->txn, COMMIT_POLL_MS);
		process_request_flush_forwards(w);
	}
	return st;
}

enum txn_status partitions_commit(struct worker *w, int now)
{
	enum txn_status st = kafka_txn_tick(&w->txn, w->consumer, now);
	if (st == TXN_FATAL)
		st = renew_or_stop(w);
	if (st == TXN_ABORTED)
		partitions_rewind(w);
	return st;
}

void partitions_rewind(struct worker *w)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

	if (rd_kafka_assignment(w->consumer, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	if (parts->cnt == 0) { /* all lost or revoked: nothing to rewind */
		rd_kafka_topic_partition_list_destroy(parts);
		return;
	}
	for (int i = 0; i < parts->cnt; i++) {
		const char *t = parts->elems[i].topic;
		int32_t p = parts->elems[i].partition;
		struct hold_entry *h = forward_hold_find(&w->hold, t, p);
		drop_local(w, t, p);
		offset_tracker_assign(w->tracker, t, p); /* a new generation: late results are stale */
		/* The records before a held one are consumed again; the hold stops the partition
		 * at that record again. */
		if (h && h->paused && !paused_otherwise(w, t)) {
			rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
			rd_kafka_topic_partition_list_add(one, t, p);
			rd_kafka_resume_partitions(w->consumer, one);
			rd_kafka_topic_partition_list_destroy(one);
		}
		if (h) /* consumed again from the committed offset, the held record included */
			h->paused = h->reached = h->forwarded = 0;
	}
	/* The aborted commit is not among them (the read waits for stable offsets). */
	for (int tries = 1; tries <= REWIND_TRIES && parts->cnt > 0; tries++) {
		err = rd_kafka_committed(w->consumer, parts, COMMITTED_MS);
		if (!err || !not_fast_exit(w))
			break;
		log_warn("rewind_waiting", LOG_S("error", rd_kafka_err2str(err)), LOG_I("tries", tries));
	}
	if (err) {
		/* Without the committed offsets the worker cannot know where to resume: exit 1,
		 * and the group hands the partitions, uncommitted, to the next owner. */
		log_error("rewind_failed", LOG_S("error", rd_kafka_err2str(err)));
		w->fatal = 1;
		rd_kafka_topic_partition_list_destroy(parts);
		return;
	}
	for (int i = 0; i < parts->cnt; i++)
		if (parts->elems[i].offset < 0) /* never committed: from the start (SPEC 1) */
			parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_error_t *e = rd_kafka_seek_partitions(w->consumer, parts, SEEK_MS);
	if (e) {
		log_error("rewind_failed", LOG_S("error", rd_kafka_error_string(e)));
		rd_kafka_error_destroy(e);
		w->fatal = 1;
	}
	for (int i = 0; i < parts->cnt; i++)
		if (parts->elems[i].err) {
			log_error("rewind_failed", LOG_S("topic", parts->elems[i].topic),
				  LOG_I("partition", parts->elems[i].partition),
				  LOG_S("error", rd_kafka_err2str(parts->elems[i].err)));
			w->fatal = 1;
		}
	log_partitions("partitions_rewound", parts);
	rd_kafka_topic_partition_list_destroy(parts);
}

/* ---- forwards' fate, and holds ---- */

/* A held partition's record is settled: the partition goes on right after it (what followed
 * it was dropped while it went first). */
static void end_hold(struct worker *w, const char *topic, int32_t partition, int64_t next)
{
	rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(one, topic, partition)->offset = next;
	rd_kafka_error_t *e = rd_kafka_seek_partitions(w->consumer, one, SEEK_MS);
	if (e) {
		log_warn("seek_failed", LOG_S("error", rd_kafka_error_string(e)));
		rd_kafka_error_destroy(e);
	}
	if (!paused_otherwise(w, topic))
		rd_kafka_resume_partitions(w->consumer, one);
	rd_kafka_topic_partition_list_destroy(one);
	forward_hold_drop(&w->hold, topic, partition);
	holds_changed(w);
	log_info("partition_hold_ended", LOG_S("topic", topic), LOG_I("partition", partition),
		 LOG_I("resume_at", next));
}

void partitions_forward_delivered(void *opaque, const struct txn_input *input, const char *topic,
				  int32_t partition, int64_t offset)
{
	struct worker *w = opaque;
	struct hold_entry *h;

	if (strcmp(topic, w->cfg->kafka.retry_topic) == 0)
		partition_list_set(w->produced, topic, partition, offset);
	h = w->hold.n ? forward_hold_find(&w->hold, input->topic, input->partition) : NULL;
	if (h && h->released && h->offset == input->offset) {
		log_info("forward_accepted", LOG_S("topic", topic), LOG_S("input_topic", input->topic),
			 LOG_I("input_partition", input->partition),
			 LOG_I("input_offset", input->offset), LOG_I("sends", h->failures + 1));
		end_hold(w, input->topic, input->partition, input->offset + 1);
	}
}

void partitions_forward_produced(struct worker *w, const char *topic, int32_t partition,
				 int64_t offset)
{
	struct hold_entry *h = w->hold.n ? forward_hold_find(&w->hold, topic, partition) : NULL;
	if (h && h->released && h->offset == offset)
		h->forwarded = 1;
}

void partitions_forward_refused(void *opaque, const struct txn_input *input, const char *topic,
				rd_kafka_resp_err_t err)
{
	struct worker *w = opaque;
	int permanent = forward_error_is_permanent(err);
	int64_t now = clock_mono_ms();
	struct hold_entry *h;
	int64_t delay;

	if (!offset_tracker_is_assigned(w->tracker, input->topic, input->partition))
		return; /* not ours any more: its next owner decides again */
	h = forward_hold_add(&w->hold, input->topic, input->partition, input->offset, permanent,
			     now);
	/* Retriable: the backoff of retry.*; refused for good: its longest delay, every time. */
	delay = permanent ? w->cfg->retry.max_backoff_ms
			  : backoff_delay_ms(&w->backoff, h->failures, backoff_random());
	h->until_ms = now + delay;
	holds_changed(w);
	if (permanent)
		log_error("forward_refused", LOG_S("topic", topic), LOG_S("error", rd_kafka_err2str(err)),
			  LOG_S("input_topic", input->topic), LOG_I("input_partition", input->partition),
			  LOG_I("input_offset", input->offset), LOG_I("sends", h->failures),
			  LOG_I("resend_in_ms", delay),
			  LOG_S("reason", "the broker refuses this record for good; its partition "
					  "stops at it, uncommitted, until a resend is accepted"));
	else
		log_warn("forward_retry", LOG_S("topic", topic), LOG_S("error", rd_kafka_err2str(err)),
			 LOG_S("input_topic", input->topic), LOG_I("input_partition", input->partition),
			 LOG_I("input_offset", input->offset), LOG_I("sends", h->failures),
			 LOG_I("resend_in_ms", delay));
}

int partitions_held(struct worker *w, const char *topic, int32_t partition, int64_t offset)
{
	struct hold_entry *h;
	if (!w->hold.n || !forward_hold_blocks(&w->hold, topic, partition, offset))
		return 0;
	h = forward_hold_find(&w->hold, topic, partition);
	h->reached = 1;
	if (!h->paused) {
		rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
		rd_kafka_topic_partition_list_add(one, topic, partition);
		rd_kafka_pause_partitions(w->consumer, one);
		log_partitions("partitions_paused_for_refused_forward", one);
		rd_kafka_topic_partition_list_destroy(one);
		h->paused = 1;
	}
	return 1;
}

void partitions_release_holds(struct worker *w)
{
	rd_kafka_topic_partition_list_t *due;
	if (!w->hold.n)
		return;
	due = rd_kafka_topic_partition_list_new(2);
	forward_hold_due(&w->hold, clock_mono_ms(), due);
	if (due->cnt > 0) {
		/* Back to the held record where what was fetched beyond it was dropped; never
		 * forward. */
		rd_kafka_topic_partition_list_t *back = rd_kafka_topic_partition_list_new(due->cnt);
		for (int i = 0; i < due->cnt; i++)
			if (due->elems[i].offset >= 0)
				rd_kafka_topic_partition_list_add(back, due->elems[i].topic,
								  due->elems[i].partition)
					->offset = due->elems[i].offset;
		rd_kafka_error_t *e = back->cnt ? rd_kafka_seek_partitions(w->consumer, back, SEEK_MS)
						: NULL;
		if (e) {
			log_warn("seek_failed", LOG_S("error", rd_kafka_error_string(e)));
			rd_kafka_error_destroy(e);
		}
		rd_kafka_topic_partition_list_destroy(back);
		for (int i = 0; i < due->cnt; i++) {
			rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
			rd_kafka_topic_partition_list_add(one, due->elems[i].topic,
							  due->elems[i].partition);
			if (!paused_otherwise(w, due->elems[i].topic))
				rd_kafka_resume_partitions(w->consumer, one);
			rd_kafka_topic_partition_list_destroy(one);
		}
		log_partitions("partitions_resumed_to_resend", due);
	}
	rd_kafka_topic_partition_list_destroy(due);
}

void partitions_advanced(struct worker *w, const char *topic, int32_t partition, int64_t next)
{
	struct hold_entry *h = w->hold.n ? forward_hold_find(&w->hold, topic, partition) : NULL;
	if (h && h->released && !h->forwarded && next > h->offset)
		end_hold(w, topic, partition, next);
}
