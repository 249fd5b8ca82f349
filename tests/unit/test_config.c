/* config_load and friends. Bad configs are data: one file each under tests/data/config/bad/,
 * starting with "# expect: LINE:COL: message substring". */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_data.h"

#include "config.h"
#include "config_table.h"
#include "log.h"

#define ERRBUF_SIZE 8192

static struct config *test_load_ok(const char *rel)
{
	char *path = test_path(rel);
	char err[ERRBUF_SIZE];
	struct config *cfg = NULL;

	if (config_load(path, &cfg, err, sizeof err) != 0)
		fail_msg("%s should load, got:\n%s", path, err);
	assert_non_null(cfg);
	assert_string_equal(cfg->path, path);
	free(path);
	return cfg;
}

static int test_setup(void **state)
{
	(void)state;
	unsetenv("AW_TEST_NEVER_SET");
	unsetenv("AW_TEST_UNSET");
	setenv("AW_TEST_EMPTY", "", 1);
	return 0;
}

static void test_assert_defaults(const struct config *cfg)
{
	assert_string_equal(cfg->kafka.brokers, "localhost:9092");
	assert_string_equal(cfg->kafka.group_id, "asset-workers");
	assert_string_equal(cfg->kafka.input_topic, "assets.create");
	assert_string_equal(cfg->kafka.retry_topic, "assets.create.retry");
	assert_string_equal(cfg->kafka.dlq_topic, "assets.create.dlq");
	assert_int_equal(cfg->kafka.nproperties, 0);
	assert_null(cfg->kafka.properties);
	assert_string_equal(cfg->postgres.conninfo, "postgresql:///assets");
	assert_int_equal(cfg->postgres.statement_timeout_ms, 5000);
	assert_int_equal(cfg->retry.initial_backoff_ms, 100);
	assert_int_equal(cfg->retry.max_backoff_ms, 30000);
	assert_true(cfg->retry.multiplier == 2.0);
	assert_int_equal(cfg->retry.max_attempts, 5);
	assert_int_equal(cfg->log.level, LOG_INFO);
	assert_int_equal(cfg->log.format, LOG_FORMAT_JSON);
	assert_int_equal(cfg->log.summary_interval_ms, 10000);
	assert_string_equal(cfg->worker.id, "");
	assert_string_equal(cfg->metrics.listen, "");
}

static void test_defaults(void **state)
{
	static const char *const files[] = { "config/good/empty.yaml", "config/good/comments.yaml",
					     "config/good/null_sections.yaml" };
	(void)state;
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		struct config *cfg = test_load_ok(files[i]);
		test_assert_defaults(cfg);
		config_free(cfg);
	}
}

static void test_full(void **state)
{
	static const char *const props[][2] = {
		{ "security.protocol", "SASL_SSL" }, { "sasl.mechanism", "PLAIN" },
		{ "enable.idempotence", "true" },    { "message.max.bytes", "1000000" },
		{ "client.id", "quoted value" },     { "socket.keepalive.enable", "true" },
	};
	struct config *cfg = test_load_ok("config/good/full.yaml");

	(void)state;
	assert_string_equal(cfg->kafka.brokers, "b1:9092,b2:9092");
	assert_string_equal(cfg->kafka.group_id, "my-group");
	assert_string_equal(cfg->kafka.input_topic, "in");
	assert_string_equal(cfg->kafka.retry_topic, "in.retry");
	assert_string_equal(cfg->kafka.dlq_topic, "in.dlq");
	assert_int_equal(cfg->kafka.nproperties, sizeof props / sizeof props[0]);
	for (size_t i = 0; i < cfg->kafka.nproperties; i++) { /* file order */
		assert_string_equal(cfg->kafka.properties[i].key, props[i][0]);
		assert_string_equal(cfg->kafka.properties[i].value, props[i][1]);
	}
	assert_string_equal(cfg->postgres.conninfo, "host=db dbname=assets user=worker");
	assert_int_equal(cfg->postgres.statement_timeout_ms, 0);
	assert_int_equal(cfg->retry.initial_backoff_ms, 250);
	assert_int_equal(cfg->retry.max_backoff_ms, 250);
	assert_true(cfg->retry.multiplier == 1.5);
	assert_int_equal(cfg->retry.max_attempts, 1000);
	assert_int_equal(cfg->log.level, LOG_DEBUG);
	assert_int_equal(cfg->log.format, LOG_FORMAT_TEXT);
	assert_int_equal(cfg->log.summary_interval_ms, 0);
	assert_string_equal(cfg->worker.id, "worker-7");
	config_free(cfg);
}

/* metrics.listen: the forms that load (bad ones are files under config/bad). */
static void test_metrics_listen(void **state)
{
	static const char *const good[] = { ":9464", "127.0.0.1:9464", "0.0.0.0:0",
					    "localhost:65535", "[::1]:9464", "[::]:1" };
	const struct config_param *p = config_param_find("metrics.listen");
	struct config *cfg = test_load_ok("config/good/metrics.yaml");
	char err[256];

	(void)state;
	assert_string_equal(cfg->metrics.listen, ":9464");
	assert_false(p->flags & CONFIG_RELOADABLE);
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		if (config_param_set(p, cfg, good[i], err, sizeof err) != 0)
			fail_msg("\"%s\" refused: %s", good[i], err);
	assert_int_equal(config_param_set(p, cfg, "", err, sizeof err), 0); /* off */
	assert_int_equal(config_param_set(p, cfg, "9464", err, sizeof err), -1);
	assert_int_equal(config_param_set(p, cfg, "host:-1", err, sizeof err), -1);
	assert_string_equal(cfg->metrics.listen, ""); /* a refused value leaves the field */
	config_free(cfg);
}

static void test_flow_style(void **state)
{
	struct config *cfg = test_load_ok("config/good/flow.yaml");

	(void)state;
	assert_string_equal(cfg->kafka.brokers, "k:1");
	assert_int_equal(cfg->kafka.nproperties, 2);
	assert_string_equal(cfg->kafka.properties[1].key, "linger.ms");
	assert_string_equal(cfg->kafka.properties[1].value, "2");
	assert_true(cfg->retry.multiplier == 3.0);
	assert_int_equal(cfg->retry.max_attempts, 7);
	config_free(cfg);
}

static void test_env(void **state)
{
	struct config *cfg;

	(void)state;
	setenv("AW_TEST_BROKERS", "env1:9092,env2:9092", 1);
	setenv("AW_TEST_TOPIC", "t", 1);
	setenv("AW_TEST_SASL_PASSWORD", "pw: [not yaml]", 1);
	setenv("AW_TEST_ATTEMPTS", "9", 1);
	unsetenv("AW_TEST_PG");
	unsetenv("AW_TEST_TIMEOUT");
	unsetenv("AW_TEST_LEVEL");
	cfg = test_load_ok("config/good/env.yaml");
	assert_string_equal(cfg->kafka.brokers, "env1:9092,env2:9092");
	assert_string_equal(cfg->kafka.group_id, "fallback-group");
	assert_string_equal(cfg->kafka.input_topic, "topic-from-default");
	assert_string_equal(cfg->kafka.retry_topic, "prefix.t.retry");
	assert_int_equal(cfg->kafka.nproperties, 2);
	assert_string_equal(cfg->kafka.properties[0].value, "pw: [not yaml]");
	assert_string_equal(cfg->kafka.properties[1].value, "cost$5");
	assert_string_equal(cfg->postgres.conninfo, "postgresql:///assets");
	assert_int_equal(cfg->postgres.statement_timeout_ms, 5000);
	assert_int_equal(cfg->retry.max_attempts, 9);
	assert_true(cfg->retry.multiplier == 2.5);
	assert_int_equal(cfg->log.level, LOG_WARN);
	config_free(cfg);

	/* Set values win over the defaults; quoted "${...}" works for integers. */
	setenv("AW_TEST_PG", "host=envdb", 1);
	setenv("AW_TEST_TIMEOUT", "1234", 1);
	setenv("AW_TEST_LEVEL", "error", 1);
	cfg = test_load_ok("config/good/env.yaml");
	assert_string_equal(cfg->postgres.conninfo, "host=envdb");
	assert_int_equal(cfg->postgres.statement_timeout_ms, 1234);
	assert_int_equal(cfg->log.level, LOG_ERROR);
	config_free(cfg);
	unsetenv("AW_TEST_PG");
	unsetenv("AW_TEST_TIMEOUT");
	unsetenv("AW_TEST_LEVEL");
}

/* The example config shipped at the root of the repository is the defaults, written out. */
static void test_worker_yaml(void **state)
{
	struct config *cfg, *def;

	(void)state;
	unsetenv("KAFKA_BROKERS");
	unsetenv("PG_CONNINFO");
	cfg = test_load_ok("../../worker.yaml");
	def = test_load_ok("config/good/empty.yaml");
	for (size_t i = 0; i < config_nparams; i++)
		if (!config_param_equal(&config_params[i], cfg, def))
			fail_msg("worker.yaml: %s differs from its default", config_params[i].key);
	config_free(cfg);

	setenv("KAFKA_BROKERS", "k1:9092", 1);
	cfg = test_load_ok("../../worker.yaml");
	assert_string_equal(cfg->kafka.brokers, "k1:9092");
	assert_false(config_param_equal(config_param_find("kafka.brokers"), cfg, def));
	unsetenv("KAFKA_BROKERS");
	config_free(cfg);
	config_free(def);
}

static int test_by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int test_is_yaml(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return n > 5 && strcmp(d->d_name + n - 5, ".yaml") == 0;
}

/* 1 when a line of err starts with prefix and contains want after it. */
static int test_has_error(const char *err, const char *prefix, const char *want)
{
	size_t plen = strlen(prefix);

	for (const char *line = err; *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		if (len >= plen && strncmp(line, prefix, plen) == 0) {
			char *rest = strndup(line + plen, len - plen);
			int found = strstr(rest, want) != NULL;
			free(rest);
			if (found)
				return 1;
		}
		line += len + (end ? 1 : 0);
	}
	return 0;
}

static void test_bad_files(void **state)
{
	char *dir = test_path("config/bad");
	struct dirent **names;
	int n = scandir(dir, &names, test_is_yaml, test_by_name);
	int failures = 0;

	(void)state;
	assert_true(n >= 20);
	for (int i = 0; i < n; i++) {
		char *path, line[512], prefix[1024], err[ERRBUF_SIZE];
		unsigned eline, ecol;
		int off = 0;
		struct config *cfg = (struct config *)0x1;
		FILE *f;

		assert_true(asprintf(&path, "%s/%s", dir, names[i]->d_name) > 0);
		f = fopen(path, "r");
		assert_non_null(f);
		assert_non_null(fgets(line, sizeof line, f));
		fclose(f);
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "# expect: %u:%u: %n", &eline, &ecol, &off) != 2 || !off)
			fail_msg("%s: first line must be \"# expect: LINE:COL: message\"", path);
		snprintf(prefix, sizeof prefix, "%s:%u:%u: ", path, eline, ecol);

		if (config_load(path, &cfg, err, sizeof err) != -1 || cfg != NULL) {
			print_error("%s: loaded, expected an error\n", path);
			failures++;
		} else if (!test_has_error(err, prefix, line + off)) {
			print_error("%s:\n  want: %s%s\n  got:  %s\n", names[i]->d_name, prefix,
				    line + off, err);
			failures++;
		}
		config_free(cfg == (struct config *)0x1 ? NULL : cfg);
		free(path);
		free(names[i]);
	}
	free(names);
	free(dir);
	assert_int_equal(failures, 0);
}

static size_t test_count_lines(const char *s)
{
	size_t n = *s ? 1 : 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void test_all_errors_reported(void **state)
{
	char *path = test_path("config/multi_errors.yaml");
	char err[ERRBUF_SIZE], prefix[1024];
	struct config *cfg;

	(void)state;
	assert_int_equal(config_load(path, &cfg, err, sizeof err), -1);
	assert_null(cfg);
	assert_int_equal(test_count_lines(err), 4);
	snprintf(prefix, sizeof prefix, "%s:3:3: ", path);
	assert_true(test_has_error(err, prefix, "unknown key \"kafka.brokerz\""));
	snprintf(prefix, sizeof prefix, "%s:5:17: ", path);
	assert_true(test_has_error(err, prefix, "out of range 1..1000"));
	snprintf(prefix, sizeof prefix, "%s:6:15: ", path);
	assert_true(test_has_error(err, prefix, "is not a number"));
	snprintf(prefix, sizeof prefix, "%s:8:10: ", path);
	assert_true(test_has_error(err, prefix, "is not one of debug, info, warn, error"));
	free(path);
}

static void test_no_secrets_in_errors(void **state)
{
	char *path = test_path("config/secret_errors.yaml");
	char err[ERRBUF_SIZE];
	struct config *cfg;

	(void)state;
	assert_int_equal(config_load(path, &cfg, err, sizeof err), -1);
	assert_int_equal(test_count_lines(err), 6);
	if (strstr(err, "hunter2"))
		fail_msg("secret echoed:\n%s", err);
	free(path);
}

static void test_errbuf_small(void **state)
{
	char *path = test_path("config/multi_errors.yaml");
	char err[48];
	struct config *cfg;

	(void)state;
	memset(err, 'z', sizeof err);
	assert_int_equal(config_load(path, &cfg, err, sizeof err), -1);
	assert_int_equal(strlen(err), sizeof err - 1);
	assert_int_equal(strncmp(err, path, strlen(err) < strlen(path) ? strlen(err) : strlen(path)),
			 0);
	assert_int_equal(config_load(path, &cfg, NULL, 0), -1);
	assert_null(cfg);
	free(path);
}

static void test_cannot_open(void **state)
{
	char err[512];
	struct config *cfg;

	(void)state;
	assert_int_equal(config_load("/nonexistent/worker.yaml", &cfg, err, sizeof err), -1);
	assert_null(cfg);
	assert_string_equal(err, "/nonexistent/worker.yaml: cannot open: No such file or directory");
	config_free(NULL);
}

static void test_table(void **state)
{
	(void)state;
	assert_true(config_nparams >= 16);
	for (size_t i = 0; i < config_nparams; i++) {
		const struct config_param *p = &config_params[i];
		int reloadable = !strncmp(p->key, "log.", 4) || !strncmp(p->key, "retry.", 6) ||
				 !strcmp(p->key, "classify");
		/* "section.name", or a mapping at the top level */
		assert_true(strchr(p->key, '.') || p->type == CONFIG_T_STRING_MAP);
		assert_ptr_equal(config_param_find(p->key), p);
		assert_int_equal(!!(p->flags & CONFIG_RELOADABLE), reloadable);
		assert_non_null(p->description);
		if (p->type == CONFIG_T_ENUM) {
			/* every listed value is accepted by the owning module's parser */
			struct config *cfg = calloc(1, sizeof *cfg);
			char err[256];
			for (size_t v = 0; p->values[v]; v++)
				assert_int_equal(config_param_set(p, cfg, p->values[v], err, sizeof err), 0);
			free(cfg);
		}
	}
	assert_true(config_param_find("postgres.conninfo")->flags & CONFIG_SECRET);
	assert_null(config_param_find("kafka.brokerz"));
	assert_true(config_property_is_secret("sasl.password"));
	assert_true(config_property_is_secret("ssl.key.pem"));
	assert_true(config_property_is_secret("sasl.oauthbearer.config"));
	assert_true(config_property_is_secret("sasl.oauthbearer.client.secret"));
	assert_false(config_property_is_secret("sasl.username"));
}

static void test_describe(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	assert_non_null(f);
	config_describe(f);
	fclose(f);
	for (size_t i = 0; i < config_nparams; i++)
		assert_non_null(strstr(text, config_params[i].key));
	assert_non_null(strstr(text, "SIGHUP"));
	assert_non_null(strstr(text, "debug|info|warn|error"));
	assert_non_null(strstr(text, "0..3600000"));
	assert_non_null(strstr(text, "localhost:9092"));
	assert_non_null(strstr(text, "${VAR:-default}"));
	free(text);
}

/* Writes one log line with stderr captured; returns what was written (caller frees). */
static char *test_capture_log(const struct log_field *fields, size_t n)
{
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	char *text = calloc(1, 8192);

	assert_non_null(tmp);
	assert_true(saved >= 0);
	assert_non_null(text);
	fflush(stderr);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	log_write(LOG_INFO, "test", fields, n);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	assert_true(fread(text, 1, 8191, tmp) > 0);
	fclose(tmp);
	return text;
}

static void test_register_secrets(void **state)
{
	struct config *cfg = test_load_ok("config/good/secrets.yaml");
	struct config uri = { .postgres.conninfo = "postgresql://worker:p%40ssw0rd@db/assets" };
	char *out;

	(void)state;
	log_setup(LOG_DEBUG, LOG_FORMAT_TEXT, "test");
	config_register_secrets(cfg);
	config_register_secrets(&uri);
	config_register_secrets(NULL);

	const struct log_field fields[] = {
		LOG_S("conninfo", cfg->postgres.conninfo),
		LOG_S("msg", "auth failed for password hunter2!"),
		LOG_S("sasl", "s3cr3tpw"),
		LOG_S("sslkey", "k3ypw"),
		LOG_S("uri", uri.postgres.conninfo),
		LOG_S("decoded", "p@ssw0rd"),
		LOG_S("user", "alice"),
	};
	out = test_capture_log(fields, sizeof fields / sizeof fields[0]);
	for (const char *s = "hunter2\0s3cr3tpw\0k3ypw\0p%40ssw0rd\0p@ssw0rd\0"; *s;
	     s += strlen(s) + 1)
		if (strstr(out, s))
			fail_msg("\"%s\" not masked in: %s", s, out);
	assert_non_null(strstr(out, "conninfo=\"***\"")); /* quoted: the raw value has '=' */
	assert_non_null(strstr(out, "sasl=***"));
	assert_non_null(strstr(out, "user=alice"));
	free(out);
	log_cleanup();
	config_free(cfg);
}

/* A conninfo without a password registers nothing: its text stays readable in logs. */
static void test_register_no_password(void **state)
{
	struct config cfg = { .postgres.conninfo = "host=db dbname=assets" };
	const struct log_field fields[] = { LOG_S("conninfo", cfg.postgres.conninfo) };
	char *out;

	(void)state;
	log_setup(LOG_DEBUG, LOG_FORMAT_TEXT, "test");
	config_register_secrets(&cfg);
	out = test_capture_log(fields, 1);
	assert_non_null(strstr(out, "host=db dbname=assets"));
	free(out);
	log_cleanup();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_flow_style),
		cmocka_unit_test(test_metrics_listen),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_worker_yaml),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_no_secrets_in_errors),
		cmocka_unit_test(test_errbuf_small),
		cmocka_unit_test(test_cannot_open),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_register_secrets),
		cmocka_unit_test(test_register_no_password),
	};
	return cmocka_run_group_tests(tests, test_setup, NULL);
}
