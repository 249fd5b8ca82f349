#include "migrate.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

/* Any constant works; it only has to be the same for every worker. */
#define MIGRATE_LOCK_KEY "7431902284410125"

static int exec_ok(PGconn *conn, const char *sql, char *errbuf, size_t errsize)
{
	PGresult *r = PQexec(conn, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		snprintf(errbuf, errsize, "%s", PQerrorMessage(conn));
	PQclear(r);
	return ok ? 0 : -1;
}

static int is_applied(PGconn *conn, const char *name, char *errbuf, size_t errsize)
{
	const char *params[1] = { name };
	PGresult *r = PQexecParams(conn, "SELECT 1 FROM schema_migrations WHERE name = $1", 1,
				   NULL, params, NULL, NULL, 0);
	int rc;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(errbuf, errsize, "%s", PQerrorMessage(conn));
		rc = -1;
	} else {
		rc = PQntuples(r) > 0;
	}
	PQclear(r);
	return rc;
}

static int apply_one(PGconn *conn, const struct migration *m, char *errbuf, size_t errsize)
{
	const char *params[1] = { m->name };
	PGresult *r;

	if (exec_ok(conn, "BEGIN", errbuf, errsize) < 0)
		return -1;
	if (exec_ok(conn, m->sql, errbuf, errsize) < 0)
		goto rollback;
	r = PQexecParams(conn, "INSERT INTO schema_migrations (name) VALUES ($1)", 1, NULL, params,
			 NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(errbuf, errsize, "%s", PQerrorMessage(conn));
		PQclear(r);
		goto rollback;
	}
	PQclear(r);
	return exec_ok(conn, "COMMIT", errbuf, errsize);
rollback:
	PQclear(PQexec(conn, "ROLLBACK"));
	return -1;
}

int migrate_apply(PGconn *conn, char *errbuf, size_t errsize)
{
	int applied = 0;
	char lockerr[256];

	if (exec_ok(conn, "SET client_min_messages = warning", errbuf, errsize) < 0 ||
	    exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", errbuf, errsize) < 0)
		return -1;
	if (exec_ok(conn,
		    "CREATE TABLE IF NOT EXISTS schema_migrations ("
		    " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
		    errbuf, errsize) < 0) {
		applied = -1;
		goto unlock;
	}
	for (size_t i = 0; i < migrations_count; i++) {
		int done = is_applied(conn, migrations[i].name, errbuf, errsize);
		if (done < 0) {
			applied = -1;
			break;
		}
		if (done)
			continue;
		if (apply_one(conn, &migrations[i], errbuf, errsize) < 0) {
			char msg[1024];
			snprintf(msg, sizeof msg, "%s: %s", migrations[i].name, errbuf);
			snprintf(errbuf, errsize, "%s", msg);
			applied = -1;
			break;
		}
		log_info("migration_applied", LOG_S("migration", migrations[i].name));
		applied++;
	}
unlock:
	exec_ok(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", lockerr, sizeof lockerr);
	return applied;
}

int migrate_pending(PGconn *conn, char *errbuf, size_t errsize)
{
	int pending = 0;
	PGresult *r = PQexec(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(errbuf, errsize, "%s", PQerrorMessage(conn));
		PQclear(r);
		return -1;
	}
	int has_table = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	if (!has_table)
		return (int)migrations_count;
	for (size_t i = 0; i < migrations_count; i++) {
		int done = is_applied(conn, migrations[i].name, errbuf, errsize);
		if (done < 0)
			return -1;
		pending += !done;
	}
	return pending;
}
