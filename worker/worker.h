/* The running worker: everything the consume loop, the request processing and the rebalance
 * handling share, passed around as one context (no globals but the signal flags). */
#ifndef AW_WORKER_H
#define AW_WORKER_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdint.h>

#include "backlog.h"
#include "backoff.h"
#include "config.h"
#include "forward.h"
#include "forward_hold.h"
#include "kafka_txn.h"
#include "offset_tracker.h"
#include "pg_session.h"
#include "retry_delay.h"
#include "worker_stats.h"

/* Shutdown stages, in order. */
enum run_stage {
	STAGE_RUNNING,   /* fetching and processing */
	STAGE_DRAINING,  /* first SIGTERM/SIGINT, or --drain caught up: fetch nothing new; the
			  * request in hand finishes, acknowledgements are awaited, offsets are
			  * committed, the group is left */
	STAGE_FAST_EXIT, /* second signal: stop waiting; whatever is not final stays uncommitted
			  * and is redelivered to the next owner */
};

struct worker {
	struct config *cfg;             /* borrowed; SIGHUP swaps reloadable keys in place */
	char worker_id[128];
	int drain_mode;                 /* --drain: exit 0 once caught up */

	rd_kafka_t *consumer;
	struct kafka_txn txn;           /* forwards and offsets, committed together */
	struct forward_hold hold;       /* partitions stopped at a forward that failed */
	struct forward_outbox outbox;   /* forwards decided during a commit, for the next one */
	struct offset_tracker *tracker;
	struct retry_delay delayed;
	struct backlog backlog;
	struct pg_session pg;
	struct backoff_policy backoff;

	int paused_for_db;              /* every assigned partition paused: database unavailable */
	int retry_paused;               /* retry partitions paused: too many retries waiting */
	int assigned_once;              /* a first assignment arrived (possibly empty) */
	int64_t last_rebalance_ms;
	int64_t caught_up_since_ms;     /* --drain: when the caught-up state began, 0 if not */
	rd_kafka_topic_partition_list_t *eof; /* assigned partitions seen at their end */
	rd_kafka_topic_partition_list_t *produced; /* retry partitions we wrote to: last offset */
	int fatal;                      /* unrecoverable error: exit 1 */
	int64_t producer_renewed_ms;    /* when a fenced producer was last replaced */
	int64_t gauges_at_ms;           /* last refresh of the /metrics gauges */
	size_t batch_limit;             /* requests per batch now: adapts to refusals */

	struct worker_stats stats;
};

/* Set by the signal handlers only (sigaction); read by the loop. */
extern volatile sig_atomic_t worker_signal_count;
extern volatile sig_atomic_t worker_reload_requested;

#endif
