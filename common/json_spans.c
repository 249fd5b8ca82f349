#include "json_spans.h"

#include <jansson.h>
#include <string.h>

struct cursor {
	const char *p, *end;
};

static void skip_ws(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

/* At the opening quote; leaves the cursor after the closing one. */
static void skip_string(struct cursor *c)
{
	for (c->p++; c->p < c->end; c->p++) {
		if (*c->p == '\\')
			c->p++;
		else if (*c->p == '"') {
			c->p++;
			return;
		}
	}
}

/* Any value: strings are skipped whole (a bracket inside one is text), containers by depth. */
static void skip_value(struct cursor *c)
{
	int depth = 0;

	do {
		if (c->p >= c->end)
			return;
		switch (*c->p) {
		case '"': skip_string(c); continue;
		case '{':
		case '[': depth++; break;
		case '}':
		case ']': depth--; break;
		default:
			if (depth == 0) { /* a scalar at the top: up to the next delimiter */
				while (c->p < c->end && !strchr(",}] \t\n\r", *c->p))
					c->p++;
				return;
			}
		}
		c->p++;
	} while (depth > 0);
}

/* Whether the key string at [start, end) (quotes included) names `key`. */
static int key_matches(const char *start, const char *end, const char *key)
{
	size_t n = (size_t)(end - start) - 2, klen = strlen(key);

	if (!memchr(start, '\\', (size_t)(end - start)))
		return n == klen && memcmp(start + 1, key, n) == 0;
	json_t *s = json_loadb(start, (size_t)(end - start), JSON_DECODE_ANY, NULL);
	int match = s && json_is_string(s) && json_string_length(s) == klen &&
		    memcmp(json_string_value(s), key, klen) == 0;
	json_decref(s);
	return match;
}

struct json_span json_span_member(const char *text, size_t len, const char *key)
{
	struct cursor c = { text, text + len };
	struct json_span none = { NULL, 0 };

	skip_ws(&c);
	if (c.p >= c.end || *c.p != '{')
		return none;
	c.p++;
	for (;;) {
		skip_ws(&c);
		if (c.p >= c.end || *c.p != '"')
			return none; /* '}' of an empty object, or the end */
		const char *kstart = c.p;
		skip_string(&c);
		const char *kend = c.p;
		skip_ws(&c);
		c.p++; /* ':' */
		skip_ws(&c);
		const char *vstart = c.p;
		skip_value(&c);
		if (key_matches(kstart, kend, key))
			return (struct json_span){ vstart, (size_t)(c.p - vstart) };
		skip_ws(&c);
		if (c.p >= c.end || *c.p != ',')
			return none;
		c.p++;
	}
}

int json_span_is_integer(struct json_span span)
{
	size_t i = 0;

	if (!span.start || span.len == 0)
		return 0;
	if (span.start[0] == '-')
		i++;
	if (i == span.len)
		return 0;
	for (; i < span.len; i++)
		if (span.start[i] < '0' || span.start[i] > '9')
			return 0;
	return 1;
}
