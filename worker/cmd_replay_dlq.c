/* worker replay-dlq: sends dead letters back to the input topic, e.g. after the missing tenant
 * was created. Its progress is committed in a consumer group of its own per filter set
 * (<group_id>.replay-dlq.<hash>, replay_group_id()), so a second run does not resend what it
 * already examined. Progress is committed only once every replayed record is acknowledged.
 * --dry-run prints what would be sent, one JSON line per record on stdout, and neither
 * produces nor commits. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "kafka_conf.h"
#include "log.h"
#include "record_headers.h"
#include "replay_options.h"
#include "utf8.h"

#define REPLAY_IDLE_TIMEOUT_MS 30000 /* no assignment or no end-of-partition by then: give up */

struct replay {
	const struct config *cfg;
	const struct replay_options *opts;
	rd_kafka_t *consumer, *producer; /* no producer in a dry run */
	char group[512];
	long sent, skipped, failed; /* sent: or would be sent, in a dry run */
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

/* 1 when the last header `name` is exactly `want` (or when want is NULL: no filter). */
static int header_is(rd_kafka_headers_t *hdrs, const char *name, const char *want)
{
	const void *val;
	size_t len;

	if (!want)
		return 1;
	return hdrs && rd_kafka_header_get_last(hdrs, name, &val, &len) == 0 && val &&
	       len == strlen(want) && memcmp(val, want, len) == 0;
}

static int matches(const struct replay *r, const rd_kafka_message_t *m, rd_kafka_headers_t *hdrs)
{
	const struct replay_options *o = r->opts;

	if (o->since_ms > 0) {
		int64_t ts = rd_kafka_message_timestamp(m, NULL);
		if (ts < 0 || ts < o->since_ms)
			return 0;
	}
	return header_is(hdrs, HDR_ERROR_CLASS, o->error_class) &&
	       header_is(hdrs, HDR_ERROR_SQLSTATE, o->sqlstate) &&
	       header_is(hdrs, HDR_ERROR_CONSTRAINT, o->constraint);
}

static char *base64(const unsigned char *p, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);
		*o++ = tab[v >> 18 & 63];
		*o++ = tab[v >> 12 & 63];
		*o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? tab[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

/* Sets obj[name] to the bytes as a JSON string, or, when they are not UTF-8, obj[name] = null
 * and obj[name_b64] = their base64 (the same shape as `aw-kafka dump`). */
static void json_set_bytes(json_t *obj, const char *name, const void *data, size_t len)
{
	char b64name[32];
	char *b64;

	if (!data) {
		json_object_set_new(obj, name, json_null());
		return;
	}
	json_t *s = json_stringn(data, len);
	if (s) {
		json_object_set_new(obj, name, s);
		return;
	}
	json_object_set_new(obj, name, json_null());
	snprintf(b64name, sizeof b64name, "%s_b64", name);
	if ((b64 = base64(data, len)) != NULL)
		json_object_set_new(obj, b64name, json_string(b64));
	free(b64);
}

/* A header value as JSON text: bytes that are not UTF-8 become '?'. */
static json_t *json_header_text(const void *data, size_t len)
{
	json_t *s;
	char *copy;

	if (!data)
		return json_null();
	if ((s = json_stringn(data, len)) != NULL)
		return s;
	if (!(copy = malloc(len + 1)))
		return json_null();
	memcpy(copy, data, len);
	copy[len] = '\0';
	for (size_t i = 0; i < len;) {
		size_t n = utf8_sequence_len((unsigned char *)copy + i, len - i);
		if (!n || (n == 1 && copy[i] == '\0')) {
			copy[i++] = '?';
			continue;
		}
		i += n;
	}
	s = json_stringn(copy, len);
	free(copy);
	return s ? s : json_null();
}

/* --dry-run: one JSON line on stdout per record that would be sent: where it is in the
 * dead-letter topic, why it is there, and what would go to the input topic. */
static int print_would_send(const struct replay *r, const rd_kafka_message_t *m,
			    rd_kafka_headers_t *orig, rd_kafka_headers_t *hdrs)
{
	static const char *const why[][2] = { { "class", HDR_ERROR_CLASS },
					      { "sqlstate", HDR_ERROR_SQLSTATE },
					      { "constraint", HDR_ERROR_CONSTRAINT },
					      { "message", HDR_ERROR_MESSAGE } };
	json_t *line = json_object(), *dlq = json_object(), *err = json_object();
	json_t *headers = json_object();
	const char *name;
	const void *val;
	size_t len;
	char *text = NULL;
	int rc = -1;

	if (!line || !dlq || !err || !headers)
		goto cleanup;
	int64_t ts = rd_kafka_message_timestamp(m, NULL);
	json_object_set_new(dlq, "topic", json_string(rd_kafka_topic_name(m->rkt)));
	json_object_set_new(dlq, "partition", json_integer(m->partition));
	json_object_set_new(dlq, "offset", json_integer(m->offset));
	json_object_set_new(dlq, "timestamp", ts >= 0 ? json_integer(ts) : json_null());
	for (size_t i = 0; i < sizeof why / sizeof why[0]; i++)
		if (orig && rd_kafka_header_get_last(orig, why[i][1], &val, &len) == 0)
			json_object_set_new(err, why[i][0], json_header_text(val, len));
	for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &len) == 0; i++)
		json_object_set_new(headers, name, json_header_text(val, len));
	json_object_set(line, "dlq", dlq);
	json_object_set(line, "error", err);
	json_object_set_new(line, "topic", json_string(r->cfg->kafka.input_topic));
	json_set_bytes(line, "key", m->key, m->key_len);
	json_set_bytes(line, "value", m->payload, m->len);
	json_object_set(line, "headers", headers);
	if (!(text = json_dumps(line, JSON_COMPACT)))
		goto cleanup;
	if (fputs(text, stdout) == EOF || fputc('\n', stdout) == EOF || fflush(stdout) == EOF)
		goto cleanup;
	rc = 0;
cleanup:
	if (rc < 0)
		log_error("replay_dry_run_print_failed", LOG_S("topic", rd_kafka_topic_name(m->rkt)),
			  LOG_I("partition", m->partition), LOG_I("offset", m->offset));
	free(text);
	json_decref(headers);
	json_decref(err);
	json_decref(dlq);
	json_decref(line);
	return rc;
}

static int replay_one(struct replay *r, const rd_kafka_message_t *m)
{
	rd_kafka_headers_t *orig = NULL, *hdrs;
	int64_t replayed = 0;

	if (rd_kafka_message_headers(m, &orig) != RD_KAFKA_RESP_ERR_NO_ERROR)
		orig = NULL;
	if (!matches(r, m, orig)) {
		r->skipped++;
		return 0;
	}
	hdrs = orig ? rd_kafka_headers_copy(orig) : rd_kafka_headers_new(4);
	record_header_int(hdrs, HDR_REPLAYED, &replayed);
	rd_kafka_header_remove(hdrs, HDR_REPLAYED);
	record_headers_strip_decision(hdrs);
	record_header_add_int(hdrs, HDR_REPLAYED, replayed + 1);
	if (r->opts->dry_run) {
		int rc = print_would_send(r, m, orig, hdrs);
		rd_kafka_headers_destroy(hdrs);
		if (rc == 0)
			r->sent++;
		return rc;
	}
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
	char client[128];
	rd_kafka_conf_t *conf;

	snprintf(client, sizeof client, "replay-dlq-%d", (int)getpid());
	if (!r->opts->dry_run) {
		if (!(conf = kafka_conf_new(r->cfg, KAFKA_PRODUCER, client, NULL, errbuf, errsize)))
			return -1;
		rd_kafka_conf_set_dr_msg_cb(conf, replay_dr_cb);
		rd_kafka_conf_set_opaque(conf, r);
		if (!(r->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errbuf, errsize))) {
			rd_kafka_conf_destroy(conf);
			return -1;
		}
	}
	if (!(conf = kafka_conf_new(r->cfg, KAFKA_CONSUMER, client, r->group, errbuf, errsize)))
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
		if (r->producer)
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
		/* Mark this record examined (replayed or skipped): the next run starts after it.
		 * A dry run examines without marking. */
		if (rc == 0 && !r->opts->dry_run) {
			rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
			rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(m->rkt), m->partition)
				->offset = m->offset + 1;
			rd_kafka_offsets_store(r->consumer, l);
			rd_kafka_topic_partition_list_destroy(l);
		}
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

	replay_group_id(cfg->kafka.group_id, opts, r.group, sizeof r.group);
	log_info("replay_dlq_start", LOG_S("group", r.group), LOG_S("topic", cfg->kafka.dlq_topic),
		 LOG_S("error_class", opts->error_class), LOG_S("sqlstate", opts->sqlstate),
		 LOG_S("constraint", opts->constraint), LOG_I("since_ms", opts->since_ms),
		 LOG_I("limit", opts->limit), LOG_I("dry_run", opts->dry_run));
	if (setup(&r, errbuf, sizeof errbuf) < 0) {
		log_error("replay_dlq_failed", LOG_S("error", errbuf));
		rc = EXIT_FAILURE_RUNTIME;
		goto cleanup;
	}
	if (replay_all(&r) < 0)
		rc = EXIT_FAILURE_RUNTIME;
	if (opts->dry_run) {
		log_info("replay_dlq_dry_run_done", LOG_I("would_replay", r.sent),
			 LOG_I("skipped", r.skipped), LOG_S("group", r.group));
		goto cleanup;
	}
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
		 LOG_S("error_class", opts->error_class), LOG_S("group", r.group));
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
