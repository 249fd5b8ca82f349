#include "forward.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "kafka_conf.h"
#include "log.h"
#include "metrics.h"
#include "xalloc.h"

/* One forwarded record, owned by the forwarder from forward_record until acknowledged.
 * It keeps its own copy of the record so a failed delivery can be produced again. */
struct forward_ticket {
	struct forward_ticket *next; /* in the resend list */
	struct forwarder *f;
	struct tracked_offset input;
	char *topic;
	void *key, *value;
	size_t key_len, value_len;
	rd_kafka_headers_t *headers; /* master copy; each produce takes a copy */
	int sends;
	int64_t resend_at_ms;
	int refused; /* its last failure was permanent (counted in forwarder.refused) */
};

/* Counts t in or out of the refused forwards, per input partition too. */
static void set_refused(struct forward_ticket *t, int refused)
{
	struct forwarder *f = t->f;
	rd_kafka_topic_partition_t *p;

	if (t->refused == refused)
		return;
	t->refused = refused;
	f->refused += refused ? 1 : (size_t)-1;
	metrics_set_gauge(METRICS_FORWARDS_REFUSED, (int64_t)f->refused);
	p = rd_kafka_topic_partition_list_find(f->refused_inputs, t->input.topic,
					       t->input.partition);
	if (!p) {
		p = rd_kafka_topic_partition_list_add(f->refused_inputs, t->input.topic,
						      t->input.partition);
		p->offset = 0;
	}
	p->offset += refused ? 1 : -1;
	if (p->offset <= 0)
		rd_kafka_topic_partition_list_del(f->refused_inputs, t->input.topic,
						  t->input.partition);
}

static void ticket_free(struct forward_ticket *t)
{
	if (!t)
		return;
	set_refused(t, 0);
	free(t->topic);
	free(t->key);
	free(t->value);
	if (t->headers)
		rd_kafka_headers_destroy(t->headers);
	free(t);
}

static void *dup_bytes(const void *p, size_t n)
{
	void *d;
	if (!p)
		return NULL;
	d = malloc(n ? n : 1);
	if (!d)
		abort();
	memcpy(d, p, n);
	return d;
}

/* Whether a failed delivery is still ours to send again (see forwarder.tracker). Frees the
 * ticket when not. */
static int still_ours(struct forwarder *f, struct forward_ticket *t)
{
	if (!f->tracker || offset_tracker_is_current(f->tracker, &t->input))
		return 1;
	log_warn("forward_dropped", LOG_S("topic", t->topic), LOG_S("input_topic", t->input.topic),
		 LOG_I("input_partition", t->input.partition), LOG_I("input_offset", t->input.offset),
		 LOG_S("reason", "not acknowledged, and the input partition is no longer ours: "
				 "its new owner settles the request"));
	ticket_free(t);
	return 0;
}

/* Errors no resend can cure until an operator changes something (the topic's
 * max.message.bytes, an ACL): the record waits for a resend after a long backoff. */
static int delivery_error_is_permanent(rd_kafka_resp_err_t err)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_INVALID_RECORD:
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
	case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
	case RD_KAFKA_RESP_ERR__INVALID_ARG:
		return 1;
	default:
		return 0;
	}
}

static void schedule_resend(struct forwarder *f, struct forward_ticket *t,
			    rd_kafka_resp_err_t err)
{
	int permanent = delivery_error_is_permanent(err);
	/* Retriable: the backoff of retry.*; permanent: its longest delay, every time. */
	int64_t delay = permanent ? f->resend_backoff.max_ms
				  : backoff_delay_ms(&f->resend_backoff, t->sends, backoff_random());

	t->resend_at_ms = clock_mono_ms() + delay;
	t->next = f->resend;
	f->resend = t;
	set_refused(t, permanent);
	if (permanent)
		log_error("forward_refused", LOG_S("topic", t->topic),
			  LOG_S("error", rd_kafka_err2str(err)), LOG_S("input_topic", t->input.topic),
			  LOG_I("input_partition", t->input.partition),
			  LOG_I("input_offset", t->input.offset), LOG_I("sends", t->sends),
			  LOG_I("resend_in_ms", delay),
			  LOG_S("reason", "the broker refuses this record for good; its input "
					  "offset stays uncommitted until a resend is accepted"));
	else
		log_warn("forward_retry", LOG_S("topic", t->topic), LOG_S("error", rd_kafka_err2str(err)),
			 LOG_S("input_topic", t->input.topic),
			 LOG_I("input_partition", t->input.partition),
			 LOG_I("input_offset", t->input.offset), LOG_I("sends", t->sends),
			 LOG_I("resend_in_ms", delay));
}

static void send_ticket(struct forwarder *f, struct forward_ticket *t)
{
	rd_kafka_headers_t *hdrs = rd_kafka_headers_copy(t->headers);
	rd_kafka_resp_err_t err;

	t->sends++;
	err = rd_kafka_producev(f->producer, RD_KAFKA_V_TOPIC(t->topic),
				RD_KAFKA_V_KEY(t->key, t->key_len),
				RD_KAFKA_V_VALUE(t->value, t->value_len),
				RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
				RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(t), RD_KAFKA_V_END);
	if (err) {
		rd_kafka_headers_destroy(hdrs); /* not taken over on failure */
		schedule_resend(f, t, err);
		return;
	}
	f->inflight++; /* hdrs now owned by librdkafka */
}

static void delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct forward_ticket *t = m->_private;
	struct forwarder *f = t->f;

	f->inflight--;
	if (f->closing) {
		ticket_free(t);
		return;
	}
	if (m->err) {
		if (still_ours(f, t))
			schedule_resend(f, t, m->err);
		return;
	}
	if (t->refused)
		log_info("forward_accepted", LOG_S("topic", t->topic),
			 LOG_S("input_topic", t->input.topic),
			 LOG_I("input_partition", t->input.partition),
			 LOG_I("input_offset", t->input.offset), LOG_I("sends", t->sends));
	if (f->done_cb)
		f->done_cb(f->done_opaque, &t->input, t->topic, m->partition, m->offset);
	ticket_free(t);
}

/* Producer errors are informational, but for a fatal one (idempotence broken): then nothing
 * can be forwarded again and the worker must stop rather than hold its offsets forever. */
static void producer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct forwarder *f = opaque;
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char fatal[512];
		rd_kafka_fatal_error(rk, fatal, sizeof fatal);
		log_error("producer_fatal", LOG_S("error", fatal));
		f->fatal = 1;
	} else {
		log_warn("producer_error", LOG_S("error", reason));
	}
}

int forwarder_setup(struct forwarder *f, const struct config *cfg, const char *worker_id,
		    forward_done_cb *done_cb, void *done_opaque, char *errbuf, size_t errsize)
{
	rd_kafka_conf_t *conf;

	memset(f, 0, sizeof *f);
	f->worker_id = worker_id;
	f->done_cb = done_cb;
	f->done_opaque = done_opaque;
	f->resend_backoff = (struct backoff_policy){ cfg->retry.initial_backoff_ms,
						     cfg->retry.max_backoff_ms,
						     cfg->retry.multiplier };
	conf = kafka_conf_new(cfg, KAFKA_PRODUCER, worker_id, NULL, errbuf, errsize);
	if (!conf)
		return -1;
	rd_kafka_conf_set_dr_msg_cb(conf, delivery_cb);
	rd_kafka_conf_set_error_cb(conf, producer_error_cb);
	rd_kafka_conf_set_opaque(conf, f);
	f->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errbuf, errsize);
	if (!f->producer) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	/* conf is now owned by the producer */
	f->refused_inputs = rd_kafka_topic_partition_list_new(4);
	return 0;
}

int forward_record(struct forwarder *f, const rd_kafka_message_t *in,
		   const struct tracked_offset *input, const struct record_origin *origin,
		   const char *topic, const struct forward_reason *why, int attempts,
		   int64_t not_before_ms)
{
	struct forward_ticket *t = calloc(1, sizeof *t);
	rd_kafka_headers_t *orig = NULL;

	if (!t)
		abort();
	t->f = f;
	t->input = *input;
	t->topic = xstrdup(topic);
	t->key = dup_bytes(in->key, in->key_len);
	t->key_len = in->key_len;
	t->value = dup_bytes(in->payload, in->len);
	t->value_len = in->len;

	/* The producer's headers travel unchanged; our previous decision's are replaced. */
	if (rd_kafka_message_headers(in, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR)
		t->headers = rd_kafka_headers_copy(orig);
	else
		t->headers = rd_kafka_headers_new(12);
	record_headers_strip_decision(t->headers);

	rd_kafka_headers_t *h = t->headers;
	rd_kafka_header_add(h, HDR_ERROR_CLASS, -1, why->error_class, -1);
	if (why->sqlstate && *why->sqlstate)
		rd_kafka_header_add(h, HDR_ERROR_SQLSTATE, -1, why->sqlstate, -1);
	if (why->constraint && *why->constraint)
		rd_kafka_header_add(h, HDR_ERROR_CONSTRAINT, -1, why->constraint, -1);
	if (why->message)
		rd_kafka_header_add(h, HDR_ERROR_MESSAGE, -1, why->message, -1);
	/* origin already holds the first arrival (read from valid x-original-* headers, or
	 * this record's own place), so the three are always written together. */
	rd_kafka_header_remove(h, HDR_ORIGINAL_TOPIC);
	rd_kafka_header_remove(h, HDR_ORIGINAL_PARTITION);
	rd_kafka_header_remove(h, HDR_ORIGINAL_OFFSET);
	rd_kafka_header_add(h, HDR_ORIGINAL_TOPIC, -1, origin->topic, -1);
	record_header_add_int(h, HDR_ORIGINAL_PARTITION, origin->partition);
	record_header_add_int(h, HDR_ORIGINAL_OFFSET, origin->offset);
	record_header_add_int(h, HDR_ATTEMPT, attempts);
	if (not_before_ms > 0)
		record_header_add_int(h, HDR_RETRY_NOT_BEFORE, not_before_ms);
	rd_kafka_header_add(h, HDR_WORKER_ID, -1, f->worker_id, -1);
	rd_kafka_header_add(h, HDR_SOURCE_TOPIC, -1, input->topic, -1);
	record_header_add_int(h, HDR_SOURCE_PARTITION, input->partition);
	record_header_add_int(h, HDR_SOURCE_OFFSET, input->offset);

	send_ticket(f, t);
	return 0;
}

void forwarder_poll(struct forwarder *f, int timeout_ms)
{
	rd_kafka_poll(f->producer, timeout_ms);
	if (!f->resend)
		return;
	int64_t now = clock_mono_ms();
	struct forward_ticket **pp = &f->resend;
	while (*pp) {
		struct forward_ticket *t = *pp;
		if (t->resend_at_ms <= now) {
			*pp = t->next;
			t->next = NULL;
			if (still_ours(f, t))
				send_ticket(f, t);
		} else {
			pp = &t->next;
		}
	}
}

void forwarder_drop_stale(struct forwarder *f)
{
	struct forward_ticket **pp = &f->resend;
	while (*pp) {
		struct forward_ticket *t = *pp;
		*pp = t->next;
		t->next = NULL;
		if (still_ours(f, t)) {
			t->next = *pp;
			*pp = t;
			pp = &t->next;
		}
	}
}

size_t forwarder_pending(const struct forwarder *f)
{
	size_t n = f->inflight;
	for (const struct forward_ticket *t = f->resend; t; t = t->next)
		n++;
	return n;
}

size_t forwarder_flush(struct forwarder *f, int timeout_ms)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;
	while (forwarder_pending(f) > 0) {
		int64_t left = deadline - clock_mono_ms();
		if (left <= 0)
			break;
		forwarder_poll(f, left < 100 ? (int)left : 100);
	}
	return forwarder_pending(f);
}

void forwarder_cleanup(struct forwarder *f, int timeout_ms)
{
	if (!f->producer)
		return;
	forwarder_flush(f, timeout_ms);
	/* Whatever is left is not acknowledged: drop it without completing its input offset,
	 * so the input record is redelivered to whoever owns the partition next. */
	if (forwarder_pending(f) > 0)
		log_warn("forward_abandoned", LOG_I("records", (int64_t)forwarder_pending(f)),
			 LOG_S("reason", "not acknowledged before shutdown; input offsets left "
					 "uncommitted, they will be redelivered"));
	f->closing = 1;
	while (f->resend) {
		struct forward_ticket *t = f->resend;
		f->resend = t->next;
		ticket_free(t);
	}
	rd_kafka_purge(f->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	/* Purged messages come back as failed delivery reports, which free their tickets. */
	while (f->inflight > 0)
		rd_kafka_poll(f->producer, 100);
	rd_kafka_destroy(f->producer);
	f->producer = NULL;
	rd_kafka_topic_partition_list_destroy(f->refused_inputs);
	f->refused_inputs = NULL;
}
