/* backoff_delay_ms (exponential, capped, equal jitter) and backoff_random. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "backoff.h"

static const struct backoff_policy default_policy = { 100, 30000, 2.0 };

/* With random01 = 0 the delay is exactly half the nominal delay. */
static void test_initial_delay(void **state)
{
	(void)state;
	assert_int_equal(backoff_delay_ms(&default_policy, 1, 0.0), 50);
	assert_int_equal(backoff_delay_ms(&default_policy, 1, 0.5), 75);
	assert_int_equal(backoff_delay_ms(&default_policy, 1, 0.999999), 99);
}

static void test_growth(void **state)
{
	(void)state;
	/* nominal: 100, 200, 400, 800, ..., 25600, then the 30000 cap */
	int64_t nominal = 100;
	for (int attempt = 1; attempt <= 9; attempt++) {
		assert_int_equal(backoff_delay_ms(&default_policy, attempt, 0.0), nominal / 2);
		nominal *= 2;
	}
	assert_int_equal(backoff_delay_ms(&default_policy, 9, 0.0), 12800);

	struct backoff_policy p3 = { 10, 1000000, 3.0 };
	assert_int_equal(backoff_delay_ms(&p3, 1, 0.0), 5);
	assert_int_equal(backoff_delay_ms(&p3, 2, 0.0), 15);
	assert_int_equal(backoff_delay_ms(&p3, 3, 0.0), 45);
	assert_int_equal(backoff_delay_ms(&p3, 4, 0.0), 135);

	struct backoff_policy p15 = { 1000, 1000000, 1.5 };
	assert_int_equal(backoff_delay_ms(&p15, 3, 0.0), 1125); /* 2250 / 2 */
}

static void test_cap(void **state)
{
	(void)state;
	/* attempt 10: nominal 51200 -> capped to 30000 */
	assert_int_equal(backoff_delay_ms(&default_policy, 10, 0.0), 15000);
	assert_int_equal(backoff_delay_ms(&default_policy, 10, 0.5), 22500);
	for (int attempt = 10; attempt <= 200; attempt++) {
		int64_t lo = backoff_delay_ms(&default_policy, attempt, 0.0);
		int64_t hi = backoff_delay_ms(&default_policy, attempt, 0.999999);
		assert_int_equal(lo, 15000);
		assert_in_range(hi, 29999, 30000);
	}
	/* multiplier 1: constant */
	struct backoff_policy flat = { 400, 30000, 1.0 };
	assert_int_equal(backoff_delay_ms(&flat, 1, 0.0), 200);
	assert_int_equal(backoff_delay_ms(&flat, 50, 0.0), 200);
	/* initial above max: the cap wins from the first attempt */
	struct backoff_policy over = { 5000, 1000, 2.0 };
	assert_int_equal(backoff_delay_ms(&over, 1, 0.0), 500);
}

/* Equal jitter: delay in [nominal/2, nominal), monotone in random01. */
static void test_jitter_bounds(void **state)
{
	(void)state;
	for (int attempt = 1; attempt <= 12; attempt++) {
		double nominal = fmin(100 * pow(2, attempt - 1), 30000);
		int64_t prev = -1;
		for (int k = 0; k < 1000; k++) {
			double r = k / 1000.0;
			int64_t d = backoff_delay_ms(&default_policy, attempt, r);
			assert_true(d >= (int64_t)(nominal / 2));
			assert_true(d <= (int64_t)nominal);
			assert_true(d >= prev);
			prev = d;
		}
		/* r -> 1 gives (almost) the full nominal delay */
		int64_t top = backoff_delay_ms(&default_policy, attempt, nextafter(1.0, 0.0));
		assert_in_range(top, (int64_t)nominal - 1, (int64_t)nominal);
	}
}

/* Out-of-range random01 values are treated as 0 (the minimum delay), not extrapolated. */
static void test_jitter_out_of_range(void **state)
{
	(void)state;
	assert_int_equal(backoff_delay_ms(&default_policy, 1, 1.0), 50);
	assert_int_equal(backoff_delay_ms(&default_policy, 1, 7.5), 50);
	assert_int_equal(backoff_delay_ms(&default_policy, 1, -0.5), 50);
	assert_int_equal(backoff_delay_ms(&default_policy, 1, -INFINITY), 50);
	assert_int_equal(backoff_delay_ms(&default_policy, 1, INFINITY), 50);
}

static void test_huge_attempts(void **state)
{
	(void)state;
	static const int attempts[] = { 64, 1000, 1024, 100000, INT32_MAX - 1, INT32_MAX };
	for (size_t i = 0; i < sizeof attempts / sizeof attempts[0]; i++) {
		assert_int_equal(backoff_delay_ms(&default_policy, attempts[i], 0.0), 15000);
		int64_t hi = backoff_delay_ms(&default_policy, attempts[i], 0.999);
		assert_in_range(hi, 29000, 30000);
	}
	/* the largest configurable delays do not overflow either */
	struct backoff_policy big = { INT32_MAX, INT32_MAX, 10.0 };
	assert_int_equal(backoff_delay_ms(&big, INT32_MAX, 0.0), INT32_MAX / 2);
	int64_t full = backoff_delay_ms(&big, INT32_MAX, nextafter(1.0, 0.0));
	assert_in_range(full, (int64_t)INT32_MAX - 1, (int64_t)INT32_MAX);
}

static void test_attempt_below_one(void **state)
{
	(void)state;
	static const int attempts[] = { 0, -1, -100, INT32_MIN };
	for (size_t i = 0; i < sizeof attempts / sizeof attempts[0]; i++) {
		assert_int_equal(backoff_delay_ms(&default_policy, attempts[i], 0.0), 50);
		assert_int_equal(backoff_delay_ms(&default_policy, attempts[i], 0.5), 75);
	}
}

/* Never 0 ms: a tiny policy still waits at least 1 ms. */
static void test_minimum_one_ms(void **state)
{
	(void)state;
	struct backoff_policy tiny = { 1, 1, 2.0 };
	assert_int_equal(backoff_delay_ms(&tiny, 1, 0.0), 1);
	assert_int_equal(backoff_delay_ms(&tiny, 5, 0.9), 1);
	struct backoff_policy zero = { 0, 100, 2.0 };
	assert_int_equal(backoff_delay_ms(&zero, 3, 0.0), 1);
}

static void test_random_range(void **state)
{
	(void)state;
	enum { DRAWS = 100000, BUCKETS = 10 };
	int buckets[BUCKETS] = { 0 };
	double sum = 0, first = backoff_random();
	int differs = 0;

	for (int i = 0; i < DRAWS; i++) {
		double r = backoff_random();
		assert_true(r >= 0.0);
		assert_true(r < 1.0);
		buckets[(int)(r * BUCKETS)]++;
		sum += r;
		differs |= r != first;
	}
	assert_true(differs);
	/* Roughly uniform: each tenth gets 10% +- 1.5% (about 10 standard deviations). */
	for (int b = 0; b < BUCKETS; b++)
		assert_in_range(buckets[b], DRAWS / BUCKETS - 1500, DRAWS / BUCKETS + 1500);
	assert_true(fabs(sum / DRAWS - 0.5) < 0.01);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_initial_delay),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_jitter_bounds),
		cmocka_unit_test(test_jitter_out_of_range),
		cmocka_unit_test(test_huge_attempts),
		cmocka_unit_test(test_attempt_below_one),
		cmocka_unit_test(test_minimum_one_ms),
		cmocka_unit_test(test_random_range),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
