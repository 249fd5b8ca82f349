/* The process-wide metrics registry, rendered in the Prometheus text format (0.0.4) by
 * metrics_render() for GET /metrics (worker/metrics_http.c).
 *
 * Threads: the consume loop writes, the HTTP server thread reads. Every counter and gauge is a
 * C11 atomic, so an update is one atomic operation and never blocks on a scrape; only the
 * label sets that grow at run time (dead letters by class, database errors by SQLSTATE, lag by
 * partition) take a mutex, and those updates are rare (once per failure, once per lag
 * refresh). Every function may be called from any thread.
 *
 * Lifecycle: metrics_setup() once at start, before the HTTP server starts; metrics_cleanup()
 * once at exit, after the server stopped. Updates before setup are kept (the registry is
 * zero-initialised static storage); cleanup frees the label maps and resets everything to
 * zero, so a test can run setup/cleanup repeatedly.
 *
 * Metric names (all prefixed asset_worker_):
 *   requests_total{outcome}              counter  created|duplicate|replayed|requeued|dead_lettered
 *   dead_letters_total{error_class}      counter  the x-error-class written
 *   db_errors_total{sqlstate}            counter  every failed statement, "" SQLSTATE = "none"
 *   retries_total{kind}                  counter  requeue (retry topic) | in_place (transient)
 *   batches_total{path}                  counter  how PostgreSQL took a batch: set | set_checked
 *                                                 (with the refusal check) | one_by_one
 *   db_reconnects_total                  counter
 *   processing_seconds                   histogram  per request, decode to outcome
 *   consumer_lag{topic,partition}        gauge    high watermark - position
 *   partitions_paused / inflight_requests / assigned_partitions    gauges
 *   group_joined                         gauge    1 once an assignment (even empty) arrived
 *   db_up                                gauge    0/1
 *   last_loop_timestamp_seconds          gauge    wall clock of the last metrics_loop_tick()
 *   start_time_seconds                   gauge    wall clock of metrics_setup()
 *   info{version,group,worker_id}        gauge    always 1 */
#ifndef AW_METRICS_H
#define AW_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Plain gauges, set with metrics_set_gauge() / moved with metrics_add_gauge(). */
enum metrics_gauge {
	METRICS_PARTITIONS_PAUSED,   /* partitions paused for an in-place retry or back-pressure */
	METRICS_INFLIGHT_REQUESTS,   /* fetched, not yet final (offset not yet committable) */
	METRICS_ASSIGNED_PARTITIONS, /* partitions owned now, input and retry topics */
	METRICS_GROUP_JOINED,	     /* 1 after an assignment arrived (an empty one counts),
					0 after it was lost; /readyz uses it */
	METRICS_DB_UP,		     /* 1 while the PostgreSQL session works, 0 while waiting */
	METRICS_FORWARDS_REFUSED,    /* requeues/dead letters the broker refused for good (too
					large, not authorized): waiting for a long-backoff resend;
					/readyz fails while it is not 0 */
	METRICS_GAUGES
};

enum metrics_retry_kind {
	METRICS_RETRY_REQUEUE,	/* a unique violation sent to the retry topic */
	METRICS_RETRY_IN_PLACE, /* a transient failure run again in place */
	METRICS_RETRY_KINDS
};

/* How a batch was stored (worker/asset_tx.h). */
enum metrics_batch_path {
	METRICS_BATCH_SET,	   /* the set statement, without the refusal check */
	METRICS_BATCH_SET_CHECKED, /* the set statement with the refusal check */
	METRICS_BATCH_ONE_BY_ONE,  /* request by request (refused as a whole, or alone) */
	METRICS_BATCH_PATHS
};

/* Upper bounds (seconds) of the processing_seconds buckets, +Inf implied. */
#define METRICS_BUCKETS 13
extern const double metrics_buckets[METRICS_BUCKETS];

/* Sets the info labels and the start time, and counts as a first loop tick (so /healthz
 * gives the startup 30 s before it expects the loop to turn). Strings are copied; NULL = "". */
void metrics_setup(const char *version, const char *group, const char *worker_id);
/* Frees the label maps and resets every value to zero. */
void metrics_cleanup(void);

/* requests_total{outcome}: one of created, duplicate, replayed, requeued, dead_lettered.
 * Returns 0, or -1 (nothing counted) for any other name. */
int metrics_count_outcome(const char *outcome);
/* dead_letters_total{error_class}: the x-error-class value. The classes of SPEC section 4 are
 * always present (at 0); others are added on first use, up to a limit (then "other"). */
void metrics_count_dead_letter(const char *error_class);
/* db_errors_total{sqlstate}: a failed statement's SQLSTATE; NULL or "" (no server answer,
 * e.g. the connection was lost) counts as "none". */
void metrics_count_db_error(const char *sqlstate);
/* retries_total{kind}. */
void metrics_count_retry(enum metrics_retry_kind kind);
/* batches_total{path}: one try of a batch's transaction. */
void metrics_count_batch(enum metrics_batch_path path);
/* db_reconnects_total. */
void metrics_count_db_reconnect(void);
/* processing_seconds: one request's time from decoding it to its outcome (committed in
 * PostgreSQL, or handed to the retry/dead-letter producer). Negative or NaN are ignored. */
void metrics_observe_processing(double seconds);

/* consumer_lag{topic,partition}: set (or add) the series of one partition. */
void metrics_set_lag(const char *topic, int32_t partition, int64_t lag);
/* Removes the series of one partition (on revoke/lost), so a partition that moved to another
 * worker is not reported twice. Unknown partitions are ignored. */
void metrics_forget_partition(const char *topic, int32_t partition);

void metrics_set_gauge(enum metrics_gauge g, int64_t value);
void metrics_add_gauge(enum metrics_gauge g, int64_t delta);
int64_t metrics_get_gauge(enum metrics_gauge g);

/* The loop is turning: call once per iteration of the consume loop (and of any wait loop
 * that can last long, e.g. waiting for PostgreSQL). Cheap: two clock reads, two stores. */
void metrics_loop_tick(void);
/* Seconds since the last tick (monotonic clock); -1 when there was none. */
double metrics_loop_age(void);
/* For tests: records a tick at the given clocks (clock_mono_ms() / clock_wall_ms() values). */
void metrics_loop_tick_at(int64_t mono_ms, int64_t wall_ms);

/* Renders every metric in the Prometheus text exposition format 0.0.4, with # HELP and
 * # TYPE lines and escaped label values. On success returns 0 and *out (NUL-terminated,
 * malloc'd, owned by the caller: free()) of *len bytes; -1 when out of memory. */
int metrics_render(char **out, size_t *len);

#endif
