#include "commands.h"
#include "consume_loop.h"
#include "log.h"

int cmd_run(struct config *cfg, int drain)
{
	struct worker w;
	char errbuf[1024];
	int rc;

	if (worker_setup(&w, cfg, drain, errbuf, sizeof errbuf) < 0) {
		/* A signal during startup is a normal stop, not a failure. */
		rc = worker_stage(&w) == STAGE_RUNNING ? EXIT_FAILURE_RUNTIME : EXIT_OK;
		if (rc)
			log_error("startup_failed", LOG_S("error", errbuf));
	} else {
		rc = worker_run(&w);
	}
	worker_cleanup(&w);
	log_info("worker_stopped", LOG_I("exit_code", rc));
	return rc;
}
