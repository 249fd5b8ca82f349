/* aw-kafka: the producer and reader that tests, the demo and benchmarks use against a broker.
 *
 *   aw-kafka produce --topic T [--partition N] [--envelope] [--file F|-] [--rate R]
 *   aw-kafka dump --topic T [--timeout-ms MS]
 *   aw-kafka watermarks --topic T
 *   aw-kafka committed --group G --topic T
 *
 * Every subcommand takes --brokers ADDR (default: $KAFKA_BROKERS) and -X prop=value (passed to
 * librdkafka as is). Exit codes: 0 success, 1 failure, 2 usage error. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#define META_TIMEOUT_MS 10000
#define PROPS_MAX 64
#define DUMP_IDLE_TIMEOUT_MS 30000
#define REPORT_ERRORS_MAX 5

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

struct opts {
	const char *cmd;
	const char *brokers;
	const char *topic;
	const char *group;
	const char *file; /* NULL or "-": stdin */
	int32_t partition; /* RD_KAFKA_PARTITION_UA: let the partitioner choose */
	int envelope;
	int timeout_ms;
	double rate; /* produce: records per second, evenly spaced; 0: as fast as possible */
	const char *props[PROPS_MAX]; /* "key=value" from -X */
	size_t nprops;
};

/* ---- base64 -------------------------------------------------------------------------------- */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Returns a NUL-terminated encoding (caller frees) or NULL when out of memory. */
static char *b64_encode(const unsigned char *in, size_t n)
{
	char *out = malloc((n + 2) / 3 * 4 + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? b64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64_alphabet, c) : NULL;
	return p ? (int)(p - b64_alphabet) : -1;
}

/* Decodes standard base64 (padding optional, whitespace not allowed). Returns 0 and a buffer
 * the caller frees, or -1 on bad input or no memory. */
static int b64_decode(const char *in, size_t n, unsigned char **out, size_t *outlen)
{
	unsigned char *buf;
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	while (n > 0 && in[n - 1] == '=')
		n--;
	buf = malloc(n / 4 * 3 + 3);
	if (!buf)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value(in[i]);
		if (v < 0) {
			free(buf);
			return -1;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (unsigned char)(acc >> bits);
		}
	}
	*out = buf;
	*outlen = o;
	return 0;
}

/* ---- client setup -------------------------------------------------------------------------- */

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
	char errstr[512];

	if (rd_kafka_conf_set(conf, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "aw-kafka: %s=%s: %s\n", key, value, errstr);
		return -1;
	}
	return 0;
}

/* Applies -X key=value last, so they win over our defaults. */
static int conf_apply_props(rd_kafka_conf_t *conf, const struct opts *o)
{
	for (size_t i = 0; i < o->nprops; i++) {
		const char *eq = strchr(o->props[i], '=');
		char *key = strndup(o->props[i], (size_t)(eq - o->props[i]));
		int rc;

		if (!key)
			return -1;
		rc = conf_set(conf, key, eq + 1);
		free(key);
		if (rc != 0)
			return -1;
	}
	return 0;
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void)rk;
	(void)opaque;
	/* Informational: librdkafka retries on its own. Fatal errors are checked by the caller. */
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__FATAL)
		fprintf(stderr, "aw-kafka: %s: %s\n", rd_kafka_err2name(err), reason);
}

/* Builds a client. `conf` is consumed either way. */
static rd_kafka_t *client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, const struct opts *o)
{
	char errstr[512];
	rd_kafka_t *rk;

	rd_kafka_conf_set_error_cb(conf, on_error);
	if (conf_set(conf, "bootstrap.servers", o->brokers) != 0 ||
	    conf_set(conf, "log_level", "3") != 0 || conf_apply_props(conf, o) != 0) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
	if (!rk) {
		fprintf(stderr, "aw-kafka: %s\n", errstr);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	return rk; /* conf is now owned by rk */
}

/* A consumer that never subscribes: for reading by assignment, watermarks and committed
 * offsets. rd_kafka_consumer_poll() needs a group.id even without a group membership. */
static rd_kafka_t *consumer_new(const struct opts *o, const char *group)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char fallback[64];
	rd_kafka_t *rk;

	if (!group) {
		snprintf(fallback, sizeof fallback, "aw-kafka-%ld", (long)getpid());
		group = fallback;
	}
	if (conf_set(conf, "group.id", group) != 0 ||
	    conf_set(conf, "enable.auto.commit", "false") != 0 ||
	    conf_set(conf, "enable.auto.offset.store", "false") != 0 ||
	    conf_set(conf, "enable.partition.eof", "true") != 0 ||
	    conf_set(conf, "auto.offset.reset", "earliest") != 0 ||
	    /* What the worker commits is all a reader may see (SPEC 4); explicit, not a default */
	    conf_set(conf, "isolation.level", "read_committed") != 0 ||
	    conf_set(conf, "fetch.wait.max.ms", "50") != 0) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rk = client_new(RD_KAFKA_CONSUMER, conf, o);
	if (rk)
		rd_kafka_poll_set_consumer(rk);
	return rk;
}

/* Partition count of an existing topic. Asks for all topics, because asking for one by name
 * makes a broker with auto-creation (like the dev broker) create it. */
static int topic_partition_count(rd_kafka_t *rk, const char *topic, int *count)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, META_TIMEOUT_MS);
	int rc = -1;

	if (err) {
		fprintf(stderr, "aw-kafka: metadata: %s\n", rd_kafka_err2str(err));
		return -1;
	}
	for (int i = 0; i < md->topic_cnt; i++) {
		if (strcmp(md->topics[i].topic, topic) != 0)
			continue;
		if (md->topics[i].err)
			fprintf(stderr, "aw-kafka: topic %s: %s\n", topic,
				rd_kafka_err2str(md->topics[i].err));
		else {
			*count = md->topics[i].partition_cnt;
			rc = 0;
		}
		break;
	}
	if (rc != 0 && !err)
		fprintf(stderr, "aw-kafka: topic %s does not exist\n", topic);
	rd_kafka_metadata_destroy(md);
	return rc;
}

/* ---- produce ------------------------------------------------------------------------------- */

struct produce_state {
	long delivered;
	long failed;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct produce_state *st = opaque;

	(void)rk;
	if (m->err) {
		if (st->failed++ < REPORT_ERRORS_MAX)
			fprintf(stderr, "aw-kafka: delivery to %s [%" PRId32 "] failed: %s\n",
				rd_kafka_topic_name(m->rkt), m->partition, rd_kafka_err2str(m->err));
	} else {
		st->delivered++;
	}
}

/* One record to send, pointing into buffers the caller owns. */
struct record {
	const void *key;
	size_t key_len;
	const void *value; /* NULL: a null value */
	size_t value_len;
	int32_t partition;
	rd_kafka_headers_t *headers; /* NULL: none; owned until produced */
};

/* Reads a string field as raw bytes, or base64 bytes from the "<name>_b64" field. Absent or
 * null leaves *data NULL. */
static int envelope_bytes(json_t *env, const char *name, const void **data, size_t *len,
			  unsigned char **decoded)
{
	char b64name[64];
	json_t *v = json_object_get(env, name);

	*data = NULL;
	*len = 0;
	snprintf(b64name, sizeof b64name, "%s_b64", name);
	if (v && !json_is_null(v)) {
		if (!json_is_string(v))
			return -1;
		*data = json_string_value(v);
		*len = json_string_length(v);
		return 0;
	}
	v = json_object_get(env, b64name);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) ||
	    b64_decode(json_string_value(v), json_string_length(v), decoded, len) != 0)
		return -1;
	*data = *decoded;
	return 0;
}

static int header_add_json(rd_kafka_headers_t *hdrs, const char *name, json_t *v)
{
	char *s;

	if (json_is_null(v))
		return rd_kafka_header_add(hdrs, name, -1, NULL, 0) ? -1 : 0;
	if (json_is_string(v))
		return rd_kafka_header_add(hdrs, name, -1, json_string_value(v),
					   (ssize_t)json_string_length(v))
			       ? -1
			       : 0;
	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY); /* numbers etc. as their text */
	if (!s)
		return -1;
	if (rd_kafka_header_add(hdrs, name, -1, s, -1)) {
		free(s);
		return -1;
	}
	free(s);
	return 0;
}

/* "headers": {"name": "value", ...} or [["name", "value"], ...] (to repeat a name). */
static int envelope_headers(json_t *env, rd_kafka_headers_t **out)
{
	json_t *h = json_object_get(env, "headers");
	const char *name;
	json_t *v;
	size_t i;

	*out = NULL;
	if (!h || json_is_null(h))
		return 0;
	if (!json_is_object(h) && !json_is_array(h))
		return -1;
	*out = rd_kafka_headers_new(8);
	if (json_is_object(h)) {
		json_object_foreach(h, name, v)
			if (header_add_json(*out, name, v) != 0)
				goto fail;
	} else {
		json_array_foreach(h, i, v) {
			json_t *hn = json_array_get(v, 0);
			if (json_array_size(v) != 2 || !json_is_string(hn) ||
			    header_add_json(*out, json_string_value(hn), json_array_get(v, 1)) != 0)
				goto fail;
		}
	}
	return 0;
fail:
	rd_kafka_headers_destroy(*out);
	*out = NULL;
	return -1;
}

/* Sends one record, waiting for room in the queue. Headers are owned by rk afterwards. */
static int produce_one(rd_kafka_t *rk, const char *topic, struct record *r)
{
	rd_kafka_resp_err_t err;

	for (;;) {
		err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(r->partition),
					RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					RD_KAFKA_V_KEY(r->key, r->key_len),
					RD_KAFKA_V_VALUE((void *)r->value, r->value_len),
					RD_KAFKA_V_HEADERS(r->headers), RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		rd_kafka_poll(rk, 50); /* serve delivery reports to make room */
	}
	if (err) {
		fprintf(stderr, "aw-kafka: produce: %s\n", rd_kafka_err2str(err));
		return -1;
	}
	r->headers = NULL; /* now owned by rk */
	return 0;
}

/* One envelope line. Returns 0 sent, 1 skipped (blank), -1 error (reported). */
static int produce_envelope(rd_kafka_t *rk, const struct opts *o, const char *line, size_t len,
			    long lineno)
{
	struct record r = { .partition = o->partition };
	unsigned char *key_buf = NULL, *value_buf = NULL;
	char *value_text = NULL;
	json_error_t jerr;
	json_t *env, *v;
	int rc = -1;

	if (strspn(line, " \t\r") == len)
		return 1;
	env = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
	if (!env || !json_is_object(env)) {
		fprintf(stderr, "aw-kafka: line %ld: %s\n", lineno,
			env ? "envelope is not a JSON object" : jerr.text);
		goto cleanup;
	}
	if (envelope_bytes(env, "key", &r.key, &r.key_len, &key_buf) != 0) {
		fprintf(stderr, "aw-kafka: line %ld: \"key\" must be a string or null, "
				"\"key_b64\" base64\n", lineno);
		goto cleanup;
	}
	v = json_object_get(env, "value");
	if (v && !json_is_string(v) && !json_is_null(v)) {
		value_text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!value_text)
			goto cleanup;
		r.value = value_text;
		r.value_len = strlen(value_text);
	} else if (envelope_bytes(env, "value", &r.value, &r.value_len, &value_buf) != 0) {
		fprintf(stderr, "aw-kafka: line %ld: \"value_b64\" must be base64\n", lineno);
		goto cleanup;
	}
	v = json_object_get(env, "partition");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > INT32_MAX) {
			fprintf(stderr, "aw-kafka: line %ld: \"partition\" must be an integer >= 0\n",
				lineno);
			goto cleanup;
		}
		r.partition = (int32_t)json_integer_value(v);
	}
	if (envelope_headers(env, &r.headers) != 0) {
		fprintf(stderr, "aw-kafka: line %ld: \"headers\" must be an object of strings "
				"or an array of [name, value]\n", lineno);
		goto cleanup;
	}
	rc = produce_one(rk, o->topic, &r);
cleanup:
	if (r.headers)
		rd_kafka_headers_destroy(r.headers);
	free(key_buf);
	free(value_buf);
	free(value_text);
	json_decref(env);
	return rc;
}

/* Waits until record `n` (0-based) is due, n / rate seconds after `start` (CLOCK_MONOTONIC).
 * Due times are absolute, so a late record is sent at once and the rate holds on average. */
static void pace_wait(rd_kafka_t *rk, const struct timespec *start, double rate, long n)
{
	double due = (double)n / rate;
	struct timespec at = { .tv_sec = start->tv_sec + (time_t)due,
			       .tv_nsec = start->tv_nsec + (long)(fmod(due, 1.0) * 1e9) };

	if (at.tv_nsec >= 1000000000L) {
		at.tv_sec++;
		at.tv_nsec -= 1000000000L;
	}
	rd_kafka_poll(rk, 0); /* serve delivery reports while we wait */
	while (!g_stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR)
		;
}

static int cmd_produce(const struct opts *o)
{
	struct produce_state st = { 0 };
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk = NULL;
	FILE *in = stdin;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long lineno = 0, queued = 0;
	int rc = 1, input_ok = 1;
	struct timespec start;

	if (o->file && strcmp(o->file, "-") != 0) {
		in = fopen(o->file, "r");
		if (!in) {
			fprintf(stderr, "aw-kafka: %s: %s\n", o->file, strerror(errno));
			rd_kafka_conf_destroy(conf);
			return 1;
		}
	}
	rd_kafka_conf_set_opaque(conf, &st);
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	/* Idempotent: retries never duplicate or reorder. Large messages: lines up to 8 MiB. */
	if (conf_set(conf, "enable.idempotence", "true") != 0 ||
	    conf_set(conf, "message.max.bytes", "16777216") != 0 ||
	    conf_set(conf, "queue.buffering.max.messages", "500000") != 0 ||
	    conf_set(conf, "linger.ms", "10") != 0) {
		rd_kafka_conf_destroy(conf);
		goto cleanup;
	}
	rk = client_new(RD_KAFKA_PRODUCER, conf, o);
	conf = NULL;
	if (!rk)
		goto cleanup;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!g_stop && (len = getline(&line, &cap, in)) >= 0) {
		int r;
		lineno++;
		if (o->rate > 0)
			pace_wait(rk, &start, o->rate, queued);
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (o->envelope) {
			r = produce_envelope(rk, o, line, (size_t)len, lineno);
		} else {
			struct record raw = { .value = line, .value_len = (size_t)len,
					      .partition = o->partition };
			r = produce_one(rk, o->topic, &raw);
		}
		if (r < 0) {
			input_ok = 0;
			break;
		}
		if (r == 0 && ++queued % 1000 == 0)
			rd_kafka_poll(rk, 0);
	}
	if (ferror(in)) {
		fprintf(stderr, "aw-kafka: reading input: %s\n", strerror(errno));
		input_ok = 0;
	}
	/* Everything queued is delivered or failed (after message.timeout.ms) before we exit. */
	while (rd_kafka_outq_len(rk) > 0 && !g_stop)
		rd_kafka_flush(rk, 500);
	if (rd_kafka_outq_len(rk) > 0)
		fprintf(stderr, "aw-kafka: interrupted with %d messages undelivered\n",
			rd_kafka_outq_len(rk));
	else if (g_stop)
		input_ok = 0;
	{
		char errstr[256];
		rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(rk, errstr, sizeof errstr);
		if (ferr)
			fprintf(stderr, "aw-kafka: fatal producer error: %s\n", errstr);
		if (!ferr && st.failed == 0 && input_ok && rd_kafka_outq_len(rk) == 0)
			rc = 0;
	}
	fprintf(stderr, "produced %ld\n", st.delivered);
	if (st.failed)
		fprintf(stderr, "aw-kafka: %ld deliveries failed\n", st.failed);
cleanup:
	if (rk)
		rd_kafka_destroy(rk);
	if (in && in != stdin)
		fclose(in);
	free(line);
	return rc;
}

/* ---- dump ---------------------------------------------------------------------------------- */

/* A JSON string of the bytes, or NULL when they are not valid UTF-8. */
static json_t *json_bytes(const void *data, size_t len)
{
	return json_stringn(data ? data : "", len);
}

/* Header values must come out as text; bytes that are not UTF-8 become U+FFFD. */
static json_t *json_text_lossy(const char *data, size_t len)
{
	json_t *s = json_bytes(data, len);
	char *fixed;
	size_t o = 0;

	if (s)
		return s;
	fixed = malloc(len * 3 + 1);
	if (!fixed)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)data[i];
		if (c < 0x80) {
			fixed[o++] = (char)c;
		} else {
			memcpy(fixed + o, "\xef\xbf\xbd", 3);
			o += 3;
		}
	}
	s = json_stringn(fixed, o);
	free(fixed);
	return s;
}

static int record_print(const rd_kafka_message_t *m)
{
	json_t *rec = json_object();
	json_t *hobj = json_object();
	rd_kafka_headers_t *hdrs = NULL;
	rd_kafka_timestamp_type_t tstype;
	int64_t ts = rd_kafka_message_timestamp(m, &tstype);
	json_t *k = NULL, *v = NULL;
	char *b64 = NULL, *text = NULL;
	int rc = -1;

	if (!rec || !hobj)
		goto cleanup;
	json_object_set_new(rec, "topic", json_string(rd_kafka_topic_name(m->rkt)));
	json_object_set_new(rec, "partition", json_integer(m->partition));
	json_object_set_new(rec, "offset", json_integer(m->offset));
	json_object_set_new(rec, "timestamp", ts >= 0 ? json_integer(ts) : json_null());
	if (m->key && !(k = json_bytes(m->key, m->key_len))) {
		json_object_set_new(rec, "key", json_null());
		if (!(b64 = b64_encode(m->key, m->key_len)))
			goto cleanup;
		json_object_set_new(rec, "key_b64", json_string(b64));
		free(b64);
		b64 = NULL;
	} else {
		json_object_set_new(rec, "key", k ? k : json_null());
	}
	if (m->payload && !(v = json_bytes(m->payload, m->len))) {
		json_object_set_new(rec, "value", json_null());
		if (!(b64 = b64_encode(m->payload, m->len)))
			goto cleanup;
		json_object_set_new(rec, "value_b64", json_string(b64));
	} else {
		json_object_set_new(rec, "value", v ? v : json_null());
	}
	if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		const char *name;
		const void *hv;
		size_t hlen;
		for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &hv, &hlen) == 0; i++)
			json_object_set_new(hobj, name,
					    hv ? json_text_lossy(hv, hlen) : json_null());
	}
	json_object_set(rec, "headers", hobj);
	text = json_dumps(rec, JSON_COMPACT);
	if (!text)
		goto cleanup;
	if (fputs(text, stdout) == EOF || putchar('\n') == EOF)
		goto cleanup;
	rc = 0;
cleanup:
	if (rc != 0)
		fprintf(stderr, "aw-kafka: could not print %s [%" PRId32 "] @ %" PRId64 "\n",
			rd_kafka_topic_name(m->rkt), m->partition, m->offset);
	free(b64);
	free(text);
	json_decref(hobj);
	json_decref(rec);
	return rc;
}

/* Reads one partition from `low` up to (excluding) `high`, the watermarks when we started. */
static int dump_partition(rd_kafka_t *rk, const struct opts *o, int32_t p, int64_t low,
			  int64_t high)
{
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
	rd_kafka_resp_err_t err;
	struct timespec last, now;
	int64_t next = low;
	int rc = -1;

	rd_kafka_topic_partition_list_add(parts, o->topic, p)->offset = low;
	err = rd_kafka_assign(rk, parts);
	if (err) {
		fprintf(stderr, "aw-kafka: assign %s [%" PRId32 "]: %s\n", o->topic, p,
			rd_kafka_err2str(err));
		goto cleanup;
	}
	clock_gettime(CLOCK_MONOTONIC, &last);
	while (next < high && !g_stop) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!m) {
			long idle = (now.tv_sec - last.tv_sec) * 1000 +
				    (now.tv_nsec - last.tv_nsec) / 1000000;
			if (idle > o->timeout_ms) {
				fprintf(stderr, "aw-kafka: %s [%" PRId32 "]: no progress for %d ms "
						"at offset %" PRId64 " of %" PRId64 "\n",
					o->topic, p, o->timeout_ms, next, high);
				goto cleanup;
			}
			continue;
		}
		last = now;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			/* The end came early: offsets up to high are gone (e.g. compacted). */
			if (m->partition == p && m->offset >= next)
				next = high;
		} else if (m->err) {
			fprintf(stderr, "aw-kafka: %s [%" PRId32 "]: %s\n", o->topic, p,
				rd_kafka_message_errstr(m));
			if (m->err == RD_KAFKA_RESP_ERR__FATAL ||
			    m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE ||
			    m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
			    m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
			    m->err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION) {
				rd_kafka_message_destroy(m);
				goto cleanup;
			}
		} else if (m->partition == p && m->offset >= next && m->offset < high) {
			if (record_print(m) != 0) {
				rd_kafka_message_destroy(m);
				goto cleanup;
			}
			next = m->offset + 1;
		}
		rd_kafka_message_destroy(m);
	}
	rc = g_stop ? -1 : 0;
cleanup:
	rd_kafka_assign(rk, NULL);
	rd_kafka_topic_partition_list_destroy(parts);
	return rc;
}

/* Takes every partition's watermarks first (one snapshot, and no ListOffsets queued behind a
 * long-polling Fetch), then reads the partitions one after the other, so the output is sorted
 * and memory stays flat. */
static int cmd_dump(const struct opts *o)
{
	rd_kafka_t *rk = consumer_new(o, NULL);
	int64_t *low = NULL, *high = NULL;
	int count, rc = 1;

	if (!rk)
		return 1;
	if (topic_partition_count(rk, o->topic, &count) != 0)
		goto cleanup;
	low = calloc((size_t)count + 1, sizeof *low);
	high = calloc((size_t)count + 1, sizeof *high);
	if (!low || !high)
		goto cleanup;
	for (int32_t p = 0; p < count; p++) {
		rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
			rk, o->topic, p, &low[p], &high[p], META_TIMEOUT_MS);
		if (err) {
			fprintf(stderr, "aw-kafka: watermarks %s [%" PRId32 "]: %s\n", o->topic, p,
				rd_kafka_err2str(err));
			goto cleanup;
		}
	}
	for (int32_t p = 0; p < count; p++)
		if (low[p] < high[p] && dump_partition(rk, o, p, low[p], high[p]) != 0)
			goto cleanup;
	if (fflush(stdout) != 0) {
		fprintf(stderr, "aw-kafka: writing output: %s\n", strerror(errno));
		goto cleanup;
	}
	rc = 0;
cleanup:
	free(low);
	free(high);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return rc;
}

/* ---- watermarks, committed ----------------------------------------------------------------- */

static int cmd_watermarks(const struct opts *o)
{
	rd_kafka_t *rk = consumer_new(o, NULL);
	int count, rc = 1;

	if (!rk)
		return 1;
	if (topic_partition_count(rk, o->topic, &count) != 0)
		goto cleanup;
	for (int32_t p = 0; p < count; p++) {
		int64_t low, high;
		rd_kafka_resp_err_t err =
			rd_kafka_query_watermark_offsets(rk, o->topic, p, &low, &high, META_TIMEOUT_MS);
		if (err) {
			fprintf(stderr, "aw-kafka: watermarks %s [%" PRId32 "]: %s\n", o->topic, p,
				rd_kafka_err2str(err));
			goto cleanup;
		}
		printf("%" PRId32 " %" PRId64 " %" PRId64 "\n", p, low, high);
	}
	rc = 0;
cleanup:
	rd_kafka_destroy(rk);
	return rc;
}

/* Prints "partition offset"; -1 where the group has committed nothing. */
static int cmd_committed(const struct opts *o)
{
	rd_kafka_t *rk = consumer_new(o, o->group);
	rd_kafka_topic_partition_list_t *parts = NULL;
	rd_kafka_resp_err_t err;
	int count, rc = 1;

	if (!rk)
		return 1;
	if (topic_partition_count(rk, o->topic, &count) != 0)
		goto cleanup;
	parts = rd_kafka_topic_partition_list_new(count);
	for (int32_t p = 0; p < count; p++)
		rd_kafka_topic_partition_list_add(parts, o->topic, p);
	err = rd_kafka_committed(rk, parts, META_TIMEOUT_MS);
	if (err) {
		fprintf(stderr, "aw-kafka: committed offsets of %s: %s\n", o->group,
			rd_kafka_err2str(err));
		goto cleanup;
	}
	for (int i = 0; i < parts->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &parts->elems[i];
		if (tp->err) {
			fprintf(stderr, "aw-kafka: committed %s [%" PRId32 "]: %s\n", tp->topic,
				tp->partition, rd_kafka_err2str(tp->err));
			goto cleanup;
		}
		printf("%" PRId32 " %" PRId64 "\n", tp->partition, tp->offset < 0 ? -1 : tp->offset);
	}
	rc = 0;
cleanup:
	if (parts)
		rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_destroy(rk);
	return rc;
}

/* ---- command line -------------------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: aw-kafka produce --topic T [--partition N] [--envelope] [--file F|-] [--rate R]\n"
		"       aw-kafka dump --topic T [--timeout-ms MS]\n"
		"       aw-kafka watermarks --topic T\n"
		"       aw-kafka committed --group G --topic T\n"
		"common options:\n"
		"  --brokers ADDR    bootstrap servers (default: $KAFKA_BROKERS)\n"
		"  -X prop=value     librdkafka property, repeatable\n"
		"produce reads JSON Lines; each line is the raw value, or with --envelope an object\n"
		"  {\"key\": s|null, \"key_b64\": s, \"value\": s|json|null, \"value_b64\": s,\n"
		"   \"headers\": {name: s} | [[name, s], ...], \"partition\": n}\n"
		"  --rate R sends R records a second, evenly spaced (each record's timestamp is\n"
		"  its send time); without it, as fast as the broker takes them\n"
		"dump prints one JSON object per record, partition by partition, up to the end.\n"
		"committed prints -1 for partitions without a committed offset.\n");
}

/* Returns 0 to run, 1 when --help was answered, 2 for a usage error (reported). */
static int opts_parse(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "brokers", required_argument, NULL, 'b' },
		{ "topic", required_argument, NULL, 't' },
		{ "partition", required_argument, NULL, 'p' },
		{ "file", required_argument, NULL, 'f' },
		{ "envelope", no_argument, NULL, 'e' },
		{ "group", required_argument, NULL, 'g' },
		{ "timeout-ms", required_argument, NULL, 'T' },
		{ "rate", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	long v;
	int c;

	o->partition = RD_KAFKA_PARTITION_UA;
	o->timeout_ms = DUMP_IDLE_TIMEOUT_MS;
	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
			usage(stdout);
			return 1;
		}
		usage(stderr);
		return 2;
	}
	o->cmd = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "X:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			o->brokers = optarg;
			break;
		case 't':
			o->topic = optarg;
			break;
		case 'p':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || !*optarg || v < 0 || v > INT32_MAX) {
				fprintf(stderr, "aw-kafka: --partition: expected an integer >= 0\n");
				return 2;
			}
			o->partition = (int32_t)v;
			break;
		case 'f':
			o->file = optarg;
			break;
		case 'e':
			o->envelope = 1;
			break;
		case 'g':
			o->group = optarg;
			break;
		case 'T':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || !*optarg || v < 1 || v > INT32_MAX) {
				fprintf(stderr, "aw-kafka: --timeout-ms: expected an integer >= 1\n");
				return 2;
			}
			o->timeout_ms = (int)v;
			break;
		case 'r':
			errno = 0;
			o->rate = strtod(optarg, &end);
			if (errno || *end || !*optarg || !isfinite(o->rate) || o->rate <= 0) {
				fprintf(stderr, "aw-kafka: --rate: expected records per second > 0\n");
				return 2;
			}
			break;
		case 'X':
			if (!strchr(optarg, '=') || optarg[0] == '=' || o->nprops == PROPS_MAX) {
				fprintf(stderr, "aw-kafka: -X: expected prop=value\n");
				return 2;
			}
			o->props[o->nprops++] = optarg;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "aw-kafka: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!o->brokers)
		o->brokers = getenv("KAFKA_BROKERS");
	if (!o->brokers || !*o->brokers) {
		fprintf(stderr, "aw-kafka: no brokers: give --brokers or set KAFKA_BROKERS\n");
		return 2;
	}
	if (!o->topic) {
		fprintf(stderr, "aw-kafka: %s: --topic is required\n", o->cmd);
		return 2;
	}
	if (strcmp(o->cmd, "committed") == 0 && !o->group) {
		fprintf(stderr, "aw-kafka: committed: --group is required\n");
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	struct sigaction ign = { .sa_handler = SIG_IGN };
	int rc = opts_parse(argc, argv, &o);

	if (rc != 0)
		return rc == 1 ? 0 : rc;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPIPE, &ign, NULL); /* a closed stdout shows up as a write error */

	if (strcmp(o.cmd, "produce") == 0)
		return cmd_produce(&o);
	if (strcmp(o.cmd, "dump") == 0)
		return cmd_dump(&o);
	if (strcmp(o.cmd, "watermarks") == 0)
		return cmd_watermarks(&o);
	if (strcmp(o.cmd, "committed") == 0)
		return cmd_committed(&o);
	fprintf(stderr, "aw-kafka: unknown command '%s'\n", o.cmd);
	usage(stderr);
	return 2;
}
