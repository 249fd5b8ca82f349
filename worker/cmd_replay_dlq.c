/* worker replay-dlq: sends dead letters back to the input topic, e.g. after the missing tenant
 * was created. Its progress is committed in a consumer group of its own per filter
 * (<group_id>.replay-dlq.<class|all>), so a second run does not resend what it already did.
 * Progress is committed only once every replayed record is acknowledged. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "kafka_conf.h"
#include "log.h"
#include "record_headers.h"

#define REPLAY_IDLE_TIMEOUT_MS 30000 /* no assignment or no end-of-partition by then: give up */

struct replay {
	const struct config *cfg;
	const struct replay_options *opts;
	rd_kafka_t *consumer, *producer;
	long sent, skipped, failed;
	int assigned_once;                   /* a first assignment arrived */
	rd_kafka_topic_partition_list_t *eof; /* partitions read to their end */
};

static void replay_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct replay *r = opaque;
	if (m->err) {
		r->failed++;
		log_error("replay_delivery_failed", LOG_S("error", rd_kafka_err2str(m->err)));
	}
}

static int matches(const struct replay *r, rd_kafka_headers_t *hdrs)
{
	const void *val;
	size_t len;
	if (!r->opts->error_class)
		return 1;
	return hdrs && rd_kafka_header_get_last(hdrs, HDR_ERROR_CLASS, &val, &len) == 0 &&
	       len == strlen(r->opts->error_class) && memcmp(val, r->opts->error_class, len) == 0;
}

static int replay_one(struct replay *r, const rd_kafka_message_t *m)
{
	rd_kafka_headers_t *orig = NULL, *hdrs;
	int64_t replayed = 0;

	if (rd_kafka_message_headers(m, &orig) != RD_KAFKA_RESP_ERR_NO_ERROR)
		orig = NULL;
	if (!matches(r, orig)) {
		r->skipped++;
		return 0;
	}
	hdrs = orig ? rd_kafka_headers_copy(orig) : rd_kafka_headers_new(4);
	record_header_int(hdrs, HDR_REPLAYED, &replayed);
	rd_kafka_header_remove(hdrs, HDR_REPLAYED);
	record_headers_strip_decision(hdrs);
	record_header_add_int(hdrs, HDR_REPLAYED, replayed + 1);
	rd_kafka_resp_err_t err;
	for (;;) {
		err = rd_kafka_producev(r->producer, RD_KAFKA_V_TOPIC(r->cfg->kafka.input_topic),
					RD_KAFKA_V_KEY(m->key, m->key_len),
					RD_KAFKA_V_VALUE(m->payload, m->len),
					RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		rd_kafka_poll(r->producer, 100); /* local queue full: let deliveries drain */
	}
	if (err) {
		rd_kafka_headers_destroy(hdrs);
		log_error("replay_produce_failed", LOG_S("error", rd_kafka_err2str(err)));
		return -1;
	}
	r->sent++;
	log_info("replayed", LOG_S("topic", rd_kafka_topic_name(m->rkt)),
		 LOG_I("partition", m->partition), LOG_I("offset", m->offset),
		 LOG_I("x_replayed", replayed + 1));
	return 0;
}

static void replay_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
				rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct replay *r = opaque;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		r->assigned_once = 1;
		rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
	} else {
		rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
	}
}

static int setup(struct replay *r, char *errbuf, size_t errsize)
{
	char group[512], client[128];
	rd_kafka_conf_t *conf;

	snprintf(client, sizeof client, "replay-dlq-%d", (int)getpid());
	snprintf(group, sizeof group, "%s.replay-dlq.%s", r->cfg->kafka.group_id,
		 r->opts->error_class ? r->opts->error_class : "all");
	if (!(conf = kafka_conf_new(r->cfg, KAFKA_PRODUCER, client, NULL, errbuf, errsize)))
		return -1;
	rd_kafka_conf_set_dr_msg_cb(conf, replay_dr_cb);
	rd_kafka_conf_set_opaque(conf, r);
	if (!(r->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errbuf, errsize))) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	if (!(conf = kafka_conf_new(r->cfg, KAFKA_CONSUMER, client, group, errbuf, errsize)))
		return -1;
	/* Progress is committed once, at the end, after every replay is acknowledged. */
	if (kafka_conf_set(conf, "enable.auto.commit", "false", errbuf, errsize) < 0) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	rd_kafka_conf_set_rebalance_cb(conf, replay_rebalance_cb);
	rd_kafka_conf_set_opaque(conf, r);
	if (!(r->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errbuf, errsize))) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	rd_kafka_poll_set_consumer(r->consumer);
	rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, r->cfg->kafka.dlq_topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t err = rd_kafka_subscribe(r->consumer, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (err) {
		snprintf(errbuf, errsize, "subscribe: %s", rd_kafka_err2str(err));
		return -1;
	}
	return 0;
}

/* Whether every assigned partition was read to its end. */
static int all_at_end(struct replay *r)
{
	rd_kafka_topic_partition_list_t *assigned = NULL;
	int done = r->assigned_once;
	if (!done || rd_kafka_assignment(r->consumer, &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return 0;
	for (int i = 0; i < assigned->cnt && done; i++)
		done = rd_kafka_topic_partition_list_find(r->eof, assigned->elems[i].topic,
							  assigned->elems[i].partition) != NULL;
	rd_kafka_topic_partition_list_destroy(assigned);
	return done;
}

/* Reads the dead-letter topic up to its end (or --limit). Returns 0, or -1. */
static int replay_all(struct replay *r)
{
	int idle_ms = 0;
	while (idle_ms < REPLAY_IDLE_TIMEOUT_MS) {
		if (r->opts->limit >= 0 && r->sent >= r->opts->limit)
			return 0;
		if (all_at_end(r))
			return 0;
		rd_kafka_message_t *m = rd_kafka_consumer_poll(r->consumer, 100);
		rd_kafka_poll(r->producer, 0);
		if (!m) {
			idle_ms += 100;
			continue;
		}
		idle_ms = 0;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			if (!rd_kafka_topic_partition_list_find(r->eof, rd_kafka_topic_name(m->rkt),
								m->partition))
				rd_kafka_topic_partition_list_add(r->eof, rd_kafka_topic_name(m->rkt),
								  m->partition);
			rd_kafka_message_destroy(m);
			continue;
		}
		if (m->err) {
			log_warn("kafka_error", LOG_S("error", rd_kafka_message_errstr(m)));
			rd_kafka_message_destroy(m);
			continue;
		}
		int rc = replay_one(r, m);
		/* Mark this record examined (replayed or skipped): the next run starts after it. */
		rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
		rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(m->rkt), m->partition)
			->offset = m->offset + 1;
		if (rc == 0)
			rd_kafka_offsets_store(r->consumer, l);
		rd_kafka_topic_partition_list_destroy(l);
		rd_kafka_message_destroy(m);
		if (rc < 0)
			return -1;
	}
	log_error("replay_dlq_timeout", LOG_S("error", "no end of the dead-letter topic seen"));
	return -1;
}

int cmd_replay_dlq(const struct config *cfg, const struct replay_options *opts)
{
	struct replay r = { .cfg = cfg, .opts = opts, .eof = rd_kafka_topic_partition_list_new(4) };
	char errbuf[512];
	int rc = EXIT_OK;

	if (setup(&r, errbuf, sizeof errbuf) < 0) {
		log_error("replay_dlq_failed", LOG_S("error", errbuf));
		rc = EXIT_FAILURE_RUNTIME;
		goto cleanup;
	}
	if (replay_all(&r) < 0)
		rc = EXIT_FAILURE_RUNTIME;
	if (rd_kafka_flush(r.producer, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR || r.failed) {
		log_error("replay_dlq_failed",
			  LOG_S("error", "not every replayed record was acknowledged; progress not "
					 "committed, a second run resends (the worker resolves "
					 "repeats by request_id)"));
		rc = EXIT_FAILURE_RUNTIME;
	} else {
		rd_kafka_resp_err_t err = rd_kafka_commit(r.consumer, NULL, 0);
		if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
			log_error("replay_dlq_commit_failed", LOG_S("error", rd_kafka_err2str(err)));
			rc = EXIT_FAILURE_RUNTIME;
		}
	}
	log_info("replay_dlq_done", LOG_I("replayed", r.sent), LOG_I("skipped", r.skipped),
		 LOG_S("error_class", opts->error_class));
cleanup:
	if (r.consumer) {
		rd_kafka_consumer_close(r.consumer);
		rd_kafka_destroy(r.consumer);
	}
	if (r.producer)
		rd_kafka_destroy(r.producer);
	rd_kafka_topic_partition_list_destroy(r.eof);
	return rc;
}
