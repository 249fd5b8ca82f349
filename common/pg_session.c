#include "pg_session.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "utf8.h"

static void copy_trimmed(char *dst, size_t dstsz, const char *src)
{
	size_t n;
	snprintf(dst, dstsz, "%s", src ? src : "");
	n = strlen(dst);
	while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == ' '))
		dst[--n] = '\0';
}

/* The one place errors are shaped for headers and logs: trimmed, UTF-8 text without
 * control characters, the message cut at PG_ERROR_MESSAGE_MAX on a character boundary. */
void pg_error_fill(struct pg_error *err, const char *sqlstate, const char *constraint,
		   const char *message)
{
	char full[4 * PG_ERROR_MESSAGE_MAX];

	memset(err, 0, sizeof *err);
	if (sqlstate && strlen(sqlstate) == 5)
		memcpy(err->sqlstate, sqlstate, 6);
	copy_trimmed(err->constraint, sizeof err->constraint, constraint);
	utf8_sanitize(err->constraint);
	copy_trimmed(full, sizeof full, message);
	/* A cut inside `full` itself becomes '?'. */
	utf8_sanitize(full);
	utf8_truncate(full, PG_ERROR_MESSAGE_MAX);
	memcpy(err->message, full, strlen(full) + 1);
}

void pg_error_set(struct pg_error *err, PGconn *conn, const PGresult *r)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	/* libpq invents SQLSTATEs for some client-side failures; a lost connection has none. */
	if (conn && PQstatus(conn) == CONNECTION_BAD)
		state = NULL;
	if (!primary)
		primary = r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r)
			  : conn			 ? PQerrorMessage(conn)
							 : "no connection";
	pg_error_fill(err, state, r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL,
		      primary);
}

void pg_error_setf(struct pg_error *err, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;
	memset(err, 0, sizeof *err);
	snprintf(err->sqlstate, sizeof err->sqlstate, "%s", sqlstate ? sqlstate : "");
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
}

/* Server notices (e.g. "terminating connection due to immediate shutdown") go through the
 * logger: by default libpq prints them raw on stderr. */
static void notice_processor(void *arg, const char *message)
{
	char text[PG_ERROR_MESSAGE_MAX + 1];
	(void)arg;
	copy_trimmed(text, sizeof text, message);
	log_warn("database_notice", LOG_S("message", text));
}

static int exec_setting(struct pg_session *s, const char *sql, struct pg_error *err)
{
	PGresult *r = PQexec(s->conn, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		pg_error_set(err, s->conn, r);
	PQclear(r);
	return ok ? 0 : -1;
}

int pg_session_connect(struct pg_session *s, struct pg_error *err)
{
	char sql[256];
	/* Later keywords win: the operator's conninfo overrides our application_name and
	 * connect_timeout, but the worker needs UTF-8 (headers and logs are UTF-8). */
	/* Keepalives and tcp_user_timeout: a half-open connection fails in about a minute
	 * instead of blocking the worker for the kernel's 15. */
	const char *keys[] = { "application_name", "connect_timeout", "keepalives",
			       "keepalives_idle", "keepalives_interval", "keepalives_count",
			       "tcp_user_timeout", "dbname", "client_encoding", NULL };
	const char *vals[] = { s->application_name, "10", "1", "30", "10", "3", "60000",
			       s->conninfo, "UTF8", NULL };

	pg_session_close(s);
	/* expand_dbname = 1: the conninfo may be a URI or a key=value string. */
	s->conn = PQconnectdbParams(keys, vals, 1);
	if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
		pg_error_set(err, s->conn, NULL);
		goto fail;
	}
	PQsetNoticeProcessor(s->conn, notice_processor, NULL);
	snprintf(sql, sizeof sql, "SET statement_timeout = %d", s->statement_timeout_ms);
	if (exec_setting(s, sql, err) < 0)
		goto fail;
	for (size_t i = 0; i < s->nstatements; i++) {
		PGresult *r = PQprepare(s->conn, s->statements[i].name, s->statements[i].sql, 0,
					NULL);
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			pg_error_set(err, s->conn, r);
		PQclear(r);
		if (!ok)
			goto fail;
	}
	return 0;
fail:
	pg_session_close(s);
	return -1;
}

int pg_session_healthy(const struct pg_session *s)
{
	return s->conn && PQstatus(s->conn) == CONNECTION_OK &&
	       PQtransactionStatus(s->conn) == PQTRANS_IDLE;
}

void pg_session_close(struct pg_session *s)
{
	if (s && s->conn) {
		PQfinish(s->conn);
		s->conn = NULL;
	}
}
