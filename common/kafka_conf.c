#include "kafka_conf.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

struct kv {
	const char *key, *value;
};

/* Defaults the operator may override in kafka.properties. */
static const struct kv consumer_defaults[] = {
	{ "auto.offset.reset", "earliest" }, /* a new group starts from the beginning */
	{ "session.timeout.ms", "10000" },
	{ "max.poll.interval.ms", "300000" },
};
static const struct kv producer_defaults[] = {
	{ "linger.ms", "5" },
	/* A forwarded record is the input record plus headers: the client's 1 MB default would
	 * refuse, forever, to dead-letter a large input the consumer took without complaint. */
	{ "message.max.bytes", "16777216" },
	/* A transaction left open by a worker that died or froze holds back read_committed
	 * readers of the retry topic and the next owner's offsets until the broker aborts it:
	 * 10 s rather than librdkafka's 60 s. A transaction lasts kafka.transaction_interval_ms
	 * (and message.timeout.ms follows this value). */
	{ "transaction.timeout.ms", "10000" },
};

/* What "nothing is lost" rests on: never overridden. */
static const struct kv consumer_forced[] = {
	{ "enable.auto.offset.store", "false" }, /* offsets stored only once a request is final */
	/* Offsets are committed only inside the producer's transactions (worker/kafka_txn.h),
	 * with the forwards they settle. */
	{ "enable.auto.commit", "false" },
	/* Aborted forwards (a zombie's, a failed transaction's) are never read back. */
	{ "isolation.level", "read_committed" },
	{ "enable.partition.eof", "true" },      /* --drain needs to know when it caught up */
	/* The rebalance callbacks use the incremental API; an eager strategy would make every
	 * assignment fail. */
	{ "partition.assignment.strategy", "cooperative-sticky" },
};
static const struct kv producer_forced[] = {
	{ "enable.idempotence", "true" }, /* acks=all, no duplicates or reordering on retry */
};

int kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *errbuf,
		   size_t errsize)
{
	char err[512];
	if (rd_kafka_conf_set(conf, key, value, err, sizeof err) != RD_KAFKA_CONF_OK) {
		snprintf(errbuf, errsize, "kafka property \"%s\": %s", key, err);
		return -1;
	}
	return 0;
}

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	/* syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug */
	enum log_level lvl = level <= 3 ? LOG_ERROR : level == 4 ? LOG_WARN
					: level <= 6 ? LOG_INFO : LOG_DEBUG;
	if (log_enabled(lvl))
		log_write(lvl, "kafka_log",
			  (const struct log_field[]){ LOG_S("client", rd_kafka_name(rk)),
						      LOG_S("facility", fac),
						      LOG_S("message", buf) },
			  3);
}

static int set_all(rd_kafka_conf_t *conf, const struct kv *kvs, size_t n, char *errbuf,
		   size_t errsize)
{
	for (size_t i = 0; i < n; i++)
		if (kafka_conf_set(conf, kvs[i].key, kvs[i].value, errbuf, errsize) < 0)
			return -1;
	return 0;
}

rd_kafka_conf_t *kafka_conf_new(const struct config *cfg, enum kafka_role role,
				const char *client_id, const char *group_id, char *errbuf,
				size_t errsize)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	int consumer = role == KAFKA_CONSUMER;

	rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
	if (kafka_conf_set(conf, "bootstrap.servers", cfg->kafka.brokers, errbuf, errsize) < 0 ||
	    kafka_conf_set(conf, "client.id", client_id, errbuf, errsize) < 0 ||
	    (consumer && kafka_conf_set(conf, "group.id", group_id, errbuf, errsize) < 0))
		goto fail;
	if (consumer ? set_all(conf, consumer_defaults,
			       sizeof consumer_defaults / sizeof consumer_defaults[0], errbuf,
			       errsize)
		     : set_all(conf, producer_defaults,
			       sizeof producer_defaults / sizeof producer_defaults[0], errbuf,
			       errsize))
		goto fail;
	for (size_t i = 0; i < cfg->kafka.nproperties; i++) {
		const struct config_property *p = &cfg->kafka.properties[i];
		const struct kv *forced = consumer ? consumer_forced : producer_forced;
		size_t nforced = consumer ? sizeof consumer_forced / sizeof consumer_forced[0]
					  : sizeof producer_forced / sizeof producer_forced[0];
		int skip = 0;
		for (size_t k = 0; k < nforced; k++)
			if (strcmp(p->key, forced[k].key) == 0)
				skip = 1;
		if (skip) {
			log_warn("kafka_property_ignored", LOG_S("property", p->key),
				 LOG_S("reason", "the worker's delivery guarantees fix this setting"));
			continue;
		}
		/* Producer-only or consumer-only keys are accepted by librdkafka on both
		 * (with a warning of its own), so the one list serves both clients. */
		if (kafka_conf_set(conf, p->key, p->value, errbuf, errsize) < 0)
			goto fail;
	}
	if (consumer ? set_all(conf, consumer_forced,
			       sizeof consumer_forced / sizeof consumer_forced[0], errbuf, errsize)
		     : set_all(conf, producer_forced,
			       sizeof producer_forced / sizeof producer_forced[0], errbuf, errsize))
		goto fail;
	return conf;
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}
