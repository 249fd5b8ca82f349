#include <libpq-fe.h>

#include "commands.h"
#include "log.h"
#include "migrate.h"

int cmd_migrate(const struct config *cfg)
{
	char errbuf[1024];
	const char *keys[] = { "dbname", NULL };
	const char *vals[] = { cfg->postgres.conninfo, NULL };
	PGconn *conn = PQconnectdbParams(keys, vals, 1);
	int rc = EXIT_OK;

	if (PQstatus(conn) != CONNECTION_OK) {
		log_error("migrate_failed", LOG_S("error", PQerrorMessage(conn)));
		rc = EXIT_FAILURE_RUNTIME;
		goto cleanup;
	}
	int applied = migrate_apply(conn, errbuf, sizeof errbuf);
	if (applied < 0) {
		log_error("migrate_failed", LOG_S("error", errbuf));
		rc = EXIT_FAILURE_RUNTIME;
		goto cleanup;
	}
	log_info("migrate_done", LOG_I("applied", applied),
		 LOG_I("known", (int64_t)migrations_count));
cleanup:
	PQfinish(conn);
	return rc;
}
