#include "kafka_txn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "kafka_conf.h"
#include "log.h"
#include "xalloc.h"

/* How long one transactional call may block the loop. A broker that does not answer makes
 * the call return a retriable timeout; the loop serves its consumer and signals, and calls
 * again (librdkafka resumes the operation in the background). */
#define CALL_MS 500
#define INIT_CALL_MS 10000

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

static void delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct kafka_txn *t = opaque;
	struct forward_note *n = m->_private;
	struct txn_input in = { n->topic, n->partition, n->offset };
	(void)rk;

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

/* Fatal errors arrive here too; the transactional calls then report them as fatal. */
static void producer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct kafka_txn *t = opaque;
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char fatal[512];
		rd_kafka_fatal_error(rk, fatal, sizeof fatal);
		log_error("producer_fatal", LOG_S("error", fatal));
		t->state = TXN_DEAD;
	} else {
		log_warn("producer_error", LOG_S("error", reason));
	}
}

static void list_clear(rd_kafka_topic_partition_list_t **l)
{
	if (*l)
		rd_kafka_topic_partition_list_destroy(*l);
	*l = NULL;
}

/* After a transaction ended: committed (offsets settled meanwhile wait for the next one) or
 * aborted (all is redone after the rewind). */
static void ended(struct kafka_txn *t, int aborted)
{
	t->state = TXN_IDLE;
	t->produced = 0;
	t->offsets_sent = 0; /* (inflight is the delivery reports' to count down) */
	list_clear(&t->sending);
	if (aborted) {
		list_clear(&t->offsets);
		t->offsets = rd_kafka_topic_partition_list_new(8);
	}
	t->opened_ms = t->offsets->cnt > 0 ? clock_mono_ms() : 0;
	if (t->cgmd)
		rd_kafka_consumer_group_metadata_destroy(t->cgmd);
	t->cgmd = NULL;
}

/* The one place a transactional error is classified (see kafka_txn.h). Takes e. */
static enum txn_status failed(struct kafka_txn *t, rd_kafka_error_t *e, const char *op,
			      int *abortable)
{
	enum txn_status st;
	*abortable = 0;
	if (rd_kafka_error_is_fatal(e)) {
		st = TXN_FATAL;
	} else if (rd_kafka_error_txn_requires_abort(e)) {
		*abortable = 1;
		st = TXN_ABORTED;
	} else if (rd_kafka_error_is_retriable(e)) {
		st = TXN_BUSY;
	} else {
		st = TXN_FATAL; /* neither retriable nor abortable: librdkafka says treat as fatal */
	}
	if (st == TXN_FATAL) {
		log_error("transaction_fatal", LOG_S("operation", op),
			  LOG_S("error", rd_kafka_error_string(e)),
			  LOG_S("reason", "the producer cannot go on (fenced by a newer instance "
					  "with our transactional.id, or idempotence lost); "
					  "nothing uncommitted is lost: it is redelivered"));
		t->state = TXN_DEAD;
	} else if (st == TXN_BUSY) {
		log_info("transaction_waiting", LOG_S("operation", op),
			 LOG_S("error", rd_kafka_error_string(e)));
	} else {
		log_warn("transaction_failed", LOG_S("operation", op),
			 LOG_S("error", rd_kafka_error_string(e)));
	}
	rd_kafka_error_destroy(e);
	return st;
}

static enum txn_status do_abort(struct kafka_txn *t, const char *why)
{
	rd_kafka_error_t *e;
	int abortable;

	if (t->state == TXN_DEAD)
		return TXN_FATAL;
	if (t->state == TXN_IDLE) {
		/* Nothing begun; what was settled since the last commit is redone. */
		t->doomed = 0;
		ended(t, 1);
		return TXN_ABORTED;
	}
	t->state = TXN_ABORTING;
	e = rd_kafka_abort_transaction(t->producer, CALL_MS);
	if (e) {
		enum txn_status st = failed(t, e, "abort_transaction", &abortable);
		return st == TXN_ABORTED ? TXN_BUSY : st;
	}
	log_warn("transaction_aborted", LOG_S("reason", why), LOG_I("forwards", (int64_t)t->produced),
		 LOG_S("effect", "its forwards are invisible to read_committed readers; the "
				 "requests since the last commit are redelivered"));
	t->aborts++;
	t->doomed = 0;
	ended(t, 1);
	return TXN_ABORTED;
}

static enum txn_status begin(struct kafka_txn *t)
{
	int abortable;
	rd_kafka_error_t *e = rd_kafka_begin_transaction(t->producer);
	if (e)
		return failed(t, e, "begin_transaction", &abortable);
	t->state = TXN_OPEN;
	if (!t->opened_ms)
		t->opened_ms = clock_mono_ms();
	return TXN_OK;
}

static enum txn_status do_commit(struct kafka_txn *t, rd_kafka_t *consumer)
{
	rd_kafka_error_t *e;
	int abortable;
	enum txn_status st;

	if (t->state == TXN_IDLE && (st = begin(t)) != TXN_OK)
		return st;
	if (t->state != TXN_COMMITTING) {
		/* What is settled from now on waits for the next transaction. */
		t->sending = t->offsets;
		t->offsets = rd_kafka_topic_partition_list_new(8);
		t->state = TXN_COMMITTING;
	}
	if (!t->offsets_sent && t->sending->cnt > 0) {
		/* Sent again as they were if the first try timed out (librdkafka's advice). */
		if (!t->cgmd)
			t->cgmd = rd_kafka_consumer_group_metadata(consumer);
		e = rd_kafka_send_offsets_to_transaction(t->producer, t->sending, t->cgmd, CALL_MS);
		if (e) {
			st = failed(t, e, "send_offsets_to_transaction", &abortable);
			return abortable ? do_abort(t, "the group refused the offsets (generation over, "
						       "or coordinator error)")
					 : st;
		}
		t->offsets_sent = 1;
	}
	e = rd_kafka_commit_transaction(t->producer, CALL_MS);
	if (e) {
		st = failed(t, e, "commit_transaction", &abortable);
		return abortable ? do_abort(t, "the commit failed (a forward refused, or the "
					       "transaction fenced)")
				 : st;
	}
	t->commits++;
	ended(t, 0);
	return TXN_OK;
}

enum txn_status kafka_txn_tick(struct kafka_txn *t, rd_kafka_t *consumer, int now)
{
	switch (t->state) {
	case TXN_DEAD:
		return TXN_FATAL;
	case TXN_ABORTING:
		return do_abort(t, "an earlier failure");
	case TXN_COMMITTING:
		return do_commit(t, consumer);
	case TXN_IDLE:
	case TXN_OPEN:
	case TXN_FLUSHING:
		break;
	}
	if (t->doomed)
		return do_abort(t, "a forward failed");
	if (t->state == TXN_IDLE && t->offsets->cnt == 0)
		return TXN_OK;
	if (t->state != TXN_FLUSHING && !now && clock_mono_ms() - t->opened_ms < t->interval_ms)
		return TXN_OK;
	/* librdkafka's commit flushes first, blocking the loop (and its signals) for as long as
	 * the broker takes; waiting here for the acknowledgements keeps the loop live. */
	if (t->inflight > 0) {
		if (t->state == TXN_OPEN)
			t->state = TXN_FLUSHING;
		return TXN_BUSY;
	}
	if (t->state == TXN_FLUSHING)
		t->state = TXN_OPEN;
	return do_commit(t, consumer);
}

enum txn_status kafka_txn_abort(struct kafka_txn *t)
{
	if (t->state == TXN_OPEN || t->state == TXN_FLUSHING || t->state == TXN_ABORTING)
		return do_abort(t, "partitions lost");
	return TXN_OK;
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
		rd_kafka_poll(t->producer, 100); /* the local queue drains as the broker acks */
	}
	if (err) {
		rd_kafka_headers_destroy(hdrs); /* not taken over on failure */
		t->doomed = 1;
		if (t->refused)
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
	/* During a commit this goes to the next transaction (the commit sends `sending`). */
	rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(t->offsets, topic,
									   partition);
	if (!p)
		p = rd_kafka_topic_partition_list_add(t->offsets, topic, partition);
	p->offset = next;
	if (!t->opened_ms)
		t->opened_ms = clock_mono_ms();
}

void kafka_txn_offset_include(struct kafka_txn *t, const char *topic, int32_t partition,
			      int64_t offset)
{
	if (offset >= 0 && !rd_kafka_topic_partition_list_find(t->offsets, topic, partition))
		kafka_txn_offset(t, topic, partition, offset);
}

void kafka_txn_forget(struct kafka_txn *t, const char *topic, int32_t partition)
{
	rd_kafka_topic_partition_list_del(t->offsets, topic, partition);
}

void kafka_txn_poll(struct kafka_txn *t, int timeout_ms)
{
	if (t->producer)
		rd_kafka_poll(t->producer, timeout_ms);
}

int64_t kafka_txn_due_in(const struct kafka_txn *t)
{
	int64_t left;
	if (t->state == TXN_IDLE && t->offsets->cnt == 0 && !t->doomed)
		return -1;
	if (t->state != TXN_IDLE && t->state != TXN_OPEN)
		return t->state == TXN_FLUSHING ? 10 : 0; /* FLUSHING: acknowledgements come by
							     * the producer's poll, not the consumer's */
	left = t->opened_ms + t->interval_ms - clock_mono_ms();
	return t->doomed || left < 0 ? 0 : left;
}

int kafka_txn_busy(const struct kafka_txn *t)
{
	return t->state == TXN_FLUSHING || t->state == TXN_COMMITTING || t->state == TXN_ABORTING;
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
	rd_kafka_conf_set_dr_msg_cb(conf, delivery_cb);
	rd_kafka_conf_set_error_cb(conf, producer_error_cb);
	rd_kafka_conf_set_opaque(conf, t);
	t->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errbuf, errsize);
	if (!t->producer) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	/* conf is now owned by the producer */
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
	log_info("transactions_ready", LOG_S("transactional_id", txn_id),
		 LOG_I("transaction_interval_ms", t->interval_ms));
	return 0;
}

void kafka_txn_cleanup(struct kafka_txn *t, int fast)
{
	if (!t->producer)
		return;
	/* An open transaction's forwards are aborted: their inputs are not committed and come
	 * back to the partitions' next owner. */
	if (!fast && (t->state == TXN_OPEN || t->state == TXN_FLUSHING))
		do_abort(t, "shutting down");
	if (t->state != TXN_IDLE)
		log_warn("transaction_abandoned", LOG_I("forwards", (int64_t)t->produced),
			 LOG_S("reason", "stopping without waiting for the broker: the open "
					 "transaction is aborted by the broker after "
					 "transaction.timeout.ms; its requests are redelivered"));
	if (t->state != TXN_IDLE)
		rd_kafka_purge(t->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_poll(t->producer, 0); /* frees the notes of purged records */
	rd_kafka_flush(t->producer, fast ? 0 : 1000);
	rd_kafka_poll(t->producer, 0);
	rd_kafka_destroy(t->producer);
	t->producer = NULL;
	if (t->cgmd)
		rd_kafka_consumer_group_metadata_destroy(t->cgmd);
	t->cgmd = NULL;
	list_clear(&t->offsets);
	list_clear(&t->sending);
}
