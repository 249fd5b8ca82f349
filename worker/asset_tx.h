/* The transaction: one asset.create request, in its own transaction, in one round trip.
 *
 *   BEGIN; SELECT asset_create_v1(...); COMMIT;   -- pipelined, then Sync
 *
 * asset_create_v1 (worker/migrations) does the idempotency check on request_id, the dedup
 * lookup on (tenant_id, content_sha256), the insert and the asset_requests row. On any error
 * the transaction is rolled back before this returns, so the session is clean for the next
 * request: one bad request never poisons another (no 25P02 cascade). */
#ifndef AW_ASSET_TX_H
#define AW_ASSET_TX_H

#include <stdint.h>

#include "asset_message.h"
#include "pg_session.h"

enum asset_outcome { OUTCOME_CREATED, OUTCOME_DUPLICATE, OUTCOME_REPLAYED };

/* Where the request first arrived (x-original-* on a requeued record). */
struct asset_source {
	const char *topic;
	int32_t partition;
	int64_t offset;
};

extern const struct pg_statement asset_tx_statements[];
extern const size_t asset_tx_nstatements;

/* Returns 0 with *outcome and asset_id (36 chars + NUL) set, or -1 with err filled; after -1
 * the session is either idle and clean or closed (then err has no SQLSTATE). */
int asset_tx_run(struct pg_session *s, const struct asset_request *req,
		 const struct asset_source *src, enum asset_outcome *outcome, char asset_id[37],
		 struct pg_error *err);

const char *asset_outcome_name(enum asset_outcome o);

#endif
