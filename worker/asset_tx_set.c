/* The batch in one call: BEGIN; SELECT * FROM asset_create_batch_v1(arrays); COMMIT, pipelined
 * with one Sync. The function (migrations/003_set_based_batches.sql) decides every request with
 * a fixed number of set-based statements and returns one row per request: an outcome, or the
 * refusal (SQLSTATE, constraint, message) of that request alone. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "asset_tx_paths.h"
#include "pg_array.h"

enum { NFIELDS = 14 };

/* The arrays, one per parameter, kept between batches: one batch runs at a time. */
static struct pg_array fields[NFIELDS];

/* 8-4-4-4-12 hex digits: a uuid whose cast cannot fail. */
static int plain_uuid(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++)
		if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* At most 18 digits: a bigint whose cast cannot fail. */
static int plain_int8(const char *s)
{
	size_t digits = strspn(s + (*s == '-'), "0123456789");
	return digits >= 1 && digits <= 18 && s[(*s == '-') + digits] == '\0';
}

static int by_request_id(const void *a, const void *b)
{
	const struct asset_tx_item *x = *(const struct asset_tx_item *const *)a;
	const struct asset_tx_item *y = *(const struct asset_tx_item *const *)b;
	int c = strcasecmp(x->req->request_id, y->req->request_id);
	return c ? c : (x < y ? -1 : x > y);
}

/* Which requests go alone through the per-request function (the p_alone of
 * asset_create_batch_v1): a value whose cast might fail, or a request_id an earlier request
 * of the batch has. Only a route: a request marked wrongly fails the set statement, and the
 * batch runs one by one. */
static void mark_alone(const struct asset_tx_item *items, size_t n, char *alone)
{
	const struct asset_tx_item **sorted = malloc(n * sizeof *sorted);
	size_t ns = 0;
	if (!sorted)
		abort();
	for (size_t i = 0; i < n; i++) {
		const struct asset_request *r = items[i].req;
		alone[i] = !r->request_id || !plain_uuid(r->request_id) || !r->tenant_id ||
			   !plain_uuid(r->tenant_id) || (r->folder_id && !plain_uuid(r->folder_id)) ||
			   (r->size_bytes && !plain_int8(r->size_bytes));
		if (!alone[i])
			sorted[ns++] = &items[i];
	}
	/* the same uuid in any letter case: all but the first in batch order */
	qsort(sorted, ns, sizeof *sorted, by_request_id);
	for (size_t k = 1; k < ns; k++)
		if (strcasecmp(sorted[k - 1]->req->request_id, sorted[k]->req->request_id) == 0)
			alone[sorted[k] - items] = 1;
	free(sorted);
}

static const char **build_params(const struct asset_tx_item *items, size_t n, int check)
{
	static const char *params[NFIELDS];
	char *alone = malloc(n ? n : 1);
	if (!alone)
		abort();
	mark_alone(items, n, alone);
	for (int f = 0; f < NFIELDS - 1; f++)
		pg_array_begin(&fields[f]);
	for (size_t i = 0; i < n; i++) {
		const struct asset_request *req = items[i].req;
		char partition[16], offset[24];
		snprintf(partition, sizeof partition, "%d", (int)items[i].src.partition);
		snprintf(offset, sizeof offset, "%lld", (long long)items[i].src.offset);
		const char *v[NFIELDS - 1] = { req->request_id, req->tenant_id, req->folder_id,
					   req->name, req->content_sha256, req->size_bytes,
					   req->mime_type, req->storage_uri, req->metadata,
					   items[i].src.topic, partition, offset,
					   alone[i] ? "t" : "f" };
		for (int f = 0; f < NFIELDS - 1; f++)
			pg_array_add(&fields[f], v[f]);
	}
	for (int f = 0; f < NFIELDS - 1; f++)
		params[f] = pg_array_end(&fields[f]);
	params[NFIELDS - 1] = check ? "t" : "f";
	free(alone);
	return params;
}

static int send_batch(PGconn *c, const struct asset_tx_item *items, size_t n, int check)
{
	const char **params = build_params(items, n, check);
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
		asset_tx_skip_rest(c);
	}
	int synced = asset_tx_read_sync(c, *status == SET_COMMITTED, err);
	if (!synced && *status == SET_COMMITTED)
		*status = SET_FAILED;
	return synced ? 0 : -1;
}

enum asset_tx_set_status asset_tx_set_run(struct pg_session *s, struct asset_tx_item *items,
					  size_t n, int check, struct pg_error *err)
{
	PGconn *c = s->conn;
	enum asset_tx_set_status status;

	if (!send_batch(c, items, n, check)) {
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
