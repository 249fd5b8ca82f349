#include "asset_tx.h"

#include <stdio.h>
#include <string.h>

#define STMT_CREATE "asset_create_checked_v1"

/* Values go as text and are cast inside the function, so a bad uuid or number is a refusal
 * of that request (a row), not an error of the statement. */
const struct pg_statement asset_tx_statements[] = {
	{ STMT_CREATE,
	  "SELECT outcome, asset_id, error_sqlstate, error_constraint, error_message"
	  " FROM asset_create_checked_v1($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::integer,"
	  " $12::bigint)" },
};
const size_t asset_tx_nstatements = sizeof asset_tx_statements / sizeof asset_tx_statements[0];

const char *asset_outcome_name(enum asset_outcome o)
{
	switch (o) {
	case OUTCOME_CREATED: return "created";
	case OUTCOME_DUPLICATE: return "duplicate";
	case OUTCOME_REPLAYED: return "replayed";
	}
	return "unknown";
}

static int send_item(PGconn *c, const struct asset_tx_item *it)
{
	const struct asset_request *req = it->req;
	char partition[16], offset[24];
	snprintf(partition, sizeof partition, "%d", (int)it->src.partition);
	snprintf(offset, sizeof offset, "%lld", (long long)it->src.offset);
	const char *params[12] = { req->request_id, req->tenant_id, req->folder_id, req->name,
				   req->content_sha256, req->size_bytes, req->mime_type,
				   req->storage_uri, req->metadata, it->src.topic, partition, offset };
	return PQsendQueryPrepared(c, STMT_CREATE, 12, params, NULL, NULL, 0);
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

static void read_row(const PGresult *r, struct asset_tx_item *it)
{
	if (!PQgetisnull(r, 0, 2)) {
		it->refused = 1;
		pg_error_fill(&it->err, PQgetvalue(r, 0, 2),
			      PQgetisnull(r, 0, 3) ? NULL : PQgetvalue(r, 0, 3),
			      PQgetvalue(r, 0, 4));
		return;
	}
	it->refused = 0;
	const char *o = PQgetvalue(r, 0, 0);
	it->outcome = strcmp(o, "created") == 0     ? OUTCOME_CREATED
		      : strcmp(o, "duplicate") == 0 ? OUTCOME_DUPLICATE
						    : OUTCOME_REPLAYED;
	snprintf(it->asset_id, sizeof it->asset_id, "%s", PQgetvalue(r, 0, 1));
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
		if (st == PGRES_FATAL_ERROR && *status == TX_COMMITTED) {
			pg_error_set(err, c, r);
			/* statement 0 is BEGIN, n + 1 is COMMIT: neither is an item's fault */
			if (stmt >= 1 && stmt <= n) {
				*status = TX_ITEM_FAILED;
				*failed = stmt - 1;
			} else {
				*status = TX_FAILED;
			}
		} else if (stmt >= 1 && stmt <= n && st == PGRES_TUPLES_OK && PQntuples(r) == 1) {
			read_row(r, &items[stmt - 1]);
		} else if (stmt >= 1 && stmt <= n && st == PGRES_TUPLES_OK &&
			   *status == TX_COMMITTED) {
			pg_error_setf(err, "XX000", "asset_create_v1 returned %d rows", PQntuples(r));
			*status = TX_ITEM_FAILED;
			*failed = stmt - 1;
		}
		PQclear(r);
		while ((r = PQgetResult(c)) != NULL)
			PQclear(r);
	}
	PGresult *r = PQgetResult(c);
	int synced = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
	if (!synced && *status == TX_COMMITTED) {
		pg_error_set(err, c, r);
		*status = TX_FAILED;
	}
	PQclear(r);
	return synced ? 0 : -1;
}

enum asset_tx_status asset_tx_run(struct pg_session *s, struct asset_tx_item *items, size_t n,
				  size_t *failed, struct pg_error *err)
{
	PGconn *c = s->conn;
	enum asset_tx_status status;

	memset(err, 0, sizeof *err);
	*failed = 0;
	if (!c || PQstatus(c) != CONNECTION_OK) {
		pg_error_setf(err, "", "not connected");
		return TX_FAILED;
	}
	if (!send_all(c, items, n)) {
		pg_error_set(err, c, NULL);
		err->sqlstate[0] = '\0';
		pg_session_close(s);
		return TX_FAILED;
	}
	int synced = read_all(c, items, n, &status, failed, err) == 0;
	if (!synced || PQstatus(c) != CONNECTION_OK) {
		/* The server went away, maybe during COMMIT: the outcome is unknown. The caller
		 * retries, and the request_id check resolves what did commit. */
		err->sqlstate[0] = '\0';
		pg_session_close(s);
		return TX_FAILED;
	}
	if (!PQexitPipelineMode(c)) {
		/* Results left unread would be taken for the next batch's: start afresh. */
		pg_error_setf(err, "", "could not leave pipeline mode: %s", PQerrorMessage(c));
		pg_session_close(s);
		return TX_FAILED;
	}
	/* A failed statement left the transaction aborted: roll back now, not later. */
	if (PQtransactionStatus(c) != PQTRANS_IDLE) {
		PGresult *r = PQexec(c, "ROLLBACK");
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		if (!ok || PQtransactionStatus(c) != PQTRANS_IDLE)
			pg_session_close(s);
	}
	return status;
}
