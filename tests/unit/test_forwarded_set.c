/* forwarded_set: the redelivered records a scan found forwarded already. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "forward_scan.h"

/* A consumed record as the loop sees it: only key and value matter here. */
static rd_kafka_message_t record(const char *key, const char *value)
{
	rd_kafka_message_t m;
	memset(&m, 0, sizeof m);
	m.key = (void *)key;
	m.key_len = key ? strlen(key) : 0;
	m.payload = (void *)value;
	m.len = value ? strlen(value) : 0;
	return m;
}

/* Fills a set the way a scan does: found out of order, then sorted by the take. */
static void fill(struct forwarded_set *s, const rd_kafka_message_t *m)
{
	static const struct {
		const char *topic;
		int32_t partition;
		int64_t offset;
	} places[] = { { "in", 1, 30 }, { "in", 0, 7 }, { "retry", 0, 7 }, { "in", 0, 3 } };
	for (size_t i = 0; i < sizeof places / sizeof places[0]; i++) {
		if (s->count == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 4;
			s->items = realloc(s->items, s->cap * sizeof *s->items);
			assert_non_null(s->items);
		}
		s->items[s->count++] = (struct forwarded_record){
			strdup(places[i].topic), places[i].partition, places[i].offset,
			strdup("dlq"), 0, (int64_t)i, forwarded_digest(m) };
	}
	/* what forward_scanner_run does once a scan is over */
	for (size_t i = 1; i < s->count; i++)
		for (size_t j = i; j > 0; j--) {
			struct forwarded_record *a = &s->items[j - 1], *b = &s->items[j];
			int c = strcmp(a->topic, b->topic);
			if (c < 0 || (c == 0 && (a->partition < b->partition ||
						 (a->partition == b->partition && a->offset < b->offset))))
				break;
			struct forwarded_record t = *a;
			*a = *b;
			*b = t;
		}
}

static void test_take_once(void **state)
{
	struct forwarded_set s = { 0 };
	struct forwarded_record r;
	rd_kafka_message_t m = record("k", "{\"v\":1}");
	(void)state;
	fill(&s, &m);
	assert_int_equal(forwarded_set_take(&s, &m, "in", 0, 7, &r), 1);
	assert_string_equal(r.to_topic, "dlq");
	assert_int_equal(r.to_offset, 1);
	forwarded_record_cleanup(&r);
	assert_int_equal(forwarded_set_take(&s, &m, "in", 0, 7, &r), 0); /* taken already */
	assert_int_equal(forwarded_set_take(&s, &m, "in", 0, 4, &r), 0);
	assert_int_equal(forwarded_set_take(&s, &m, "in", 2, 3, &r), 0);
	assert_int_equal(forwarded_set_take(&s, &m, "retry", 0, 7, &r), 1); /* other topic */
	forwarded_record_cleanup(&r);
	assert_int_equal(s.count, 2);
	forwarded_set_cleanup(&s);
	assert_int_equal(forwarded_set_take(&s, &m, "in", 0, 3, &r), 0); /* empty set */
}

/* Same place, other bytes: never taken for forwarded, and gone from the set. */
static void test_digest_mismatch(void **state)
{
	struct forwarded_set s = { 0 };
	struct forwarded_record r;
	rd_kafka_message_t m = record("k", "{\"v\":1}");
	rd_kafka_message_t other_value = record("k", "{\"v\":2}");
	rd_kafka_message_t other_key = record("K", "{\"v\":1}");
	rd_kafka_message_t moved = record("k{\"v\"", ":1}"); /* same bytes, other split */
	(void)state;
	fill(&s, &m);
	assert_int_equal(forwarded_set_take(&s, &other_value, "in", 0, 7, &r), -1);
	forwarded_record_cleanup(&r);
	assert_int_equal(forwarded_set_take(&s, &m, "in", 0, 7, &r), 0);
	assert_int_equal(forwarded_set_take(&s, &other_key, "in", 0, 3, &r), -1);
	forwarded_record_cleanup(&r);
	assert_int_equal(forwarded_set_take(&s, &moved, "in", 1, 30, &r), -1);
	forwarded_record_cleanup(&r);
	forwarded_set_cleanup(&s);
}

static void test_null_key_is_empty_key(void **state)
{
	rd_kafka_message_t null_key = record(NULL, "v");
	rd_kafka_message_t empty_key = record("", "v");
	(void)state;
	empty_key.key = (void *)"";
	assert_true(forwarded_digest(&null_key) == forwarded_digest(&empty_key));
	rd_kafka_message_t a = record("ab", "c"), b = record("a", "bc");
	assert_true(forwarded_digest(&a) != forwarded_digest(&b));
}

static void test_drop_partition(void **state)
{
	struct forwarded_set s = { 0 };
	struct forwarded_record r;
	rd_kafka_message_t m = record("k", "v");
	(void)state;
	fill(&s, &m);
	forwarded_set_drop_partition(&s, "in", 0);
	assert_int_equal(s.count, 2);
	assert_int_equal(forwarded_set_take(&s, &m, "in", 0, 3, &r), 0);
	assert_int_equal(forwarded_set_take(&s, &m, "in", 1, 30, &r), 1);
	forwarded_record_cleanup(&r);
	forwarded_set_cleanup(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_take_once),
		cmocka_unit_test(test_digest_mismatch),
		cmocka_unit_test(test_null_key_is_empty_key),
		cmocka_unit_test(test_drop_partition),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
