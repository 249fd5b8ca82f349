/* The subcommands of SPEC section 5. Each returns the process exit code:
 * 0 success, 1 failure, 2 usage or configuration error. */
#ifndef AW_COMMANDS_H
#define AW_COMMANDS_H

#include <stdint.h>

#include "config.h"

#define EXIT_OK 0
#define EXIT_FAILURE_RUNTIME 1
#define EXIT_USAGE 2

/* worker replay-dlq: which dead letters to send back (replay_options.c parses them). A record
 * is replayed when it matches every filter given. Zero-initialised = no filter (set limit to
 * -1 for "no limit"). */
struct replay_options {
	const char *error_class; /* x-error-class equals this; NULL: any */
	const char *sqlstate;	 /* x-error-sqlstate equals this; NULL: any */
	const char *constraint;	 /* x-error-constraint equals this; NULL: any */
	int64_t since_ms;	 /* > 0: the DLQ record's timestamp is >= this (epoch ms) */
	long limit;		 /* < 0: no limit; else at most this many sent (not a filter) */
	int dry_run;		 /* print what would be sent on stdout; send and commit nothing */
};

int cmd_run(struct config *cfg, int drain); /* cfg: SIGHUP reloads into it */
int cmd_migrate(const struct config *cfg);
int cmd_replay_dlq(const struct config *cfg, const struct replay_options *opts);
/* The whole `worker replay-dlq ...` command line (argv[1] is "replay-dlq"): parses its options
 * (replay_options.c), loads the config, sets up logging and runs cmd_replay_dlq. */
int cmd_replay_dlq_main(int argc, char **argv);

#endif
