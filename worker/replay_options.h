/* The command line of `worker replay-dlq`, and the consumer group its progress is kept in. */
#ifndef AW_REPLAY_OPTIONS_H
#define AW_REPLAY_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "commands.h"

#define REPLAY_USAGE                                                                          \
	"usage: worker replay-dlq --config FILE [--error-class CLASS] [--sqlstate SQLSTATE]\n"  \
	"                         [--constraint NAME] [--since TIME] [--limit N] [--dry-run]\n" \
	"\n"                                                                                   \
	"Sends dead letters back to the input topic, without their x-error-* headers and\n"     \
	"with x-replayed counting the replays. Only records matching every filter are sent:\n" \
	"  --error-class CLASS   x-error-class, e.g. foreign_key_violation\n"                  \
	"  --sqlstate SQLSTATE   x-error-sqlstate, five characters, e.g. 23503\n"              \
	"  --constraint NAME     x-error-constraint, e.g. assets_tenant_fkey\n"                \
	"  --since TIME          dead-lettered at or after TIME: 2026-11-26T10:00:00Z,\n"      \
	"                        2026-11-26 (UTC midnight) or epoch milliseconds\n"            \
	"  --limit N             send at most N records, the oldest first\n"                   \
	"  --dry-run             print the records it would send, one JSON line each, on\n"    \
	"                        stdout; send nothing, commit nothing\n"                       \
	"Progress is committed per filter set (consumer group <group_id>.replay-dlq.<hash>),\n" \
	"so a second run with the same filters sends only what arrived since.\n"

/* Parses `worker replay-dlq [options]` (argv[0] "worker", argv[1] "replay-dlq"). Fills *out
 * (pointing into argv) and *config_path. Returns 0; 1 after --help (usage printed on
 * stdout); or EXIT_USAGE after printing what is wrong on stderr. */
int replay_options_parse(int argc, char **argv, struct replay_options *out,
			 const char **config_path);

/* "2026-11-26T10:00:00Z" (optionally .fraction, or +00:00 for Z), "2026-11-26" (midnight
 * UTC), or epoch milliseconds. Returns 0 and *ms, or -1. */
int replay_since_parse(const char *s, int64_t *ms);

/* "<group_id>.replay-dlq.<12 hex digits>": a hash of the filters (not of --limit or
 * --dry-run), so each filter set keeps its own progress. */
void replay_group_id(const char *group_id, const struct replay_options *o, char *buf,
		     size_t size);

#endif
