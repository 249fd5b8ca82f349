/* Decoding of the asset.create v1 message (SPEC section 2).
 *
 * The decoder checks only what JSON can say: that the value is a UTF-8 JSON object, that each
 * known field has the right JSON type, and the type/version. Values (uuid syntax, lengths,
 * ranges, presence of required fields) are left to PostgreSQL, the single authority, so the
 * dead letter names the real constraint. */
#ifndef AW_ASSET_MESSAGE_H
#define AW_ASSET_MESSAGE_H

#include <stddef.h>

#define ASSET_MESSAGE_TYPE "asset.create"
#define ASSET_MESSAGE_VERSION 1

enum decode_status {
	DECODE_OK,
	DECODE_MALFORMED,   /* not UTF-8 JSON, not an object, a field of the wrong JSON type */
	DECODE_UNSUPPORTED, /* well-formed, but an unknown type or version */
};

/* Field values as PostgreSQL text parameters; NULL means SQL NULL (absent or JSON null).
 * The strings point into `doc` (or `owned_*`) and live until asset_request_clear. */
struct asset_request {
	const char *request_id;
	const char *tenant_id;
	const char *folder_id;
	const char *name;
	const char *content_sha256;
	const char *size_bytes;
	const char *mime_type;
	const char *storage_uri;
	const char *metadata;
	void *doc;              /* json_t *, the parsed document */
	char *owned_size_bytes; /* size_bytes: the producer's digits */
	char *owned_metadata;   /* metadata: the producer's JSON text of the object */
};

/* Decodes `len` bytes. On DECODE_OK `out` holds the request (clear it with
 * asset_request_clear). Otherwise `reason` says what is wrong, for x-error-message; any
 * request_id that could be read is still set in `out` for the logs. */
enum decode_status asset_message_decode(const void *value, size_t len, struct asset_request *out,
					char *reason, size_t reasonsz);

void asset_request_clear(struct asset_request *req);

#endif
