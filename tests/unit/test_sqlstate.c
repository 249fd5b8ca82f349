/* classify_sqlstate, driven by tests/data/sqlstate_cases.txt: "SQLSTATE action class" per
 * line, "-" for NULL, "\"\"" for the empty string, '#' starts a comment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_data.h"

#include "sqlstate.h"

static const char *action_name(enum error_action a)
{
	switch (a) {
	case ACTION_REQUEUE: return "requeue";
	case ACTION_DEAD_LETTER: return "dead_letter";
	case ACTION_RETRY_IN_PLACE: return "retry_in_place";
	}
	return "?";
}

static void test_table(void **state)
{
	(void)state;
	char *path = test_path("sqlstate_cases.txt");
	FILE *f = fopen(path, "r");
	char line[256];
	int lineno = 0, cases = 0, failures = 0;
	int seen_requeue = 0, seen_dead = 0, seen_retry = 0;

	if (!f)
		fail_msg("cannot open %s", path);
	while (fgets(line, sizeof line, f)) {
		char code[64], action[64], cls[64], extra[8];
		lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		int n = sscanf(line, "%63s %63s %63s %7s", code, action, cls, extra);
		if (n <= 0)
			continue;
		if (n != 3)
			fail_msg("%s:%d: expected 3 fields, got %d", path, lineno, n);

		const char *input = code;
		if (strcmp(code, "-") == 0)
			input = NULL;
		else if (strcmp(code, "\"\"") == 0)
			input = "";
		struct error_class got = classify_sqlstate(input, NULL, 0);
		cases++;
		if (!got.name) {
			print_error("%s:%d: %s: NULL class name\n", path, lineno, code);
			failures++;
			continue;
		}
		if (strcmp(action_name(got.action), action) != 0 || strcmp(got.name, cls) != 0) {
			print_error("%s:%d: %s: expected %s %s, got %s %s\n", path, lineno, code,
				    action, cls, action_name(got.action), got.name);
			failures++;
		}
		seen_requeue |= strcmp(action, "requeue") == 0;
		seen_dead |= strcmp(action, "dead_letter") == 0;
		seen_retry |= strcmp(action, "retry_in_place") == 0;
	}
	fclose(f);
	free(path);
	/* The table must exist and cover all three actions, or this test proves nothing. */
	assert_true(cases >= 60);
	assert_true(seen_requeue && seen_dead && seen_retry);
	assert_int_equal(failures, 0);
}

/* Classification looks at the SQLSTATE only: a stack buffer holding the same code gives the
 * same answer (no pointer identity), and the returned name is a stable string. */
static void test_not_pointer_based(void **state)
{
	(void)state;
	char buf[6];
	memcpy(buf, "23505", 6);
	struct error_class a = classify_sqlstate(buf, NULL, 0);
	memcpy(buf, "40P01", 6);
	struct error_class b = classify_sqlstate(buf, NULL, 0);
	assert_int_equal(a.action, ACTION_REQUEUE);
	assert_string_equal(a.name, "unique_violation");
	assert_int_equal(b.action, ACTION_RETRY_IN_PLACE);
	assert_string_equal(b.name, "deadlock_detected");
}

/* Every class that leads to a forwarded record is one of the x-error-class values of SPEC
 * section 4. */
static void test_forwarded_classes_in_spec(void **state)
{
	(void)state;
	static const char *const spec[] = { "unique_violation", "not_null_violation",
					    "foreign_key_violation", "check_violation",
					    "exclusion_violation", "integrity_violation",
					    "data_exception", "database_error" };
	static const char *const codes[] = { "23505", "23502", "23503", "23514", "23P01",
					     "23000", "22P02", "42P01", "25P02", "XX000" };
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		struct error_class c = classify_sqlstate(codes[i], NULL, 0);
		int found = 0;
		assert_int_not_equal(c.action, ACTION_RETRY_IN_PLACE);
		for (size_t k = 0; k < sizeof spec / sizeof spec[0]; k++)
			found |= strcmp(c.name, spec[k]) == 0;
		if (!found)
			fail_msg("%s -> %s: not an x-error-class of the SPEC", codes[i], c.name);
	}
	assert_string_equal(ERROR_CLASS_MALFORMED, "malformed_message");
	assert_string_equal(ERROR_CLASS_UNSUPPORTED, "unsupported_message");
	assert_string_equal(ERROR_CLASS_RETRIES_EXHAUSTED, "retries_exhausted");
	assert_string_equal(ERROR_CLASS_DATABASE, "database_error");
}

/* The operator's classify: entries: an exact code wins over its class, a class over the
 * built-in rule; the class name stays the built-in one; reconnect follows the code. */
static void test_overrides(void **state)
{
	(void)state;
	struct config_property ov[] = {
		{ "23", "requeue" },        { "23503", "dead_letter" }, { "57014", "requeue" },
		{ "P0", "transient" },      { "08", "dead_letter" },
	};
	size_t n = sizeof ov / sizeof ov[0];
	struct error_class c;

	c = classify_sqlstate("23503", ov, n); /* exact beats class, listed later or not */
	assert_int_equal(c.action, ACTION_DEAD_LETTER);
	assert_string_equal(c.name, "foreign_key_violation");
	c = classify_sqlstate("23514", ov, n);
	assert_int_equal(c.action, ACTION_REQUEUE);
	assert_string_equal(c.name, "check_violation");
	c = classify_sqlstate("57014", ov, n);
	assert_int_equal(c.action, ACTION_REQUEUE);
	assert_string_equal(c.name, "query_canceled");
	c = classify_sqlstate("P0001", ov, n);
	assert_int_equal(c.action, ACTION_RETRY_IN_PLACE);
	assert_string_equal(c.name, "database_error");
	c = classify_sqlstate("08006", ov, n);
	assert_int_equal(c.action, ACTION_DEAD_LETTER);
	/* No server answer is not a SQLSTATE: no override applies. */
	c = classify_sqlstate("", ov, n);
	assert_int_equal(c.action, ACTION_RETRY_IN_PLACE);
	assert_true(c.reconnect);
	c = classify_sqlstate("22P02", ov, n); /* untouched */
	assert_int_equal(c.action, ACTION_DEAD_LETTER);
	assert_true(classify_sqlstate("25006", NULL, 0).reconnect);
	assert_false(classify_sqlstate("57014", NULL, 0).reconnect);
}

static void test_override_check(void **state)
{
	(void)state;
	char err[200];
	assert_int_equal(classify_override_check("23503", "requeue", err, sizeof err), 0);
	assert_int_equal(classify_override_check("P0", "transient", err, sizeof err), 0);
	assert_int_equal(classify_override_check("235", "requeue", err, sizeof err), -1);
	assert_int_equal(classify_override_check("23p01", "requeue", err, sizeof err), -1);
	assert_int_equal(classify_override_check("23505", "retry", err, sizeof err), -1);
	assert_non_null(strstr(err, "transient, requeue or dead_letter"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_not_pointer_based),
		cmocka_unit_test(test_forwarded_classes_in_spec),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_override_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
