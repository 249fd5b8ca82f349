#include "asset_tx.h"

#include <stdio.h>
#include <string.h>

#include "asset_tx_paths.h"
#include "log.h"
#include "metrics.h"

/* Values go as text and are cast inside the functions, so a bad uuid or number is a refusal
 * of that request (a row), not an error of the statement. */
const struct pg_statement asset_tx_statements[] = {
	{ STMT_CREATE_BATCH,
	  "SELECT r_idx, r_outcome, r_asset_id, r_sqlstate, r_constraint, r_message"
	  " FROM asset_create_batch_v1($1::text[], $2::text[], $3::text[], $4::text[],"
	  " $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],"
	  " $11::integer[], $12::bigint[], $13::boolean[], $14::boolean)" },
	{ STMT_CREATE_ONE,
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

int asset_tx_read_outcome(const PGresult *r, int row, int col, struct asset_tx_item *it)
{
	if (!PQgetisnull(r, row, col + 2)) {
		it->refused = 1;
		pg_error_fill(&it->err, PQgetvalue(r, row, col + 2),
			      PQgetisnull(r, row, col + 3) ? NULL : PQgetvalue(r, row, col + 3),
			      PQgetvalue(r, row, col + 4));
		return 0;
	}
	const char *o = PQgetvalue(r, row, col);
	it->refused = 0;
	if (strcmp(o, "created") == 0)
		it->outcome = OUTCOME_CREATED;
	else if (strcmp(o, "duplicate") == 0)
		it->outcome = OUTCOME_DUPLICATE;
	else if (strcmp(o, "replayed") == 0)
		it->outcome = OUTCOME_REPLAYED;
	else
		return -1;
	snprintf(it->asset_id, sizeof it->asset_id, "%s", PQgetvalue(r, row, col + 1));
	return 0;
}

void asset_tx_skip_rest(PGconn *c)
{
	PGresult *r;
	while ((r = PQgetResult(c)) != NULL)
		PQclear(r);
}

int asset_tx_read_sync(PGconn *c, int report, struct pg_error *err)
{
	PGresult *r = PQgetResult(c);
	int synced = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
	if (!synced && report)
		pg_error_set(err, c, r);
	PQclear(r);
	return synced;
}

int asset_tx_end_pipeline(struct pg_session *s, int synced, struct pg_error *err)
{
	PGconn *c = s->conn;

	if (!synced || PQstatus(c) != CONNECTION_OK) {
		/* The server went away, maybe during COMMIT: the outcome is unknown. The caller
		 * retries, and the request_id check resolves what did commit. */
		err->sqlstate[0] = '\0';
		pg_session_close(s);
		return -1;
	}
	if (!PQexitPipelineMode(c)) {
		/* Results left unread would be taken for the next batch's: start afresh. */
		pg_error_setf(err, "", "could not leave pipeline mode: %s", PQerrorMessage(c));
		pg_session_close(s);
		return -1;
	}
	/* A failed statement left the transaction aborted: roll back now, not later. */
	if (PQtransactionStatus(c) != PQTRANS_IDLE) {
		PGresult *r = PQexec(c, "ROLLBACK");
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		if (!ok || PQtransactionStatus(c) != PQTRANS_IDLE) {
			pg_session_close(s);
			return -1;
		}
	}
	return 0;
}

/* Whether the next batch runs the set path with the refusal check (asset_tx_paths.h): it
 * costs about a sixth of a batch, and a refusal met without it costs the batch twice. So: with
 * the check after a batch that held a refusal, without while none come. One batch runs at a
 * time, so this is the worker's, not a batch's. */
static int check_next = 1;

static int any_refused(const struct asset_tx_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (items[i].refused)
			return 1;
	return 0;
}

/* Integrity (23) or data (22): what the schema refuses, as asset_create_checked_v1 catches. */
static int schema_refused(const struct pg_error *err)
{
	return err->sqlstate[0] == '2' && (err->sqlstate[1] == '2' || err->sqlstate[1] == '3');
}

enum asset_tx_status asset_tx_run(struct pg_session *s, struct asset_tx_item *items, size_t n,
				  size_t *failed, struct pg_error *err)
{
	memset(err, 0, sizeof *err);
	*failed = 0;
	if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
		pg_error_setf(err, "", "not connected");
		return TX_FAILED;
	}
	/* Alone, a request gains nothing from the set path, and its failure would cost two
	 * tries instead of one. */
	if (n == 1) {
		metrics_count_batch(METRICS_BATCH_ONE_BY_ONE);
		return asset_tx_each_run(s, items, n, failed, err);
	}
	metrics_count_batch(check_next ? METRICS_BATCH_SET_CHECKED : METRICS_BATCH_SET);
	enum asset_tx_set_status st = asset_tx_set_run(s, items, n, check_next, err);
	if (st == SET_REFUSED && !check_next && schema_refused(err)) {
		/* A refusal met without the check: once more with it. */
		memset(err, 0, sizeof *err);
		check_next = 1;
		metrics_count_batch(METRICS_BATCH_SET_CHECKED);
		st = asset_tx_set_run(s, items, n, 1, err);
	}
	switch (st) {
	case SET_COMMITTED:
		check_next = any_refused(items, n);
		return TX_COMMITTED;
	case SET_FAILED: return TX_FAILED;
	case SET_REFUSED: break;
	}
	/* Refused as a whole by something the set path does not foresee (a constraint beyond its
	 * predicate, a value its form test let through, a lock or a timeout): run the batch
	 * request by request, which names the request at fault. Slower, never wrong. */
	log_info("batch_run_one_by_one", LOG_S("sqlstate", err->sqlstate),
		 LOG_S("error", err->message), LOG_I("requests", (int64_t)n));
	memset(err, 0, sizeof *err);
	metrics_count_batch(METRICS_BATCH_ONE_BY_ONE);
	return asset_tx_each_run(s, items, n, failed, err);
}
