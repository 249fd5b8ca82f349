/* One logging API for the whole process: one line per event on stderr, json or text.
 *
 *   log_info("outcome", LOG_S("topic", t), LOG_I("offset", off), LOG_S("outcome", "created"));
 *
 * Fields are typed at the call site (LOG_S string, LOG_I integer, LOG_F double) so nothing is
 * formatted through printf-style varargs, and nothing is formatted at all when the level is off.
 * Secrets registered with log_add_secret() are masked in every string written. */
#ifndef AW_LOG_H
#define AW_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_JSON, LOG_FORMAT_TEXT };

enum log_field_type { LOG_FIELD_STR, LOG_FIELD_INT, LOG_FIELD_DOUBLE };

struct log_field {
	const char *key;
	enum log_field_type type;
	const char *s; /* LOG_FIELD_STR; NULL fields are left out of the line */
	int64_t i;
	double d;
};

#define LOG_S(k, v) ((struct log_field){ .key = (k), .type = LOG_FIELD_STR, .s = (v) })
#define LOG_I(k, v) ((struct log_field){ .key = (k), .type = LOG_FIELD_INT, .i = (int64_t)(v) })
#define LOG_F(k, v) ((struct log_field){ .key = (k), .type = LOG_FIELD_DOUBLE, .d = (double)(v) })

void log_setup(enum log_level level, enum log_format format, const char *worker_id);
void log_set_level(enum log_level level);
void log_set_format(enum log_format format);
int log_enabled(enum log_level level);
/* Masks every later occurrence of `secret` (copied) in log output. Empty strings are ignored. */
void log_add_secret(const char *secret);
void log_cleanup(void);

void log_write(enum log_level level, const char *event, const struct log_field *fields, size_t n);

int log_level_parse(const char *s, enum log_level *out);
int log_format_parse(const char *s, enum log_format *out);
const char *log_level_name(enum log_level level);

#define LOG_FIELDS_(...) ((const struct log_field[]){ __VA_ARGS__ })
#define LOG_NFIELDS_(...) (sizeof(LOG_FIELDS_(__VA_ARGS__)) / sizeof(struct log_field))
#define LOG_AT_(lvl, event, ...)                                                             \
	do {                                                                                 \
		if (log_enabled(lvl))                                                        \
			log_write(lvl, event, LOG_FIELDS_(LOG_S("", NULL), ##__VA_ARGS__),  \
				  LOG_NFIELDS_(LOG_S("", NULL), ##__VA_ARGS__));             \
	} while (0)

#define log_debug(event, ...) LOG_AT_(LOG_DEBUG, event, ##__VA_ARGS__)
#define log_info(event, ...) LOG_AT_(LOG_INFO, event, ##__VA_ARGS__)
#define log_warn(event, ...) LOG_AT_(LOG_WARN, event, ##__VA_ARGS__)
#define log_error(event, ...) LOG_AT_(LOG_ERROR, event, ##__VA_ARGS__)

#endif
