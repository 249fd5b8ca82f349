#include "asset_tx.h"

#include <stdio.h>
#include <string.h>

#define STMT_CREATE "asset_create_v1"

const struct pg_statement asset_tx_statements[] = {
	{ STMT_CREATE,
	  "SELECT outcome, asset_id FROM asset_create_v1($1::uuid, $2::uuid, $3::uuid, $4::text,"
	  " $5::text, $6::bigint, $7::text, $8::text, $9::jsonb, $10::text, $11::integer,"
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

static int send_all(PGconn *c, const struct asset_request *req, const struct asset_source *src)
{
	char partition[16], offset[24];
	snprintf(partition, sizeof partition, "%d", (int)src->partition);
	snprintf(offset, sizeof offset, "%lld", (long long)src->offset);
	const char *params[12] = { req->request_id, req->tenant_id, req->folder_id, req->name,
				   req->content_sha256, req->size_bytes, req->mime_type,
				   req->storage_uri, req->metadata, src->topic, partition, offset };

	return PQenterPipelineMode(c) &&
	       PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) &&
	       PQsendQueryPrepared(c, STMT_CREATE, 12, params, NULL, NULL, 0) &&
	       PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) &&
	       PQpipelineSync(c);
}

/* Reads the three statement results and the sync. Keeps the first error. */
static int read_all(PGconn *c, enum asset_outcome *outcome, char asset_id[37],
		    struct pg_error *err)
{
	int failed = 0, got_row = 0;

	for (int stmt = 0; stmt < 3; stmt++) {
		PGresult *r = PQgetResult(c);
		if (!r) {
			if (!failed)
				pg_error_set(err, c, NULL);
			return -1; /* connection gone: no sync will come */
		}
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_FATAL_ERROR && !failed) {
			pg_error_set(err, c, r);
			failed = 1;
		} else if (stmt == 1 && st == PGRES_TUPLES_OK && PQntuples(r) == 1) {
			const char *o = PQgetvalue(r, 0, 0);
			*outcome = strcmp(o, "created") == 0     ? OUTCOME_CREATED
				   : strcmp(o, "duplicate") == 0 ? OUTCOME_DUPLICATE
								 : OUTCOME_REPLAYED;
			snprintf(asset_id, 37, "%s", PQgetvalue(r, 0, 1));
			got_row = 1;
		}
		PQclear(r);
		/* Each statement's results end with a NULL; an aborted one has just the status. */
		while ((r = PQgetResult(c)) != NULL) {
			if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
				PQclear(r);
				goto synced;
			}
			PQclear(r);
		}
	}
	PGresult *r = PQgetResult(c);
	if (!r || PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
		if (!failed)
			pg_error_set(err, c, r);
		PQclear(r);
		return -1;
	}
	PQclear(r);
synced:
	if (!failed && !got_row) {
		pg_error_setf(err, "XX000", "asset_create_v1 returned no row");
		failed = 1;
	}
	return failed ? -1 : 0;
}

int asset_tx_run(struct pg_session *s, const struct asset_request *req,
		 const struct asset_source *src, enum asset_outcome *outcome, char asset_id[37],
		 struct pg_error *err)
{
	PGconn *c = s->conn;
	int rc;

	memset(err, 0, sizeof *err);
	if (!c || PQstatus(c) != CONNECTION_OK) {
		pg_error_setf(err, "", "not connected");
		return -1;
	}
	if (!send_all(c, req, src)) {
		pg_error_set(err, c, NULL);
		pg_session_close(s);
		return -1;
	}
	rc = read_all(c, outcome, asset_id, err);
	if (PQstatus(c) != CONNECTION_OK) {
		/* The server never answered the COMMIT, or went away before: the outcome is
		 * unknown, so the caller retries and the request_id check resolves it. */
		err->sqlstate[0] = '\0';
		pg_session_close(s);
		return -1;
	}
	if (!PQexitPipelineMode(c)) {
		/* Results left unread would be taken for the next request's: start afresh. */
		if (rc == 0)
			pg_error_setf(err, "", "could not leave pipeline mode: %s", PQerrorMessage(c));
		pg_session_close(s);
		return -1;
	}
	/* The failed statement left the transaction aborted: roll back now, not later. */
	if (PQtransactionStatus(c) != PQTRANS_IDLE) {
		PGresult *r = PQexec(c, "ROLLBACK");
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		if (!ok || PQtransactionStatus(c) != PQTRANS_IDLE)
			pg_session_close(s);
	}
	return rc;
}
