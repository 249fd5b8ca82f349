/* The transaction: a batch of asset.create requests in one transaction, in one round trip.
 *
 *   BEGIN; SELECT * FROM asset_create_batch_v1(arrays); COMMIT;      -- pipelined, one Sync
 *
 * asset_create_batch_v1 (worker/migrations/003) decides the whole batch with a fixed number of
 * set-based statements: the idempotency check on request_id, the dedup on (tenant_id,
 * content_sha256) against the table and within the batch, the inserts. A request the schema
 * refuses (SQLSTATE class 22 or 23) or that lost a race (23505) comes back as a row of its
 * own: it is settled alone and the others commit.
 *
 * Should the set statement be refused as a whole, the batch runs again one request at a time
 * (asset_create_checked_v1, pipelined): there any error other than a refusal aborts the rest
 * of the pipeline, the transaction is rolled back at once, and the caller learns exactly which
 * request failed, settles or retries it, and runs the others again. Either way no request's
 * fate depends on another's, and the session is clean for the next batch (no 25P02 cascade). */
#ifndef AW_ASSET_TX_H
#define AW_ASSET_TX_H

#include <stddef.h>
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

struct asset_tx_item {
	const struct asset_request *req; /* borrowed */
	struct asset_source src;
	/* set when the batch commits */
	int refused;          /* the schema said no: `err` says why, nothing was written */
	enum asset_outcome outcome;
	char asset_id[37];
	struct pg_error err;
};

enum asset_tx_status {
	TX_COMMITTED,   /* every item committed (outcome set) or refused (err set) */
	TX_ITEM_FAILED, /* *failed is the item the database refused; nothing committed */
	TX_FAILED,      /* not one item's fault (connection lost, COMMIT refused): nothing
			 * committed, or unknown if the connection died during COMMIT */
};

/* Most requests in one transaction. The set path has no subtransaction per request; only a
 * batch run one by one (asset_tx_paths.h) has, and beyond 64 per transaction PostgreSQL's
 * subtransaction cache overflows (PGPROC_MAX_CACHED_SUBXIDS) for that transaction. */
#define ASSET_TX_BATCH_MAX 1000

extern const struct pg_statement asset_tx_statements[];
extern const size_t asset_tx_nstatements;

/* Runs items[0..n) in one transaction. After anything but TX_COMMITTED the transaction is
 * rolled back and the session is idle and clean, or closed (then err has no SQLSTATE). */
enum asset_tx_status asset_tx_run(struct pg_session *s, struct asset_tx_item *items, size_t n,
				  size_t *failed, struct pg_error *err);

const char *asset_outcome_name(enum asset_outcome o);

#endif
