/* Error classification by SQLSTATE (SPEC section 1). Never by message text. */
#ifndef AW_SQLSTATE_H
#define AW_SQLSTATE_H

#include <stddef.h>

#include "config.h"

/* What the worker does with a request that failed. */
enum error_action {
	ACTION_REQUEUE,     /* unique violation: retry topic with backoff */
	ACTION_DEAD_LETTER, /* never retried: dead-letter topic */
	ACTION_RETRY_IN_PLACE, /* transient: same request again, partitions paused, never lost */
};

struct error_class {
	enum error_action action;
	const char *name; /* the x-error-class header value */
	int reconnect;    /* transient, and the connection is at fault: open a new one */
};

/* sqlstate may be NULL or "" when libpq had no server answer (connection lost): transient.
 * `ov` are the operator's classify: entries (worker.yaml, SPEC 6): key a SQLSTATE (5
 * characters) or a class (2), value transient | requeue | dead_letter. An override for the
 * exact code wins over one for its class, and both over the built-in
 * rules; the class name (x-error-class) stays the built-in one. */
struct error_class classify_sqlstate(const char *sqlstate, const struct config_property *ov,
				     size_t nov);

/* Whether `code` can be a classify: key (5 or 2 characters of [0-9A-Z]) and `action` one of
 * its actions. 0 when valid; otherwise -1 and the reason in err. */
int classify_override_check(const char *code, const char *action, char *err, size_t errsize);

/* Names of classes decided before or without the database. */
#define ERROR_CLASS_MALFORMED "malformed_message"
#define ERROR_CLASS_UNSUPPORTED "unsupported_message"
#define ERROR_CLASS_RETRIES_EXHAUSTED "retries_exhausted"
#define ERROR_CLASS_DATABASE "database_error"

#endif
