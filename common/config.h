/* worker.yaml: one table (config_table.c) describes every key; parsing, validation, defaults,
 * environment expansion and the --help listing all come from it. */
#ifndef AW_CONFIG_H
#define AW_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "log.h"

/* kafka.properties: passed to librdkafka as is, in file order. */
struct config_property {
	char *key;
	char *value;
};

struct config {
	char *path; /* the file it was read from */
	struct {
		char *brokers;
		char *group_id;
		char *input_topic;
		char *retry_topic;
		char *dlq_topic;
		struct config_property *properties;
		size_t nproperties;
		int transaction_interval_ms;
	} kafka;
	struct {
		char *conninfo; /* secret: may hold a password; never logged */
		int statement_timeout_ms;
		int batch_size; /* most requests per transaction, <= ASSET_TX_BATCH_MAX (1000) */
	} postgres;
	struct {
		int initial_backoff_ms;
		int max_backoff_ms;
		double multiplier;
		int max_attempts;
		int max_in_place_attempts;
	} retry;
	/* classify: SQLSTATE or class -> transient | requeue | dead_letter, in file order. */
	struct config_property *classify;
	size_t nclassify;
	struct {
		enum log_level level;
		enum log_format format;
		int summary_interval_ms;
	} log;
	struct {
		char *id; /* x-worker-id; empty means "<hostname>-<pid>" */
	} worker;
	struct {
		char *listen; /* host:port of /metrics, /healthz, /readyz; "" = off */
	} metrics;
};

/* Reads, expands and validates `path`. On success returns 0 and *out (owned by the caller,
 * freed with config_free). On failure returns -1 and writes to errbuf one line per problem,
 * each "file:line:col: what is wrong" (line and column 1-based). */
int config_load(const char *path, struct config **out, char *errbuf, size_t errsize);
void config_free(struct config *cfg);

/* Every key with its type, default, range and whether SIGHUP can change it. */
void config_describe(FILE *out);

/* Registers every secret value of cfg (password in conninfo, sasl/ssl passwords in
 * kafka.properties) with log_add_secret(). */
void config_register_secrets(const struct config *cfg);

#endif
