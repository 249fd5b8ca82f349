#include "commands.h"
#include "log.h"

int cmd_replay_dlq(const struct config *cfg, const struct replay_options *opts)
{
	(void)cfg;
	(void)opts;
	log_error("replay_dlq_unavailable", LOG_S("error", "not implemented yet"));
	return EXIT_FAILURE_RUNTIME;
}
