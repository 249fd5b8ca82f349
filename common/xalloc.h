/* Allocation that cannot fail quietly: out of memory, the worker cannot keep its
 * bookkeeping (offsets, forwards) correct, so it aborts rather than go on wrong. */
#ifndef AW_XALLOC_H
#define AW_XALLOC_H

#include <stdlib.h>
#include <string.h>

static inline char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

#endif
