#include "sqlstate.h"

#include <string.h>

/* Exact codes first, then two-character classes. First match wins. */
static const struct {
	const char *code; /* 5 chars exact, or 2 chars for a class */
	struct error_class cls;
} rules[] = {
	{ "23505", { ACTION_REQUEUE, "unique_violation" } },
	{ "23502", { ACTION_DEAD_LETTER, "not_null_violation" } },
	{ "23503", { ACTION_DEAD_LETTER, "foreign_key_violation" } },
	{ "23514", { ACTION_DEAD_LETTER, "check_violation" } },
	{ "23P01", { ACTION_DEAD_LETTER, "exclusion_violation" } },
	{ "23", { ACTION_DEAD_LETTER, "integrity_violation" } },
	{ "22", { ACTION_DEAD_LETTER, "data_exception" } },
	/* Transient: the request is fine, the database is not (yet). */
	{ "08", { ACTION_RETRY_IN_PLACE, "connection_exception" } },
	{ "40001", { ACTION_RETRY_IN_PLACE, "serialization_failure" } },
	{ "40P01", { ACTION_RETRY_IN_PLACE, "deadlock_detected" } },
	{ "53300", { ACTION_RETRY_IN_PLACE, "too_many_connections" } },
	{ "57P01", { ACTION_RETRY_IN_PLACE, "admin_shutdown" } },
	{ "57P02", { ACTION_RETRY_IN_PLACE, "crash_shutdown" } },
	{ "57P03", { ACTION_RETRY_IN_PLACE, "cannot_connect_now" } },
	{ "57014", { ACTION_RETRY_IN_PLACE, "query_canceled" } },
};

struct error_class classify_sqlstate(const char *sqlstate)
{
	if (!sqlstate || strlen(sqlstate) != 5)
		return (struct error_class){ ACTION_RETRY_IN_PLACE, "connection_lost" };
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
		size_t n = strlen(rules[i].code);
		if (strncmp(sqlstate, rules[i].code, n) == 0)
			return rules[i].cls;
	}
	return (struct error_class){ ACTION_DEAD_LETTER, ERROR_CLASS_DATABASE };
}
