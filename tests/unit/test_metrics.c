/* The metrics registry: counts, label escaping, the histogram, concurrent updates, and the
 * rendered text checked line by line against the Prometheus text format 0.0.4. */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"
#include "metrics.h"

static char *render(void)
{
	char *out = NULL;
	size_t len = 0;

	assert_int_equal(metrics_render(&out, &len), 0);
	assert_non_null(out);
	assert_int_equal(strlen(out), len);
	return out;
}

/* The value of the sample line that starts with `series ` (name and labels, exactly), or
 * NAN when there is none. */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *line = text; *line;) {
		const char *end = strchr(line, '\n');
		if (strncmp(line, series, n) == 0 && line[n] == ' ')
			return strtod(line + n + 1, NULL);
		if (!end)
			break;
		line = end + 1;
	}
	return NAN;
}

static int setup(void **state)
{
	(void)state;
	metrics_setup("1.2.3", "asset-workers", "w-1");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	metrics_cleanup();
	return 0;
}

static void test_counts(void **state)
{
	char *text;

	(void)state;
	assert_int_equal(metrics_count_outcome("created"), 0);
	assert_int_equal(metrics_count_outcome("created"), 0);
	assert_int_equal(metrics_count_outcome("dead_lettered"), 0);
	assert_int_equal(metrics_count_outcome("bogus"), -1);
	assert_int_equal(metrics_count_outcome(NULL), -1);
	metrics_count_dead_letter("foreign_key_violation");
	metrics_count_dead_letter("brand_new_class");
	metrics_count_db_error("23503");
	metrics_count_db_error("23503");
	metrics_count_db_error(NULL);
	metrics_count_db_error("");
	metrics_count_retry(METRICS_RETRY_REQUEUE);
	metrics_count_retry(METRICS_RETRY_IN_PLACE);
	metrics_count_retry(METRICS_RETRY_IN_PLACE);
	metrics_count_batch(METRICS_BATCH_SET);
	metrics_count_batch(METRICS_BATCH_SET);
	metrics_count_batch(METRICS_BATCH_ONE_BY_ONE);
	metrics_count_db_reconnect();
	metrics_set_gauge(METRICS_ASSIGNED_PARTITIONS, 6);
	metrics_set_gauge(METRICS_DB_UP, 1);
	metrics_add_gauge(METRICS_INFLIGHT_REQUESTS, 5);
	metrics_add_gauge(METRICS_INFLIGHT_REQUESTS, -2);
	metrics_set_lag("assets.create", 3, 42);
	metrics_set_lag("assets.create", 3, 40); /* replaces */
	metrics_set_lag("assets.create.retry", 0, 7);

	text = render();
	assert_true(sample(text, "asset_worker_requests_total{outcome=\"created\"}") == 2);
	assert_true(sample(text, "asset_worker_requests_total{outcome=\"duplicate\"}") == 0);
	assert_true(sample(text, "asset_worker_requests_total{outcome=\"dead_lettered\"}") == 1);
	assert_true(isnan(sample(text, "asset_worker_requests_total{outcome=\"bogus\"}")));
	assert_true(sample(text, "asset_worker_dead_letters_total{error_class=\"foreign_key_violation\"}") == 1);
	/* the classes of SPEC 4 exist before their first dead letter */
	assert_true(sample(text, "asset_worker_dead_letters_total{error_class=\"check_violation\"}") == 0);
	assert_true(sample(text, "asset_worker_dead_letters_total{error_class=\"brand_new_class\"}") == 1);
	assert_true(sample(text, "asset_worker_db_errors_total{sqlstate=\"23503\"}") == 2);
	assert_true(sample(text, "asset_worker_db_errors_total{sqlstate=\"none\"}") == 2);
	assert_true(sample(text, "asset_worker_retries_total{kind=\"requeue\"}") == 1);
	assert_true(sample(text, "asset_worker_retries_total{kind=\"in_place\"}") == 2);
	assert_true(sample(text, "asset_worker_batches_total{path=\"set\"}") == 2);
	assert_true(sample(text, "asset_worker_batches_total{path=\"set_checked\"}") == 0);
	assert_true(sample(text, "asset_worker_batches_total{path=\"one_by_one\"}") == 1);
	assert_true(sample(text, "asset_worker_db_reconnects_total") == 1);
	assert_true(sample(text, "asset_worker_assigned_partitions") == 6);
	assert_true(sample(text, "asset_worker_db_up") == 1);
	assert_true(sample(text, "asset_worker_group_joined") == 0);
	assert_true(sample(text, "asset_worker_inflight_requests") == 3);
	assert_true(sample(text, "asset_worker_partitions_paused") == 0);
	assert_true(sample(text, "asset_worker_consumer_lag{topic=\"assets.create\",partition=\"3\"}") == 40);
	assert_true(sample(text, "asset_worker_consumer_lag{topic=\"assets.create.retry\",partition=\"0\"}") == 7);
	assert_true(sample(text, "asset_worker_info{version=\"1.2.3\",group=\"asset-workers\",worker_id=\"w-1\"}") == 1);
	assert_true(sample(text, "asset_worker_start_time_seconds") > 1.6e9);
	assert_true(sample(text, "asset_worker_last_loop_timestamp_seconds") > 1.6e9);
	assert_int_equal(metrics_get_gauge(METRICS_INFLIGHT_REQUESTS), 3);
	free(text);

	/* A revoked partition leaves no series behind; unknown ones are ignored. */
	metrics_forget_partition("assets.create", 3);
	metrics_forget_partition("assets.create", 99);
	metrics_forget_partition(NULL, 0);
	text = render();
	assert_true(isnan(sample(text, "asset_worker_consumer_lag{topic=\"assets.create\",partition=\"3\"}")));
	assert_true(sample(text, "asset_worker_consumer_lag{topic=\"assets.create.retry\",partition=\"0\"}") == 7);
	free(text);

	/* cleanup resets everything */
	metrics_cleanup();
	metrics_setup("1.2.3", "asset-workers", "w-1");
	text = render();
	assert_true(sample(text, "asset_worker_requests_total{outcome=\"created\"}") == 0);
	assert_true(isnan(sample(text, "asset_worker_db_errors_total{sqlstate=\"23503\"}")));
	assert_true(sample(text, "asset_worker_assigned_partitions") == 0);
	free(text);
}

static void test_label_escaping(void **state)
{
	char *text;

	(void)state;
	metrics_setup("v\"1\\2\n3", "g", "id");
	metrics_set_lag("odd\"topic\\", 1, 5);
	metrics_count_dead_letter("bad\xff\xfe" "class"); /* not UTF-8: bytes become '?' */
	text = render();
	assert_non_null(strstr(text, "asset_worker_info{version=\"v\\\"1\\\\2\\n3\",group=\"g\","
				     "worker_id=\"id\"} 1\n"));
	assert_non_null(strstr(text, "asset_worker_consumer_lag{topic=\"odd\\\"topic\\\\\","
				     "partition=\"1\"} 5\n"));
	assert_true(sample(text, "asset_worker_dead_letters_total{error_class=\"bad??class\"}") == 1);
	free(text);
	/* the same bad label again is the same series */
	metrics_count_dead_letter("bad\xff\xfe" "class");
	text = render();
	assert_true(sample(text, "asset_worker_dead_letters_total{error_class=\"bad??class\"}") == 2);
	free(text);
}

static void test_histogram(void **state)
{
	static const double observed[] = { 0.0005, 0.001, 0.003, 0.2, 0.2, 9.99, 20.0 };
	/* cumulative count per bucket of metrics_buckets, then +Inf */
	static const unsigned want[METRICS_BUCKETS + 1] = { 2, 2, 3, 3, 3, 3, 3, 5, 5, 5, 5, 5, 6, 7 };
	char *text, series[128];
	double sum = 0;

	(void)state;
	for (size_t i = 0; i < sizeof observed / sizeof observed[0]; i++) {
		metrics_observe_processing(observed[i]);
		sum += observed[i];
	}
	metrics_observe_processing(-1);	 /* ignored */
	metrics_observe_processing(NAN); /* ignored */
	text = render();
	for (size_t i = 0; i <= METRICS_BUCKETS; i++) {
		if (i < METRICS_BUCKETS)
			snprintf(series, sizeof series,
				 "asset_worker_processing_seconds_bucket{le=\"%g\"}", metrics_buckets[i]);
		else
			snprintf(series, sizeof series,
				 "asset_worker_processing_seconds_bucket{le=\"+Inf\"}");
		if (sample(text, series) != want[i])
			fail_msg("%s: want %u, got %g", series, want[i], sample(text, series));
	}
	assert_non_null(strstr(text, "asset_worker_processing_seconds_bucket{le=\"0.001\"} 2\n"));
	assert_non_null(strstr(text, "asset_worker_processing_seconds_bucket{le=\"10\"} 6\n"));
	assert_true(sample(text, "asset_worker_processing_seconds_count") == 7);
	assert_true(fabs(sample(text, "asset_worker_processing_seconds_sum") - sum) < 1e-6);
	assert_non_null(strstr(text, "# TYPE asset_worker_processing_seconds histogram\n"));
	free(text);
}

#define THREAD_ITERATIONS 100000

static void *hammer(void *arg)
{
	(void)arg;
	for (int i = 0; i < THREAD_ITERATIONS; i++) {
		metrics_count_outcome("created");
		metrics_count_retry(METRICS_RETRY_IN_PLACE);
		metrics_observe_processing(0.002);
		metrics_add_gauge(METRICS_INFLIGHT_REQUESTS, 1);
		if (i % 10 == 0) {
			metrics_count_dead_letter("check_violation");
			metrics_count_db_error("23514");
		}
		if (i % 1000 == 0) { /* a scrape in the middle of it */
			char *out;
			size_t len;
			if (metrics_render(&out, &len) == 0)
				free(out);
		}
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	pthread_t t[2];
	char *text;

	(void)state;
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	text = render();
	assert_true(sample(text, "asset_worker_requests_total{outcome=\"created\"}") ==
		    2 * THREAD_ITERATIONS);
	assert_true(sample(text, "asset_worker_retries_total{kind=\"in_place\"}") ==
		    2 * THREAD_ITERATIONS);
	assert_true(sample(text, "asset_worker_processing_seconds_count") == 2 * THREAD_ITERATIONS);
	assert_true(sample(text, "asset_worker_processing_seconds_bucket{le=\"0.0025\"}") ==
		    2 * THREAD_ITERATIONS);
	assert_true(fabs(sample(text, "asset_worker_processing_seconds_sum") -
			 0.002 * 2 * THREAD_ITERATIONS) < 1e-6);
	assert_true(sample(text, "asset_worker_inflight_requests") == 2 * THREAD_ITERATIONS);
	assert_true(sample(text, "asset_worker_dead_letters_total{error_class=\"check_violation\"}") ==
		    2 * THREAD_ITERATIONS / 10);
	assert_true(sample(text, "asset_worker_db_errors_total{sqlstate=\"23514\"}") ==
		    2 * THREAD_ITERATIONS / 10);
	free(text);
}

/* A label map stops growing at its limit; what comes later is counted as "other". */
static void test_label_limit(void **state)
{
	char sqlstate[16], *text;

	(void)state;
	for (int i = 0; i < 1100; i++) {
		snprintf(sqlstate, sizeof sqlstate, "S%04d", i);
		metrics_count_db_error(sqlstate);
	}
	metrics_count_db_error("S0000"); /* an existing series still counts on its own */
	text = render();
	assert_true(sample(text, "asset_worker_db_errors_total{sqlstate=\"S0000\"}") == 2);
	assert_true(sample(text, "asset_worker_db_errors_total{sqlstate=\"S1023\"}") == 1);
	assert_true(isnan(sample(text, "asset_worker_db_errors_total{sqlstate=\"S1024\"}")));
	assert_true(sample(text, "asset_worker_db_errors_total{sqlstate=\"other\"}") == 1100 - 1024);
	free(text);
}

static void test_loop_tick(void **state)
{
	char *text;

	(void)state;
	assert_true(metrics_loop_age() >= 0 && metrics_loop_age() < 5); /* setup counts */
	metrics_loop_tick_at(clock_mono_ms() - 31000, 1700000000123);
	assert_true(metrics_loop_age() >= 31 && metrics_loop_age() < 40);
	text = render();
	assert_non_null(strstr(text, "asset_worker_last_loop_timestamp_seconds 1700000000.123\n"));
	free(text);
	metrics_loop_tick();
	assert_true(metrics_loop_age() < 5);
	metrics_cleanup();
	assert_true(metrics_loop_age() < 0); /* never ticked */
	metrics_setup(NULL, NULL, NULL);
}

/* ---- the text format, line by line ---- */

static int is_name_start(char c) { return isalpha((unsigned char)c) || c == '_' || c == ':'; }
static int is_name_char(char c) { return is_name_start(c) || isdigit((unsigned char)c); }

/* Parses a metric name at *p; copies it to name. */
static int parse_name(const char **p, char *name, size_t size)
{
	size_t n = 0;

	if (!is_name_start(**p))
		return -1;
	while (is_name_char((*p)[n]))
		n++;
	if (n >= size)
		return -1;
	memcpy(name, *p, n);
	name[n] = '\0';
	*p += n;
	return 0;
}

/* {name="value",...}: only the escapes \\ \" \n inside values. */
static int parse_labels(const char **p)
{
	char label[128];

	if (**p != '{')
		return 0;
	(*p)++;
	while (**p != '}') {
		if (parse_name(p, label, sizeof label) < 0 || **p != '=' || (*p)[1] != '"')
			return -1;
		*p += 2;
		while (**p != '"') {
			if (!**p || **p == '\n')
				return -1;
			if (**p == '\\') {
				if ((*p)[1] != '\\' && (*p)[1] != '"' && (*p)[1] != 'n')
					return -1;
				(*p)++;
			}
			(*p)++;
		}
		(*p)++;
		if (**p == ',')
			(*p)++;
		else if (**p != '}')
			return -1;
	}
	(*p)++;
	return 0;
}

/* The family a sample belongs to: histograms add _bucket, _sum and _count. */
static void family_of(const char *name, const char *histogram, char *out, size_t size)
{
	static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
	size_t hn = strlen(histogram);

	snprintf(out, size, "%s", name);
	if (!*histogram || strncmp(name, histogram, hn) != 0)
		return;
	for (size_t i = 0; i < 3; i++)
		if (strcmp(name + hn, suffixes[i]) == 0)
			out[hn] = '\0';
}

static void test_render_parses(void **state)
{
	char *text, *copy, *save = NULL;
	char typed[64][96], helped[96] = "", histogram[96] = "";
	size_t ntyped = 0, samples = 0;

	(void)state;
	metrics_count_outcome("requeued");
	metrics_count_dead_letter("data_exception");
	metrics_count_db_error("22P02");
	metrics_observe_processing(0.05);
	metrics_set_lag("assets.create", 0, 1);
	text = render();
	assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
	copy = strdup(text);
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[96], family[96], type[32];
		const char *p = line;

		if (strncmp(line, "# HELP ", 7) == 0) {
			p += 7;
			assert_int_equal(parse_name(&p, name, sizeof name), 0);
			assert_true(*p == ' ' && p[1]); /* a help text follows */
			assert_string_not_equal(name, helped);
			snprintf(helped, sizeof helped, "%s", name);
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			p += 7;
			assert_int_equal(parse_name(&p, name, sizeof name), 0);
			assert_int_equal(sscanf(p, " %31s", type), 1);
			assert_true(!strcmp(type, "counter") || !strcmp(type, "gauge") ||
				    !strcmp(type, "histogram"));
			assert_string_equal(name, helped); /* HELP comes right before TYPE */
			for (size_t i = 0; i < ntyped; i++)
				assert_string_not_equal(typed[i], name); /* one TYPE per family */
			assert_true(ntyped < 64);
			snprintf(typed[ntyped++], sizeof typed[0], "%s", name);
			if (!strcmp(type, "histogram"))
				snprintf(histogram, sizeof histogram, "%s", name);
			if (!strcmp(type, "counter"))
				assert_true(strlen(name) > 6 && !strcmp(name + strlen(name) - 6, "_total"));
			continue;
		}
		assert_true(line[0] != '#');
		assert_int_equal(parse_name(&p, name, sizeof name), 0);
		assert_int_equal(strncmp(name, "asset_worker_", 13), 0);
		if (parse_labels(&p) < 0)
			fail_msg("bad labels: %s", line);
		assert_true(*p == ' ');
		char *end;
		double v = strtod(p + 1, &end);
		if (end == p + 1 || *end)
			fail_msg("bad value: %s", line);
		assert_false(isnan(v));
		/* a sample follows the TYPE line of its family */
		family_of(name, histogram, family, sizeof family);
		assert_true(ntyped > 0);
		assert_string_equal(typed[ntyped - 1], family);
		samples++;
	}
	assert_true(ntyped >= 15);
	assert_true(samples >= 40);
	free(copy);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_label_escaping, NULL, teardown),
		cmocka_unit_test_setup_teardown(test_histogram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_label_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_tick, setup, teardown),
		cmocka_unit_test_setup_teardown(test_render_parses, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
