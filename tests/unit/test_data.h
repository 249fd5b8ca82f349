/* The path of a file under tests/data ($AW_TEST_DATA, set by ctest), for the table-driven
 * unit tests; the caller frees it. Include after <cmocka.h>. */
#ifndef AW_TEST_DATA_H
#define AW_TEST_DATA_H

#include <stdio.h>
#include <stdlib.h>

static inline char *test_path(const char *rel)
{
	const char *base = getenv("AW_TEST_DATA");
	char *path;

	assert_non_null(base);
	assert_true(asprintf(&path, "%s/%s", base, rel) > 0);
	return path;
}

#endif
