#include "asset_message.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static enum decode_status check_type_version(json_t *doc, char *reason, size_t reasonsz)
{
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
	if (!version || !json_is_integer(version)) {
		snprintf(reason, reasonsz, "field \"version\" %s",
			 version ? "must be an integer" : "is missing");
		return DECODE_MALFORMED;
	}
	if (json_integer_value(version) != ASSET_MESSAGE_VERSION) {
		snprintf(reason, reasonsz, "unsupported version %lld of %s (expected %d)",
			 (long long)json_integer_value(version), ASSET_MESSAGE_TYPE,
			 ASSET_MESSAGE_VERSION);
		return DECODE_UNSUPPORTED;
	}
	return DECODE_OK;
}

static enum decode_status read_fields(json_t *doc, struct asset_request *out, char *reason,
				      size_t reasonsz)
{
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		json_t *v = json_object_get(doc, fields[i].name);
		const char **slot = (const char **)((char *)out + fields[i].offset);
		if (!v || json_is_null(v))
			continue;
		switch (fields[i].kind) {
		case FIELD_STRING:
			if (!json_is_string(v))
				goto wrong_type;
			*slot = json_string_value(v);
			break;
		case FIELD_INTEGER:
			if (!json_is_integer(v))
				goto wrong_type;
			snprintf(out->size_buf, sizeof out->size_buf, "%lld",
				 (long long)json_integer_value(v));
			*slot = out->size_buf;
			break;
		case FIELD_OBJECT:
			if (!json_is_object(v))
				goto wrong_type;
			out->owned_metadata = json_dumps(v, JSON_COMPACT);
			if (!out->owned_metadata) {
				snprintf(reason, reasonsz, "field \"%s\" cannot be serialized",
					 fields[i].name);
				return DECODE_MALFORMED;
			}
			*slot = out->owned_metadata;
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
	/* Jansson validates UTF-8, rejects NUL (\u0000 and raw), integers beyond int64 and
	 * nesting deeper than its parser limit; duplicate keys would make the meaning ambiguous. */
	doc = json_loadb(value, len, JSON_REJECT_DUPLICATES, &jerr);
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

	st = check_type_version(doc, reason, reasonsz);
	if (st != DECODE_OK)
		return st;
	return read_fields(doc, out, reason, reasonsz);
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
	json_decref((json_t *)req->doc);
	memset(req, 0, sizeof *req);
}
