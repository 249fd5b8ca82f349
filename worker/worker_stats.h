/* Counts per outcome, and the periodic summary line. */
#ifndef AW_WORKER_STATS_H
#define AW_WORKER_STATS_H

#include <stdint.h>

enum stat_outcome {
	STAT_CREATED,
	STAT_DUPLICATE,
	STAT_REPLAYED,
	STAT_REQUEUED,
	STAT_DEAD_LETTERED,
	STAT_OUTCOMES
};

struct worker_stats {
	uint64_t outcomes[STAT_OUTCOMES];
	uint64_t db_retries;     /* transient failures retried in place */
	uint64_t db_reconnects;
	int64_t started_ms;
	int64_t last_summary_ms;
	uint64_t last_summary_total;
};

void worker_stats_init(struct worker_stats *s);
void worker_stats_count(struct worker_stats *s, enum stat_outcome o);
/* Logs a "summary" line if interval_ms passed since the last one (interval 0: never). */
void worker_stats_maybe_log(struct worker_stats *s, int interval_ms);
/* The final summary, at shutdown. */
void worker_stats_log_final(struct worker_stats *s);

#endif
