#include "process_request.h"

#include <stdint.h>
#include <stdlib.h>

#include "asset_tx.h"
#include "clock.h"
#include "consume_loop.h"
#include "decide.h"
#include "forward.h"
#include "partitions.h"
#include "log.h"
#include "metrics.h"

/* A decoded request waiting for the database; its history for the decisions is in the
 * plan's decide_request of the same index. */
struct pending {
	struct request_entry *e;
	struct asset_request req;
	const char *rid;
};

static const char *nonempty(const char *s) { return s && *s ? s : NULL; }

/* The context every log line of one request carries. */
#define REQUEST_FIELDS(e, req_id)                                                            \
	LOG_S("topic", rd_kafka_topic_name((e)->msg->rkt)), LOG_I("partition", (e)->msg->partition), \
		LOG_I("offset", (e)->msg->offset), LOG_S("request_id", req_id),              \
		LOG_I("attempt", (e)->origin.attempts + 1)

/* Produces a built forward into the open transaction and closes its record, which is the
 * first open one of its partition: the offset that goes with it covers it. */
static void send_forward(struct worker *w, struct forward_out *f)
{
	struct tracked_offset input = f->input;
	if (forward_send(&w->txn, f) < 0)
		return; /* the transaction aborts, the consumer rewinds: decided again */
	partitions_forward_produced(w, input.topic, input.partition, input.offset);
	worker_complete(w, &input);
}

void process_request_flush_forwards(struct worker *w)
{
	int progress = 1;
	/* Sending one closes its record and may let the next of its partition go: passes until
	 * none moves. */
	while (progress && w->outbox.count > 0 && !kafka_txn_busy(&w->txn)) {
		progress = 0;
		for (struct forward_out **pp = &w->outbox.head; *pp && !kafka_txn_busy(&w->txn);) {
			const struct tracked_offset *in = &(*pp)->input;
			if (!offset_tracker_is_current(w->tracker, in)) {
				/* Revoked or rewound meanwhile: decided again by whoever owns it. */
				forward_out_free(forward_outbox_unlink(&w->outbox, pp));
				progress = 1;
			} else if (offset_tracker_committable(w->tracker, in->topic, in->partition) ==
				   in->offset) {
				send_forward(w, forward_outbox_unlink(&w->outbox, pp));
				progress = 1;
			} else {
				pp = &(*pp)->next; /* an earlier record of its partition is open */
			}
		}
	}
}

/* Forwards the request: into the outbox, and from there into the transaction as soon as it
 * may go (see forward.h). */
static void forward(struct worker *w, struct request_entry *e, const char *topic,
		    const struct forward_reason *why, int attempts, int64_t not_before_ms)
{
	forward_outbox_push(&w->outbox, forward_build(w->worker_id, e->msg, &e->input, &e->origin,
						      topic, why, attempts, not_before_ms));
	process_request_flush_forwards(w);
}

static void dead_letter(struct worker *w, struct request_entry *e, const char *request_id,
			const struct forward_reason *why, const struct decision *d)
{
	forward(w, e, w->cfg->kafka.dlq_topic, why, d->attempt, 0);
	worker_stats_count(&w->stats, STAT_DEAD_LETTERED);
	metrics_count_dead_letter(why->error_class);
	log_warn("request", REQUEST_FIELDS(e, request_id), LOG_S("outcome", "dead_lettered"),
		 LOG_S("error_class", why->error_class), LOG_S("sqlstate", why->sqlstate),
		 LOG_S("constraint", why->constraint), LOG_S("error", why->message));
}

static void requeue(struct worker *w, struct request_entry *e, const char *request_id,
		    const struct forward_reason *why, const struct decision *d)
{
	forward(w, e, w->cfg->kafka.retry_topic, why, d->attempt, d->not_before_ms);
	worker_stats_count(&w->stats, STAT_REQUEUED);
	metrics_count_retry(METRICS_RETRY_REQUEUE);
	log_info("request", REQUEST_FIELDS(e, request_id), LOG_S("outcome", "requeued"),
		 LOG_S("error_class", why->error_class), LOG_S("sqlstate", why->sqlstate),
		 LOG_S("constraint", why->constraint), LOG_I("retry_in_ms", d->delay_ms));
}

static void committed(struct worker *w, const struct pending *p, const struct asset_tx_item *it)
{
	static const enum stat_outcome stat[] = { [OUTCOME_CREATED] = STAT_CREATED,
						  [OUTCOME_DUPLICATE] = STAT_DUPLICATE,
						  [OUTCOME_REPLAYED] = STAT_REPLAYED };
	worker_complete(w, &p->e->input);
	worker_stats_count(&w->stats, stat[it->outcome]);
	log_info("request", REQUEST_FIELDS(p->e, p->rid),
		 LOG_S("outcome", asset_outcome_name(it->outcome)), LOG_S("asset_id", it->asset_id));
}

/* Carries out a decision to requeue or dead-letter a request the database refused. */
static void settle(struct worker *w, struct pending *p, const struct decision *d,
		   const struct pg_error *err)
{
	struct forward_reason why = { d->error_class, nonempty(err->sqlstate),
				      nonempty(err->constraint), err->message };
	if (d->commit_refused)
		log_warn("commit_refused", REQUEST_FIELDS(p->e, p->rid),
			 LOG_S("sqlstate", nonempty(err->sqlstate)), LOG_S("error", err->message));
	if (d->failing_alone)
		log_warn("request_failing_alone", REQUEST_FIELDS(p->e, p->rid),
			 LOG_S("error_class", d->sqlstate_class),
			 LOG_S("sqlstate", nonempty(err->sqlstate)), LOG_I("tries", d->own_failures),
			 LOG_S("reason", "other requests commit while this one keeps failing"));
	if (d->kind == DECIDE_REQUEUE)
		requeue(w, p->e, p->rid, &why, d);
	else
		dead_letter(w, p->e, p->rid, &why, d);
	asset_request_clear(&p->req);
}

/* Waits out a transient failure. Returns 0 to try again, -1 when the worker must stop. */
static int wait_transient(struct worker *w, const struct pending *p, const struct plan_wait *pw,
			  const struct pg_error *err)
{
	w->stats.db_retries++;
	metrics_count_retry(METRICS_RETRY_IN_PLACE);
	log_warn("database_unavailable", REQUEST_FIELDS(p->e, p->rid),
		 LOG_S("error_class", pw->error_class), LOG_S("sqlstate", nonempty(err->sqlstate)),
		 LOG_S("error", err->message), LOG_I("tries", pw->tries),
		 LOG_I("retry_in_ms", pw->delay_ms));
	worker_pause_for_db(w, 1);
	worker_wait(w, (int)pw->delay_ms);
	return worker_stage(w) == STAGE_RUNNING ? 0 : -1;
}

/* Drops requests whose partition was revoked meanwhile: the new owner has them. */
static void drop_revoked(struct worker *w, struct pending *all, struct decide_plan *pl)
{
	for (size_t i = 0; i < pl->n;) {
		struct pending *p = &all[pl->order[i]];
		if (offset_tracker_is_current(w->tracker, &p->e->input)) {
			i++;
			continue;
		}
		log_info("request_handed_back", REQUEST_FIELDS(p->e, p->rid),
			 LOG_S("reason", "partition revoked"));
		asset_request_clear(&p->req);
		decide_plan_remove(pl, i);
	}
}

int process_request_connect(struct worker *w)
{
	struct pg_error err;
	for (int tries = 1;; tries++) {
		if (pg_session_connect(&w->pg, &err) == 0) {
			if (tries > 1 || w->stats.db_reconnects > 0) {
				log_info("database_connected", LOG_I("tries", tries));
				metrics_count_db_reconnect();
			}
			w->stats.db_reconnects++;
			metrics_set_gauge(METRICS_DB_UP, 1);
			worker_pause_for_db(w, 0);
			return 0;
		}
		/* Whatever the reason (down, refusing, bad password), the requests are not at
		 * fault: wait, and say why. */
		int64_t delay = backoff_delay_ms(&w->backoff, tries, backoff_random());
		log_warn("database_connect_failed", LOG_S("sqlstate", nonempty(err.sqlstate)),
			 LOG_S("error", err.message), LOG_I("tries", tries),
			 LOG_I("retry_in_ms", delay));
		metrics_set_gauge(METRICS_DB_UP, 0);
		worker_pause_for_db(w, 1);
		worker_wait(w, (int)delay);
		if (worker_stage(w) != STAGE_RUNNING)
			return -1;
	}
}

/* One transaction and its answer. */
struct round {
	struct asset_tx_item items[ASSET_TX_BATCH_MAX];
	const char *refused[ASSET_TX_BATCH_MAX]; /* per position: a row's SQLSTATE, or NULL */
	double rnd[ASSET_TX_BATCH_MAX + 1];      /* the core's random factors */
	struct decision out[ASSET_TX_BATCH_MAX];
	struct plan_wait wait;
	struct pg_error err; /* the failure, or the row the wait reports */
	int64_t now;
};

/* Carries out the decisions on a committed transaction. */
static void on_committed(struct worker *w, struct pending *all, struct decide_plan *pl,
			 struct round *r, double seconds)
{
	size_t batch = pl->batch;

	for (size_t i = 0; i < batch; i++)
		r->refused[i] = r->items[i].refused ? r->items[i].err.sqlstate : NULL;
	decide_plan_on_committed(pl, r->refused, r->now, r->rnd, r->out, &r->wait);
	for (size_t i = 0; i < batch; i++) {
		const struct decision *d = &r->out[i];
		struct pending *p = &all[d->request];
		if (d->kind == DECIDE_COMMITTED) {
			metrics_observe_processing(seconds);
			committed(w, p, &r->items[i]);
			asset_request_clear(&p->req);
			continue;
		}
		metrics_count_db_error(r->items[i].err.sqlstate);
		if (d->kind == DECIDE_RETRY_IN_PLACE)
			r->err = r->items[i].err; /* refused by a code the operator made transient */
		else
			settle(w, p, d, &r->items[i].err);
	}
}

/* Runs the plan's requests until each is committed or settled alone. On return the plan
 * holds those left unsettled (handed back: the worker is stopping). */
static void run_transactions(struct worker *w, struct pending *all, struct decide_plan *pl)
{
	static struct round r; /* ~90 KiB: not on the stack */
	size_t batch;

	while ((batch = decide_plan_next_size(pl)) > 0) {
		size_t failed;

		if (!w->pg.conn && process_request_connect(w) < 0)
			return;
		for (size_t i = 0; i < batch; i++) {
			const struct pending *p = &all[pl->order[i]];
			r.items[i] = (struct asset_tx_item){ .req = &p->req,
							     .src = { p->e->origin.topic,
								      p->e->origin.partition,
								      p->e->origin.offset } };
		}
		for (size_t i = 0; i <= batch; i++)
			r.rnd[i] = backoff_random();
		int64_t started = clock_mono_ms();
		enum asset_tx_status st = asset_tx_run(&w->pg, r.items, batch, &failed, &r.err);
		r.now = clock_wall_ms();
		if (st == TX_COMMITTED) {
			on_committed(w, all, pl, &r, (double)(clock_mono_ms() - started) / 1000.0);
		} else {
			metrics_count_db_error(r.err.sqlstate);
			size_t nd = st == TX_ITEM_FAILED
					    ? decide_plan_on_item_failed(pl, failed, r.err.sqlstate,
									 r.now, r.rnd, r.out, &r.wait)
					    : decide_plan_on_failed(pl, r.err.sqlstate, r.now, r.rnd,
								    r.out, &r.wait);
			if (nd == 1 && r.out[0].kind != DECIDE_RETRY_IN_PLACE)
				settle(w, &all[r.out[0].request], &r.out[0], &r.err);
		}
		if (!r.wait.wait)
			continue;
		if (r.wait.reconnect)
			pg_session_close(&w->pg); /* e.g. a standby after a failover: find the primary */
		if (wait_transient(w, &all[r.wait.request], &r.wait, &r.err) < 0)
			return;
		drop_revoked(w, all, pl);
	}
	worker_pause_for_db(w, 0);
}

void process_batch(struct worker *w, struct request_entry *entries, size_t n)
{
	struct pending *all = calloc(n ? n : 1, sizeof *all);
	struct decide_request *hist = calloc(n ? n : 1, sizeof *hist);
	size_t *order = calloc(n ? n : 1, sizeof *order);
	struct decide_policy policy = { .max_attempts = w->cfg->retry.max_attempts,
					.max_in_place_attempts = w->cfg->retry.max_in_place_attempts,
					.backoff = w->backoff,
					.classify = w->cfg->classify,
					.nclassify = w->cfg->nclassify,
					.batch_size = (size_t)w->cfg->postgres.batch_size };
	struct decide_plan pl;
	size_t nrun = 0;

	if (!all || !hist || !order)
		abort();
	for (size_t i = 0; i < n; i++) {
		struct pending *d = &all[i];
		char reason[512];
		enum decode_status st = asset_message_decode(entries[i].msg->payload,
							     entries[i].msg->len, &d->req, reason,
							     sizeof reason);
		d->e = &entries[i];
		d->rid = d->req.request_id ? d->req.request_id : "";
		hist[i].attempts = d->e->origin.attempts;
		if (st == DECODE_OK) {
			order[nrun++] = i;
			continue;
		}
		/* Undecodable: dead-lettered without touching the database. */
		struct decision dd = decide_undecodable(&hist[i], st);
		struct forward_reason why = { dd.error_class, NULL, NULL, reason };
		dead_letter(w, d->e, d->rid, &why, &dd);
		asset_request_clear(&d->req);
	}
	decide_plan_init(&pl, &policy, hist, order, nrun);
	run_transactions(w, all, &pl);
	process_request_flush_forwards(w); /* those behind the records just committed */
	w->batch_limit = decide_batch_limit(w->batch_limit, n, pl.refused, policy.batch_size);
	for (size_t i = 0; i < pl.n; i++) {
		struct pending *p = &all[pl.order[i]];
		log_info("request_handed_back", REQUEST_FIELDS(p->e, p->rid),
			 LOG_S("reason", "shutting down"));
		asset_request_clear(&p->req);
	}
	free(order);
	free(hist);
	free(all);
}
