/* forward_ledger: the floors written with each commit, and reading them back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "forward_ledger.h"

#define RETRY "assets.create.retry"
#define DLQ "assets.create.dlq"
#define INPUT "assets.create"

static int setup(void **state)
{
	*state = forward_ledger_new(RETRY, DLQ);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	forward_ledger_free(*state);
	return 0;
}

static const char *meta(struct forward_ledger *l, const char *topic, int32_t partition)
{
	static char buf[FORWARD_LEDGER_METADATA_MAX + 1];
	assert_true(forward_ledger_metadata(l, topic, partition, buf, sizeof buf) >= 0);
	return buf;
}

static void test_unknown_floors_are_empty(void **state)
{
	struct forward_ledger *l = *state;
	assert_string_equal(meta(l, INPUT, 0), "aw-fwd1;" RETRY "=;" DLQ "=");
	forward_ledger_raise_floor(l, DLQ, 2, 40);
	/* Partitions 0 and 1 of the DLQ were never seen: unknown, not 0. */
	assert_string_equal(meta(l, INPUT, 0), "aw-fwd1;" RETRY "=;" DLQ "=,,40");
}

static void test_floor_only_rises(void **state)
{
	struct forward_ledger *l = *state;
	forward_ledger_raise_floor(l, RETRY, 0, 10);
	forward_ledger_raise_floor(l, RETRY, 0, 7);
	forward_ledger_raise_floor(l, "other.topic", 0, 99);
	assert_string_equal(meta(l, INPUT, 3), "aw-fwd1;" RETRY "=10;" DLQ "=");
}

/* A forward of an uncommitted offset pulls its input partition's floor down to where it
 * landed, and only that partition's; the commit past it lifts it again. */
static void test_uncommitted_forward_lowers_its_partition_floor(void **state)
{
	struct forward_ledger *l = *state;
	forward_ledger_raise_floor(l, DLQ, 0, 100);
	forward_ledger_raise_floor(l, DLQ, 1, 50);
	forward_ledger_add(l, INPUT, 2, 500, DLQ, 0, 60);
	forward_ledger_add(l, INPUT, 2, 501, DLQ, 0, 61);
	forward_ledger_raise_floor(l, DLQ, 0, 62);
	assert_string_equal(meta(l, INPUT, 2), "aw-fwd1;" RETRY "=;" DLQ "=60,50");
	assert_string_equal(meta(l, INPUT, 1), "aw-fwd1;" RETRY "=;" DLQ "=100,50");
	forward_ledger_committed(l, INPUT, 2, 501); /* 500 committed, 501 not yet */
	assert_string_equal(meta(l, INPUT, 2), "aw-fwd1;" RETRY "=;" DLQ "=61,50");
	forward_ledger_committed(l, INPUT, 2, 502);
	assert_string_equal(meta(l, INPUT, 2), "aw-fwd1;" RETRY "=;" DLQ "=100,50");
}

static void test_forget_partition(void **state)
{
	struct forward_ledger *l = *state;
	forward_ledger_raise_floor(l, RETRY, 0, 9);
	forward_ledger_add(l, RETRY, 1, 5, RETRY, 0, 3);
	assert_string_equal(meta(l, RETRY, 1), "aw-fwd1;" RETRY "=3;" DLQ "=");
	forward_ledger_committed(l, RETRY, 1, -1);
	assert_string_equal(meta(l, RETRY, 1), "aw-fwd1;" RETRY "=9;" DLQ "=");
}

static void test_too_large_is_refused(void **state)
{
	struct forward_ledger *l = *state;
	char buf[FORWARD_LEDGER_METADATA_MAX + 1];
	for (int p = 0; p < 1000; p++)
		forward_ledger_raise_floor(l, DLQ, p, 1000000000LL + p);
	assert_int_equal(forward_ledger_metadata(l, INPUT, 0, buf, sizeof buf), -1);
	/* A small buffer is refused too, never overrun. */
	forward_ledger_free(l);
	*state = l = forward_ledger_new(RETRY, DLQ);
	forward_ledger_raise_floor(l, DLQ, 0, 123456);
	assert_int_equal(forward_ledger_metadata(l, INPUT, 0, buf, 12), -1);
}

static void test_round_trip(void **state)
{
	struct forward_ledger *l = *state;
	struct forward_floors f;
	forward_ledger_raise_floor(l, RETRY, 1, 7);
	forward_ledger_raise_floor(l, DLQ, 0, 12);
	forward_ledger_raise_floor(l, DLQ, 2, 9000000000LL);
	const char *m = meta(l, INPUT, 0);
	forward_floors_parse(&f, m, strlen(m), RETRY, DLQ);
	assert_true(f.valid);
	assert_int_equal(forward_floors_get(&f, RETRY, RETRY, 0), -1);
	assert_int_equal(forward_floors_get(&f, RETRY, RETRY, 1), 7);
	assert_int_equal(forward_floors_get(&f, RETRY, RETRY, 2), -1); /* beyond the list */
	assert_int_equal(forward_floors_get(&f, RETRY, DLQ, 0), 12);
	assert_int_equal(forward_floors_get(&f, RETRY, DLQ, 1), -1);
	assert_int_equal(forward_floors_get(&f, RETRY, DLQ, 2), 9000000000LL);
	assert_int_equal(forward_floors_get(&f, RETRY, DLQ, -1), -1);
	forward_floors_cleanup(&f);
}

/* Metadata that is not ours, or names other topics, means "read from the beginning". */
static void test_foreign_metadata_is_invalid(void **state)
{
	static const char *const cases[] = {
		"",
		"hello",
		"aw-fwd1",
		"aw-fwd1;",
		"aw-fwd2;" RETRY "=1;" DLQ "=2",
		"aw-fwd1;" DLQ "=1;" RETRY "=2",   /* order swapped */
		"aw-fwd1;other.retry=1;" DLQ "=2", /* the config changed topics */
		"aw-fwd1;" RETRY "=1",
		"aw-fwd1;" RETRY "=x;" DLQ "=2",
		"aw-fwd1;" RETRY "=-1;" DLQ "=2",
		"aw-fwd1;" RETRY "=99999999999999999999;" DLQ "=2",
		"aw-fwd1;" RETRY "=1;" DLQ "=2;extra",
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct forward_floors f;
		forward_floors_parse(&f, cases[i], strlen(cases[i]), RETRY, DLQ);
		if (f.valid)
			fail_msg("case %zu \"%s\" accepted", i, cases[i]);
		assert_int_equal(forward_floors_get(&f, RETRY, DLQ, 0), -1);
		forward_floors_cleanup(&f);
	}
	struct forward_floors f;
	forward_floors_parse(&f, NULL, 0, RETRY, DLQ);
	assert_false(f.valid);
	forward_floors_parse(&f, "aw-fwd1;" RETRY "=1\0;" DLQ "=2", 30, RETRY, DLQ);
	assert_false(f.valid);
}

static void test_empty_lists_parse(void **state)
{
	struct forward_floors f;
	const char *m = "aw-fwd1;" RETRY "=;" DLQ "=";
	(void)state;
	forward_floors_parse(&f, m, strlen(m), RETRY, DLQ);
	assert_true(f.valid);
	assert_int_equal(forward_floors_get(&f, RETRY, RETRY, 0), -1);
	forward_floors_cleanup(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unknown_floors_are_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_floor_only_rises, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uncommitted_forward_lowers_its_partition_floor,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget_partition, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_large_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test(test_foreign_metadata_is_invalid),
		cmocka_unit_test(test_empty_lists_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
