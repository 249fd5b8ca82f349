/* Line-per-event logger on stderr. Each line is built in one buffer and written with one
 * write(2), so lines from several threads (librdkafka's) never interleave. */
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <math.h>

#include "utf8.h"

#define LOG_LINE_MAX 8192
#define LOG_LINE_TAIL 2  /* room always kept for the closing "}\n" */
#define LOG_VALUE_CAP 256 /* per string value, when a line is rebuilt because it was too long */

static struct {
	enum log_level level;
	enum log_format format;
	char worker_id[128];
	char **secrets;
	size_t nsecrets;
} g_log = { .level = LOG_INFO, .format = LOG_FORMAT_TEXT };

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_setup(enum log_level level, enum log_format format, const char *worker_id)
{
	g_log.level = level;
	g_log.format = format;
	snprintf(g_log.worker_id, sizeof g_log.worker_id, "%s", worker_id ? worker_id : "");
}

void log_set_level(enum log_level level) { g_log.level = level; }
void log_set_format(enum log_format format) { g_log.format = format; }
int log_enabled(enum log_level level) { return level >= g_log.level; }

void log_add_secret(const char *secret)
{
	char **grown, *copy;
	if (!secret || !*secret)
		return;
	for (size_t i = 0; i < g_log.nsecrets; i++)
		if (strcmp(g_log.secrets[i], secret) == 0)
			return;
	grown = realloc(g_log.secrets, (g_log.nsecrets + 1) * sizeof *grown);
	copy = strdup(secret);
	if (!grown || !copy)
		abort(); /* cannot promise to mask it: do not run on */
	g_log.secrets = grown;
	g_log.secrets[g_log.nsecrets++] = copy;
}

void log_cleanup(void)
{
	for (size_t i = 0; i < g_log.nsecrets; i++)
		free(g_log.secrets[i]);
	free(g_log.secrets);
	g_log.secrets = NULL;
	g_log.nsecrets = 0;
}

const char *log_level_name(enum log_level level) { return level_names[level]; }

int log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	return -1;
}

int log_format_parse(const char *s, enum log_format *out)
{
	if (strcmp(s, "json") == 0)
		*out = LOG_FORMAT_JSON;
	else if (strcmp(s, "text") == 0)
		*out = LOG_FORMAT_TEXT;
	else
		return -1;
	return 0;
}

struct line {
	char buf[LOG_LINE_MAX];
	size_t len;
	int cut;          /* something did not fit */
	size_t value_cap; /* 0, or the most bytes of each string value written */
};

static void put_raw(struct line *l, const char *s, size_t n)
{
	size_t room = sizeof l->buf - LOG_LINE_TAIL - l->len;
	if (n > room) {
		n = room;
		l->cut = 1;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void put_str(struct line *l, const char *s) { put_raw(l, s, strlen(s)); }

/* Text values are quoted when they contain a space, '=' or '"', so lines stay parseable. */
static void put_escaped_span(struct line *l, const char *s, size_t n, int json)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put_raw(l, esc, 2);
		} else if (c == '\n' && !json) {
			put_raw(l, "\\n", 2);
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			put_raw(l, esc, 6);
		} else if (c < 0x80) {
			put_raw(l, (const char *)&s[i], 1);
		} else {
			/* Whole characters only; bytes that are not UTF-8 become U+FFFD. */
			size_t len = utf8_sequence_len((const unsigned char *)s + i, n - i);
			if (len == 0)
				put_str(l, "\xef\xbf\xbd");
			else
				put_raw(l, s + i, len);
			i += len ? len - 1 : 0;
		}
	}
}

/* Writes s escaped, with every registered secret replaced by "***". */
static void put_escaped(struct line *l, const char *s, int json)
{
	while (*s) {
		const char *hit = NULL;
		size_t hitlen = 0;
		for (size_t k = 0; k < g_log.nsecrets; k++) {
			const char *p = strstr(s, g_log.secrets[k]);
			size_t len = strlen(g_log.secrets[k]);
			/* The earliest match; at the same place the longest, so no part of a
			 * longer secret is left showing. */
			if (p && (!hit || p < hit || (p == hit && len > hitlen))) {
				hit = p;
				hitlen = len;
			}
		}
		if (!hit) {
			put_escaped_span(l, s, strlen(s), json);
			return;
		}
		put_escaped_span(l, s, (size_t)(hit - s), json);
		put_str(l, "***");
		s = hit + hitlen;
	}
}

static int needs_quotes(const char *s)
{
	if (!*s)
		return 1;
	for (; *s; s++)
		if (*s == ' ' || *s == '=' || *s == '"' || (unsigned char)*s < 0x20)
			return 1;
	return 0;
}

static void put_value(struct line *l, const struct log_field *f, int json)
{
	char num[64];
	switch (f->type) {
	case LOG_FIELD_INT:
		snprintf(num, sizeof num, "%" PRId64, f->i);
		put_str(l, num);
		break;
	case LOG_FIELD_DOUBLE:
		if (isfinite(f->d))
			snprintf(num, sizeof num, "%.3f", f->d);
		else /* JSON has no NaN or infinity */
			snprintf(num, sizeof num, "%s", json ? "null" : isnan(f->d) ? "nan" : "inf");
		put_str(l, num);
		break;
	case LOG_FIELD_STR: {
		int quote = json || needs_quotes(f->s);
		const char *v = f->s;
		char capped[LOG_VALUE_CAP + 4];
		if (l->value_cap && strlen(v) > l->value_cap) {
			snprintf(capped, sizeof capped, "%s", v);
			utf8_truncate(capped, l->value_cap);
			strcat(capped, "...");
			v = capped;
		}
		if (quote)
			put_raw(l, "\"", 1);
		put_escaped(l, v, json);
		if (quote)
			put_raw(l, "\"", 1);
		break;
	}
	}
}

static void put_timestamp(struct line *l)
{
	struct timeval tv;
	struct tm tm;
	char ts[40];
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof ts - n, ".%03dZ", (int)(tv.tv_usec / 1000));
	put_str(l, ts);
}

static void build_line(struct line *l, enum log_level level, const char *event,
		       const struct log_field *fields, size_t n, size_t value_cap)
{
	int json = g_log.format == LOG_FORMAT_JSON;

	l->len = 0;
	l->cut = 0;
	l->value_cap = value_cap;
	if (json) {
		put_str(l, "{\"ts\":\"");
		put_timestamp(l);
		put_str(l, "\",\"level\":\"");
		put_str(l, level_names[level]);
		put_str(l, "\",\"event\":\"");
		put_escaped(l, event, 1);
		put_str(l, "\"");
		if (g_log.worker_id[0]) {
			put_str(l, ",\"worker_id\":\"");
			put_escaped(l, g_log.worker_id, 1);
			put_str(l, "\"");
		}
	} else {
		put_timestamp(l);
		put_str(l, " ");
		put_str(l, level_names[level]);
		put_str(l, level == LOG_INFO || level == LOG_WARN ? "  " : " ");
		put_escaped(l, event, 0);
	}
	for (size_t i = 0; i < n; i++) {
		const struct log_field *f = &fields[i];
		if (f->type == LOG_FIELD_STR && !f->s)
			continue;
		if (json) {
			put_str(l, ",\"");
			put_escaped(l, f->key, 1);
			put_str(l, "\":");
		} else {
			put_str(l, " ");
			put_str(l, f->key);
			put_str(l, "=");
		}
		put_value(l, f, json);
	}
	if (value_cap) {
		static const struct log_field mark = { .key = "log_line_truncated",
						       .type = LOG_FIELD_INT, .i = 1 };
		put_str(l, json ? ",\"" : " ");
		put_str(l, mark.key);
		put_str(l, json ? "\":" : "=");
		put_value(l, &mark, json);
	}
	/* Past put_raw's limit: LOG_LINE_TAIL keeps this room. */
	if (json)
		l->buf[l->len++] = '}';
	l->buf[l->len++] = '\n';
}

void log_write(enum log_level level, const char *event, const struct log_field *fields, size_t n)
{
	static __thread struct line l; /* 8 KiB: not on librdkafka threads' stacks */
	int saved_errno = errno;

	build_line(&l, level, event, fields, n, 0);
	/* Too long: a cut line would not be valid JSON. Rebuild it with every value capped. */
	if (l.cut)
		build_line(&l, level, event, fields, n, LOG_VALUE_CAP);

	for (size_t off = 0; off < l.len;) {
		ssize_t w = write(STDERR_FILENO, l.buf + off, l.len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	errno = saved_errno;
}
