#include "pg_array.h"

#include <stdlib.h>
#include <string.h>

static void reserve(struct pg_array *a, size_t more)
{
	if (a->len + more <= a->cap)
		return;
	size_t cap = a->cap ? a->cap : 256;
	while (cap < a->len + more)
		cap *= 2;
	char *b = realloc(a->buf, cap);
	if (!b)
		abort(); /* a batch that cannot be sent cannot be settled either */
	a->buf = b;
	a->cap = cap;
}

static void put(struct pg_array *a, char c)
{
	reserve(a, 1);
	a->buf[a->len++] = c;
}

void pg_array_begin(struct pg_array *a)
{
	a->len = 0;
	put(a, '{');
}

void pg_array_add(struct pg_array *a, const char *v)
{
	if (a->len > 1)
		put(a, ',');
	if (!v) {
		reserve(a, 4);
		memcpy(a->buf + a->len, "NULL", 4);
		a->len += 4;
		return;
	}
	/* Quoted, every element: the quotes keep "NULL", braces, commas and blanks literal;
	 * inside, only the backslash and the double quote need one. */
	size_t n = strlen(v);
	reserve(a, 2 * n + 2);
	a->buf[a->len++] = '"';
	for (size_t i = 0; i < n; i++) {
		if (v[i] == '"' || v[i] == '\\')
			a->buf[a->len++] = '\\';
		a->buf[a->len++] = v[i];
	}
	a->buf[a->len++] = '"';
}

const char *pg_array_end(struct pg_array *a)
{
	reserve(a, 2);
	a->buf[a->len++] = '}';
	a->buf[a->len] = '\0';
	return a->buf;
}

void pg_array_free(struct pg_array *a)
{
	free(a->buf);
	*a = (struct pg_array){ 0 };
}
