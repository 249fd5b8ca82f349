#include "consume_loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asset_message.h"
#include "asset_tx.h"
#include "clock.h"
#include "kafka_conf.h"
#include "config_reload.h"
#include "consumer_lag.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "migrate.h"
#include "process_request.h"

#define POLL_MS 100
#define REVOKE_FLUSH_MS 10000   /* how long a revoke waits for retry/DLQ acknowledgements */
#define SHUTDOWN_FLUSH_MS 30000 /* same at a graceful stop (a second signal cuts it short) */
#define REVOKE_COMMIT_MS 10000  /* how long a revoke waits for its commit to be answered */
#define CLOSE_MS 30000          /* how long a graceful stop waits to leave the group */
#define DRAIN_SETTLE_MS 1500    /* --drain: caught up this long, with no rebalance, to exit */
#define RETRY_HOLD_MAX 10000    /* retries waiting in memory before the retry topic pauses */
#define GAUGES_EVERY_MS 5000    /* consumer lag and the other gauges of /metrics */
#define ASSIGN_FLUSH_MS 60000   /* an assignment waits for our forwards in flight */
#define SCAN_TIMEOUT_MS 60000   /* reading the retry/DLQ topics on assignment */
#define FLOORS_EVERY_MS 60000   /* refresh of the forward floors from the topics' ends */

volatile sig_atomic_t worker_signal_count;
volatile sig_atomic_t worker_reload_requested;

static void await_forwarded(struct worker *w, int ms);
static void sync_forward_blocks(struct worker *w);
static void update_gauges(struct worker *w);
static void refresh_floors(struct worker *w);
static void maybe_reload(struct worker *w);

enum run_stage worker_stage(const struct worker *w)
{
	(void)w;
	return worker_signal_count == 0 ? STAGE_RUNNING
	       : worker_signal_count == 1 ? STAGE_DRAINING : STAGE_FAST_EXIT;
}

/* ---- backlog: records taken from the consumer, waiting their turn ---- */

static void backlog_push(struct backlog *b, rd_kafka_message_t *msg,
			 const struct tracked_offset *input)
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

static int backlog_pop(struct backlog *b, struct backlog_entry *out)
{
	if (b->count == 0)
		return -1;
	*out = b->items[b->head];
	b->head = (b->head + 1) % b->cap;
	b->count--;
	return 0;
}

/* Drops the records of a revoked partition, keeping the order of the rest. */
static void backlog_drop_partition(struct backlog *b, const char *topic, int32_t partition)
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

static void backlog_cleanup(struct backlog *b)
{
	struct backlog_entry e;
	while (backlog_pop(b, &e) == 0)
		rd_kafka_message_destroy(e.msg);
	free(b->items);
	memset(b, 0, sizeof *b);
}

/* ---- partition bookkeeping ---- */

void worker_complete(struct worker *w, const struct tracked_offset *input)
{
	int64_t next = offset_tracker_close(w->tracker, input);
	if (next >= 0)
		offset_commits_set(&w->commits, input->topic, input->partition, next);
}

/* Delivery of a requeue or dead letter acknowledged: its input record is final. */
static void on_forwarded(void *opaque, const struct tracked_offset *input, const char *topic,
			 int32_t partition, int64_t offset)
{
	struct worker *w = opaque;
	if (strcmp(topic, w->cfg->kafka.retry_topic) == 0)
		partition_list_set(w->produced, topic, partition, offset);
	/* Our later forwards land beyond this one (the idempotent producer keeps order). */
	forward_ledger_raise_floor(w->ledger, topic, partition, offset + 1);
	if (offset_tracker_is_current(w->tracker, input))
		forward_ledger_add(w->ledger, input->topic, input->partition, input->offset, topic,
				   partition, offset);
	worker_complete(w, input);
	/* A crash before the commit would redeliver the record: commit now, not at the next
	 * interval (and if it is redelivered anyway, the next owner's scan finds this one). */
	w->commits.soon = 1;
}

static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
		      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
	struct worker *w = opaque;
	(void)rk;
	offset_commits_landed(&w->commits, w->ledger, err, offsets);
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
		/* So are the partitions of refused forwards: the next tick pauses them again. */
		rd_kafka_topic_partition_list_destroy(w->blocked);
		w->blocked = rd_kafka_topic_partition_list_new(4);
	}
	log_info(pause ? "consumption_paused" : "consumption_resumed",
		 LOG_S("reason", pause ? "database unavailable" : "database available"));
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

/* Before the new partitions' records are handled: which of them were forwarded already
 * (by the previous owner, or by us before the partition was lost), and what the group has
 * committed for them. */
static void find_forwarded(struct worker *w, const rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_topic_partition_list_t *scan = rd_kafka_topic_partition_list_copy(parts);
	/* Our own forwards still in flight must be in the topics before they are read (a
	 * partition lost and handed back to us may have some); those that failed are not
	 * sent again. */
	forwarder_drop_stale(&w->fwd);
	await_forwarded(w, ASSIGN_FLUSH_MS);
	int rc = forward_scanner_run(&w->scanner, w->consumer, scan, &w->found,
				     forwarder_pending(&w->fwd) == 0, SCAN_TIMEOUT_MS);
	for (int i = 0; rc == 0 && i < scan->cnt; i++) {
		const rd_kafka_topic_partition_t *p = &scan->elems[i];
		int64_t low, high;
		if (p->offset >= 0) {
			offset_commits_known(&w->commits, p->topic, p->partition, p->offset);
			continue;
		}
		/* Never committed: commit where consumption starts (auto.offset.reset=earliest),
		 * so the partition carries floors from now on and no later owner has to read the
		 * retry and dead-letter topics from their beginning. */
		if (rd_kafka_query_watermark_offsets(w->consumer, p->topic, p->partition, &low,
						     &high, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
			offset_commits_set(&w->commits, p->topic, p->partition, low);
	}
	rd_kafka_topic_partition_list_destroy(scan);
}

static void on_assign(struct worker *w, rd_kafka_topic_partition_list_t *parts)
{
	for (int i = 0; i < parts->cnt; i++)
		offset_tracker_assign(w->tracker, parts->elems[i].topic, parts->elems[i].partition);
	rd_kafka_error_t *err = rd_kafka_incremental_assign(w->consumer, parts);
	if (err) {
		log_error("assign_failed", LOG_S("error", rd_kafka_error_string(err)));
		rd_kafka_error_destroy(err);
	}
	/* A new partition takes the state the worker is in: librdkafka keeps our pause flag
	 * across unassign/assign, so every partition's state is set explicitly here. */
	rd_kafka_topic_partition_list_t *pause = rd_kafka_topic_partition_list_new(parts->cnt);
	for (int i = 0; i < parts->cnt; i++)
		if (w->paused_for_db ||
		    (w->retry_paused && strcmp(parts->elems[i].topic, w->cfg->kafka.retry_topic) == 0))
			rd_kafka_topic_partition_list_add(pause, parts->elems[i].topic,
							  parts->elems[i].partition);
	if (pause->cnt)
		rd_kafka_pause_partitions(w->consumer, pause);
	rd_kafka_topic_partition_list_destroy(pause);
	log_partitions("partitions_assigned", parts);
	find_forwarded(w, parts);
	metrics_set_gauge(METRICS_GROUP_JOINED, 1);
	metrics_add_gauge(METRICS_ASSIGNED_PARTITIONS, parts->cnt);
}

/* Whether a wait may go on: not after a second signal. */
static int not_fast_exit(void *arg)
{
	return worker_stage(arg) != STAGE_FAST_EXIT;
}

static void on_revoke(struct worker *w, rd_kafka_topic_partition_list_t *parts)
{
	if (!rd_kafka_assignment_lost(w->consumer)) {
		/* Let acknowledgements in flight complete their offsets, then commit what is
		 * final before another worker takes over. */
		await_forwarded(w, REVOKE_FLUSH_MS);
		offset_commits_sync(&w->commits, w->consumer, w->ledger, parts, REVOKE_COMMIT_MS,
				    not_fast_exit, w);
	} else {
		metrics_set_gauge(METRICS_GROUP_JOINED, 0);
		log_warn("assignment_lost", LOG_S("reason", "partitions were taken away without a "
							    "revoke; their open requests are "
							    "redelivered"));
	}
	for (int i = 0; i < parts->cnt; i++) {
		const char *t = parts->elems[i].topic;
		int32_t p = parts->elems[i].partition;
		retry_delay_drop_partition(&w->delayed, t, p);
		backlog_drop_partition(&w->backlog, t, p);
		offset_tracker_revoke(w->tracker, t, p);
		forwarder_drop_stale(&w->fwd);
		offset_commits_forget(&w->commits, t, p);
		forward_ledger_committed(w->ledger, t, p, -1);
		forwarded_set_drop_partition(&w->found, t, p);
		rd_kafka_topic_partition_list_del(w->eof, t, p);
		rd_kafka_topic_partition_list_del(w->blocked, t, p);
		metrics_forget_partition(t, p);
	}
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
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct worker *w = opaque;
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

/* ---- records and consumer events ---- */

static void on_consumer_event(struct worker *w, rd_kafka_message_t *msg)
{
	if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
		partition_list_set(w->eof, rd_kafka_topic_name(msg->rkt), msg->partition,
				   msg->offset);
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

/* A redelivered record whose requeue or dead letter is in the topic already: final as it
 * is. Like a request already in the database, it resolves as replayed. */
static void already_forwarded(struct worker *w, const rd_kafka_message_t *msg,
			      const struct tracked_offset *input, const struct forwarded_record *fwd)
{
	struct asset_request req;
	struct record_origin origin;
	char reason[256];

	/* Decoded for the log line's request_id only (any that could be read). */
	asset_message_decode(msg->payload, msg->len, &req, reason, sizeof reason);
	record_origin_read(msg, w->cfg->kafka.retry_topic, &origin);
	worker_stats_count(&w->stats, STAT_REPLAYED);
	log_info("request", LOG_S("topic", input->topic), LOG_I("partition", input->partition),
		 LOG_I("offset", input->offset), LOG_S("request_id", req.request_id),
		 LOG_I("attempt", origin.attempts + 1), LOG_S("outcome", "replayed"),
		 LOG_S("forwarded_to", fwd->to_topic), LOG_I("forwarded_partition", fwd->to_partition),
		 LOG_I("forwarded_offset", fwd->to_offset));
	asset_request_clear(&req);
	worker_complete(w, input);
}

/* Takes ownership of msg. */
static void on_message(struct worker *w, rd_kafka_message_t *msg)
{
	struct tracked_offset input;
	struct forwarded_record fwd;
	if (msg->err) {
		on_consumer_event(w, msg);
		rd_kafka_message_destroy(msg);
		return;
	}
	const char *topic = rd_kafka_topic_name(msg->rkt);
	rd_kafka_topic_partition_list_del(w->eof, topic, msg->partition);
	if (offset_tracker_open(w->tracker, topic, msg->partition, msg->offset, &input) < 0) {
		/* Not ours any more (the owner gets it), or already in hand. */
		rd_kafka_message_destroy(msg);
		return;
	}
	if (w->found.count) {
		int taken = forwarded_set_take(&w->found, msg, topic, msg->partition, msg->offset,
					       &fwd);
		if (taken < 0)
			log_warn("forward_mismatch", LOG_S("topic", topic),
				 LOG_I("partition", msg->partition), LOG_I("offset", msg->offset),
				 LOG_S("forwarded_to", fwd.to_topic),
				 LOG_I("forwarded_offset", fwd.to_offset),
				 LOG_S("reason", "a forward names this record but holds other bytes "
						 "(was the topic created again?): processed as new"));
		if (taken > 0)
			already_forwarded(w, msg, &input, &fwd);
		if (taken)
			forwarded_record_cleanup(&fwd);
		if (taken > 0) {
			rd_kafka_message_destroy(msg);
			return;
		}
	}
	backlog_push(&w->backlog, msg, &input);
}

void worker_wait(struct worker *w, int ms)
{
	int64_t deadline = clock_mono_ms() + ms;
	while (worker_stage(w) == STAGE_RUNNING && !w->fatal && !w->fwd.fatal) {
		int64_t left = deadline - clock_mono_ms();
		if (left <= 0)
			break;
		rd_kafka_message_t *msg = rd_kafka_consumer_poll(w->consumer,
								 left < POLL_MS ? (int)left : POLL_MS);
		if (msg)
			on_message(w, msg);
		forwarder_poll(&w->fwd, 0);
		sync_forward_blocks(w);
		offset_commits_tick(&w->commits, w->consumer, w->ledger);
		update_gauges(w);
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
	w->fwd.resend_backoff = w->backoff;
	log_info("config_reload_applied", LOG_S("log_level", log_level_name(w->cfg->log.level)),
		 LOG_I("retry_initial_backoff_ms", w->cfg->retry.initial_backoff_ms),
		 LOG_I("retry_max_backoff_ms", w->cfg->retry.max_backoff_ms),
		 LOG_F("retry_multiplier", w->cfg->retry.multiplier),
		 LOG_I("retry_max_attempts", w->cfg->retry.max_attempts));
}

/* ---- forward floors ---- */

/* Raises the floors to the topics' current ends now and then, while none of our forwards
 * is in flight (one could land below the ends read): keeps the next owner's scan short. */
static void refresh_floors(struct worker *w)
{
	int64_t now = clock_mono_ms();
	if (now - w->floors_at_ms < FLOORS_EVERY_MS || forwarder_pending(&w->fwd) > 0)
		return;
	w->floors_at_ms = now;
	forward_scanner_raise_floors(&w->scanner, 0);
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
			  (int64_t)(w->backlog.count + w->delayed.count + forwarder_pending(&w->fwd)));
	if (rd_kafka_assignment(w->consumer, &assigned) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		for (int i = 0; i < assigned->cnt; i++)
			paused += w->paused_for_db ||
				  (w->retry_paused &&
				   strcmp(assigned->elems[i].topic, w->cfg->kafka.retry_topic) == 0) ||
				  rd_kafka_topic_partition_list_find(w->blocked,
								     assigned->elems[i].topic,
								     assigned->elems[i].partition);
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
	if (!w->assigned_once || w->backlog.count || w->delayed.count ||
	    forwarder_pending(&w->fwd) || offset_tracker_open_count(w->tracker) ||
	    !all_assigned_at_end(w)) {
		w->caught_up_since_ms = 0;
		return 0;
	}
	if (!w->caught_up_since_ms)
		w->caught_up_since_ms = now;
	return now - w->caught_up_since_ms >= DRAIN_SETTLE_MS &&
	       now - w->last_rebalance_ms >= DRAIN_SETTLE_MS;
}

/* ---- setup, loop, shutdown ---- */

static void on_signal(int sig)
{
	(void)sig;
	if (worker_signal_count < 2)
		worker_signal_count++;
}

static void on_sighup(int sig)
{
	(void)sig;
	worker_reload_requested = 1;
}

static void install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_sighup;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static int check_schema(struct worker *w, char *errbuf, size_t errsize)
{
	int pending = migrate_pending(w->pg.conn, errbuf, errsize);
	if (pending < 0)
		return -1;
	if (pending > 0) {
		snprintf(errbuf, errsize,
			 "the database schema is %d migration(s) behind this worker: run "
			 "`worker migrate --config %s` first",
			 pending, w->cfg->path);
		return -1;
	}
	return 0;
}

int worker_setup(struct worker *w, struct config *cfg, int drain_mode, char *errbuf,
		 size_t errsize)
{
	char host[64] = "worker";
	rd_kafka_conf_t *conf;

	memset(w, 0, sizeof *w);
	w->cfg = cfg;
	w->drain_mode = drain_mode;
	if (cfg->worker.id && *cfg->worker.id) {
		snprintf(w->worker_id, sizeof w->worker_id, "%s", cfg->worker.id);
	} else {
		gethostname(host, sizeof host - 1);
		snprintf(w->worker_id, sizeof w->worker_id, "%s-%d", host, (int)getpid());
	}
	w->backoff = (struct backoff_policy){ cfg->retry.initial_backoff_ms,
					      cfg->retry.max_backoff_ms, cfg->retry.multiplier };
	w->batch_limit = (size_t)cfg->postgres.batch_size;
	worker_stats_init(&w->stats);
	retry_delay_init(&w->delayed);
	w->tracker = offset_tracker_new();
	w->eof = rd_kafka_topic_partition_list_new(8);
	w->produced = rd_kafka_topic_partition_list_new(8);
	w->blocked = rd_kafka_topic_partition_list_new(4);
	w->pg = (struct pg_session){ .conninfo = cfg->postgres.conninfo,
				     .statement_timeout_ms = cfg->postgres.statement_timeout_ms,
				     .application_name = w->worker_id,
				     .statements = asset_tx_statements,
				     .nstatements = asset_tx_nstatements };
	if (!w->tracker)
		abort();
	install_signals();
	metrics_setup(AW_VERSION, cfg->kafka.group_id, w->worker_id);
	if (cfg->metrics.listen && *cfg->metrics.listen) {
		if (metrics_http_start(cfg->metrics.listen, NULL, NULL, errbuf, errsize) < 0)
			return -1;
		log_info("metrics_listening", LOG_S("listen", cfg->metrics.listen),
			 LOG_I("port", metrics_http_port()));
	}

	if (forwarder_setup(&w->fwd, cfg, w->worker_id, on_forwarded, w, errbuf, errsize) < 0)
		return -1;
	w->fwd.tracker = w->tracker;
	w->ledger = forward_ledger_new(cfg->kafka.retry_topic, cfg->kafka.dlq_topic);
	offset_commits_init(&w->commits);
	if (forward_scanner_setup(&w->scanner, cfg, w->worker_id, w->ledger, errbuf, errsize) < 0)
		return -1;
	conf = kafka_conf_new(cfg, KAFKA_CONSUMER, w->worker_id, cfg->kafka.group_id, errbuf,
			      errsize);
	if (!conf)
		return -1;
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
	rd_kafka_conf_set_opaque(conf, w);
	w->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errbuf, errsize);
	if (!w->consumer) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	/* conf is now owned by the consumer */
	rd_kafka_poll_set_consumer(w->consumer);

	/* The database first: without the schema every request would be dead-lettered. The
	 * check runs on a session without prepared statements, which need the schema. */
	w->pg.nstatements = 0;
	if (process_request_connect(w) < 0) {
		snprintf(errbuf, errsize, "stopped before the database could be reached");
		return -1;
	}
	if (check_schema(w, errbuf, errsize) < 0)
		return -1;
	pg_session_close(&w->pg);
	w->pg.nstatements = asset_tx_nstatements; /* prepared on the next connect */

	/* Where our forwards will land: the topics' ends now (nothing of ours in flight yet). */
	if (forward_scanner_raise_floors(&w->scanner, 10000) < 0)
		log_warn("forward_floors_unknown",
			 LOG_S("reason", "the retry and dead-letter topics' ends could not be read; "
					 "until they are, a later owner of our partitions reads "
					 "those topics from their beginning"));
	w->floors_at_ms = clock_mono_ms();

	rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(2);
	rd_kafka_topic_partition_list_add(topics, cfg->kafka.input_topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_topic_partition_list_add(topics, cfg->kafka.retry_topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t err = rd_kafka_subscribe(w->consumer, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (err) {
		snprintf(errbuf, errsize, "subscribe: %s", rd_kafka_err2str(err));
		return -1;
	}
	log_info("worker_started", LOG_S("version", AW_VERSION), LOG_S("group", cfg->kafka.group_id),
		 LOG_S("input_topic", cfg->kafka.input_topic),
		 LOG_S("retry_topic", cfg->kafka.retry_topic),
		 LOG_S("dlq_topic", cfg->kafka.dlq_topic), LOG_I("drain", drain_mode));
	return 0;
}

/* An input partition with a forward the broker refuses for good (too large for the topic, not
 * authorized) is paused until every such forward is accepted: its offsets cannot be committed
 * past it anyway, and the records behind it would only pile up. */
static void sync_forward_blocks(struct worker *w)
{
	const rd_kafka_topic_partition_list_t *want = w->fwd.refused_inputs;
	rd_kafka_topic_partition_list_t *change = rd_kafka_topic_partition_list_new(4);

	for (int i = 0; i < want->cnt; i++) {
		const char *t = want->elems[i].topic;
		int32_t p = want->elems[i].partition;
		if (rd_kafka_topic_partition_list_find(w->blocked, t, p))
			continue;
		rd_kafka_topic_partition_list_add(change, t, p);
		rd_kafka_topic_partition_list_add(w->blocked, t, p);
	}
	if (change->cnt) {
		rd_kafka_pause_partitions(w->consumer, change);
		log_partitions("partitions_paused_for_refused_forward", change);
	}
	rd_kafka_topic_partition_list_destroy(change);
	change = rd_kafka_topic_partition_list_new(4);
	for (int i = 0; i < w->blocked->cnt; i++)
		if (!rd_kafka_topic_partition_list_find(want, w->blocked->elems[i].topic,
							w->blocked->elems[i].partition))
			rd_kafka_topic_partition_list_add(change, w->blocked->elems[i].topic,
							  w->blocked->elems[i].partition);
	for (int i = 0; i < change->cnt; i++)
		rd_kafka_topic_partition_list_del(w->blocked, change->elems[i].topic,
						  change->elems[i].partition);
	if (change->cnt && !w->paused_for_db) {
		rd_kafka_resume_partitions(w->consumer, change);
		log_partitions("partitions_resumed_forward_accepted", change);
	}
	rd_kafka_topic_partition_list_destroy(change);
}

int worker_run(struct worker *w)
{
	static struct batch b; /* 256 entries: not on the stack */

	while (worker_stage(w) == STAGE_RUNNING && !w->fatal && !w->fwd.fatal) {
		batch_fill(w, &b);
		if (b.n > 0) {
			process_batch(w, b.entries, b.n);
			batch_done(w, &b);
		} else {
			int64_t next = retry_delay_next_in(&w->delayed, clock_wall_ms());
			int timeout = next >= 0 && next < POLL_MS ? (int)next : POLL_MS;
			rd_kafka_message_t *msg = rd_kafka_consumer_poll(w->consumer, timeout);
			if (msg)
				on_message(w, msg);
		}
		forwarder_poll(&w->fwd, 0);
		sync_forward_blocks(w);
		offset_commits_tick(&w->commits, w->consumer, w->ledger);
		refresh_floors(w);
		update_gauges(w);
		maybe_reload(w);
		worker_stats_maybe_log(&w->stats, w->cfg->log.summary_interval_ms);
		if (w->drain_mode && drained(w)) {
			log_info("drained", LOG_S("reason", "caught up and nothing waits"));
			break;
		}
	}
	return w->fatal || w->fwd.fatal ? 1 : 0;
}

/* Waits for retry/DLQ acknowledgements, so their input offsets can be committed; a second
 * signal stops the wait. */
static void await_forwarded(struct worker *w, int ms)
{
	int64_t deadline = clock_mono_ms() + ms;
	while (forwarder_pending(&w->fwd) > 0 && worker_stage(w) != STAGE_FAST_EXIT &&
	       clock_mono_ms() < deadline)
		forwarder_poll(&w->fwd, POLL_MS);
}

/* Commits what is final and leaves the group (the revoke callback runs), then destroys the
 * consumer. Not rd_kafka_consumer_close(): it waits for the group coordinator without a
 * deadline, and a broker that keeps its connections open but never answers (frozen) would
 * hold the worker forever, second signal or not. */
static rd_kafka_t *abandoned_consumer;

static void consumer_close(struct worker *w)
{
	rd_kafka_queue_t *q = rd_kafka_queue_new(w->consumer);
	rd_kafka_error_t *error = rd_kafka_consumer_close_queue(w->consumer, q);
	int64_t deadline = clock_mono_ms() + CLOSE_MS;
	int closed = 0;

	if (error) {
		log_error("consumer_close_failed", LOG_S("error", rd_kafka_error_string(error)));
		rd_kafka_error_destroy(error);
	} else {
		while (!(closed = rd_kafka_consumer_closed(w->consumer)) && not_fast_exit(w) &&
		       clock_mono_ms() < deadline) {
			rd_kafka_event_t *ev = rd_kafka_queue_poll(q, POLL_MS);
			if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
				rebalance_cb(w->consumer, rd_kafka_event_error(ev),
					     (rd_kafka_topic_partition_list_t *)
						     rd_kafka_event_topic_partition_list(ev),
					     w);
			if (ev)
				rd_kafka_event_destroy(ev);
		}
		if (!closed)
			log_warn("consumer_close_abandoned",
				 LOG_S("reason", not_fast_exit(w) ? "no answer from the group "
								    "coordinator"
								  : "second signal"));
	}
	rd_kafka_queue_destroy(q);
	if (closed) {
		rd_kafka_destroy(w->consumer);
		return;
	}
	/* librdkafka 2.0.2 cannot destroy a consumer whose close has begun until the
	 * coordinator answers (its main thread spins, and rd_kafka_destroy joins it), so the
	 * handle is left to the process's exit; kept reachable, so it is not reported as a leak.
	 * Its offsets stay uncommitted: the records come back to the next owner. */
	abandoned_consumer = w->consumer;
}

void worker_cleanup(struct worker *w)
{
	if (w->consumer) {
		int fast = worker_stage(w) == STAGE_FAST_EXIT;
		log_info("worker_stopping", LOG_S("stage", fast ? "fast_exit" : "draining"),
			 LOG_I("handed_back", (int64_t)(w->backlog.count + w->delayed.count)));
		/* Records not started are handed back: their offsets are never stored. */
		backlog_cleanup(&w->backlog);
		retry_delay_cleanup(&w->delayed);
		if (!fast && !w->fatal)
			await_forwarded(w, SHUTDOWN_FLUSH_MS);
		consumer_close(w);
		w->consumer = NULL;
	}
	forwarder_cleanup(&w->fwd, 0);
	forward_scanner_cleanup(&w->scanner);
	forwarded_set_cleanup(&w->found);
	offset_commits_cleanup(&w->commits);
	forward_ledger_free(w->ledger);
	pg_session_close(&w->pg);
	if (w->eof)
		rd_kafka_topic_partition_list_destroy(w->eof);
	if (w->produced)
		rd_kafka_topic_partition_list_destroy(w->produced);
	if (w->blocked)
		rd_kafka_topic_partition_list_destroy(w->blocked);
	offset_tracker_free(w->tracker);
	backlog_cleanup(&w->backlog);
	retry_delay_cleanup(&w->delayed);
	worker_stats_log_final(&w->stats);
	metrics_http_stop();
	metrics_cleanup();
	memset(w, 0, sizeof *w);
}
