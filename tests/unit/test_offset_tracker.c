/* offset_tracker: the committable offset of a partition is the lowest offset still open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "offset_tracker.h"

static int setup(void **state)
{
	*state = offset_tracker_new();
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	offset_tracker_free(*state);
	return 0;
}

static struct tracked_offset open_ok(struct offset_tracker *t, const char *topic,
				     int32_t partition, int64_t offset)
{
	struct tracked_offset ref;
	memset(&ref, 0xa5, sizeof ref);
	assert_int_equal(offset_tracker_open(t, topic, partition, offset, &ref), 0);
	assert_string_equal(ref.topic, topic);
	assert_int_equal(ref.partition, partition);
	assert_int_equal(ref.offset, offset);
	return ref;
}

static void test_free_null(void **state)
{
	(void)state;
	offset_tracker_free(NULL);
}

static void test_in_order(void **state)
{
	struct offset_tracker *t = *state;
	offset_tracker_assign(t, "in", 0);
	assert_true(offset_tracker_is_assigned(t, "in", 0));
	assert_int_equal(offset_tracker_open_count(t), 0);

	struct tracked_offset r[5];
	for (int i = 0; i < 5; i++)
		r[i] = open_ok(t, "in", 0, 100 + i);
	assert_int_equal(offset_tracker_open_count(t), 5);
	for (int i = 0; i < 5; i++) {
		assert_true(offset_tracker_is_current(t, &r[i]));
		assert_int_equal(offset_tracker_close(t, &r[i]), 100 + i + 1);
		assert_int_equal(offset_tracker_open_count(t), (size_t)(4 - i));
	}
}

static void test_out_of_order(void **state)
{
	struct offset_tracker *t = *state;
	offset_tracker_assign(t, "in", 3);
	struct tracked_offset r4 = open_ok(t, "in", 3, 4);
	struct tracked_offset r5 = open_ok(t, "in", 3, 5);
	struct tracked_offset r6 = open_ok(t, "in", 3, 6);

	assert_int_equal(offset_tracker_close(t, &r5), -1); /* 4 still open */
	/* 2 records are open; 5 is closed but still waits behind 4 (counted or not) */
	assert_in_range(offset_tracker_open_count(t), 2, 3);
	assert_int_equal(offset_tracker_close(t, &r4), 6);  /* 4 and 5 done */
	assert_int_equal(offset_tracker_open_count(t), 1);
	assert_int_equal(offset_tracker_close(t, &r6), 7);
	assert_int_equal(offset_tracker_open_count(t), 0);
}

/* Offsets need not be contiguous (compacted topics, transaction markers). */
static void test_gaps(void **state)
{
	struct offset_tracker *t = *state;
	offset_tracker_assign(t, "in", 0);
	struct tracked_offset a = open_ok(t, "in", 0, 10);
	struct tracked_offset b = open_ok(t, "in", 0, 20);
	struct tracked_offset c = open_ok(t, "in", 0, 35);
	assert_int_equal(offset_tracker_close(t, &c), -1);
	assert_int_equal(offset_tracker_close(t, &a), 11);
	assert_int_equal(offset_tracker_close(t, &b), 36);
}

static void test_close_twice_and_unknown(void **state)
{
	struct offset_tracker *t = *state;
	offset_tracker_assign(t, "in", 0);
	struct tracked_offset a = open_ok(t, "in", 0, 1);
	struct tracked_offset b = open_ok(t, "in", 0, 2);
	struct tracked_offset c = open_ok(t, "in", 0, 4);

	struct tracked_offset unknown = b;
	unknown.offset = 3; /* between two open offsets */
	assert_int_equal(offset_tracker_close(t, &unknown), -1);
	unknown.offset = 0; /* below */
	assert_int_equal(offset_tracker_close(t, &unknown), -1);
	unknown.offset = 99; /* above */
	assert_int_equal(offset_tracker_close(t, &unknown), -1);
	assert_int_equal(offset_tracker_open_count(t), 3);

	assert_int_equal(offset_tracker_close(t, &b), -1);
	assert_int_equal(offset_tracker_close(t, &b), -1); /* again: no effect */
	assert_in_range(offset_tracker_open_count(t), 2, 3); /* b closed, behind a */
	assert_int_equal(offset_tracker_close(t, &a), 3);
	assert_int_equal(offset_tracker_close(t, &a), -1); /* already gone */
	assert_int_equal(offset_tracker_open_count(t), 1);
	assert_int_equal(offset_tracker_close(t, &c), 5);

	/* an unknown partition / topic */
	struct tracked_offset other = a;
	other.partition = 7;
	assert_int_equal(offset_tracker_close(t, &other), -1);
	other = a;
	other.topic = "nope";
	assert_int_equal(offset_tracker_close(t, &other), -1);
	assert_false(offset_tracker_is_current(t, &other));
}

static void test_open_unassigned(void **state)
{
	struct offset_tracker *t = *state;
	struct tracked_offset ref;

	assert_false(offset_tracker_is_assigned(t, "in", 0));
	assert_int_equal(offset_tracker_open(t, "in", 0, 1, &ref), -1);
	offset_tracker_assign(t, "in", 0);
	assert_int_equal(offset_tracker_open(t, "in", 1, 1, &ref), -1);    /* other partition */
	assert_int_equal(offset_tracker_open(t, "other", 0, 1, &ref), -1); /* other topic */
	offset_tracker_revoke(t, "in", 0);
	assert_false(offset_tracker_is_assigned(t, "in", 0));
	assert_int_equal(offset_tracker_open(t, "in", 0, 1, &ref), -1);
	assert_int_equal(offset_tracker_open_count(t), 0);
	/* revoking what was never assigned is harmless */
	offset_tracker_revoke(t, "never", 9);
	assert_false(offset_tracker_is_assigned(t, "never", 9));
}

static void test_stale_generation(void **state)
{
	struct offset_tracker *t = *state;
	offset_tracker_assign(t, "in", 0);
	struct tracked_offset old1 = open_ok(t, "in", 0, 10);
	struct tracked_offset old2 = open_ok(t, "in", 0, 11);
	assert_true(offset_tracker_is_current(t, &old1));

	offset_tracker_revoke(t, "in", 0);
	assert_false(offset_tracker_is_current(t, &old1));
	assert_int_equal(offset_tracker_open_count(t), 0);
	assert_int_equal(offset_tracker_close(t, &old1), -1); /* revoked */

	offset_tracker_assign(t, "in", 0);
	assert_false(offset_tracker_is_current(t, &old1));
	assert_false(offset_tracker_is_current(t, &old2));
	/* the new assignment redelivers the same offsets */
	struct tracked_offset new1 = open_ok(t, "in", 0, 10);
	struct tracked_offset new2 = open_ok(t, "in", 0, 11);
	assert_int_not_equal(new1.generation, old1.generation);
	assert_true(offset_tracker_is_current(t, &new1));
	assert_false(offset_tracker_is_current(t, &old1));

	/* late acknowledgements of the old assignment complete nothing */
	assert_int_equal(offset_tracker_close(t, &old1), -1);
	assert_int_equal(offset_tracker_close(t, &old2), -1);
	assert_int_equal(offset_tracker_open_count(t), 2);
	assert_int_equal(offset_tracker_close(t, &new1), 11);
	assert_int_equal(offset_tracker_close(t, &new2), 12);

	/* assign without revoke (a second assignment) also starts a new generation */
	struct tracked_offset g = open_ok(t, "in", 0, 12);
	offset_tracker_assign(t, "in", 0);
	assert_false(offset_tracker_is_current(t, &g));
	assert_int_equal(offset_tracker_close(t, &g), -1);
	assert_int_equal(offset_tracker_open_count(t), 0);
}

/* The ref's topic points into the tracker and stays valid while the partition is tracked,
 * even after many more partitions were added (the partition array moved). */
static void test_many_partitions(void **state)
{
	struct offset_tracker *t = *state;
	enum { TOPICS = 5, PARTS = 40 };
	static const char *const topics[TOPICS] = { "a", "b", "assets.create",
						    "assets.create.retry", "assets.create.dlq" };
	struct tracked_offset refs[TOPICS][PARTS][3];

	for (int k = 0; k < TOPICS; k++)
		for (int p = 0; p < PARTS; p++) {
			char topic_copy[64];
			/* the tracker copies the topic: a caller buffer may be reused */
			snprintf(topic_copy, sizeof topic_copy, "%s", topics[k]);
			offset_tracker_assign(t, topic_copy, p);
			memset(topic_copy, 'X', sizeof topic_copy - 1);
			for (int i = 0; i < 3; i++)
				refs[k][p][i] = open_ok(t, topics[k], p, 1000 * p + i);
		}
	assert_int_equal(offset_tracker_open_count(t), TOPICS * PARTS * 3);
	for (int k = 0; k < TOPICS; k++)
		for (int p = 0; p < PARTS; p++) {
			assert_true(offset_tracker_is_assigned(t, topics[k], p));
			assert_string_equal(refs[k][p][0].topic, topics[k]);
		}
	assert_false(offset_tracker_is_assigned(t, "a", PARTS));

	/* close the middle record everywhere: nothing advances */
	for (int k = 0; k < TOPICS; k++)
		for (int p = 0; p < PARTS; p++)
			assert_int_equal(offset_tracker_close(t, &refs[k][p][1]), -1);
	/* revoke one partition: only its records go (2 open, 1 closed but blocked) */
	size_t before = offset_tracker_open_count(t);
	assert_in_range(before, TOPICS * PARTS * 2, TOPICS * PARTS * 3);
	offset_tracker_revoke(t, "b", 7);
	assert_in_range(offset_tracker_open_count(t), before - 3, before - 2);
	assert_in_range(offset_tracker_open_count(t), TOPICS * PARTS * 2 - 2,
			TOPICS * PARTS * 3 - 3);
	for (int k = 0; k < TOPICS; k++)
		for (int p = 0; p < PARTS; p++) {
			int64_t want = (k == 1 && p == 7) ? -1 : 1000 * p + 2;
			assert_int_equal(offset_tracker_close(t, &refs[k][p][0]), want);
		}
	for (int k = 0; k < TOPICS; k++)
		for (int p = 0; p < PARTS; p++) {
			int64_t want = (k == 1 && p == 7) ? -1 : 1000 * p + 3;
			assert_int_equal(offset_tracker_close(t, &refs[k][p][2]), want);
		}
	assert_int_equal(offset_tracker_open_count(t), 0);
}

/* Deterministic xorshift so a failure reproduces. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static void shuffle(size_t *a, size_t n, uint64_t *seed)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)(rng_next(seed) % i);
		size_t tmp = a[i - 1];
		a[i - 1] = a[j];
		a[j] = tmp;
	}
}

/* Closes `n` records in random order and checks every answer against a simple model. */
static void run_random(struct offset_tracker *t, int32_t partition, int64_t base, size_t n,
		       uint64_t seed)
{
	struct tracked_offset *refs = calloc(n, sizeof *refs);
	size_t *order = calloc(n, sizeof *order);
	uint8_t *done = calloc(n, 1);
	assert_non_null(refs);
	assert_non_null(order);
	assert_non_null(done);

	offset_tracker_assign(t, "rand", partition);
	for (size_t i = 0; i < n; i++) {
		refs[i] = open_ok(t, "rand", partition, base + 2 * (int64_t)i);
		order[i] = i;
	}
	shuffle(order, n, &seed);
	size_t low = 0; /* model: lowest index still open */
	int64_t last = -1;
	for (size_t k = 0; k < n; k++) {
		size_t i = order[k];
		done[i] = 1;
		int64_t want = -1;
		if (i == low) {
			while (low < n && done[low])
				low++;
			want = base + 2 * (int64_t)(low - 1) + 1;
		}
		int64_t got = offset_tracker_close(t, &refs[i]);
		if (got != want)
			fail_msg("n=%zu step %zu: close(%lld) = %lld, expected %lld", n, k,
				 (long long)refs[i].offset, (long long)got, (long long)want);
		if (got >= 0) {
			assert_true(got > last);
			last = got;
		}
		/* Between the records truly open and those from the lowest open one on (closed
		 * records behind an open one may be counted); exactly 0 when none is open. */
		assert_in_range(offset_tracker_open_count(t), n - k - 1, n - low);
	}
	assert_int_equal(last, base + 2 * (int64_t)(n - 1) + 1);
	assert_int_equal(offset_tracker_open_count(t), 0);
	free(refs);
	free(order);
	free(done);
}

static void test_ring_growth_random(void **state)
{
	struct offset_tracker *t = *state;
	static const size_t sizes[] = { 1, 63, 64, 65, 127, 128, 129, 1000, 10000 };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		run_random(t, (int32_t)i, 5000000000LL, sizes[i], 0x9e3779b97f4a7c15ULL + i);
}

/* The ring wraps (head in the middle) and then has to grow: order must survive. */
static void test_ring_wrap_then_grow(void **state)
{
	struct offset_tracker *t = *state;
	struct tracked_offset refs[300];
	offset_tracker_assign(t, "in", 0);

	int64_t next = 0;
	size_t first_open = 0, nopen = 0;
	/* fill 60, close 50: head moves to slot 50 */
	for (; nopen < 60; nopen++, next++)
		refs[next] = open_ok(t, "in", 0, next);
	for (int i = 0; i < 50; i++, first_open++, nopen--)
		assert_int_equal(offset_tracker_close(t, &refs[first_open]), refs[first_open].offset + 1);
	/* 10 open; open 200 more: wraps around slot 63 and grows twice */
	for (int i = 0; i < 200; i++, next++, nopen++)
		refs[next] = open_ok(t, "in", 0, next);
	assert_int_equal(offset_tracker_open_count(t), nopen);
	/* close all but the oldest open one, newest first: nothing advances */
	for (int64_t i = next - 1; i > (int64_t)first_open; i--)
		assert_int_equal(offset_tracker_close(t, &refs[i]), -1);
	assert_in_range(offset_tracker_open_count(t), 1, nopen);
	assert_int_equal(offset_tracker_close(t, &refs[first_open]), next);
	assert_int_equal(offset_tracker_open_count(t), 0);
}

/* Offsets near the top of int64 and offset 0. */
static void test_extreme_offsets(void **state)
{
	struct offset_tracker *t = *state;
	offset_tracker_assign(t, "in", 0);
	struct tracked_offset z = open_ok(t, "in", 0, 0);
	assert_int_equal(offset_tracker_close(t, &z), 1);
	struct tracked_offset h = open_ok(t, "in", 0, INT64_MAX - 1);
	assert_int_equal(offset_tracker_close(t, &h), INT64_MAX);
}


/* committable: the lowest open record, or past the last one opened; never before a record is
 * opened in the assignment. */
static void test_committable(void **state)
{
	struct offset_tracker *t = *state;
	offset_tracker_assign(t, "in", 0);
	assert_int_equal(offset_tracker_committable(t, "in", 0), -1);
	struct tracked_offset a = open_ok(t, "in", 0, 5);
	struct tracked_offset b = open_ok(t, "in", 0, 7);
	assert_int_equal(offset_tracker_committable(t, "in", 0), 5);
	offset_tracker_close(t, &b);
	assert_int_equal(offset_tracker_committable(t, "in", 0), 5);
	offset_tracker_close(t, &a);
	assert_int_equal(offset_tracker_committable(t, "in", 0), 8);
	assert_int_equal(offset_tracker_committable(t, "other", 0), -1);
}

/* at_end: a partition's end (past transaction markers) is committable only with nothing open,
 * and nothing below it may be opened afterwards. */
static void test_at_end(void **state)
{
	struct offset_tracker *t = *state;
	offset_tracker_assign(t, "retry", 1);
	struct tracked_offset a = open_ok(t, "retry", 1, 10);
	assert_int_equal(offset_tracker_at_end(t, "retry", 1, 12), -1); /* 10 still open */
	assert_int_equal(offset_tracker_close(t, &a), 11);
	assert_int_equal(offset_tracker_at_end(t, "retry", 1, 11), -1); /* nothing to skip */
	assert_int_equal(offset_tracker_at_end(t, "retry", 1, 12), 12); /* past the marker */
	assert_int_equal(offset_tracker_committable(t, "retry", 1), 12);
	struct tracked_offset r;
	assert_int_equal(offset_tracker_open(t, "retry", 1, 11, &r), -1);
	open_ok(t, "retry", 1, 12);
	offset_tracker_revoke(t, "retry", 1);
	assert_int_equal(offset_tracker_at_end(t, "retry", 1, 20), -1); /* not ours */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_free_null),
		cmocka_unit_test_setup_teardown(test_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gaps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_twice_and_unknown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_unassigned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_generation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_partitions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_growth_random, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_wrap_then_grow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_extreme_offsets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_committable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_at_end, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
