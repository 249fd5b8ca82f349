/* env_expand: ${VAR} and ${VAR:-default}, as a table of cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "env_expand.h"

struct env_case {
	const char *in;
	const char *want;  /* expected output, or NULL when an error is expected */
	const char *error; /* substring of the error */
};

static const struct env_case env_cases[] = {
	{ "", "", NULL },
	{ "plain text", "plain text", NULL },
	{ "$", "$", NULL },
	{ "a$b$$c$", "a$b$$c$", NULL },
	{ "price: $5 {x}", "price: $5 {x}", NULL },
	{ "${AW_T_SET}", "value", NULL },
	{ "x${AW_T_SET}y${AW_T_SET}z", "xvalueyvaluez", NULL },
	{ "${AW_T_EMPTY}", "", NULL },
	{ "${AW_T_UNSET}", NULL, "environment variable AW_T_UNSET is not set" },
	{ "pre ${AW_T_UNSET} post", NULL, "environment variable AW_T_UNSET is not set" },
	{ "${AW_T_UNSET:-dflt}", "dflt", NULL },
	{ "${AW_T_EMPTY:-dflt}", "dflt", NULL },
	{ "${AW_T_SET:-dflt}", "value", NULL },
	{ "${AW_T_UNSET:-}", "", NULL },
	{ "${AW_T_UNSET:-localhost:9092}", "localhost:9092", NULL },
	{ "${AW_T_UNSET:-a b $ c}", "a b $ c", NULL },
	{ "${AW_T_UNSET:-${AW_T_SET}}", "value", NULL },
	{ "${AW_T_UNSET:-${AW_T_EMPTY:-deep}}!", "deep!", NULL },
	/* sh evaluates a default only when used */
	{ "${AW_T_SET:-${AW_T_UNSET}}", "value", NULL },
	{ "${AW_T_UNSET:-${AW_T_UNSET2}}", NULL, "environment variable AW_T_UNSET2 is not set" },
	{ "${AW_T_SET:-${}}", NULL, "empty variable name" },
	{ "${_x1}", "under", NULL },
	{ "${", NULL, "unterminated" },
	{ "abc${", NULL, "unterminated" },
	{ "${AW_T_SET", NULL, "unterminated" },
	{ "${AW_T_UNSET:-dflt", NULL, "unterminated" },
	{ "${AW_T_UNSET:-${AW_T_SET}", NULL, "unterminated" },
	{ "${}", NULL, "empty variable name" },
	{ "${1ABC}", NULL, "invalid variable name" },
	{ "${ AW_T_SET}", NULL, "invalid variable name" },
	{ "${AW_T_SET-x}", NULL, "expected \"}\" or \":-\"" },
	{ "${AW_T_SET:x}", NULL, "expected \"}\" or \":-\"" },
	{ "${AW_T_SET }", NULL, "expected \"}\" or \":-\"" },
};

static int env_setup(void **state)
{
	(void)state;
	setenv("AW_T_SET", "value", 1);
	setenv("AW_T_EMPTY", "", 1);
	setenv("_x1", "under", 1);
	unsetenv("AW_T_UNSET");
	unsetenv("AW_T_UNSET2");
	return 0;
}

static void test_env_expand_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof env_cases / sizeof env_cases[0]; i++) {
		const struct env_case *c = &env_cases[i];
		char err[256];
		char *out = (char *)0x1;
		int rc = env_expand(c->in, &out, err, sizeof err);
		if (c->want) {
			if (rc != 0 || strcmp(out, c->want) != 0)
				fail_msg("case \"%s\": rc=%d out=\"%s\" err=\"%s\"", c->in, rc,
					 out ? out : "(null)", err);
		} else {
			if (rc != -1 || out != NULL || !strstr(err, c->error))
				fail_msg("case \"%s\": rc=%d err=\"%s\", want \"%s\"", c->in, rc, err,
					 c->error);
		}
		free(out);
	}
}

/* The result is its own string, even when nothing is expanded. */
static void test_env_expand_copies(void **state)
{
	const char *in = "no refs";
	char err[64];
	char *out = NULL;

	(void)state;
	assert_int_equal(env_expand(in, &out, err, sizeof err), 0);
	assert_ptr_not_equal(out, in);
	assert_string_equal(out, in);
	free(out);
}

/* Expanded values are text: a value with YAML syntax stays one string. */
static void test_env_expand_no_reparse(void **state)
{
	char err[64];
	char *out = NULL;

	(void)state;
	setenv("AW_T_YAML", "a: [1, 2]\nb: ${AW_T_SET}", 1);
	assert_int_equal(env_expand("${AW_T_YAML}", &out, err, sizeof err), 0);
	assert_string_equal(out, "a: [1, 2]\nb: ${AW_T_SET}");
	free(out);
}

/* A long value grows the buffer; a tiny errbuf is truncated, not overrun. */
static void test_env_expand_sizes(void **state)
{
	char big[5000];
	char err[8];
	char *out = NULL;

	(void)state;
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	setenv("AW_T_BIG", big, 1);
	assert_int_equal(env_expand("<${AW_T_BIG}>${AW_T_BIG}", &out, err, sizeof err), 0);
	assert_int_equal(strlen(out), 2 * (sizeof big - 1) + 2);
	free(out);

	assert_int_equal(env_expand("${AW_T_UNSET}", &out, err, sizeof err), -1);
	assert_int_equal(strlen(err), sizeof err - 1);
	assert_int_equal(env_expand("${AW_T_UNSET}", &out, NULL, 0), -1);
	assert_null(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_expand_cases),
		cmocka_unit_test(test_env_expand_copies),
		cmocka_unit_test(test_env_expand_no_reparse),
		cmocka_unit_test(test_env_expand_sizes),
	};
	return cmocka_run_group_tests(tests, env_setup, NULL);
}
