/* Where the value of each member of a JSON object lies in the text the producer sent.
 *
 * Jansson checks a document and gives its values, but numbers come back as C int64 or
 * double: a metadata number such as 19.99 or 123456789012345678901234567890 would be
 * rewritten. The worker passes such values to PostgreSQL as the producer's own text, and
 * this finds that text. It walks only a document Jansson has already accepted (valid JSON,
 * valid UTF-8), so it checks nothing itself. */
#ifndef AW_JSON_SPANS_H
#define AW_JSON_SPANS_H

#include <stddef.h>

struct json_span {
	const char *start; /* NULL: no such member */
	size_t len;
};

/* Finds the member `key` of the top-level object in `text` (`len` bytes, a JSON object that
 * Jansson accepted). A key written with escapes ("size\u005fbytes") is matched by its value. */
struct json_span json_span_member(const char *text, size_t len, const char *key);

/* Whether a number's text is an integer literal: an optional minus and digits only. */
int json_span_is_integer(struct json_span span);

#endif
