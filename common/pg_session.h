/* One PostgreSQL connection and what the worker needs around it: session settings, prepared
 * statements, errors captured as SQLSTATE + constraint + message, and reconnection. */
#ifndef AW_PG_SESSION_H
#define AW_PG_SESSION_H

#include <libpq-fe.h>
#include <stddef.h>

#define PG_ERROR_MESSAGE_MAX 1024 /* x-error-message is at most 1 KiB */

struct pg_error {
	char sqlstate[6];   /* "" when the server never answered (connection lost) */
	char constraint[128];
	char message[PG_ERROR_MESSAGE_MAX + 1];
};

struct pg_statement {
	const char *name;
	const char *sql;
};

struct pg_session {
	PGconn *conn;
	const char *conninfo;              /* borrowed from the config; secret */
	int statement_timeout_ms;
	const char *application_name;      /* borrowed */
	const struct pg_statement *statements; /* prepared on every (re)connect */
	size_t nstatements;
};

/* Connects, applies the session settings and prepares the statements. Returns 0, or -1 with
 * err filled (an absent sqlstate means the server could not be reached). */
int pg_session_connect(struct pg_session *s, struct pg_error *err);
/* True when the connection is usable for the next request. */
int pg_session_healthy(const struct pg_session *s);
void pg_session_close(struct pg_session *s);

/* Fills err from its parts (any may be NULL), shaped for headers and logs. */
void pg_error_fill(struct pg_error *err, const char *sqlstate, const char *constraint,
		   const char *message);
/* Fills err from a failed result (r may be NULL: then from the connection). */
void pg_error_set(struct pg_error *err, PGconn *conn, const PGresult *r);
void pg_error_setf(struct pg_error *err, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
