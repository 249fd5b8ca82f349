#include "consume_loop.h"

#include <stdlib.h>
#include <string.h>

#include "asset_tx.h"
#include "clock.h"
#include "config_reload.h"
#include "consumer_lag.h"
#include "log.h"
#include "metrics.h"
#include "partitions.h"
#include "process_request.h"

#define POLL_MS 100
#define DRAIN_SETTLE_MS 1500     /* --drain: caught up this long, with no rebalance, to exit */
#define RETRY_HOLD_MAX 10000     /* retries waiting in memory before the retry topic pauses */
#define GAUGES_EVERY_MS 5000     /* consumer lag and the other gauges of /metrics */

static void update_gauges(struct worker *w);
static void maybe_reload(struct worker *w);

enum run_stage worker_stage(const struct worker *w)
{
	(void)w;
	return worker_signal_count == 0 ? STAGE_RUNNING
	       : worker_signal_count == 1 ? STAGE_DRAINING : STAGE_FAST_EXIT;
}

/* ---- partition bookkeeping ---- */

/* With nothing open, a partition seen at its end is committable up to that end: past the
 * commit markers a transactional writer (ours, on the retry topic) leaves after the last
 * record. Not a held partition: its records beyond the held one were dropped, not settled. */
static void commit_to_end(struct worker *w, const char *topic, int32_t partition)
{
	const rd_kafka_topic_partition_t *eof =
		rd_kafka_topic_partition_list_find(w->eof, topic, partition);
	int64_t end;
	if (eof && !forward_hold_find(&w->hold, topic, partition) &&
	    (end = offset_tracker_at_end(w->tracker, topic, partition, eof->offset)) >= 0)
		kafka_txn_offset(&w->txn, topic, partition, end);
}

void worker_complete(struct worker *w, const struct tracked_offset *input)
{
	int64_t next = offset_tracker_close(w->tracker, input);
	if (next >= 0) {
		kafka_txn_offset(&w->txn, input->topic, input->partition, next);
		partitions_advanced(w, input->topic, input->partition, next);
		commit_to_end(w, input->topic, input->partition);
	}
}

void worker_pause_for_db(struct worker *w, int pause)
{
	rd_kafka_topic_partition_list_t *assigned = NULL;
	if (w->paused_for_db == pause)
		return;
	if (rd_kafka_assignment(w->consumer, &assigned) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (pause)
			rd_kafka_pause_partitions(w->consumer, assigned);
		else
			rd_kafka_resume_partitions(w->consumer, assigned);
		rd_kafka_topic_partition_list_destroy(assigned);
	}
	w->paused_for_db = pause;
	if (!pause) {
		w->retry_paused = 0; /* resumed with the rest; backpressure re-pauses if needed */
		/* So are held partitions: their next record pauses them again. */
		for (size_t i = 0; i < w->hold.n; i++)
			w->hold.items[i].paused = 0;
	}
	log_info(pause ? "consumption_paused" : "consumption_resumed",
		 LOG_S("reason", pause ? "database unavailable" : "database available"));
}

/* ---- records and consumer events ---- */

static void on_consumer_event(struct worker *w, rd_kafka_message_t *msg)
{
	if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
		const char *topic = rd_kafka_topic_name(msg->rkt);
		partition_list_set(w->eof, topic, msg->partition, msg->offset);
		commit_to_end(w, topic, msg->partition);
		return;
	}
	if (msg->err == RD_KAFKA_RESP_ERR__FATAL) {
		char reason[512];
		rd_kafka_fatal_error(w->consumer, reason, sizeof reason);
		log_error("kafka_fatal", LOG_S("error", reason));
		w->fatal = 1;
		return;
	}
	/* Consumer errors are informational: librdkafka recovers by itself. */
	log_warn("kafka_error", LOG_S("topic", msg->rkt ? rd_kafka_topic_name(msg->rkt) : NULL),
		 LOG_I("partition", msg->partition), LOG_S("error", rd_kafka_message_errstr(msg)));
}

/* Takes ownership of msg. */
static void on_message(struct worker *w, rd_kafka_message_t *msg)
{
	struct tracked_offset input;
	if (msg->err) {
		on_consumer_event(w, msg);
		rd_kafka_message_destroy(msg);
		return;
	}
	const char *topic = rd_kafka_topic_name(msg->rkt);
	rd_kafka_topic_partition_list_del(w->eof, topic, msg->partition);
	if (partitions_held(w, topic, msg->partition, msg->offset)) {
		/* Consumed again once the hold ends (partitions.c seeks back to it). */
		rd_kafka_message_destroy(msg);
		return;
	}
	if (offset_tracker_open(w->tracker, topic, msg->partition, msg->offset, &input) < 0) {
		/* Not ours any more (the owner gets it), or already in hand. */
		rd_kafka_message_destroy(msg);
		return;
	}
	backlog_push(&w->backlog, msg, &input);
}

/* What the loop does between records, whatever it is waiting for: delivery reports, the
 * transaction when due, holds that end, the gauges. */
static void housekeeping(struct worker *w)
{
	kafka_txn_poll(&w->txn, 0);
	partitions_commit(w, 0);
	process_request_flush_forwards(w);
	partitions_release_holds(w);
	update_gauges(w);
}

/* How long the loop may block on the consumer without delaying what is due. */
static int poll_timeout(const struct worker *w, int64_t limit)
{
	int64_t t = limit < POLL_MS ? limit : POLL_MS;
	int64_t txn = kafka_txn_due_in(&w->txn);
	int64_t retry = retry_delay_next_in(&w->delayed, clock_wall_ms());
	if (txn >= 0 && txn < t)
		t = txn;
	if (retry >= 0 && retry < t)
		t = retry;
	return t > 0 ? (int)t : 0;
}

void worker_wait(struct worker *w, int ms)
{
	int64_t deadline = clock_mono_ms() + ms;
	while (worker_stage(w) == STAGE_RUNNING && !w->fatal) {
		int64_t left = deadline - clock_mono_ms();
		if (left <= 0)
			break;
		rd_kafka_message_t *msg = rd_kafka_consumer_poll(w->consumer, poll_timeout(w, left));
		if (msg)
			on_message(w, msg);
		housekeeping(w);
	}
}

/* Pauses the retry topic while too many retries wait in memory, resumes at half. The held
 * ones become due within retry.max_backoff_ms, so this always drains. */
static void retry_backpressure(struct worker *w)
{
	int want = w->delayed.count >= RETRY_HOLD_MAX ? 1
		   : w->delayed.count < RETRY_HOLD_MAX / 2 ? 0 : w->retry_paused;
	rd_kafka_topic_partition_list_t *assigned = NULL, *retry;

	if (want == w->retry_paused || w->paused_for_db ||
	    rd_kafka_assignment(w->consumer, &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	retry = rd_kafka_topic_partition_list_new(assigned->cnt);
	for (int i = 0; i < assigned->cnt; i++)
		if (strcmp(assigned->elems[i].topic, w->cfg->kafka.retry_topic) == 0)
			rd_kafka_topic_partition_list_add(retry, assigned->elems[i].topic,
							  assigned->elems[i].partition);
	if (want)
		rd_kafka_pause_partitions(w->consumer, retry);
	else
		rd_kafka_resume_partitions(w->consumer, retry);
	rd_kafka_topic_partition_list_destroy(retry);
	rd_kafka_topic_partition_list_destroy(assigned);
	w->retry_paused = want;
	log_info(want ? "retry_topic_paused" : "retry_topic_resumed",
		 LOG_I("waiting_retries", (int64_t)w->delayed.count));
}

/* The requests processed together, in one transaction when all goes well. */
struct batch {
	struct request_entry entries[ASSET_TX_BATCH_MAX];
	rd_kafka_message_t *msgs[ASSET_TX_BATCH_MAX]; /* owned until the batch is done */
	size_t n;
};

static void batch_add(struct worker *w, struct batch *b, rd_kafka_message_t *msg,
		      const struct tracked_offset *input)
{
	struct request_entry *e = &b->entries[b->n];
	e->msg = msg;
	e->input = *input;
	record_origin_read(msg, w->cfg->kafka.retry_topic, &e->origin);
	b->msgs[b->n++] = msg;
}

/* Takes ownership of e->msg: into the batch, or held until its retry is due. */
static void admit(struct worker *w, struct batch *b, struct backlog_entry *e)
{
	struct record_origin origin;
	int64_t now = clock_wall_ms();
	record_origin_read(e->msg, w->cfg->kafka.retry_topic, &origin);
	if (strcmp(rd_kafka_topic_name(e->msg->rkt), w->cfg->kafka.retry_topic) == 0 &&
	    origin.not_before_ms > now) {
		/* Honoured as written (SPEC 4: it must not run before), even beyond our own
		 * max_backoff_ms (another worker's config, a hand-made record): say so, since
		 * its partition's commit waits for it. */
		if (origin.not_before_ms > now + w->cfg->retry.max_backoff_ms)
			log_warn("retry_far_ahead", LOG_S("topic", e->input.topic),
				 LOG_I("partition", e->input.partition),
				 LOG_I("offset", e->input.offset),
				 LOG_I("not_before_in_ms", origin.not_before_ms - now));
		retry_delay_hold(&w->delayed, e->msg, &e->input, origin.not_before_ms);
		retry_backpressure(w);
		return;
	}
	batch_add(w, b, e->msg, &e->input);
}

/* Gathers what is ready without waiting: due retries first (they are older), then what
 * was fetched. A batch never waits for more records to fill it. */
static void batch_fill(struct worker *w, struct batch *b)
{
	struct delayed_record due;
	struct backlog_entry e;
	size_t max = w->batch_limit;
	int64_t now = clock_wall_ms();

	b->n = 0;
	while (b->n < max && retry_delay_pop_due(&w->delayed, now, &due) == 0)
		batch_add(w, b, due.msg, &due.input);
	while (b->n < max) {
		if (w->backlog.count == 0) {
			rd_kafka_message_t *msg = rd_kafka_consumer_poll(w->consumer, 0);
			if (!msg)
				break;
			on_message(w, msg);
			continue;
		}
		backlog_pop(&w->backlog, &e);
		admit(w, b, &e);
	}
}

static void batch_done(struct worker *w, struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		rd_kafka_message_destroy(b->msgs[i]);
	b->n = 0;
	retry_backpressure(w);
}

/* ---- SIGHUP ---- */

/* Re-reads worker.yaml; what changed takes effect here, between two batches. */
static void maybe_reload(struct worker *w)
{
	if (!worker_reload_requested)
		return;
	worker_reload_requested = 0;
	log_info("config_reload_requested", LOG_S("file", w->cfg->path));
	if (config_reload(w->cfg) <= 0)
		return;
	log_set_level(w->cfg->log.level);
	log_set_format(w->cfg->log.format);
	w->backoff = (struct backoff_policy){ w->cfg->retry.initial_backoff_ms,
					      w->cfg->retry.max_backoff_ms, w->cfg->retry.multiplier };
	log_info("config_reload_applied", LOG_S("log_level", log_level_name(w->cfg->log.level)),
		 LOG_I("retry_initial_backoff_ms", w->cfg->retry.initial_backoff_ms),
		 LOG_I("retry_max_backoff_ms", w->cfg->retry.max_backoff_ms),
		 LOG_F("retry_multiplier", w->cfg->retry.multiplier),
		 LOG_I("retry_max_attempts", w->cfg->retry.max_attempts));
}

/* ---- /metrics gauges ---- */

static void update_gauges(struct worker *w)
{
	int64_t now = clock_mono_ms();
	rd_kafka_topic_partition_list_t *assigned = NULL;
	int64_t paused = 0;

	metrics_loop_tick();
	if (now - w->gauges_at_ms < GAUGES_EVERY_MS)
		return;
	w->gauges_at_ms = now;
	consumer_lag_update(w->consumer);
	metrics_set_gauge(METRICS_INFLIGHT_REQUESTS,
			  (int64_t)(w->backlog.count + w->delayed.count + w->txn.produced));
	if (rd_kafka_assignment(w->consumer, &assigned) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		for (int i = 0; i < assigned->cnt; i++)
			paused += w->paused_for_db ||
				  (w->retry_paused &&
				   strcmp(assigned->elems[i].topic, w->cfg->kafka.retry_topic) == 0) ||
				  forward_hold_blocks(&w->hold, assigned->elems[i].topic,
						      assigned->elems[i].partition, INT64_MAX);
		rd_kafka_topic_partition_list_destroy(assigned);
	}
	metrics_set_gauge(METRICS_PARTITIONS_PAUSED, paused);
}

/* ---- --drain ---- */

static int all_assigned_at_end(struct worker *w)
{
	rd_kafka_topic_partition_list_t *assigned = NULL;
	int at_end = 1;
	if (rd_kafka_assignment(w->consumer, &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return 0;
	rd_kafka_position(w->consumer, assigned);
	for (int i = 0; i < assigned->cnt && at_end; i++) {
		rd_kafka_topic_partition_t *a = &assigned->elems[i];
		rd_kafka_topic_partition_t *p =
			rd_kafka_topic_partition_list_find(w->produced, a->topic, a->partition);
		if (!rd_kafka_topic_partition_list_find(w->eof, a->topic, a->partition))
			at_end = 0;
		/* A retry we produced to our own partition must come back before we are done. */
		else if (p && a->offset <= p->offset)
			at_end = 0;
	}
	rd_kafka_topic_partition_list_destroy(assigned);
	return at_end;
}

static int drained(struct worker *w)
{
	int64_t now = clock_mono_ms();
	if (!w->assigned_once || w->backlog.count || w->delayed.count || w->hold.n ||
	    w->outbox.count ||
	    kafka_txn_pending(&w->txn) || offset_tracker_open_count(w->tracker) ||
	    !all_assigned_at_end(w)) {
		w->caught_up_since_ms = 0;
		return 0;
	}
	if (!w->caught_up_since_ms)
		w->caught_up_since_ms = now;
	return now - w->caught_up_since_ms >= DRAIN_SETTLE_MS &&
	       now - w->last_rebalance_ms >= DRAIN_SETTLE_MS;
}

/* ---- the loop ---- */

int worker_run(struct worker *w)
{
	static struct batch b; /* 256 entries: not on the stack */

	while (worker_stage(w) == STAGE_RUNNING && !w->fatal) {
		/* While the commit thread commits, the next batch runs (only its forwards wait
		 * for the commit: process_request.c). */
		batch_fill(w, &b);
		if (b.n > 0) {
			process_batch(w, b.entries, b.n);
			batch_done(w, &b);
		} else {
			rd_kafka_message_t *msg =
				rd_kafka_consumer_poll(w->consumer, poll_timeout(w, POLL_MS));
			if (msg)
				on_message(w, msg);
		}
		housekeeping(w);
		maybe_reload(w);
		worker_stats_maybe_log(&w->stats, w->cfg->log.summary_interval_ms);
		if (w->drain_mode && drained(w)) {
			log_info("drained", LOG_S("reason", "caught up and nothing waits"));
			break;
		}
	}
	return w->fatal ? 1 : 0;
}
