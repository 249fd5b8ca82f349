/* pg_array: text-format array literals as PostgreSQL's array_in reads them. Each element is
 * quoted, so NULL (the SQL null) and "NULL" (a string) differ, and only " and \ are escaped.
 * The round trip through a real server is covered by tests/integration/29 and 33. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pg_array.h"

static void test_empty(void **state)
{
	(void)state;
	struct pg_array a = { 0 };
	pg_array_begin(&a);
	assert_string_equal(pg_array_end(&a), "{}");
	pg_array_free(&a);
}

static void test_elements(void **state)
{
	(void)state;
	struct pg_array a = { 0 };
	pg_array_begin(&a);
	pg_array_add(&a, "plain");
	pg_array_add(&a, NULL);
	pg_array_add(&a, "NULL");
	pg_array_add(&a, "");
	pg_array_add(&a, "say \"hi\"");
	pg_array_add(&a, "back\\slash");
	pg_array_add(&a, "{a,b} c");
	assert_string_equal(pg_array_end(&a),
			    "{\"plain\",NULL,\"NULL\",\"\",\"say \\\"hi\\\"\",\"back\\\\slash\","
			    "\"{a,b} c\"}");
	pg_array_free(&a);
}

/* A second use starts afresh; a long value grows the buffer. */
static void test_reuse_and_growth(void **state)
{
	(void)state;
	struct pg_array a = { 0 };
	char big[5000];
	memset(big, '"', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	pg_array_begin(&a);
	pg_array_add(&a, big);
	const char *s = pg_array_end(&a);
	assert_int_equal(strlen(s), 2 + 2 + 2 * (sizeof big - 1));
	pg_array_begin(&a);
	pg_array_add(&a, "x");
	assert_string_equal(pg_array_end(&a), "{\"x\"}");
	pg_array_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_elements),
		cmocka_unit_test(test_reuse_and_growth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
