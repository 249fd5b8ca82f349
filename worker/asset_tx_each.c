/* The batch request by request: BEGIN; asset_create_checked_v1(r1); ... (rN); COMMIT, pipelined
 * with one Sync. The checked function returns a refusal by the schema (22, 23) as a row, in a
 * subtransaction of its own; any other error aborts the rest of the pipeline and names its
 * request. */
#include <stdio.h>

#include "asset_tx_paths.h"

static int send_item(PGconn *c, const struct asset_tx_item *it)
{
	const struct asset_request *req = it->req;
	char partition[16], offset[24];
	snprintf(partition, sizeof partition, "%d", (int)it->src.partition);
	snprintf(offset, sizeof offset, "%lld", (long long)it->src.offset);
	const char *params[12] = { req->request_id, req->tenant_id, req->folder_id, req->name,
				   req->content_sha256, req->size_bytes, req->mime_type,
				   req->storage_uri, req->metadata, it->src.topic, partition, offset };
	return PQsendQueryPrepared(c, STMT_CREATE_ONE, 12, params, NULL, NULL, 0);
}

static int send_all(PGconn *c, const struct asset_tx_item *items, size_t n)
{
	if (!PQenterPipelineMode(c) ||
	    !PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!send_item(c, &items[i]))
			return 0;
	return PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) && PQpipelineSync(c);
}

/* Reads BEGIN, the n statements, COMMIT and the sync. Results come in order; each
 * statement's end with a NULL; after an error the rest are PGRES_PIPELINE_ABORTED. The
 * first error decides. Returns -1 if the connection broke before the sync. */
static int read_all(PGconn *c, struct asset_tx_item *items, size_t n,
		    enum asset_tx_status *status, size_t *failed, struct pg_error *err)
{
	*status = TX_COMMITTED;
	for (size_t stmt = 0; stmt < n + 2; stmt++) {
		PGresult *r = PQgetResult(c);
		if (!r) {
			if (*status == TX_COMMITTED)
				pg_error_set(err, c, NULL);
			*status = TX_FAILED;
			return -1;
		}
		ExecStatusType st = PQresultStatus(r);
		int item = stmt >= 1 && stmt <= n; /* 0 is BEGIN, n + 1 COMMIT: nobody's fault */
		if (st == PGRES_FATAL_ERROR && *status == TX_COMMITTED) {
			pg_error_set(err, c, r);
			*status = item ? TX_ITEM_FAILED : TX_FAILED;
			*failed = item ? stmt - 1 : 0;
		} else if (item && st == PGRES_TUPLES_OK && *status == TX_COMMITTED &&
			   (PQntuples(r) != 1 || asset_tx_read_outcome(r, 0, 0, &items[stmt - 1]) < 0)) {
			pg_error_setf(err, "XX000", "asset_create_checked_v1 returned %d rows or an "
				      "unknown outcome", PQntuples(r));
			*status = TX_ITEM_FAILED;
			*failed = stmt - 1;
		}
		PQclear(r);
		asset_tx_skip_rest(c);
	}
	int synced = asset_tx_read_sync(c, *status == TX_COMMITTED, err);
	if (!synced && *status == TX_COMMITTED)
		*status = TX_FAILED;
	return synced ? 0 : -1;
}

enum asset_tx_status asset_tx_each_run(struct pg_session *s, struct asset_tx_item *items,
				       size_t n, size_t *failed, struct pg_error *err)
{
	PGconn *c = s->conn;
	enum asset_tx_status status;

	if (!send_all(c, items, n)) {
		pg_error_set(err, c, NULL);
		err->sqlstate[0] = '\0';
		pg_session_close(s);
		return TX_FAILED;
	}
	int synced = read_all(c, items, n, &status, failed, err) == 0;
	if (asset_tx_end_pipeline(s, synced, err) < 0)
		return TX_FAILED;
	return status;
}
