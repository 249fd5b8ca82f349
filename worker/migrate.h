/* Schema migrations: worker/migrations/NNN_*.sql, compiled in (embed.cmake), applied in name
 * order, each once, each in its own transaction, under an advisory lock so that several
 * workers or operators running `worker migrate` at once do not collide. */
#ifndef AW_MIGRATE_H
#define AW_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

struct migration {
	const char *name;
	const char *sql;
};

extern const struct migration migrations[];
extern const size_t migrations_count;

/* Applies what is missing. Returns the number applied (>= 0), or -1 with errbuf set. */
int migrate_apply(PGconn *conn, char *errbuf, size_t errsize);

/* Returns how many migrations are not yet applied (0 = up to date), or -1 with errbuf set. */
int migrate_pending(PGconn *conn, char *errbuf, size_t errsize);

#endif
