/* record_header_int, record_header_add_int and record_headers_strip_decision on real
 * librdkafka header lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "record_headers.h"

#define UNTOUCHED 0x5a5a5a5a5a5a5a5aLL

static void add(rd_kafka_headers_t *h, const char *name, const char *value)
{
	assert_int_equal(rd_kafka_header_add(h, name, -1, value, -1), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* Parses a one-header list holding `len` bytes of `value`. */
static int parse_bytes(const void *value, ssize_t len, int64_t *out)
{
	rd_kafka_headers_t *h = rd_kafka_headers_new(1);
	assert_int_equal(rd_kafka_header_add(h, HDR_ATTEMPT, -1, value, len),
			 RD_KAFKA_RESP_ERR_NO_ERROR);
	*out = UNTOUCHED;
	int rc = record_header_int(h, HDR_ATTEMPT, out);
	rd_kafka_headers_destroy(h);
	return rc;
}

static int parse(const char *value, int64_t *out)
{
	return parse_bytes(value, -1, out);
}

static void test_int_valid(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int64_t want;
	} cases[] = {
		{ "0", 0 },
		{ "1", 1 },
		{ "3", 3 },
		{ "42", 42 },
		{ "007", 7 },
		{ "-5", -5 },
		{ "1795708351000", 1795708351000LL },
		{ "2147483648", 2147483648LL },
		{ "9223372036854775807", INT64_MAX },
		{ "-9223372036854775808", INT64_MIN },
		{ "0000000000000000000000000000042", 42 }, /* 31 characters */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t v;
		if (parse(cases[i].text, &v) != 0)
			fail_msg("\"%s\" rejected", cases[i].text);
		assert_int_equal(v, cases[i].want);
	}
}

static void test_int_invalid(void **state)
{
	(void)state;
	static const char *const cases[] = {
		"12x", "x12", "1 ", "1.0", "1e3", "0x10", "--1", "-", "+", "abc", "1,000",
		"9223372036854775808", "-9223372036854775809", "99999999999999999999",
		"184467440737095516160", "\xef\xbc\x91" /* fullwidth 1 */,
		"00000000000000000000000000000001", /* 32 characters: longer than any int64 */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t v;
		if (parse(cases[i], &v) != -1)
			fail_msg("\"%s\" accepted as %lld", cases[i], (long long)v);
		assert_int_equal(v, UNTOUCHED); /* *out only written on success */
	}
	/* empty value, NULL value */
	int64_t v;
	assert_int_equal(parse_bytes("", 0, &v), -1);
	assert_int_equal(v, UNTOUCHED);
	assert_int_equal(parse_bytes(NULL, 0, &v), -1);
	assert_int_equal(v, UNTOUCHED);
}

static void test_int_absent_and_last(void **state)
{
	(void)state;
	int64_t v = UNTOUCHED;
	rd_kafka_headers_t *h = rd_kafka_headers_new(4);

	assert_int_equal(record_header_int(NULL, HDR_ATTEMPT, &v), -1);
	assert_int_equal(record_header_int(h, HDR_ATTEMPT, &v), -1); /* empty list */
	add(h, HDR_ATTEMPT, "1");
	add(h, HDR_ORIGINAL_OFFSET, "77");
	add(h, HDR_ATTEMPT, "2");
	assert_int_equal(record_header_int(h, "x-attempts", &v), -1); /* other name */
	assert_int_equal(record_header_int(h, "X-Attempt", &v), -1);  /* names are exact */
	assert_int_equal(v, UNTOUCHED);
	assert_int_equal(record_header_int(h, HDR_ATTEMPT, &v), 0);
	assert_int_equal(v, 2); /* the last one */
	assert_int_equal(record_header_int(h, HDR_ORIGINAL_OFFSET, &v), 0);
	assert_int_equal(v, 77);
	/* the last one is bad: invalid, even though an earlier one was fine */
	add(h, HDR_ATTEMPT, "three");
	v = UNTOUCHED;
	assert_int_equal(record_header_int(h, HDR_ATTEMPT, &v), -1);
	assert_int_equal(v, UNTOUCHED);
	rd_kafka_headers_destroy(h);
}

static void test_add_int_round_trip(void **state)
{
	(void)state;
	static const int64_t values[] = { 0, 1, -1, 5, 1795708351000LL, INT32_MAX, INT64_MAX,
					  INT64_MIN };
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		rd_kafka_headers_t *h = rd_kafka_headers_new(1);
		const void *val;
		size_t len;
		char want[32];
		int64_t back;

		record_header_add_int(h, HDR_RETRY_NOT_BEFORE, values[i]);
		assert_int_equal(rd_kafka_header_cnt(h), 1);
		assert_int_equal(rd_kafka_header_get_last(h, HDR_RETRY_NOT_BEFORE, &val, &len), 0);
		snprintf(want, sizeof want, "%lld", (long long)values[i]);
		/* plain decimal text, no terminating NUL in the value */
		assert_int_equal(len, strlen(want));
		assert_memory_equal(val, want, len);
		assert_int_equal(record_header_int(h, HDR_RETRY_NOT_BEFORE, &back), 0);
		assert_int_equal(back, values[i]);
		rd_kafka_headers_destroy(h);
	}
}

struct hdr {
	const char *name;
	const char *value;
	size_t len;
};

static void assert_headers(rd_kafka_headers_t *h, const struct hdr *want, size_t n)
{
	const char *name;
	const void *val;
	size_t len;
	size_t i = 0;

	while (rd_kafka_header_get_all(h, i, &name, &val, &len) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (i >= n)
			fail_msg("unexpected extra header %s", name);
		assert_string_equal(name, want[i].name);
		if (want[i].value == NULL) {
			assert_null(val);
		} else {
			assert_int_equal(len, want[i].len);
			assert_memory_equal(val, want[i].value, len);
		}
		i++;
	}
	assert_int_equal(i, n);
}

static void test_strip_decision(void **state)
{
	(void)state;
	rd_kafka_headers_t *h = rd_kafka_headers_new(8);

	add(h, "traceparent", "00-abc-def-01");
	add(h, HDR_ERROR_CLASS, "unique_violation");
	add(h, HDR_ERROR_SQLSTATE, "23505");
	add(h, HDR_ORIGINAL_TOPIC, "assets.create");
	add(h, HDR_ERROR_CONSTRAINT, "assets_tenant_id_content_sha256_key");
	add(h, HDR_ERROR_MESSAGE, "duplicate key value violates unique constraint");
	add(h, HDR_ORIGINAL_PARTITION, "3");
	add(h, HDR_ATTEMPT, "1");
	add(h, HDR_ORIGINAL_OFFSET, "1234");
	add(h, HDR_ATTEMPT, "2"); /* every copy goes */
	add(h, HDR_RETRY_NOT_BEFORE, "1795708351000");
	add(h, HDR_WORKER_ID, "host-1");
	add(h, HDR_REPLAYED, "1");
	add(h, "X-Attempt", "producer's own, other case");
	add(h, "x-error-class-note", "a producer header that only starts like ours");
	add(h, "x-error", "ditto");
	assert_int_equal(rd_kafka_header_add(h, "binary", -1, "a\0b", 3), 0);
	assert_int_equal(rd_kafka_header_add(h, "no-value", -1, NULL, 0), 0);
	add(h, HDR_ERROR_CLASS, "data_exception");

	record_headers_strip_decision(h);

	static const struct hdr want[] = {
		{ "traceparent", "00-abc-def-01", 13 },
		{ HDR_ORIGINAL_TOPIC, "assets.create", 13 },
		{ HDR_ORIGINAL_PARTITION, "3", 1 },
		{ HDR_ORIGINAL_OFFSET, "1234", 4 },
		{ HDR_REPLAYED, "1", 1 },
		{ "X-Attempt", "producer's own, other case", 26 },
		{ "x-error-class-note", "a producer header that only starts like ours", 44 },
		{ "x-error", "ditto", 5 },
		{ "binary", "a\0b", 3 },
		{ "no-value", NULL, 0 },
	};
	assert_headers(h, want, sizeof want / sizeof want[0]);

	/* stripping again, or an empty list, changes nothing */
	record_headers_strip_decision(h);
	assert_headers(h, want, sizeof want / sizeof want[0]);
	rd_kafka_headers_destroy(h);

	h = rd_kafka_headers_new(0);
	record_headers_strip_decision(h);
	assert_int_equal(rd_kafka_header_cnt(h), 0);
	rd_kafka_headers_destroy(h);
}

/* A decision's headers can be stripped and rewritten: the usual forward sequence. */
static void test_strip_then_rewrite(void **state)
{
	(void)state;
	rd_kafka_headers_t *h = rd_kafka_headers_new(4);
	int64_t v;

	add(h, "k", "v");
	record_header_add_int(h, HDR_ATTEMPT, 1);
	record_header_add_int(h, HDR_RETRY_NOT_BEFORE, 1000);
	rd_kafka_headers_t *copy = rd_kafka_headers_copy(h);
	record_headers_strip_decision(copy);
	record_header_add_int(copy, HDR_ATTEMPT, 2);
	assert_int_equal(record_header_int(copy, HDR_ATTEMPT, &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(record_header_int(copy, HDR_RETRY_NOT_BEFORE, &v), -1);
	assert_int_equal(rd_kafka_header_cnt(copy), 2);
	/* the original is untouched */
	assert_int_equal(rd_kafka_header_cnt(h), 3);
	assert_int_equal(record_header_int(h, HDR_ATTEMPT, &v), 0);
	assert_int_equal(v, 1);
	rd_kafka_headers_destroy(copy);
	rd_kafka_headers_destroy(h);
}

static void test_header_names(void **state)
{
	(void)state;
	/* the wire names of SPEC section 4 */
	assert_string_equal(HDR_ERROR_CLASS, "x-error-class");
	assert_string_equal(HDR_ERROR_SQLSTATE, "x-error-sqlstate");
	assert_string_equal(HDR_ERROR_CONSTRAINT, "x-error-constraint");
	assert_string_equal(HDR_ERROR_MESSAGE, "x-error-message");
	assert_string_equal(HDR_ORIGINAL_TOPIC, "x-original-topic");
	assert_string_equal(HDR_ORIGINAL_PARTITION, "x-original-partition");
	assert_string_equal(HDR_ORIGINAL_OFFSET, "x-original-offset");
	assert_string_equal(HDR_ATTEMPT, "x-attempt");
	assert_string_equal(HDR_RETRY_NOT_BEFORE, "x-retry-not-before");
	assert_string_equal(HDR_WORKER_ID, "x-worker-id");
}

/* Plain decimal only: strtoll alone would accept leading white space and a sign, and stop
 * at an embedded NUL. */
static void test_lenient_int(void **state)
{
	(void)state;
	static const struct {
		const char *bytes;
		ssize_t len;
	} cases[] = {
		{ " 1", -1 }, { "\t1", -1 }, { "\n1", -1 }, { "+1", -1 }, { "1\0junk", 6 },
	};
	char accepted[256] = "";
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t v;
		if (parse_bytes(cases[i].bytes, cases[i].len, &v) == 0) {
			size_t used = strlen(accepted);
			snprintf(accepted + used, sizeof accepted - used, " case%zu->%lld", i,
				 (long long)v);
		}
	}
	assert_false(accepted[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_int_valid),
		cmocka_unit_test(test_int_invalid),
		cmocka_unit_test(test_int_absent_and_last),
		cmocka_unit_test(test_add_int_round_trip),
		cmocka_unit_test(test_strip_decision),
		cmocka_unit_test(test_strip_then_rewrite),
		cmocka_unit_test(test_header_names),
		cmocka_unit_test(test_lenient_int),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
