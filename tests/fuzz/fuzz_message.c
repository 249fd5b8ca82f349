/* libFuzzer target: asset.create decoding must never crash, leak, or produce a reason that is
 * not clean UTF-8 text, whatever the bytes of the Kafka value. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "asset_message.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct asset_request req;
	char reason[512], clean[512];
	enum decode_status st = asset_message_decode(data, size, &req, reason, sizeof reason);

	if (st != DECODE_OK && reason[0] == '\0')
		abort(); /* a rejection must say why */
	memcpy(clean, reason, sizeof clean);
	utf8_sanitize(clean);
	if (strcmp(clean, reason) != 0)
		abort(); /* x-error-message must be UTF-8 text without control characters */
	asset_request_clear(&req);
	return 0;
}
