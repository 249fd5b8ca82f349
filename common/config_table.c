/* The table of worker.yaml keys, and the per-type code that parses, frees and compares them. */
#include "config_table.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "listen_addr.h"
#include "sqlstate.h"
#include "log.h"

static const char *const config_level_values[] = { "debug", "info", "warn", "error", NULL };
static const char *const config_format_values[] = { "json", "text", NULL };

/* Enum fields are parsed by their owning module, so the names have one definition. */
static int config_parse_level(const char *s, void *field)
{
	return log_level_parse(s, (enum log_level *)field);
}

static int config_parse_format(const char *s, void *field)
{
	return log_format_parse(s, (enum log_format *)field);
}

/* config_param_equal compares enum fields bytewise. */
_Static_assert(sizeof(enum log_level) == sizeof(enum log_format), "enum fields differ in size");

/* kafka.properties: librdkafka itself says whether it knows the property and takes the value. */
static int check_kafka_property(const char *key, const char *value, char *err, size_t errsize)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_res_t res = rd_kafka_conf_set(conf, key, value, err, errsize);

	rd_kafka_conf_destroy(conf);
	return res == RD_KAFKA_CONF_OK ? 0
	       : res == RD_KAFKA_CONF_UNKNOWN ? CONFIG_ENTRY_BAD_KEY
					      : CONFIG_ENTRY_BAD_VALUE;
}

static int check_classify(const char *key, const char *value, char *err, size_t errsize)
{
	if (classify_override_check(key, "transient", err, errsize) < 0)
		return CONFIG_ENTRY_BAD_KEY;
	return classify_override_check(key, value, err, errsize) < 0 ? CONFIG_ENTRY_BAD_VALUE : 0;
}

#define F(member) offsetof(struct config, member)
#define R CONFIG_RELOADABLE
#define NE CONFIG_NONEMPTY

const struct config_param config_params[] = {
	{ "kafka.brokers", CONFIG_T_STRING, "localhost:9092", 0, 0, NULL, NULL, NE,
	  "bootstrap brokers, host:port[,host:port...]", F(kafka.brokers), 0, NULL },
	{ "kafka.group_id", CONFIG_T_STRING, "asset-workers", 0, 0, NULL, NULL, NE,
	  "consumer group of all workers", F(kafka.group_id), 0, NULL },
	{ "kafka.input_topic", CONFIG_T_STRING, "assets.create", 0, 0, NULL, NULL, NE,
	  "topic of create requests", F(kafka.input_topic), 0, NULL },
	{ "kafka.retry_topic", CONFIG_T_STRING, "assets.create.retry", 0, 0, NULL, NULL, NE,
	  "topic of requests waiting for a retry", F(kafka.retry_topic), 0, NULL },
	{ "kafka.dlq_topic", CONFIG_T_STRING, "assets.create.dlq", 0, 0, NULL, NULL, NE,
	  "dead-letter topic of requests that will never succeed", F(kafka.dlq_topic), 0, NULL },
	{ "kafka.properties", CONFIG_T_STRING_MAP, "", 0, 0, NULL, NULL, 0,
	  "librdkafka properties passed as is (security.protocol, sasl.*, ssl.*)",
	  F(kafka.properties), F(kafka.nproperties), check_kafka_property },
	{ "kafka.transaction_interval_ms", CONFIG_T_INT, "100", 1, 5000, NULL, NULL, 0,
	  "how often forwards and the input offsets they settle are committed together, in "
	  "one Kafka transaction", F(kafka.transaction_interval_ms), 0, NULL },
	{ "postgres.conninfo", CONFIG_T_STRING, "postgresql:///assets", 0, 0, NULL, NULL,
	  NE | CONFIG_SECRET, "libpq connection string or URI (secret: never logged)",
	  F(postgres.conninfo), 0, NULL },
	{ "postgres.statement_timeout_ms", CONFIG_T_INT, "5000", 0, 3600000, NULL, NULL, 0,
	  "statement_timeout of the worker's session, 0 = none", F(postgres.statement_timeout_ms), 0, NULL },
	{ "postgres.batch_size", CONFIG_T_INT, "200", 1, 1000, NULL, NULL, 0,
	  "most requests per transaction (each still settled on its own), 1 = one each",
	  F(postgres.batch_size), 0, NULL },
	{ "retry.initial_backoff_ms", CONFIG_T_INT, "100", 1, 3600000, NULL, NULL, R,
	  "delay before the first retry", F(retry.initial_backoff_ms), 0, NULL },
	{ "retry.max_backoff_ms", CONFIG_T_INT, "30000", 1, 86400000, NULL, NULL, R,
	  "upper bound of the delay, >= initial_backoff_ms", F(retry.max_backoff_ms), 0, NULL },
	{ "retry.multiplier", CONFIG_T_DOUBLE, "2.0", 1.0, 100.0, NULL, NULL, R,
	  "delay growth factor per attempt", F(retry.multiplier), 0, NULL },
	{ "retry.max_attempts", CONFIG_T_INT, "5", 1, 1000, NULL, NULL, R,
	  "attempts before a request goes to the dead-letter topic", F(retry.max_attempts), 0, NULL },
	{ "retry.max_in_place_attempts", CONFIG_T_INT, "20", 1, 1000000, NULL, NULL, R,
	  "transient failures of one request, while others commit, before it takes the requeue "
	  "path",
	  F(retry.max_in_place_attempts), 0, NULL },
	{ "classify", CONFIG_T_STRING_MAP, "", 0, 0, NULL, NULL, R,
	  "SQLSTATE or class -> transient | requeue | dead_letter, over the built-in rules",
	  F(classify), F(nclassify), check_classify },
	{ "log.level", CONFIG_T_ENUM, "info", 0, 0, config_level_values, config_parse_level, R,
	  "lowest level written", F(log.level), 0, NULL },
	{ "log.format", CONFIG_T_ENUM, "json", 0, 0, config_format_values, config_parse_format,
	  R, "one line per event, as JSON or key=value text", F(log.format), 0, NULL },
	{ "log.summary_interval_ms", CONFIG_T_INT, "10000", 0, 86400000, NULL, NULL, R,
	  "period of the counters summary line, 0 = off", F(log.summary_interval_ms), 0, NULL },
	{ "worker.id", CONFIG_T_STRING, "", 0, 0, NULL, NULL, 0,
	  "x-worker-id of this process; empty = <hostname>-<pid>", F(worker.id), 0, NULL },
	{ "metrics.listen", CONFIG_T_STRING, "", 0, 0, NULL, NULL, CONFIG_LISTEN,
	  "HTTP address of /metrics /healthz /readyz: host:port, [v6]:port or :port (port "
	  "0..65535); empty = off",
	  F(metrics.listen), 0, NULL },
};

#undef F
#undef R
#undef NE

const size_t config_nparams = sizeof config_params / sizeof config_params[0];

const struct config_param *config_param_find(const char *key)
{
	for (size_t i = 0; i < config_nparams; i++)
		if (strcmp(config_params[i].key, key) == 0)
			return &config_params[i];
	return NULL;
}

const char *config_type_name(enum config_type type)
{
	switch (type) {
	case CONFIG_T_STRING:
		return "string";
	case CONFIG_T_INT:
		return "integer";
	case CONFIG_T_DOUBLE:
		return "number";
	case CONFIG_T_ENUM:
		return "enum";
	case CONFIG_T_STRING_MAP:
		return "mapping";
	}
	return "?";
}

static void *config_field(const struct config_param *p, const struct config *cfg)
{
	return (char *)cfg + p->offset;
}

/* Quotes the value for an error message, unless it is secret. */
static const char *config_shown(const struct config_param *p, const char *text, char *buf,
				size_t size)
{
	if (p->flags & CONFIG_SECRET)
		return "value";
	snprintf(buf, size, "\"%.80s%s\"", text, strlen(text) > 80 ? "..." : "");
	return buf;
}

static int config_set_int(const struct config_param *p, int *field, const char *text,
			  char *err, size_t errsize)
{
	char shown[96];
	const char *s = text;
	char *end;
	long v;

	/* Plain decimal only: strtol alone would take " 5", "+5" and, via "0x10", a "0". */
	if (*s == '-')
		s++;
	if (*s < '0' || *s > '9') {
		snprintf(err, errsize, "%s is not an integer",
			 config_shown(p, text, shown, sizeof shown));
		return -1;
	}
	errno = 0;
	v = strtol(text, &end, 10);
	if (*end != '\0') {
		snprintf(err, errsize, "%s is not an integer",
			 config_shown(p, text, shown, sizeof shown));
		return -1;
	}
	if (errno == ERANGE || v < (long)p->min || v > (long)p->max) {
		snprintf(err, errsize, "%s is out of range %.0f..%.0f",
			 config_shown(p, text, shown, sizeof shown), p->min, p->max);
		return -1;
	}
	*field = (int)v;
	return 0;
}

static int config_set_double(const struct config_param *p, double *field, const char *text,
			     char *err, size_t errsize)
{
	char shown[96];
	const char *s = text;
	char *end;
	double v;

	/* Decimal only: strtod would also take " 2", hex floats, "inf" and "nan". */
	if (*s == '-')
		s++;
	if (!((*s >= '0' && *s <= '9') || (*s == '.' && s[1] >= '0' && s[1] <= '9'))) {
		snprintf(err, errsize, "%s is not a number",
			 config_shown(p, text, shown, sizeof shown));
		return -1;
	}
	errno = 0;
	v = strtod(text, &end);
	if (*end != '\0' || strpbrk(text, "xXpP")) {
		snprintf(err, errsize, "%s is not a number",
			 config_shown(p, text, shown, sizeof shown));
		return -1;
	}
	if (errno == ERANGE || !isfinite(v) || v < p->min || v > p->max) {
		snprintf(err, errsize, "%s is out of range %g..%g",
			 config_shown(p, text, shown, sizeof shown), p->min, p->max);
		return -1;
	}
	*field = v;
	return 0;
}

static int config_set_enum(const struct config_param *p, void *field, const char *text,
			   char *err, size_t errsize)
{
	char shown[96];
	size_t off;

	if (p->parse_enum(text, field) == 0)
		return 0;
	off = (size_t)snprintf(err, errsize, "%s is not one of ",
			       config_shown(p, text, shown, sizeof shown));
	for (size_t i = 0; p->values[i] && off < errsize; i++)
		off += (size_t)snprintf(err + off, errsize - off, "%s%s", i ? ", " : "",
					p->values[i]);
	return -1;
}

int config_param_set(const struct config_param *p, struct config *cfg, const char *text,
		     char *err, size_t errsize)
{
	void *field = config_field(p, cfg);

	switch (p->type) {
	case CONFIG_T_STRING: {
		char *copy;
		if ((p->flags & CONFIG_NONEMPTY) && !*text) {
			snprintf(err, errsize, "must not be empty");
			return -1;
		}
		if ((p->flags & CONFIG_LISTEN) && *text &&
		    listen_addr_parse(text, NULL, err, errsize) < 0)
			return -1;
		copy = strdup(text);
		if (!copy) {
			snprintf(err, errsize, "out of memory");
			return -1;
		}
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	}
	case CONFIG_T_INT:
		return config_set_int(p, (int *)field, text, err, errsize);
	case CONFIG_T_DOUBLE:
		return config_set_double(p, (double *)field, text, err, errsize);
	case CONFIG_T_ENUM:
		return config_set_enum(p, field, text, err, errsize);
	case CONFIG_T_STRING_MAP:
		if (*text) {
			snprintf(err, errsize, "expected a mapping");
			return -1;
		}
		config_param_free(p, cfg);
		return 0;
	}
	snprintf(err, errsize, "unknown type");
	return -1;
}

void config_param_free(const struct config_param *p, struct config *cfg)
{
	void *field = config_field(p, cfg);

	switch (p->type) {
	case CONFIG_T_STRING:
		free(*(char **)field);
		*(char **)field = NULL;
		break;
	case CONFIG_T_STRING_MAP: {
		struct config_property *props = *(struct config_property **)field;
		size_t *n = (size_t *)((char *)cfg + p->count_offset);
		for (size_t i = 0; i < *n; i++) {
			free(props[i].key);
			free(props[i].value);
		}
		free(props);
		*(struct config_property **)field = NULL;
		*n = 0;
		break;
	}
	case CONFIG_T_INT:
	case CONFIG_T_DOUBLE:
	case CONFIG_T_ENUM:
		break;
	}
}

static int config_str_equal(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int config_param_equal(const struct config_param *p, const struct config *a,
		       const struct config *b)
{
	const void *fa = config_field(p, a), *fb = config_field(p, b);

	switch (p->type) {
	case CONFIG_T_STRING:
		return config_str_equal(*(char *const *)fa, *(char *const *)fb);
	case CONFIG_T_INT:
		return *(const int *)fa == *(const int *)fb;
	case CONFIG_T_DOUBLE:
		return *(const double *)fa == *(const double *)fb;
	case CONFIG_T_ENUM:
		return memcmp(fa, fb, sizeof(enum log_level)) == 0;
	case CONFIG_T_STRING_MAP: {
		const struct config_property *pa = *(struct config_property *const *)fa;
		const struct config_property *pb = *(struct config_property *const *)fb;
		size_t na = *(const size_t *)((const char *)a + p->count_offset);
		size_t nb = *(const size_t *)((const char *)b + p->count_offset);
		if (na != nb)
			return 0;
		for (size_t i = 0; i < na; i++)
			if (strcmp(pa[i].key, pb[i].key) || strcmp(pa[i].value, pb[i].value))
				return 0;
		return 1;
	}
	}
	return 0;
}

int config_property_is_secret(const char *key)
{
	static const char *const markers[] = { "password", "secret", "sasl.oauthbearer.config",
					       "ssl.key" };
	for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
		if (strstr(key, markers[i]))
			return 1;
	return 0;
}
