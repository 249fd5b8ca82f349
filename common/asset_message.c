#include "asset_message.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_spans.h"
#include "utf8.h"

enum field_kind { FIELD_STRING, FIELD_INTEGER, FIELD_OBJECT };

/* The message's fields after type and version. JSON null is SQL NULL for every field: a
 * required one then fails PostgreSQL's NOT NULL, which names the column. */
static const struct {
	const char *name;
	enum field_kind kind;
	size_t offset;
} fields[] = {
	{ "request_id", FIELD_STRING, offsetof(struct asset_request, request_id) },
	{ "tenant_id", FIELD_STRING, offsetof(struct asset_request, tenant_id) },
	{ "folder_id", FIELD_STRING, offsetof(struct asset_request, folder_id) },
	{ "name", FIELD_STRING, offsetof(struct asset_request, name) },
	{ "content_sha256", FIELD_STRING, offsetof(struct asset_request, content_sha256) },
	{ "size_bytes", FIELD_INTEGER, offsetof(struct asset_request, size_bytes) },
	{ "mime_type", FIELD_STRING, offsetof(struct asset_request, mime_type) },
	{ "storage_uri", FIELD_STRING, offsetof(struct asset_request, storage_uri) },
	{ "metadata", FIELD_OBJECT, offsetof(struct asset_request, metadata) },
};

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER: return "integer";
	case JSON_REAL: return "number";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	case JSON_NULL: return "null";
	}
	return "unknown";
}

static const char *kind_name(enum field_kind k)
{
	return k == FIELD_STRING ? "a string" : k == FIELD_INTEGER ? "an integer" : "an object";
}

/* Numbers are read as doubles (JSON_DECODE_INT_AS_REAL, so an integer of any size parses);
 * whether one is an integer, and its value, come from the producer's own text. */
static int is_integer(const json_t *v, struct json_span raw)
{
	return json_is_number(v) && json_span_is_integer(raw);
}

static enum decode_status check_type_version(json_t *doc, const char *text, size_t len,
					     char *reason, size_t reasonsz)
{
	struct json_span raw_version = json_span_member(text, len, "version");
	json_t *type = json_object_get(doc, "type");
	json_t *version = json_object_get(doc, "version");

	if (!type || !json_is_string(type)) {
		snprintf(reason, reasonsz, "field \"type\" %s", type ? "must be a string" : "is missing");
		return DECODE_MALFORMED;
	}
	if (strcmp(json_string_value(type), ASSET_MESSAGE_TYPE) != 0) {
		snprintf(reason, reasonsz, "unsupported type \"%.200s\" (expected \"%s\")",
			 json_string_value(type), ASSET_MESSAGE_TYPE);
		return DECODE_UNSUPPORTED;
	}
	if (!version || !is_integer(version, raw_version)) {
		snprintf(reason, reasonsz, "field \"version\" %s",
			 version ? "must be an integer" : "is missing");
		return DECODE_MALFORMED;
	}
	if (raw_version.len != 1 || raw_version.start[0] != '0' + ASSET_MESSAGE_VERSION) {
		snprintf(reason, reasonsz, "unsupported version %.*s of %s (expected %d)",
			 (int)(raw_version.len < 40 ? raw_version.len : 40), raw_version.start,
			 ASSET_MESSAGE_TYPE, ASSET_MESSAGE_VERSION);
		return DECODE_UNSUPPORTED;
	}
	return DECODE_OK;
}

/* A NUL-terminated copy of a value's text as the producer wrote it. */
static char *raw_copy(struct json_span raw)
{
	char *s = malloc(raw.len + 1);
	if (s) {
		memcpy(s, raw.start, raw.len);
		s[raw.len] = '\0';
	}
	return s;
}

static enum decode_status read_fields(json_t *doc, const char *text, size_t len,
				      struct asset_request *out, char *reason, size_t reasonsz)
{
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		json_t *v = json_object_get(doc, fields[i].name);
		const char **slot = (const char **)((char *)out + fields[i].offset);
		struct json_span raw;
		char **owned;
		if (!v || json_is_null(v))
			continue;
		switch (fields[i].kind) {
		case FIELD_STRING:
			if (!json_is_string(v))
				goto wrong_type;
			*slot = json_string_value(v);
			break;
		case FIELD_INTEGER:
		case FIELD_OBJECT:
			/* Passed on as the producer's text: PostgreSQL's casts (::bigint, ::jsonb)
			 * keep every digit, or refuse the value with its own SQLSTATE (22003). */
			raw = json_span_member(text, len, fields[i].name);
			if (fields[i].kind == FIELD_INTEGER ? !is_integer(v, raw) : !json_is_object(v))
				goto wrong_type;
			owned = fields[i].kind == FIELD_INTEGER ? &out->owned_size_bytes
								: &out->owned_metadata;
			*owned = raw_copy(raw);
			if (!*owned) {
				snprintf(reason, reasonsz, "out of memory reading field \"%s\"",
					 fields[i].name);
				return DECODE_MALFORMED;
			}
			*slot = *owned;
			break;
		}
		continue;
	wrong_type:
		snprintf(reason, reasonsz, "field \"%s\" must be %s, not %s", fields[i].name,
			 kind_name(fields[i].kind), json_type_name(v));
		return DECODE_MALFORMED;
	}
	return DECODE_OK;
}

static enum decode_status decode(const void *value, size_t len, struct asset_request *out,
				 char *reason, size_t reasonsz)
{
	json_error_t jerr;
	json_t *doc;
	enum decode_status st;

	memset(out, 0, sizeof *out);
	reason[0] = '\0';
	if (!value || len == 0) {
		snprintf(reason, reasonsz, "empty message value");
		return DECODE_MALFORMED;
	}
	/* Jansson validates UTF-8, rejects NUL (\u0000 and raw), numbers beyond a double's range
	 * (1e400) and nesting deeper than its parser limit; duplicate keys would make the meaning
	 * ambiguous. Integers of any size parse (as doubles, never used as values). */
	doc = json_loadb(value, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
	if (!doc) {
		snprintf(reason, reasonsz, "invalid JSON at line %d column %d: %s", jerr.line,
			 jerr.column, jerr.text);
		return DECODE_MALFORMED;
	}
	out->doc = doc;
	if (!json_is_object(doc)) {
		snprintf(reason, reasonsz, "message must be a JSON object, not %s",
			 json_type_name(doc));
		return DECODE_MALFORMED;
	}
	/* request_id first, so even a rejected message can be logged by it. */
	json_t *rid = json_object_get(doc, "request_id");
	if (rid && json_is_string(rid))
		out->request_id = json_string_value(rid);

	st = check_type_version(doc, value, len, reason, reasonsz);
	if (st != DECODE_OK)
		return st;
	return read_fields(doc, value, len, out, reason, reasonsz);
}

enum decode_status asset_message_decode(const void *value, size_t len, struct asset_request *out,
					char *reason, size_t reasonsz)
{
	enum decode_status st = decode(value, len, out, reason, reasonsz);
	/* The reason quotes parts of the input (jansson quotes the bad token): keep
	 * x-error-message valid UTF-8 text without control characters. */
	utf8_sanitize(reason);
	return st;
}

void asset_request_clear(struct asset_request *req)
{
	if (!req)
		return;
	free(req->owned_metadata);
	free(req->owned_size_bytes);
	json_decref((json_t *)req->doc);
	memset(req, 0, sizeof *req);
}
