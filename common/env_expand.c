/* Shell-like ${...} expansion of config scalars, see env_expand.h. */
#include "env_expand.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENV_EXPAND_NAME_MAX 255

struct env_buf {
	char *data;
	size_t len;
	size_t cap;
};

struct env_ctx {
	struct env_buf out;
	char *errbuf;
	size_t errsize;
};

static int env_expand_span(struct env_ctx *c, const char **pp, int nested, int eval);

__attribute__((format(printf, 2, 3))) static int env_expand_fail(struct env_ctx *c,
								     const char *fmt, ...)
{
	va_list ap;

	if (c->errsize) {
		va_start(ap, fmt);
		vsnprintf(c->errbuf, c->errsize, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int env_expand_put(struct env_ctx *c, const char *s, size_t n)
{
	if (c->out.len + n + 1 > c->out.cap) {
		size_t cap = c->out.cap ? c->out.cap : 64;
		while (cap < c->out.len + n + 1)
			cap *= 2;
		char *data = realloc(c->out.data, cap);
		if (!data)
			return env_expand_fail(c, "out of memory");
		c->out.data = data;
		c->out.cap = cap;
	}
	memcpy(c->out.data + c->out.len, s, n);
	c->out.len += n;
	c->out.data[c->out.len] = '\0';
	return 0;
}

static int env_expand_is_name_start(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static int env_expand_is_name_char(char ch)
{
	return env_expand_is_name_start(ch) || (ch >= '0' && ch <= '9');
}

/* *pp points at "${". Consumes the reference up to and including its "}". When eval is 0 the
 * syntax is checked but nothing is looked up or written: the default of a set variable is
 * never evaluated, so ${SET:-${UNSET}} is not an error. */
static int env_expand_ref(struct env_ctx *c, const char **pp, int eval)
{
	const char *p = *pp + 2;
	const char *start = p;
	char name[ENV_EXPAND_NAME_MAX + 1];

	if (*p == '\0')
		return env_expand_fail(c, "unterminated \"${\" (missing \"}\")");
	if (*p == '}')
		return env_expand_fail(c, "empty variable name in \"${}\"");
	if (!env_expand_is_name_start(*p))
		return env_expand_fail(c, "invalid variable name after \"${\"");
	while (env_expand_is_name_char(*p))
		p++;
	if ((size_t)(p - start) > ENV_EXPAND_NAME_MAX)
		return env_expand_fail(c, "variable name too long after \"${\"");
	memcpy(name, start, (size_t)(p - start));
	name[p - start] = '\0';

	if (*p == '}') {
		if (eval) {
			const char *v = getenv(name);
			if (!v)
				return env_expand_fail(c, "environment variable %s is not set",
						       name);
			if (env_expand_put(c, v, strlen(v)) < 0)
				return -1;
		}
		*pp = p + 1;
		return 0;
	}
	if (p[0] == ':' && p[1] == '-') {
		const char *v = eval ? getenv(name) : NULL;
		int use_default = eval && (!v || !*v);
		p += 2;
		if (eval && !use_default && env_expand_put(c, v, strlen(v)) < 0)
			return -1;
		if (env_expand_span(c, &p, 1, use_default) < 0)
			return -1;
		*pp = p + 1; /* past the closing '}' */
		return 0;
	}
	if (*p == '\0')
		return env_expand_fail(c, "unterminated \"${%s\" (missing \"}\")", name);
	return env_expand_fail(c, "expected \"}\" or \":-\" after \"${%s\"", name);
}

/* Copies text and expands references until the end of the string or, when nested (inside a
 * default), until the '}' that closes it; *pp is left on that '}'. */
static int env_expand_span(struct env_ctx *c, const char **pp, int nested, int eval)
{
	const char *p = *pp;

	while (*p && !(nested && *p == '}')) {
		if (p[0] == '$' && p[1] == '{') {
			if (env_expand_ref(c, &p, eval) < 0)
				return -1;
			continue;
		}
		const char *lit = p++;
		while (*p && *p != '$' && !(nested && *p == '}'))
			p++;
		if (eval && env_expand_put(c, lit, (size_t)(p - lit)) < 0)
			return -1;
	}
	if (nested && *p != '}')
		return env_expand_fail(c, "unterminated \"${\" (missing \"}\")");
	*pp = p;
	return 0;
}

int env_expand(const char *in, char **out, char *errbuf, size_t errsize)
{
	struct env_ctx c = { .errbuf = errbuf, .errsize = errsize };
	const char *p = in;
	int rc = -1;

	*out = NULL;
	if (errsize)
		errbuf[0] = '\0';
	if (env_expand_put(&c, "", 0) < 0) /* so an empty result is still a string */
		goto cleanup;
	if (env_expand_span(&c, &p, 0, 1) < 0)
		goto cleanup;
	*out = c.out.data;
	c.out.data = NULL; /* now owned by the caller */
	rc = 0;
cleanup:
	free(c.out.data);
	return rc;
}
