/* `worker replay-dlq` from the command line to cmd_replay_dlq: its options, their checks, and
 * the consumer group that keeps the progress of one filter set. */
#include "replay_options.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "fnv1a.h"
#include "log.h"

/* The x-error-class values of SPEC section 4: a filter naming anything else is a typo that
 * would silently match nothing. */
static const char *const replay_classes[] = {
	"unique_violation",    "not_null_violation",  "foreign_key_violation", "check_violation",
	"exclusion_violation", "integrity_violation", "data_exception",	       "malformed_message",
	"unsupported_message", "retries_exhausted",   "database_error",
};

static int replay_class_known(const char *s)
{
	for (size_t i = 0; i < sizeof replay_classes / sizeof replay_classes[0]; i++)
		if (strcmp(s, replay_classes[i]) == 0)
			return 1;
	return 0;
}

/* Five characters of digits and upper-case letters, as PostgreSQL's SQLSTATEs are. */
static int replay_sqlstate_ok(const char *s)
{
	if (strlen(s) != 5)
		return 0;
	for (size_t i = 0; i < 5; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')))
			return 0;
	return 1;
}

/* Exactly `n` decimal digits at *p; advances *p. */
static int replay_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int replay_days_in_month(int year, int month)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return days[month - 1] + (month == 2 && leap);
}

int replay_since_parse(const char *s, int64_t *ms)
{
	const char *p = s;
	int year, month, day, hour = 0, min = 0, sec = 0, frac_ms = 0;
	struct tm tm = { 0 };
	time_t t;

	if (!*s)
		return -1;
	if (strspn(s, "0123456789") == strlen(s)) { /* epoch milliseconds */
		if (strlen(s) > 15)		     /* beyond year 33658: a mistake */
			return -1;
		*ms = strtoll(s, NULL, 10);
		return 0;
	}
	if (replay_digits(&p, 4, &year) < 0 || *p++ != '-' || replay_digits(&p, 2, &month) < 0 ||
	    *p++ != '-' || replay_digits(&p, 2, &day) < 0)
		return -1;
	if (year < 1970 || month < 1 || month > 12 || day < 1 ||
	    day > replay_days_in_month(year, month))
		return -1;
	if (*p) {
		if (*p++ != 'T' || replay_digits(&p, 2, &hour) < 0 || *p++ != ':' ||
		    replay_digits(&p, 2, &min) < 0 || *p++ != ':' || replay_digits(&p, 2, &sec) < 0)
			return -1;
		if (hour > 23 || min > 59 || sec > 59)
			return -1;
		if (*p == '.') { /* a fraction: milliseconds kept, the rest dropped */
			int n = 0;
			for (p++; *p >= '0' && *p <= '9'; p++, n++)
				if (n < 3)
					frac_ms = frac_ms * 10 + (*p - '0');
			if (n == 0 || n > 9)
				return -1;
			for (; n < 3; n++)
				frac_ms *= 10;
		}
		if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
			return -1; /* UTC only: a dead letter's timestamp is UTC */
	}
	tm.tm_year = year - 1900;
	tm.tm_mon = month - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	*ms = (int64_t)t * 1000 + frac_ms;
	return 0;
}

static uint64_t replay_fnv(uint64_t h, const char *s)
{
	return fnv1a_64(h, s, strlen(s));
}

void replay_group_id(const char *group_id, const struct replay_options *o, char *buf,
		     size_t size)
{
	/* Each filter as "name=length:value" (or "name=-" when absent), so no two filter sets
	 * read the same; --limit and --dry-run do not change what has been examined. */
	const char *names[] = { "error_class", "sqlstate", "constraint" };
	const char *values[] = { o->error_class, o->sqlstate, o->constraint };
	uint64_t h = FNV1A_64_INIT;
	char part[64];

	h = replay_fnv(h, "replay-dlq/v1");
	for (size_t i = 0; i < 3; i++) {
		snprintf(part, sizeof part, "|%s=", names[i]);
		h = replay_fnv(h, part);
		if (values[i]) {
			snprintf(part, sizeof part, "%zu:", strlen(values[i]));
			h = replay_fnv(h, part);
			h = replay_fnv(h, values[i]);
		} else {
			h = replay_fnv(h, "-");
		}
	}
	if (o->since_ms > 0)
		snprintf(part, sizeof part, "|since=%" PRId64, o->since_ms);
	else
		snprintf(part, sizeof part, "|since=-");
	h = replay_fnv(h, part);
	snprintf(buf, size, "%s.replay-dlq.%012" PRIx64, group_id, h >> 16);
}

int replay_options_parse(int argc, char **argv, struct replay_options *out,
			 const char **config_path)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "error-class", required_argument, NULL, 'e' },
		{ "sqlstate", required_argument, NULL, 's' },
		{ "constraint", required_argument, NULL, 'n' },
		{ "since", required_argument, NULL, 't' },
		{ "limit", required_argument, NULL, 'l' },
		{ "dry-run", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	/* getopt sees "replay-dlq" as its program name; optind 0 resets its state. */
	int sub_argc = argc - 1;
	char **sub_argv = argv + 1;
	char *end;
	int c;

	memset(out, 0, sizeof *out);
	out->limit = -1;
	*config_path = NULL;
	optind = 0;
	while ((c = getopt_long(sub_argc, sub_argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			*config_path = optarg;
			break;
		case 'e':
			if (!replay_class_known(optarg)) {
				fprintf(stderr, "worker replay-dlq: unknown --error-class \"%s\"; one of:",
					optarg);
				for (size_t i = 0; i < sizeof replay_classes / sizeof replay_classes[0]; i++)
					fprintf(stderr, " %s", replay_classes[i]);
				fputc('\n', stderr);
				return EXIT_USAGE;
			}
			out->error_class = optarg;
			break;
		case 's':
			if (!replay_sqlstate_ok(optarg)) {
				fprintf(stderr, "worker replay-dlq: --sqlstate needs five digits or "
						"capital letters, e.g. 23503\n");
				return EXIT_USAGE;
			}
			out->sqlstate = optarg;
			break;
		case 'n':
			if (!*optarg) {
				fprintf(stderr, "worker replay-dlq: --constraint needs a name\n");
				return EXIT_USAGE;
			}
			out->constraint = optarg;
			break;
		case 't':
			if (replay_since_parse(optarg, &out->since_ms) < 0) {
				fprintf(stderr, "worker replay-dlq: --since needs a UTC time like "
						"2026-11-26T10:00:00Z, a date like 2026-11-26, or "
						"epoch milliseconds\n");
				return EXIT_USAGE;
			}
			break;
		case 'l':
			out->limit = strtol(optarg, &end, 10);
			if (*end || end == optarg || out->limit < 0) {
				fprintf(stderr, "worker replay-dlq: --limit needs a whole number >= 0\n");
				return EXIT_USAGE;
			}
			break;
		case 'd':
			out->dry_run = 1;
			break;
		case 'h':
			fputs(REPLAY_USAGE, stdout);
			return 1;
		default: /* getopt said what is wrong */
			fputs(REPLAY_USAGE, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < sub_argc) {
		fprintf(stderr, "worker replay-dlq: unexpected argument \"%s\"\n", sub_argv[optind]);
		return EXIT_USAGE;
	}
	if (!*config_path) {
		fprintf(stderr, "worker replay-dlq: --config FILE is required\n");
		return EXIT_USAGE;
	}
	return 0;
}

int cmd_replay_dlq_main(int argc, char **argv)
{
	struct replay_options opts;
	struct config *cfg = NULL;
	const char *path;
	char errbuf[8192];
	int rc = replay_options_parse(argc, argv, &opts, &path);

	if (rc == 1)
		return EXIT_OK; /* --help */
	if (rc != 0)
		return rc;
	if (config_load(path, &cfg, errbuf, sizeof errbuf) < 0) {
		fputs(errbuf, stderr);
		if (errbuf[0] && errbuf[strlen(errbuf) - 1] != '\n')
			fputc('\n', stderr);
		return EXIT_USAGE;
	}
	log_setup(cfg->log.level, cfg->log.format, cfg->worker.id);
	config_register_secrets(cfg);
	rc = cmd_replay_dlq(cfg, &opts);
	config_free(cfg);
	log_cleanup();
	return rc;
}
