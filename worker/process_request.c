#include "process_request.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "asset_tx.h"
#include "clock.h"
#include "consume_loop.h"
#include "forward.h"
#include "partitions.h"
#include "log.h"
#include "metrics.h"
#include "sqlstate.h"

#define BATCH_LIMIT_MIN 8

/* A decoded request waiting for the database. */
struct pending {
	struct request_entry *e;
	struct asset_request req;
	const char *rid;
	/* Transient failures of this request while other requests committed: its own problem,
	 * not the database's (SPEC 1, retry.max_in_place_attempts). */
	int own_failures;
	uint64_t commits_at_failure; /* run_transactions' commit count at its first failure */
	int failed_before;
};

static const char *nonempty(const char *s) { return s && *s ? s : NULL; }

/* The context every log line of one request carries. */
#define REQUEST_FIELDS(e, req_id)                                                            \
	LOG_S("topic", rd_kafka_topic_name((e)->msg->rkt)), LOG_I("partition", (e)->msg->partition), \
		LOG_I("offset", (e)->msg->offset), LOG_S("request_id", req_id),              \
		LOG_I("attempt", (e)->origin.attempts + 1)

/* Produces the request's forward into the open transaction; the request is final as soon as
 * it is in (the transaction commits its input offset with it). Not for a request whose
 * partition was revoked or rewound meanwhile: that one is decided again. Returns 0 when
 * forwarded. */
static int forward(struct worker *w, struct request_entry *e, const char *topic,
		   const struct forward_reason *why, int attempts, int64_t not_before_ms)
{
	struct txn_input in = { e->input.topic, e->input.partition, e->input.offset };
	/* A commit due or under way: forwards wait for it (milliseconds, unless the broker is
	 * away; a signal ends the wait and the request is handed back). */
	while (kafka_txn_busy(&w->txn) && worker_stage(w) == STAGE_RUNNING && !w->fatal) {
		kafka_txn_poll(&w->txn, 10);
		partitions_commit(w, 0);
	}
	if (kafka_txn_busy(&w->txn) || !offset_tracker_is_current(w->tracker, &e->input))
		return -1;
	if (forward_record(&w->txn, w->worker_id, e->msg, &in, &e->origin, topic, why, attempts,
			   not_before_ms) < 0)
		return -1; /* the transaction aborts, the consumer rewinds: decided again */
	worker_complete(w, &e->input);
	/* Even when its offset cannot move yet (an earlier record is open), the partition goes
	 * into the commit: offsets are what fence a zombie's transaction (KIP-447). */
	kafka_txn_offset_include(&w->txn, e->input.topic, e->input.partition,
				 offset_tracker_committable(w->tracker, e->input.topic,
							    e->input.partition));
	return 0;
}

static void dead_letter(struct worker *w, struct request_entry *e, const char *request_id,
			const struct forward_reason *why)
{
	if (forward(w, e, w->cfg->kafka.dlq_topic, why, e->origin.attempts + 1, 0) < 0)
		return;
	worker_stats_count(&w->stats, STAT_DEAD_LETTERED);
	metrics_count_dead_letter(why->error_class);
	log_warn("request", REQUEST_FIELDS(e, request_id), LOG_S("outcome", "dead_lettered"),
		 LOG_S("error_class", why->error_class), LOG_S("sqlstate", why->sqlstate),
		 LOG_S("constraint", why->constraint), LOG_S("error", why->message));
}

static void requeue(struct worker *w, struct request_entry *e, const char *request_id,
		    const struct forward_reason *why)
{
	int attempt = e->origin.attempts + 1;
	int64_t delay = backoff_delay_ms(&w->backoff, attempt, backoff_random());

	if (forward(w, e, w->cfg->kafka.retry_topic, why, attempt, clock_wall_ms() + delay) < 0)
		return;
	worker_stats_count(&w->stats, STAT_REQUEUED);
	metrics_count_retry(METRICS_RETRY_REQUEUE);
	log_info("request", REQUEST_FIELDS(e, request_id), LOG_S("outcome", "requeued"),
		 LOG_S("error_class", why->error_class), LOG_S("sqlstate", why->sqlstate),
		 LOG_S("constraint", why->constraint), LOG_I("retry_in_ms", delay));
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

/* The action for a SQLSTATE: the built-in rules, under the operator's classify: entries. */
static struct error_class classify(const struct worker *w, const char *sqlstate)
{
	return classify_sqlstate(sqlstate, w->cfg->classify, w->cfg->nclassify);
}

/* A request the database refused for its own sake: requeue or dead-letter it. */
static void settle_refused(struct worker *w, struct pending *p, const struct pg_error *err,
			   struct error_class cls)
{
	struct forward_reason why = { cls.name, nonempty(err->sqlstate), nonempty(err->constraint),
				      err->message };
	if (cls.action == ACTION_REQUEUE && p->e->origin.attempts + 1 < w->cfg->retry.max_attempts) {
		requeue(w, p->e, p->rid, &why);
		return;
	}
	if (cls.action == ACTION_REQUEUE)
		why.error_class = ERROR_CLASS_RETRIES_EXHAUSTED;
	dead_letter(w, p->e, p->rid, &why);
}

/* Waits out a transient failure. Returns 0 to try again, -1 when the worker must stop. */
static int wait_transient(struct worker *w, const struct pending *p, int tries,
			  const struct pg_error *err, const char *cls)
{
	int64_t delay = backoff_delay_ms(&w->backoff, tries, backoff_random());

	w->stats.db_retries++;
	metrics_count_retry(METRICS_RETRY_IN_PLACE);
	log_warn("database_unavailable", REQUEST_FIELDS(p->e, p->rid), LOG_S("error_class", cls),
		 LOG_S("sqlstate", nonempty(err->sqlstate)), LOG_S("error", err->message),
		 LOG_I("tries", tries), LOG_I("retry_in_ms", delay));
	worker_pause_for_db(w, 1);
	worker_wait(w, (int)delay);
	return worker_stage(w) == STAGE_RUNNING ? 0 : -1;
}

/* Drops requests whose partition was revoked meanwhile: the new owner has them. */
static size_t drop_revoked(struct worker *w, struct pending **p, size_t n)
{
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		if (offset_tracker_is_current(w->tracker, &p[i]->e->input)) {
			p[kept++] = p[i];
			continue;
		}
		log_info("request_handed_back", REQUEST_FIELDS(p[i]->e, p[i]->rid),
			 LOG_S("reason", "partition revoked"));
		asset_request_clear(&p[i]->req);
	}
	return kept;
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

/* A transient failure that one request caused: counts toward retry.max_in_place_attempts
 * once other requests have committed since its first failure (the database works, this
 * request does not). Returns 1 when the request has had its tries and must take the
 * requeue path. */
static int own_failure(struct worker *w, struct pending *p, uint64_t commits)
{
	if (!p->failed_before) {
		p->failed_before = 1;
		p->commits_at_failure = commits;
	}
	if (commits > p->commits_at_failure)
		p->own_failures++;
	return p->own_failures >= w->cfg->retry.max_in_place_attempts;
}

/* Takes a request out of the in-place loop onto the requeue path (backoff, then
 * retries_exhausted), keeping its SQLSTATE for the headers. */
static void take_out_of_place(struct worker *w, struct pending *p, const struct pg_error *err,
			      struct error_class cls)
{
	log_warn("request_failing_alone", REQUEST_FIELDS(p->e, p->rid), LOG_S("error_class", cls.name),
		 LOG_S("sqlstate", nonempty(err->sqlstate)), LOG_I("tries", p->own_failures),
		 LOG_S("reason", "other requests commit while this one keeps failing"));
	cls.action = ACTION_REQUEUE;
	settle_refused(w, p, err, cls);
	asset_request_clear(&p->req);
}

/* Moves p[i] to the end of p[0..n), so the others run before it again. */
static void rotate_to_end(struct pending **p, size_t n, size_t i)
{
	struct pending *x = p[i];
	memmove(p + i, p + i + 1, (n - i - 1) * sizeof *p);
	p[n - 1] = x;
}

/* Runs the decoded requests until each is committed or settled alone. `p` lists those still
 * to run (pointers: a request's fields point into its own struct, which must not move).
 * Returns how many are left unsettled (handed back because the worker is stopping). */
static size_t run_transactions(struct worker *w, struct pending **p, size_t n, size_t *refused)
{
	static struct asset_tx_item items[ASSET_TX_BATCH_MAX]; /* ~80 KiB: not on the stack */
	/* After a failure that is no single request's fault, go one by one to find out whose. */
	int one_by_one = 0;
	/* The last request failed alone: run the others without it first. */
	int hold_last = 0;
	int tries = 0;
	uint64_t commits = 0;

	while (n > 0) {
		size_t batch = one_by_one ? 1 : hold_last && n > 1 ? n - 1 : n, failed;
		struct pg_error err;

		if (!w->pg.conn && process_request_connect(w) < 0)
			return n;
		for (size_t i = 0; i < batch; i++)
			items[i] = (struct asset_tx_item){ .req = &p[i]->req,
							   .src = { p[i]->e->origin.topic,
								    p[i]->e->origin.partition,
								    p[i]->e->origin.offset } };
		int64_t started = clock_mono_ms();
		enum asset_tx_status st = asset_tx_run(&w->pg, items, batch, &failed, &err);
		if (st == TX_COMMITTED) {
			double seconds = (double)(clock_mono_ms() - started) / 1000.0;
			size_t again = 0; /* refused by a code the operator made transient */
			struct error_class again_cls = { 0 };
			for (size_t i = 0; i < batch; i++) {
				if (items[i].refused) {
					struct error_class cls = classify(w, items[i].err.sqlstate);
					metrics_count_db_error(items[i].err.sqlstate);
					if (cls.action == ACTION_RETRY_IN_PLACE &&
					    !own_failure(w, p[i], commits)) {
						err = items[i].err;
						again_cls = cls;
						p[again++] = p[i];
						continue;
					}
					/* Refused alone (a row, not an abort): requeue or
					 * dead-letter it; the batch committed without it. */
					if (cls.action == ACTION_RETRY_IN_PLACE)
						take_out_of_place(w, p[i], &items[i].err, cls);
					else
						settle_refused(w, p[i], &items[i].err, cls);
				} else {
					metrics_observe_processing(seconds);
					committed(w, p[i], &items[i]);
					commits++;
				}
				asset_request_clear(&p[i]->req);
			}
			memmove(p + again, p + batch, (n - batch) * sizeof *p);
			n = n - batch + again;
			hold_last = 0;
			if (again == 0) {
				tries = 0;
				continue;
			}
			if (wait_transient(w, p[0], ++tries, &err, again_cls.name) < 0)
				return n;
			n = drop_revoked(w, p, n);
			continue;
		}
		struct error_class cls = classify(w, err.sqlstate);
		metrics_count_db_error(err.sqlstate);
		if (cls.action != ACTION_RETRY_IN_PLACE && st == TX_ITEM_FAILED) {
			/* That request alone is refused; the others run again without it. */
			settle_refused(w, p[failed], &err, cls);
			(*refused)++;
			asset_request_clear(&p[failed]->req);
			memmove(p + failed, p + failed + 1, (n - failed - 1) * sizeof *p);
			n--;
			continue;
		}
		if (cls.action != ACTION_RETRY_IN_PLACE && batch == 1) {
			/* Refused at COMMIT (a deferred constraint or trigger), alone: it is this
			 * request's own refusal, settled by its SQLSTATE like any other. */
			log_warn("commit_refused", REQUEST_FIELDS(p[0]->e, p[0]->rid),
				 LOG_S("sqlstate", nonempty(err.sqlstate)), LOG_S("error", err.message));
			settle_refused(w, p[0], &err, cls);
			(*refused)++;
			asset_request_clear(&p[0]->req);
			memmove(p, p + 1, (n - 1) * sizeof *p);
			n--;
			continue;
		}
		if (cls.action != ACTION_RETRY_IN_PLACE) {
			one_by_one = 1; /* refused at COMMIT: find the request */
			continue;
		}
		if (cls.reconnect)
			pg_session_close(&w->pg); /* e.g. a standby after a failover: find the primary */
		size_t culprit = st == TX_ITEM_FAILED ? failed : 0;
		if (st == TX_ITEM_FAILED && !cls.reconnect) {
			if (own_failure(w, p[culprit], commits)) {
				take_out_of_place(w, p[culprit], &err, cls);
				memmove(p + culprit, p + culprit + 1, (n - culprit - 1) * sizeof *p);
				n--;
				continue;
			}
			/* The others first, without it: if they commit, the database is fine. */
			rotate_to_end(p, n, culprit);
			culprit = n - 1;
			hold_last = 1;
		}
		if (wait_transient(w, p[culprit], ++tries, &err, cls.name) < 0)
			return n;
		n = drop_revoked(w, p, n);
	}
	worker_pause_for_db(w, 0);
	return 0;
}

/* Each refused request makes the requests before it in its batch run again, so the cost
 * of an error grows with the batch: halve the batch after a refusal, grow it by a step after
 * a clean full one (up to postgres.batch_size). A clean stream soon runs full batches; an
 * error mix settles where re-runs stay cheap. */
static void adapt_batch_limit(struct worker *w, size_t n, size_t refused)
{
	size_t max = (size_t)w->cfg->postgres.batch_size;
	if (refused > 0 && w->batch_limit > BATCH_LIMIT_MIN)
		w->batch_limit = w->batch_limit / 2 > BATCH_LIMIT_MIN ? w->batch_limit / 2
								      : BATCH_LIMIT_MIN;
	else if (refused == 0 && n >= w->batch_limit && w->batch_limit < max)
		w->batch_limit = w->batch_limit + BATCH_LIMIT_MIN < max ? w->batch_limit + BATCH_LIMIT_MIN
									: max;
}

void process_batch(struct worker *w, struct request_entry *entries, size_t n)
{
	struct pending *all = calloc(n ? n : 1, sizeof *all);
	struct pending **run = calloc(n ? n : 1, sizeof *run);
	size_t nrun = 0;

	if (!all || !run)
		abort();
	for (size_t i = 0; i < n; i++) {
		struct pending *d = &all[i];
		char reason[512];
		enum decode_status st = asset_message_decode(entries[i].msg->payload,
							     entries[i].msg->len, &d->req, reason,
							     sizeof reason);
		d->e = &entries[i];
		d->rid = d->req.request_id ? d->req.request_id : "";
		if (st == DECODE_OK) {
			run[nrun++] = d;
			continue;
		}
		/* Undecodable: dead-lettered without touching the database. */
		struct forward_reason why = {
			st == DECODE_UNSUPPORTED ? ERROR_CLASS_UNSUPPORTED : ERROR_CLASS_MALFORMED,
			NULL, NULL, reason
		};
		dead_letter(w, d->e, d->rid, &why);
		asset_request_clear(&d->req);
	}
	size_t refused = 0;
	size_t left = run_transactions(w, run, nrun, &refused);
	adapt_batch_limit(w, n, refused);
	for (size_t i = 0; i < left; i++) {
		log_info("request_handed_back", REQUEST_FIELDS(run[i]->e, run[i]->rid),
			 LOG_S("reason", "shutting down"));
		asset_request_clear(&run[i]->req);
	}
	free(run);
	free(all);
}
