/* The consume loop: one consumer in the group on the input and retry topics, one request at a
 * time, offsets stored only when a request is final (see offset_tracker.h), cooperative
 * rebalances that commit what is final before a partition leaves. */
#ifndef AW_CONSUME_LOOP_H
#define AW_CONSUME_LOOP_H

#include <stddef.h>

#include "worker.h"

int worker_setup(struct worker *w, struct config *cfg, int drain_mode, char *errbuf,
		 size_t errsize);
/* Runs until a signal, --drain caught up, or a fatal error. Returns the exit code. */
int worker_run(struct worker *w);
void worker_cleanup(struct worker *w);

/* For request processing, which waits (database down) without leaving the group: polls the
 * consumer and the producer for up to ms, keeping records that arrive for later. Returns
 * early when the worker must stop. */
void worker_wait(struct worker *w, int ms);
enum run_stage worker_stage(const struct worker *w);
/* Pauses or resumes every assigned partition (and any assigned while paused). */
void worker_pause_for_db(struct worker *w, int pause);
/* A request reached its final state: store its input offset if nothing before it is open. */
void worker_complete(struct worker *w, const struct tracked_offset *input);

#endif
