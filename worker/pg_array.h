/* PostgreSQL array literals in text format ({"a","b",NULL}), built up one element at a time:
 * how a batch's values travel to asset_create_batch_v1 as one parameter per field. */
#ifndef AW_PG_ARRAY_H
#define AW_PG_ARRAY_H

#include <stddef.h>

struct pg_array {
	char *buf; /* NUL-terminated once pg_array_end was called */
	size_t len, cap;
};

/* Starts an empty array literal; keeps the buffer of an earlier use. */
void pg_array_begin(struct pg_array *a);
/* Appends an element: v quoted and escaped, or NULL when v is NULL. */
void pg_array_add(struct pg_array *a, const char *v);
/* Closes the literal; returns it (owned by a). */
const char *pg_array_end(struct pg_array *a);
void pg_array_free(struct pg_array *a);

#endif
