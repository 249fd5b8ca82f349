#include "sqlstate.h"

#include <stdio.h>
#include <string.h>

/* Exact codes first, then two-character classes. First match wins. */
static const struct {
	const char *code; /* 5 chars exact, or 2 chars for a class */
	struct error_class cls;
} rules[] = {
	{ "23505", { ACTION_REQUEUE, "unique_violation", 0 } },
	{ "23502", { ACTION_DEAD_LETTER, "not_null_violation", 0 } },
	{ "23503", { ACTION_DEAD_LETTER, "foreign_key_violation", 0 } },
	{ "23514", { ACTION_DEAD_LETTER, "check_violation", 0 } },
	{ "23P01", { ACTION_DEAD_LETTER, "exclusion_violation", 0 } },
	{ "23", { ACTION_DEAD_LETTER, "integrity_violation", 0 } },
	{ "22", { ACTION_DEAD_LETTER, "data_exception", 0 } },
	/* Transient: the request is fine, the database is not (yet). Where the connection is
	 * at fault (gone, shut down, a standby after a failover), a new one is opened. */
	{ "08", { ACTION_RETRY_IN_PLACE, "connection_exception", 1 } },
	{ "25006", { ACTION_RETRY_IN_PLACE, "read_only_sql_transaction", 1 } },
	{ "40001", { ACTION_RETRY_IN_PLACE, "serialization_failure", 0 } },
	{ "40P01", { ACTION_RETRY_IN_PLACE, "deadlock_detected", 0 } },
	{ "40003", { ACTION_RETRY_IN_PLACE, "statement_completion_unknown", 1 } },
	{ "53300", { ACTION_RETRY_IN_PLACE, "too_many_connections", 1 } },
	{ "53", { ACTION_RETRY_IN_PLACE, "insufficient_resources", 0 } },
	{ "55P03", { ACTION_RETRY_IN_PLACE, "lock_not_available", 0 } },
	{ "57P01", { ACTION_RETRY_IN_PLACE, "admin_shutdown", 1 } },
	{ "57P02", { ACTION_RETRY_IN_PLACE, "crash_shutdown", 1 } },
	{ "57P03", { ACTION_RETRY_IN_PLACE, "cannot_connect_now", 1 } },
	{ "57P05", { ACTION_RETRY_IN_PLACE, "idle_session_timeout", 1 } },
	{ "57014", { ACTION_RETRY_IN_PLACE, "query_canceled", 0 } },
	{ "58000", { ACTION_RETRY_IN_PLACE, "system_error", 0 } },
	{ "58030", { ACTION_RETRY_IN_PLACE, "io_error", 0 } },
};

static const struct {
	const char *name;
	enum error_action action;
} actions[] = {
	{ "transient", ACTION_RETRY_IN_PLACE },
	{ "requeue", ACTION_REQUEUE },
	{ "dead_letter", ACTION_DEAD_LETTER },
};

static struct error_class builtin(const char *sqlstate)
{
	if (!sqlstate || strlen(sqlstate) != 5)
		return (struct error_class){ ACTION_RETRY_IN_PLACE, "connection_lost", 1 };
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
		size_t n = strlen(rules[i].code);
		if (strncmp(sqlstate, rules[i].code, n) == 0)
			return rules[i].cls;
	}
	return (struct error_class){ ACTION_DEAD_LETTER, ERROR_CLASS_DATABASE, 0 };
}

/* The operator's action for sqlstate: 1 and *action set when an override applies. */
static int overridden(const char *sqlstate, const struct config_property *ov, size_t nov,
		      enum error_action *action)
{
	for (size_t pass = 0; pass < 2; pass++) /* exact codes, then classes */
		for (size_t i = 0; i < nov; i++) {
			size_t n = strlen(ov[i].key);
			if (n != (pass ? 2u : 5u) || strncmp(sqlstate, ov[i].key, n) != 0)
				continue;
			for (size_t a = 0; a < sizeof actions / sizeof actions[0]; a++)
				if (strcmp(ov[i].value, actions[a].name) == 0) {
					*action = actions[a].action;
					return 1;
				}
		}
	return 0;
}

struct error_class classify_sqlstate(const char *sqlstate, const struct config_property *ov,
				     size_t nov)
{
	struct error_class cls = builtin(sqlstate);
	enum error_action action;

	if (sqlstate && strlen(sqlstate) == 5 && overridden(sqlstate, ov, nov, &action))
		cls.action = action;
	return cls;
}

int classify_override_check(const char *code, const char *action, char *err, size_t errsize)
{
	size_t n = strlen(code);

	if (n != 5 && n != 2) {
		snprintf(err, errsize, "\"%.40s\" is neither a SQLSTATE (5 characters) nor a class "
				       "(2)", code);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (!((code[i] >= '0' && code[i] <= '9') || (code[i] >= 'A' && code[i] <= 'Z'))) {
			snprintf(err, errsize, "\"%.40s\": a SQLSTATE has only digits and upper-case "
					       "letters", code);
			return -1;
		}
	for (size_t a = 0; a < sizeof actions / sizeof actions[0]; a++)
		if (strcmp(action, actions[a].name) == 0)
			return 0;
	snprintf(err, errsize, "\"%.40s\": expected transient, requeue or dead_letter", action);
	return -1;
}
