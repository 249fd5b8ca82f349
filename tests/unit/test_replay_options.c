/* worker replay-dlq's command line: options, --since forms, and the progress group per
 * filter set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "replay_options.h"

/* Parses a NULL-terminated argument list after "worker replay-dlq". */
static int parse(struct replay_options *o, const char **path, ...)
{
	char *argv[32] = { "worker", "replay-dlq" };
	int argc = 2;
	va_list ap;
	const char *a;

	va_start(ap, path);
	while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	return replay_options_parse(argc, argv, o, path);
}

static void test_parse(void **state)
{
	struct replay_options o;
	const char *path;

	(void)state;
	assert_int_equal(parse(&o, &path, "--config", "w.yaml", NULL), 0);
	assert_string_equal(path, "w.yaml");
	assert_null(o.error_class);
	assert_null(o.sqlstate);
	assert_null(o.constraint);
	assert_true(o.since_ms == 0);
	assert_int_equal(o.limit, -1);
	assert_int_equal(o.dry_run, 0);

	assert_int_equal(parse(&o, &path, "--error-class", "check_violation", "--sqlstate", "23514",
			       "--constraint", "assets_name_length", "--since",
			       "2026-11-26T10:00:00Z", "--limit", "3", "--dry-run", "-c", "x.yaml",
			       NULL),
			 0);
	assert_string_equal(path, "x.yaml");
	assert_string_equal(o.error_class, "check_violation");
	assert_string_equal(o.sqlstate, "23514");
	assert_string_equal(o.constraint, "assets_name_length");
	assert_true(o.since_ms == 1795687200000);
	assert_int_equal(o.limit, 3);
	assert_int_equal(o.dry_run, 1);

	/* --opt=value works too, and a second parse starts afresh */
	assert_int_equal(parse(&o, &path, "--config=y.yaml", "--since=1795687200123", NULL), 0);
	assert_string_equal(path, "y.yaml");
	assert_true(o.since_ms == 1795687200123);
	assert_null(o.error_class);

	assert_int_equal(parse(&o, &path, "--help", NULL), 1);
}

static void test_parse_errors(void **state)
{
	struct replay_options o;
	const char *path;

	(void)state;
	assert_int_equal(parse(&o, &path, NULL), EXIT_USAGE); /* no --config */
	assert_int_equal(parse(&o, &path, "-c", "w", "--error-class", "foreign_key", NULL),
			 EXIT_USAGE);
	assert_int_equal(parse(&o, &path, "-c", "w", "--sqlstate", "2350", NULL), EXIT_USAGE);
	assert_int_equal(parse(&o, &path, "-c", "w", "--sqlstate", "23503x", NULL), EXIT_USAGE);
	assert_int_equal(parse(&o, &path, "-c", "w", "--sqlstate", "23p01", NULL), EXIT_USAGE);
	assert_int_equal(parse(&o, &path, "-c", "w", "--constraint", "", NULL), EXIT_USAGE);
	assert_int_equal(parse(&o, &path, "-c", "w", "--since", "yesterday", NULL), EXIT_USAGE);
	assert_int_equal(parse(&o, &path, "-c", "w", "--limit", "-1", NULL), EXIT_USAGE);
	assert_int_equal(parse(&o, &path, "-c", "w", "--limit", "2x", NULL), EXIT_USAGE);
	assert_int_equal(parse(&o, &path, "-c", "w", "--drain", NULL), EXIT_USAGE);
	assert_int_equal(parse(&o, &path, "-c", "w", "extra", NULL), EXIT_USAGE);
	assert_int_equal(parse(&o, &path, "-c", "w", "--sqlstate", NULL), EXIT_USAGE);
}

static void test_since(void **state)
{
	static const struct {
		const char *in;
		int ok;
		int64_t ms;
	} cases[] = {
		{ "2026-11-26T10:00:00Z", 1, 1795687200000 },
		{ "2026-11-26T10:00:00+00:00", 1, 1795687200000 },
		{ "2026-11-26T10:00:00.5Z", 1, 1795687200500 },
		{ "2026-11-26T10:00:00.123456789Z", 1, 1795687200123 },
		{ "2026-11-26", 1, 1795651200000 },
		{ "1970-01-01T00:00:00Z", 1, 0 },
		{ "2024-02-29T23:59:59Z", 1, 1709251199000 },
		{ "1795687200000", 1, 1795687200000 },
		{ "0", 1, 0 },
		{ "", 0, 0 },
		{ "2026-11-26T10:00:00", 0, 0 },	   /* no zone: refused, not local time */
		{ "2026-11-26T10:00:00+01:00", 0, 0 }, /* UTC only */
		{ "2026-11-26T10:00Z", 0, 0 },
		{ "2026-11-26 10:00:00Z", 0, 0 },
		{ "2026-13-01", 0, 0 },
		{ "2026-02-29", 0, 0 },
		{ "2026-04-31", 0, 0 },
		{ "2026-11-26T24:00:00Z", 0, 0 },
		{ "2026-11-26T10:60:00Z", 0, 0 },
		{ "2026-11-26T10:00:60Z", 0, 0 },
		{ "2026-11-26T10:00:00.Z", 0, 0 },
		{ "1969-12-31", 0, 0 },
		{ "-5", 0, 0 },
		{ "12345678901234567", 0, 0 },
		{ "1e12", 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t ms = -42;
		int rc = replay_since_parse(cases[i].in, &ms);
		if (cases[i].ok && (rc != 0 || ms != cases[i].ms))
			fail_msg("\"%s\": rc %d, %lld ms, want %lld", cases[i].in, rc, (long long)ms,
				 (long long)cases[i].ms);
		if (!cases[i].ok && rc != -1)
			fail_msg("\"%s\" accepted", cases[i].in);
	}
}

static void test_group_id(void **state)
{
	struct replay_options none = { .limit = -1 }, fk = { .error_class = "foreign_key_violation" };
	struct replay_options fk_limit = fk, fk_since = fk, sq = { .sqlstate = "23503" };
	struct replay_options cons = { .constraint = "foreign_key_violation" };
	char a[128], b[128];

	(void)state;
	fk_limit.limit = 1;
	fk_limit.dry_run = 1;
	fk_since.since_ms = 1795687200000;

	replay_group_id("g", &none, a, sizeof a);
	assert_int_equal(strncmp(a, "g.replay-dlq.", 13), 0);
	assert_int_equal(strlen(a), 13 + 12);
	replay_group_id("g", &none, b, sizeof b);
	assert_string_equal(a, b); /* stable */

	replay_group_id("g", &fk, a, sizeof a);
	replay_group_id("g", &fk_limit, b, sizeof b);
	assert_string_equal(a, b); /* --limit and --dry-run keep the progress of the filters */

	const struct replay_options *distinct[] = { &none, &fk, &fk_since, &sq, &cons };
	char ids[5][128];
	for (size_t i = 0; i < 5; i++) {
		replay_group_id("g", distinct[i], ids[i], sizeof ids[i]);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(ids[i], ids[j]);
	}
	replay_group_id("other", &fk, b, sizeof b);
	assert_int_equal(strncmp(b, "other.replay-dlq.", 17), 0);
	assert_string_equal(b + 17, a + 13); /* the hash is of the filters only */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_since),
		cmocka_unit_test(test_group_id),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
