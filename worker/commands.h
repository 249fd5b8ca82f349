/* The subcommands of SPEC section 5. Each returns the process exit code:
 * 0 success, 1 failure, 2 usage or configuration error. */
#ifndef AW_COMMANDS_H
#define AW_COMMANDS_H

#include "config.h"

#define EXIT_OK 0
#define EXIT_FAILURE_RUNTIME 1
#define EXIT_USAGE 2

struct replay_options {
	const char *error_class; /* NULL: any */
	long limit;              /* < 0: no limit */
};

int cmd_run(const struct config *cfg, int drain);
int cmd_migrate(const struct config *cfg);
int cmd_replay_dlq(const struct config *cfg, const struct replay_options *opts);

#endif
