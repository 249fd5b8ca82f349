/* A worker's life before and after the consume loop: signals, the database and schema check,
 * the transactional producer and the consumer, in that order; at a graceful stop the last
 * transaction, leaving the group, and freeing everything. */
#include "consume_loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asset_tx.h"
#include "clock.h"
#include "kafka_conf.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "migrate.h"
#include "partitions.h"
#include "process_request.h"

#define POLL_MS 100
#define SHUTDOWN_COMMIT_MS 30000 /* a graceful stop waits this long for its last commit (a
				  * second signal cuts it short) */
#define CLOSE_MS 30000           /* how long a graceful stop waits to leave the group */
#define RENEW_MIN_MS 30000       /* a producer fenced again sooner than this: stop */

volatile sig_atomic_t worker_signal_count;
volatile sig_atomic_t worker_reload_requested;

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

/* Whether a wait may go on: not once the worker is stopping. */
static int still_running(void *arg)
{
	return worker_stage(arg) == STAGE_RUNNING;
}

int worker_renew_producer(struct worker *w)
{
	char errbuf[512];
	int64_t now = clock_mono_ms();

	if (w->producer_renewed_ms && now - w->producer_renewed_ms < RENEW_MIN_MS) {
		log_error("producer_fenced_again",
			  LOG_S("reason", "fenced again soon after a new producer: another worker "
					  "may share this worker.id; stopping"));
		return -1;
	}
	w->producer_renewed_ms = now;
	forward_outbox_cleanup(&w->outbox); /* their requests are consumed again */
	kafka_txn_cleanup(&w->txn, 0);
	if (kafka_txn_setup(&w->txn, w->cfg, w->worker_id, partitions_forward_delivered,
			    partitions_forward_refused, w, still_running, w, errbuf,
			    sizeof errbuf) < 0) {
		log_error("producer_renew_failed", LOG_S("error", errbuf));
		return -1;
	}
	log_warn("producer_renewed",
		 LOG_S("reason", "the transactional producer was fenced (its transaction outlived "
				 "transaction.timeout.ms, e.g. across a broker outage); a new one "
				 "took its transactional.id, and every partition is rewound"));
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

	if (kafka_txn_setup(&w->txn, cfg, w->worker_id, partitions_forward_delivered,
			    partitions_forward_refused, w, still_running, w, errbuf, errsize) < 0)
		return -1;
	conf = kafka_conf_new(cfg, KAFKA_CONSUMER, w->worker_id, cfg->kafka.group_id, errbuf,
			      errsize);
	if (!conf)
		return -1;
	rd_kafka_conf_set_rebalance_cb(conf, partitions_rebalance_cb);
	rd_kafka_conf_set_opaque(conf, w);
	w->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errbuf, errsize);
	if (!w->consumer) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	/* conf is now owned by the consumer */
	rd_kafka_poll_set_consumer(w->consumer);

	/* The database before subscribing: without the schema every request would be dead-lettered. The
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

/* Whether a wait may go on: not after a second signal. */
static int not_fast_exit(void *arg)
{
	return worker_stage(arg) != STAGE_FAST_EXIT;
}

/* The last transaction: what is final is committed before the group is left. (An abort
 * now needs no rewind: the records come back to the partitions' next owner.) */
static void commit_before_exit(struct worker *w)
{
	if (partitions_commit_all(w, SHUTDOWN_COMMIT_MS) == TXN_FATAL)
		w->fatal = 1;
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
				partitions_rebalance_cb(w->consumer, rd_kafka_event_error(ev),
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
	int fast = worker_stage(w) == STAGE_FAST_EXIT;
	if (w->consumer) {
		log_info("worker_stopping", LOG_S("stage", fast ? "fast_exit" : "draining"),
			 LOG_I("handed_back", (int64_t)(w->backlog.count + w->delayed.count)));
		/* Records not started are handed back: their offsets are never committed. */
		backlog_cleanup(&w->backlog);
		retry_delay_cleanup(&w->delayed);
		if (!fast && !w->fatal)
			commit_before_exit(w);
		/* Forwards that never made it into a transaction: their requests are redelivered. */
		forward_outbox_cleanup(&w->outbox);
		consumer_close(w);
		w->consumer = NULL;
	}
	/* A second signal may have come meanwhile: then nothing more waits for the broker. */
	kafka_txn_cleanup(&w->txn, worker_stage(w) == STAGE_FAST_EXIT || w->fatal);
	forward_outbox_cleanup(&w->outbox);
	forward_hold_cleanup(&w->hold);
	pg_session_close(&w->pg);
	if (w->eof)
		rd_kafka_topic_partition_list_destroy(w->eof);
	if (w->produced)
		rd_kafka_topic_partition_list_destroy(w->produced);
	offset_tracker_free(w->tracker);
	backlog_cleanup(&w->backlog);
	retry_delay_cleanup(&w->delayed);
	worker_stats_log_final(&w->stats);
	metrics_http_stop();
	metrics_cleanup();
	memset(w, 0, sizeof *w);
}
