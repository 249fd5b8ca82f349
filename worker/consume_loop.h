/* The consume loop: one consumer in the group on the input and retry topics; records gathered
 * into batches (due retries first), each batch processed (process_request.h), and between
 * batches the Kafka transaction that commits forwards and the offsets of final requests
 * (kafka_txn.h). An offset is final only when its request is (offset_tracker.h).
 * worker_setup and worker_cleanup are in worker_life.c; rebalances in partitions.c. */
#ifndef AW_CONSUME_LOOP_H
#define AW_CONSUME_LOOP_H

#include <stddef.h>

#include "worker.h"

int worker_setup(struct worker *w, struct config *cfg, int drain_mode, char *errbuf,
		 size_t errsize);
/* After a fatal producer error (fenced: its transaction outlived transaction.timeout.ms):
 * a new producer with the same transactional.id. Returns 0, or -1 when the worker must stop
 * (fenced again within 30 s: another worker with our worker.id; or no new producer). The
 * caller rewinds. */
int worker_renew_producer(struct worker *w);
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
