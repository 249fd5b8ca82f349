/* The two ways asset_tx runs a batch (asset_tx.h is the interface; this is between its files):
 *
 *   set   asset_tx_set.c: one call of asset_create_batch_v1 with the batch as arrays, a fixed
 *         number of set-based statements; the common case.
 *   each  asset_tx_each.c: one asset_create_checked_v1 per request, pipelined; when the set
 *         statement was refused as a whole, it finds which request the database refuses. */
#ifndef AW_ASSET_TX_PATHS_H
#define AW_ASSET_TX_PATHS_H

#include "asset_tx.h"

#define STMT_CREATE_BATCH "asset_create_batch_v1"
#define STMT_CREATE_ONE "asset_create_checked_v1"

enum asset_tx_set_status {
	SET_COMMITTED, /* as TX_COMMITTED */
	SET_REFUSED,   /* the statement failed with err's SQLSTATE; rolled back, session clean */
	SET_FAILED,    /* as TX_FAILED */
};

/* check: judge every request by the schema's constraints before the set statement (those it
 * would refuse go alone); without, a refusal fails the whole call (SET_REFUSED). */
enum asset_tx_set_status asset_tx_set_run(struct pg_session *s, struct asset_tx_item *items,
					  size_t n, int check, struct pg_error *err);

enum asset_tx_status asset_tx_each_run(struct pg_session *s, struct asset_tx_item *items,
				       size_t n, size_t *failed, struct pg_error *err);

/* One result row (outcome, asset_id, error_sqlstate, error_constraint, error_message from
 * column `col` on) into the item. Returns -1 if the outcome is none the worker knows. */
int asset_tx_read_outcome(const PGresult *r, int row, int col, struct asset_tx_item *it);

/* After a statement's first result: reads its others, to the NULL that ends it. */
void asset_tx_skip_rest(PGconn *c);

/* Reads the pipeline's sync. Returns 1 if it came; if not, and `report`, err says why. */
int asset_tx_read_sync(PGconn *c, int report, struct pg_error *err);

/* Ends a pipelined transaction whose results were all read: the connection broke (`synced`
 * 0, or no longer OK), it could not leave pipeline mode, or a failed statement left the
 * transaction open (rolled back now). Returns 0 with the session idle and clean, or -1 with
 * it closed and err saying why (no SQLSTATE: the outcome of a COMMIT may be unknown). */
int asset_tx_end_pipeline(struct pg_session *s, int synced, struct pg_error *err);

#endif
