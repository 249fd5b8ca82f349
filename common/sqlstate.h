/* Error classification by SQLSTATE (SPEC section 1). Never by message text. */
#ifndef AW_SQLSTATE_H
#define AW_SQLSTATE_H

/* What the worker does with a request that failed. */
enum error_action {
	ACTION_REQUEUE,     /* unique violation: retry topic with backoff */
	ACTION_DEAD_LETTER, /* never retried: dead-letter topic */
	ACTION_RETRY_IN_PLACE, /* transient: same request again, partitions paused, never lost */
};

struct error_class {
	enum error_action action;
	const char *name; /* the x-error-class header value */
};

/* sqlstate may be NULL or "" when libpq had no server answer (connection lost): transient. */
struct error_class classify_sqlstate(const char *sqlstate);

/* Names of classes decided before or without the database. */
#define ERROR_CLASS_MALFORMED "malformed_message"
#define ERROR_CLASS_UNSUPPORTED "unsupported_message"
#define ERROR_CLASS_RETRIES_EXHAUSTED "retries_exhausted"
#define ERROR_CLASS_DATABASE "database_error"

#endif
