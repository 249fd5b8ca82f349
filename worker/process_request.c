#include "process_request.h"

#include <string.h>

#include "asset_tx.h"
#include "clock.h"
#include "consume_loop.h"
#include "log.h"
#include "sqlstate.h"

static const char *nonempty(const char *s) { return s && *s ? s : NULL; }

/* The context every log line of one request carries. */
#define REQUEST_FIELDS(msg, req_id, attempt)                                                \
	LOG_S("topic", rd_kafka_topic_name((msg)->rkt)), LOG_I("partition", (msg)->partition), \
		LOG_I("offset", (msg)->offset), LOG_S("request_id", req_id),                 \
		LOG_I("attempt", attempt)

static void dead_letter(struct worker *w, const rd_kafka_message_t *msg,
			const struct tracked_offset *input, const struct record_origin *origin,
			int attempt, const char *request_id, const struct forward_reason *why)
{
	forward_record(&w->fwd, msg, input, origin, w->cfg->kafka.dlq_topic, why, attempt, 0);
	worker_stats_count(&w->stats, STAT_DEAD_LETTERED);
	log_warn("request", REQUEST_FIELDS(msg, request_id, attempt),
		 LOG_S("outcome", "dead_lettered"), LOG_S("error_class", why->error_class),
		 LOG_S("sqlstate", why->sqlstate), LOG_S("constraint", why->constraint),
		 LOG_S("error", why->message));
}

static void requeue(struct worker *w, const rd_kafka_message_t *msg,
		    const struct tracked_offset *input, const struct record_origin *origin,
		    int attempt, const char *request_id, const struct forward_reason *why)
{
	int64_t delay = backoff_delay_ms(&w->backoff, attempt, backoff_random());
	int64_t not_before = clock_wall_ms() + delay;

	forward_record(&w->fwd, msg, input, origin, w->cfg->kafka.retry_topic, why, attempt,
		       not_before);
	worker_stats_count(&w->stats, STAT_REQUEUED);
	log_info("request", REQUEST_FIELDS(msg, request_id, attempt), LOG_S("outcome", "requeued"),
		 LOG_S("error_class", why->error_class), LOG_S("sqlstate", why->sqlstate),
		 LOG_S("constraint", why->constraint), LOG_I("retry_in_ms", delay));
}

static void committed(struct worker *w, const rd_kafka_message_t *msg,
		      const struct tracked_offset *input, int attempt, const char *request_id,
		      enum asset_outcome outcome, const char *asset_id)
{
	static const enum stat_outcome stat[] = { [OUTCOME_CREATED] = STAT_CREATED,
						  [OUTCOME_DUPLICATE] = STAT_DUPLICATE,
						  [OUTCOME_REPLAYED] = STAT_REPLAYED };
	worker_complete(w, input);
	worker_stats_count(&w->stats, stat[outcome]);
	log_info("request", REQUEST_FIELDS(msg, request_id, attempt),
		 LOG_S("outcome", asset_outcome_name(outcome)), LOG_S("asset_id", asset_id));
}

/* Waits out a transient failure. Returns 0 to try again, -1 to abandon the request. */
static int wait_transient(struct worker *w, const rd_kafka_message_t *msg,
			  const struct tracked_offset *input, const char *request_id,
			  int attempt, int tries, const struct pg_error *err, const char *cls)
{
	int64_t delay = backoff_delay_ms(&w->backoff, tries, backoff_random());

	w->stats.db_retries++;
	log_warn("database_unavailable", REQUEST_FIELDS(msg, request_id, attempt),
		 LOG_S("error_class", cls), LOG_S("sqlstate", nonempty(err->sqlstate)),
		 LOG_S("error", err->message), LOG_I("tries", tries), LOG_I("retry_in_ms", delay));
	worker_pause_for_db(w, 1);
	worker_wait(w, (int)delay);
	if (worker_stage(w) != STAGE_RUNNING || !offset_tracker_is_current(w->tracker, input)) {
		log_info("request_handed_back", REQUEST_FIELDS(msg, request_id, attempt),
			 LOG_S("reason", worker_stage(w) != STAGE_RUNNING ? "shutting down"
									  : "partition revoked"));
		return -1;
	}
	return 0;
}

int process_request_connect(struct worker *w)
{
	struct pg_error err;
	for (int tries = 1;; tries++) {
		if (pg_session_connect(&w->pg, &err) == 0) {
			if (tries > 1 || w->stats.db_reconnects > 0)
				log_info("database_connected", LOG_I("tries", tries));
			w->stats.db_reconnects++;
			worker_pause_for_db(w, 0);
			return 0;
		}
		/* Whatever the reason (down, refusing, bad password), the requests are not at
		 * fault: wait, and say why. */
		int64_t delay = backoff_delay_ms(&w->backoff, tries, backoff_random());
		log_warn("database_connect_failed", LOG_S("sqlstate", nonempty(err.sqlstate)),
			 LOG_S("error", err.message), LOG_I("tries", tries),
			 LOG_I("retry_in_ms", delay));
		worker_pause_for_db(w, 1);
		worker_wait(w, (int)delay);
		if (worker_stage(w) != STAGE_RUNNING)
			return -1;
	}
}

void process_request(struct worker *w, const rd_kafka_message_t *msg,
		     const struct tracked_offset *input, const struct record_origin *origin)
{
	int attempt = origin->attempts + 1;
	char reason[512];
	struct asset_request req;
	enum decode_status st = asset_message_decode(msg->payload, msg->len, &req, reason,
						     sizeof reason);
	const char *rid = req.request_id ? req.request_id : "";

	if (st != DECODE_OK) {
		struct forward_reason why = {
			st == DECODE_UNSUPPORTED ? ERROR_CLASS_UNSUPPORTED : ERROR_CLASS_MALFORMED,
			NULL, NULL, reason
		};
		dead_letter(w, msg, input, origin, attempt, rid, &why);
		goto done;
	}

	struct asset_source src = { origin->topic, origin->partition, origin->offset };
	for (int tries = 1;; tries++) {
		struct pg_error err;
		enum asset_outcome outcome;
		char asset_id[37];

		if (!w->pg.conn && process_request_connect(w) < 0)
			goto done; /* stopping: handed back */
		if (asset_tx_run(&w->pg, &req, &src, &outcome, asset_id, &err) == 0) {
			committed(w, msg, input, attempt, rid, outcome, asset_id);
			break;
		}
		struct error_class cls = classify_sqlstate(err.sqlstate);
		struct forward_reason why = { cls.name, nonempty(err.sqlstate),
					      nonempty(err.constraint), err.message };
		if (cls.action == ACTION_REQUEUE) {
			if (attempt >= w->cfg->retry.max_attempts) {
				why.error_class = ERROR_CLASS_RETRIES_EXHAUSTED;
				dead_letter(w, msg, input, origin, attempt, rid, &why);
			} else {
				requeue(w, msg, input, origin, attempt, rid, &why);
			}
			break;
		}
		if (cls.action == ACTION_DEAD_LETTER) {
			dead_letter(w, msg, input, origin, attempt, rid, &why);
			break;
		}
		if (wait_transient(w, msg, input, rid, attempt, tries, &err, cls.name) < 0)
			break;
	}
	worker_pause_for_db(w, 0);
done:
	asset_request_clear(&req);
}
