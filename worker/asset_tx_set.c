/* The batch in one call: BEGIN; SELECT * FROM asset_create_batch_v1(arrays); COMMIT, pipelined
 * with one Sync. The function (migrations/003_set_based_batches.sql) decides every request with
 * a fixed number of set-based statements and returns one row per request: an outcome, or the
 * refusal (SQLSTATE, constraint, message) of that request alone. */
#include <stdio.h>
#include <stdlib.h>

#include "asset_tx_paths.h"
#include "pg_array.h"

enum { NFIELDS = 12 };

/* The arrays, one per parameter, kept between batches: one batch runs at a time. */
static struct pg_array fields[NFIELDS];

static const char **build_params(const struct asset_tx_item *items, size_t n)
{
	static const char *params[NFIELDS];
	for (int f = 0; f < NFIELDS; f++)
		pg_array_begin(&fields[f]);
	for (size_t i = 0; i < n; i++) {
		const struct asset_request *req = items[i].req;
		char partition[16], offset[24];
		snprintf(partition, sizeof partition, "%d", (int)items[i].src.partition);
		snprintf(offset, sizeof offset, "%lld", (long long)items[i].src.offset);
		const char *v[NFIELDS] = { req->request_id, req->tenant_id, req->folder_id,
					   req->name, req->content_sha256, req->size_bytes,
					   req->mime_type, req->storage_uri, req->metadata,
					   items[i].src.topic, partition, offset };
		for (int f = 0; f < NFIELDS; f++)
			pg_array_add(&fields[f], v[f]);
	}
	for (int f = 0; f < NFIELDS; f++)
		params[f] = pg_array_end(&fields[f]);
	return params;
}

static int send_batch(PGconn *c, const struct asset_tx_item *items, size_t n)
{
	const char **params = build_params(items, n);
	return PQenterPipelineMode(c) &&
	       PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) &&
	       PQsendQueryPrepared(c, STMT_CREATE_BATCH, NFIELDS, params, NULL, NULL, 0) &&
	       PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) && PQpipelineSync(c);
}

/* The rows of a committed batch into the items: exactly one per position, or -1. */
static int read_rows(const PGresult *r, struct asset_tx_item *items, size_t n)
{
	char *seen = calloc(n, 1);
	int ok = seen && PQnfields(r) == 6 && (size_t)PQntuples(r) == n;
	for (int row = 0; ok && row < PQntuples(r); row++) {
		long idx = strtol(PQgetvalue(r, row, 0), NULL, 10) - 1;
		ok = idx >= 0 && (size_t)idx < n && !seen[idx] &&
		     asset_tx_read_outcome(r, row, 1, &items[idx]) == 0;
		if (ok)
			seen[idx] = 1;
	}
	free(seen);
	return ok ? 0 : -1;
}

/* Reads BEGIN, the call, COMMIT and the sync; the first error decides. Returns -1 if the
 * connection broke before the sync. */
static int read_all(PGconn *c, struct asset_tx_item *items, size_t n,
		    enum asset_tx_set_status *status, struct pg_error *err)
{
	*status = SET_COMMITTED;
	for (int stmt = 0; stmt < 3; stmt++) {
		PGresult *r = PQgetResult(c);
		if (!r) {
			if (*status == SET_COMMITTED)
				pg_error_set(err, c, NULL);
			*status = SET_FAILED;
			return -1;
		}
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_FATAL_ERROR && *status == SET_COMMITTED) {
			pg_error_set(err, c, r);
			/* 1 is the call; BEGIN and COMMIT are nobody's fault */
			*status = stmt == 1 ? SET_REFUSED : SET_FAILED;
		} else if (stmt == 1 && st == PGRES_TUPLES_OK && read_rows(r, items, n) < 0) {
			/* The function checks this itself; should it ever not hold, what committed
			 * is not known for certain: settle nothing, run the batch again (replays
			 * resolve what did). */
			pg_error_setf(err, "", "asset_create_batch_v1 did not return one row per request");
			*status = SET_FAILED;
		}
		PQclear(r);
		while ((r = PQgetResult(c)) != NULL)
			PQclear(r);
	}
	PGresult *r = PQgetResult(c);
	int synced = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
	if (!synced && *status == SET_COMMITTED) {
		pg_error_set(err, c, r);
		*status = SET_FAILED;
	}
	PQclear(r);
	return synced ? 0 : -1;
}

enum asset_tx_set_status asset_tx_set_run(struct pg_session *s, struct asset_tx_item *items,
					  size_t n, struct pg_error *err)
{
	PGconn *c = s->conn;
	enum asset_tx_set_status status;

	if (!send_batch(c, items, n)) {
		pg_error_set(err, c, NULL);
		err->sqlstate[0] = '\0';
		pg_session_close(s);
		return SET_FAILED;
	}
	int synced = read_all(c, items, n, &status, err) == 0;
	if (asset_tx_end_pipeline(s, synced, err) < 0)
		return SET_FAILED;
	if (status == SET_FAILED && err->sqlstate[0] == '\0') {
		pg_session_close(s); /* see read_all: start from a clean session */
	}
	return status;
}
