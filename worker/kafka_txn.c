#include "kafka_txn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "kafka_conf.h"
#include "log.h"
#include "xalloc.h"

/* How long one transactional call may block the commit thread before it checks whether it
 * must stop; librdkafka resumes a call that timed out when it is made again. */
#define CALL_MS 500
/* send_offsets_to_transaction is not resumable in librdkafka 2.0.2: a timeout makes the
 * transaction abortable, so the group coordinator gets seconds, not a loop turn. */
#define SEND_OFFSETS_MS 5000
#define INIT_CALL_MS 10000
#define RETRY_PAUSE_MS 100
#define STOP_ABORT_MS 5000 /* a graceful stop's abort of what is still open */

/* Left to the process's exit when a fast stop finds the commit thread inside a call that
 * waits for the broker (librdkafka cannot destroy a producer a thread is using); reachable,
 * so it is not reported as a leak. */
static struct txn_job *abandoned_job;
static rd_kafka_queue_t *abandoned_events;

/* Travels with each produced forward, so its delivery report names the input record. */
struct forward_note {
	char *topic;
	int32_t partition;
	int64_t offset;
};

static void note_free(struct forward_note *n)
{
	if (!n)
		return;
	free(n->topic);
	free(n);
}

/* ---- the loop's side: delivery reports, errors ---- */

static void on_delivery(struct kafka_txn *t, const rd_kafka_message_t *m)
{
	struct forward_note *n = m->_private;
	struct txn_input in = { n->topic, n->partition, n->offset };

	t->inflight--;
	if (!m->err) {
		if (t->delivered)
			t->delivered(t->opaque, &in, rd_kafka_topic_name(m->rkt), m->partition,
				     m->offset);
	} else if (m->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE &&
		   m->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
		/* Purged = aborted with its transaction: redone after the rewind, no refusal. */
		t->doomed = 1;
		if (t->refused)
			t->refused(t->opaque, &in, rd_kafka_topic_name(m->rkt), m->err);
	}
	note_free(n);
}

/* Fatal errors arrive here too; the commit thread's calls then fail as fatal. */
static void on_error(struct kafka_txn *t, rd_kafka_event_t *ev)
{
	if (rd_kafka_event_error_is_fatal(ev)) {
		char fatal[512];
		rd_kafka_fatal_error(t->producer, fatal, sizeof fatal);
		log_error("producer_fatal", LOG_S("error", fatal));
		if (t->state != TXN_COMMITTING && t->state != TXN_ABORTING)
			t->state = TXN_DEAD;
	} else {
		log_warn("producer_error", LOG_S("error", rd_kafka_event_error_string(ev)));
	}
}

void kafka_txn_poll(struct kafka_txn *t, int timeout_ms)
{
	rd_kafka_event_t *ev;
	if (!t->events)
		return;
	while ((ev = rd_kafka_queue_poll(t->events, timeout_ms))) {
		const rd_kafka_message_t *m;
		timeout_ms = 0; /* then whatever else is there, without waiting */
		switch (rd_kafka_event_type(ev)) {
		case RD_KAFKA_EVENT_DR:
			while ((m = rd_kafka_event_message_next(ev)))
				on_delivery(t, m);
			break;
		case RD_KAFKA_EVENT_ERROR:
			on_error(t, ev);
			break;
		default:
			break;
		}
		rd_kafka_event_destroy(ev);
	}
}

/* ---- the commit thread ---- */

enum call_outcome { CALL_RETRY, CALL_ABORT, CALL_FATAL };

/* The one place a transactional error is classified (see kafka_txn.h). Takes e. */
static enum call_outcome classify(struct txn_job *j, rd_kafka_error_t *e, const char *op)
{
	enum call_outcome o = rd_kafka_error_is_fatal(e)		? CALL_FATAL
			      : rd_kafka_error_txn_requires_abort(e) ? CALL_ABORT
			      : rd_kafka_error_is_retriable(e)	     ? CALL_RETRY
			      /* neither: librdkafka says treat it as fatal */
								     : CALL_FATAL;
	if (o == CALL_RETRY)
		log_info("transaction_waiting", LOG_S("operation", op),
			 LOG_S("error", rd_kafka_error_string(e)));
	else
		log_warn("transaction_failed", LOG_S("operation", op),
			 LOG_S("error", rd_kafka_error_string(e)));
	snprintf(j->reason, sizeof j->reason, "%s: %s", op, rd_kafka_error_string(e));
	rd_kafka_error_destroy(e);
	return o;
}

static int stopping(struct txn_job *j)
{
	int stop;
	pthread_mutex_lock(&j->mu);
	stop = j->stop;
	pthread_mutex_unlock(&j->mu);
	return stop;
}

static void pause_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static enum txn_status run_abort(struct txn_job *j)
{
	for (;;) {
		rd_kafka_error_t *e = rd_kafka_abort_transaction(j->producer, CALL_MS);
		if (!e)
			return TXN_ABORTED;
		if (classify(j, e, "abort_transaction") == CALL_FATAL)
			return TXN_FATAL;
		if (stopping(j))
			return TXN_FATAL;
		pause_ms(RETRY_PAUSE_MS);
	}
}

static enum txn_status run_commit(struct txn_job *j)
{
	int sent = j->offsets->cnt == 0;
	for (;;) {
		rd_kafka_error_t *e;
		const char *op;
		if (!sent) {
			/* Sent again as they were after a timeout (librdkafka's advice). */
			op = "send_offsets_to_transaction";
			e = rd_kafka_send_offsets_to_transaction(j->producer, j->offsets, j->cgmd,
								 SEND_OFFSETS_MS);
			if (!e) {
				sent = 1;
				continue;
			}
		} else {
			op = "commit_transaction";
			e = rd_kafka_commit_transaction(j->producer, CALL_MS);
			if (!e)
				return TXN_OK;
		}
		switch (classify(j, e, op)) {
		case CALL_ABORT:
			return run_abort(j);
		case CALL_FATAL:
			return TXN_FATAL;
		case CALL_RETRY:
			if (stopping(j))
				return TXN_FATAL;
			pause_ms(RETRY_PAUSE_MS);
			break;
		}
	}
}

static void *commit_thread(void *arg)
{
	struct txn_job *j = arg;

	pthread_mutex_lock(&j->mu);
	for (;;) {
		while (!j->stop && (!j->pending || j->done))
			pthread_cond_wait(&j->cv, &j->mu);
		if (j->stop)
			break;
		int abort_only = j->abort_only;
		pthread_mutex_unlock(&j->mu);
		enum txn_status st = abort_only ? run_abort(j) : run_commit(j);
		pthread_mutex_lock(&j->mu);
		j->result = st;
		j->done = 1;
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

/* ---- the loop's side: the transaction's life ---- */

/* Frees what a commit job was handed (its offsets and group metadata). */
static void job_clear(struct txn_job *j)
{
	if (j->offsets)
		rd_kafka_topic_partition_list_destroy(j->offsets);
	if (j->cgmd)
		rd_kafka_consumer_group_metadata_destroy(j->cgmd);
	j->offsets = NULL;
	j->cgmd = NULL;
}

static void log_abandoned(const struct kafka_txn *t)
{
	log_warn("transaction_abandoned", LOG_I("forwards", (int64_t)t->produced),
		 LOG_S("reason", "stopping without waiting for the broker: the open transaction "
				 "is aborted by the broker after transaction.timeout.ms; its "
				 "requests are redelivered"));
}

/* After a transaction ended: committed (offsets settled meanwhile wait for the next one) or
 * aborted (all is redone after the rewind). */
static void ended(struct kafka_txn *t, int aborted)
{
	t->state = TXN_IDLE;
	t->produced = 0;
	if (aborted) {
		rd_kafka_topic_partition_list_destroy(t->offsets);
		t->offsets = rd_kafka_topic_partition_list_new(8);
	}
	t->opened_ms = t->offsets->cnt > 0 ? clock_mono_ms() : 0;
}

static void post(struct kafka_txn *t, int abort_only, rd_kafka_t *consumer)
{
	struct txn_job *j = t->job;
	pthread_mutex_lock(&j->mu);
	j->abort_only = abort_only;
	if (!abort_only) {
		/* What is settled from now on waits for the next transaction. */
		j->offsets = t->offsets;
		t->offsets = rd_kafka_topic_partition_list_new(8);
		j->cgmd = rd_kafka_consumer_group_metadata(consumer);
	}
	j->reason[0] = '\0';
	j->pending = 1;
	j->done = 0;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
	t->state = abort_only ? TXN_ABORTING : TXN_COMMITTING;
}

/* Takes the commit thread's result, if there is one yet. */
static enum txn_status collect(struct kafka_txn *t)
{
	struct txn_job *j = t->job;
	enum txn_status st;
	char reason[sizeof j->reason];

	pthread_mutex_lock(&j->mu);
	if (!j->done) {
		pthread_mutex_unlock(&j->mu);
		return TXN_BUSY;
	}
	st = j->result;
	j->pending = j->done = 0;
	memcpy(reason, j->reason, sizeof reason);
	job_clear(j);
	pthread_mutex_unlock(&j->mu);

	if (st == TXN_OK) {
		t->commits++;
		ended(t, 0);
		return TXN_OK;
	}
	if (st == TXN_ABORTED) {
		log_warn("transaction_aborted", LOG_S("reason", reason[0] ? reason : "a forward failed"),
			 LOG_I("forwards", (int64_t)t->produced),
			 LOG_S("effect", "its forwards are invisible to read_committed readers; the "
					 "requests since the last commit are consumed again"));
		t->aborts++;
		t->doomed = 0;
		ended(t, 1);
		return TXN_ABORTED;
	}
	log_error("transaction_fatal", LOG_S("error", reason),
		  LOG_S("reason", "the producer cannot go on (fenced by a newer instance with our "
				  "transactional.id or by the broker's transaction timeout, or "
				  "idempotence lost); nothing uncommitted is lost: it is redelivered"));
	t->state = TXN_DEAD;
	return TXN_FATAL;
}

static enum txn_status begin(struct kafka_txn *t)
{
	rd_kafka_error_t *e = rd_kafka_begin_transaction(t->producer);
	if (e) {
		/* Local: only a fatal state or misuse fails it. */
		log_error("transaction_fatal", LOG_S("operation", "begin_transaction"),
			  LOG_S("error", rd_kafka_error_string(e)));
		rd_kafka_error_destroy(e);
		t->state = TXN_DEAD;
		return TXN_FATAL;
	}
	t->state = TXN_OPEN;
	if (!t->opened_ms)
		t->opened_ms = clock_mono_ms();
	return TXN_OK;
}

static enum txn_status start_abort(struct kafka_txn *t)
{
	if (t->state == TXN_IDLE) {
		/* Nothing begun; what was settled since the last commit is redone. */
		t->doomed = 0;
		ended(t, 1);
		return TXN_ABORTED;
	}
	post(t, 1, NULL);
	return TXN_BUSY;
}

enum txn_status kafka_txn_tick(struct kafka_txn *t, rd_kafka_t *consumer, int now)
{
	switch (t->state) {
	case TXN_DEAD:
		return TXN_FATAL;
	case TXN_COMMITTING:
	case TXN_ABORTING:
		return collect(t);
	case TXN_IDLE:
	case TXN_OPEN:
		break;
	}
	if (t->doomed)
		return start_abort(t);
	if (t->state == TXN_IDLE && t->offsets->cnt == 0)
		return TXN_OK;
	if (!now && clock_mono_ms() - t->opened_ms < t->interval_ms)
		return TXN_OK;
	if (t->state == TXN_IDLE && begin(t) != TXN_OK)
		return TXN_FATAL;
	post(t, 0, consumer);
	return TXN_BUSY;
}

enum txn_status kafka_txn_abort(struct kafka_txn *t)
{
	if (t->state == TXN_OPEN)
		return start_abort(t);
	return t->state == TXN_COMMITTING || t->state == TXN_ABORTING ? TXN_BUSY : TXN_OK;
}

int kafka_txn_produce(struct kafka_txn *t, const struct txn_input *input, const char *topic,
		      const void *key, size_t key_len, const void *value, size_t value_len,
		      rd_kafka_headers_t *hdrs)
{
	struct forward_note *n;
	rd_kafka_resp_err_t err;

	/* Doomed, or a commit under way: the request stays open and the rewind that follows
	 * redoes it. Not a refusal of this record. */
	if (t->doomed || (t->state != TXN_IDLE && t->state != TXN_OPEN) ||
	    (t->state == TXN_IDLE && begin(t) != TXN_OK)) {
		t->doomed = 1;
		rd_kafka_headers_destroy(hdrs);
		return -1;
	}
	n = calloc(1, sizeof *n);
	if (!n)
		abort();
	n->topic = xstrdup(input->topic);
	n->partition = input->partition;
	n->offset = input->offset;
	for (;;) {
		err = rd_kafka_producev(t->producer, RD_KAFKA_V_TOPIC(topic),
					RD_KAFKA_V_KEY(key, key_len),
					/* copied (F_COPY); librdkafka's macro takes a non-const pointer */
					RD_KAFKA_V_VALUE((void *)value, value_len),
					RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(n), RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		kafka_txn_poll(t, 100); /* the local queue drains as the broker acks */
	}
	if (err) {
		rd_kafka_headers_destroy(hdrs); /* not taken over on failure */
		t->doomed = 1;
		/* __STATE, __FATAL: the transaction failed already (an earlier forward's report
		 * is not read yet): not this record's refusal. */
		if (t->refused && err != RD_KAFKA_RESP_ERR__STATE && err != RD_KAFKA_RESP_ERR__FATAL)
			t->refused(t->opaque, input, topic, err);
		note_free(n);
		return -1;
	}
	t->produced++; /* hdrs and n now owned by librdkafka */
	t->inflight++;
	return 0;
}

void kafka_txn_offset(struct kafka_txn *t, const char *topic, int32_t partition, int64_t next)
{
	/* During a commit this goes to the next transaction (the commit thread has its own). */
	rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(t->offsets, topic,
									   partition);
	if (!p)
		p = rd_kafka_topic_partition_list_add(t->offsets, topic, partition);
	p->offset = next;
	if (!t->opened_ms)
		t->opened_ms = clock_mono_ms();
}

void kafka_txn_forget(struct kafka_txn *t, const char *topic, int32_t partition)
{
	rd_kafka_topic_partition_list_del(t->offsets, topic, partition);
}

int64_t kafka_txn_due_in(const struct kafka_txn *t)
{
	int64_t left;
	if (t->state == TXN_COMMITTING || t->state == TXN_ABORTING)
		return 5; /* the commit thread's result is picked up by polling */
	if (t->state == TXN_IDLE && t->offsets->cnt == 0 && !t->doomed)
		return -1;
	left = t->opened_ms + t->interval_ms - clock_mono_ms();
	return t->doomed || left < 0 ? 0 : left;
}

int kafka_txn_busy(const struct kafka_txn *t)
{
	return t->state == TXN_COMMITTING || t->state == TXN_ABORTING;
}

int kafka_txn_pending(const struct kafka_txn *t)
{
	return t->state != TXN_IDLE || t->offsets->cnt > 0 || t->doomed;
}

int kafka_txn_setup(struct kafka_txn *t, const struct config *cfg, const char *worker_id,
		    txn_delivered_cb *delivered, txn_refused_cb *refused, void *opaque,
		    int (*keep_waiting)(void *), void *arg, char *errbuf, size_t errsize)
{
	char txn_id[512];
	rd_kafka_conf_t *conf;

	memset(t, 0, sizeof *t);
	t->offsets = rd_kafka_topic_partition_list_new(8);
	t->interval_ms = cfg->kafka.transaction_interval_ms;
	t->delivered = delivered;
	t->refused = refused;
	t->opaque = opaque;
	t->job = calloc(1, sizeof *t->job);
	if (!t->job)
		abort();
	pthread_mutex_init(&t->job->mu, NULL);
	pthread_cond_init(&t->job->cv, NULL);
	conf = kafka_conf_new(cfg, KAFKA_PRODUCER, worker_id, NULL, errbuf, errsize);
	if (!conf)
		return -1;
	/* Unique per worker: two workers with one id would fence each other. A worker restarted
	 * with the same worker.id fences its predecessor and aborts its open transaction at
	 * once, instead of after transaction.timeout.ms. */
	snprintf(txn_id, sizeof txn_id, "%s.%s", cfg->kafka.group_id, worker_id);
	if (kafka_conf_set(conf, "transactional.id", txn_id, errbuf, errsize) < 0) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	/* Reports as events on the loop's thread: librdkafka would otherwise call a delivery
	 * callback from the commit thread's flush. */
	rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR);
	t->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errbuf, errsize);
	if (!t->producer) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	/* conf is now owned by the producer */
	t->events = rd_kafka_queue_get_main(t->producer);
	t->job->producer = t->producer;
	for (int tries = 1;; tries++) {
		rd_kafka_error_t *e = rd_kafka_init_transactions(t->producer, INIT_CALL_MS);
		if (!e)
			break;
		if (!rd_kafka_error_is_retriable(e) || !keep_waiting(arg)) {
			snprintf(errbuf, errsize, "init_transactions: %s", rd_kafka_error_string(e));
			rd_kafka_error_destroy(e);
			return -1;
		}
		log_warn("transactions_init_waiting", LOG_S("error", rd_kafka_error_string(e)),
			 LOG_I("tries", tries));
		rd_kafka_error_destroy(e);
	}
	if (pthread_create(&t->job->thread, NULL, commit_thread, t->job) != 0) {
		snprintf(errbuf, errsize, "cannot start the commit thread");
		return -1;
	}
	t->job->started = 1;
	log_info("transactions_ready", LOG_S("transactional_id", txn_id),
		 LOG_I("transaction_interval_ms", t->interval_ms));
	return 0;
}

void kafka_txn_cleanup(struct kafka_txn *t, int fast)
{
	struct txn_job *j = t->job;
	int running = 0;

	if (!j)
		return;
	/* From here on reports only free their notes: the worker's state is going away. */
	t->delivered = NULL;
	t->refused = NULL;
	if (!t->producer)
		goto free_lists;
	if (j->started) {
		pthread_mutex_lock(&j->mu);
		j->stop = 1;
		running = j->pending && !j->done;
		pthread_cond_signal(&j->cv);
		pthread_mutex_unlock(&j->mu);
		if (running && fast) {
			/* Inside a call waiting for the broker: left to the process's exit. */
			log_abandoned(t);
			pthread_detach(j->thread);
			abandoned_job = j; /* with its producer and the commit's offsets */
			abandoned_events = t->events;
			t->events = NULL;
			t->job = NULL;
			t->producer = NULL;
			if (t->offsets)
				rd_kafka_topic_partition_list_destroy(t->offsets);
			t->offsets = NULL;
			return;
		}
		pthread_join(j->thread, NULL); /* it ends after its current call */
		j->started = 0;
	}
	if (t->state != TXN_IDLE && t->state != TXN_DEAD) {
		rd_kafka_error_t *e = fast ? NULL : rd_kafka_abort_transaction(t->producer,
									      STOP_ABORT_MS);
		if (fast || e)
			log_abandoned(t);
		if (e)
			rd_kafka_error_destroy(e);
	}
	if (t->inflight > 0) /* (a dead producer's too) */
		rd_kafka_purge(t->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	/* The reports of purged records free their notes. */
	for (int i = 0; i < 10 && t->inflight > 0; i++)
		kafka_txn_poll(t, 100);
	rd_kafka_queue_destroy(t->events);
	t->events = NULL;
	rd_kafka_destroy(t->producer);
	t->producer = NULL;
free_lists:
	job_clear(j);
	if (t->offsets)
		rd_kafka_topic_partition_list_destroy(t->offsets);
	t->offsets = NULL;
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
	free(j);
	t->job = NULL;
}
