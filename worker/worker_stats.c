#include "worker_stats.h"

#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

void worker_stats_init(struct worker_stats *s)
{
	memset(s, 0, sizeof *s);
	s->started_ms = s->last_summary_ms = clock_mono_ms();
}

static const char *const outcome_names[STAT_OUTCOMES] = {
	[STAT_CREATED] = "created",	[STAT_DUPLICATE] = "duplicate",
	[STAT_REPLAYED] = "replayed",	[STAT_REQUEUED] = "requeued",
	[STAT_DEAD_LETTERED] = "dead_lettered",
};

/* The summary line and /metrics count the same events: one call feeds both. */
void worker_stats_count(struct worker_stats *s, enum stat_outcome o)
{
	s->outcomes[o]++;
	metrics_count_outcome(outcome_names[o]);
}

static uint64_t total(const struct worker_stats *s)
{
	uint64_t n = 0;
	for (int i = 0; i < STAT_OUTCOMES; i++)
		n += s->outcomes[i];
	return n;
}

static void log_summary(const char *event, const struct worker_stats *s, double per_sec)
{
	log_info(event, LOG_I("created", s->outcomes[STAT_CREATED]),
		 LOG_I("duplicate", s->outcomes[STAT_DUPLICATE]),
		 LOG_I("replayed", s->outcomes[STAT_REPLAYED]),
		 LOG_I("requeued", s->outcomes[STAT_REQUEUED]),
		 LOG_I("dead_lettered", s->outcomes[STAT_DEAD_LETTERED]),
		 LOG_I("db_retries", s->db_retries), LOG_I("db_reconnects", s->db_reconnects),
		 LOG_I("total", total(s)), LOG_F("per_second", per_sec));
}

void worker_stats_maybe_log(struct worker_stats *s, int interval_ms)
{
	int64_t now = clock_mono_ms();
	if (interval_ms <= 0 || now - s->last_summary_ms < interval_ms)
		return;
	uint64_t t = total(s);
	double rate = (double)(t - s->last_summary_total) * 1000.0 / (double)(now - s->last_summary_ms);
	log_summary("summary", s, rate);
	s->last_summary_ms = now;
	s->last_summary_total = t;
}

void worker_stats_log_final(struct worker_stats *s)
{
	int64_t elapsed = clock_mono_ms() - s->started_ms;
	log_summary("summary_final", s, elapsed > 0 ? (double)total(s) * 1000.0 / (double)elapsed : 0);
}
