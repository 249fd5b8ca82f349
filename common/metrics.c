/* The metrics registry: atomics for the fixed series, one mutex for the label maps that grow,
 * and the Prometheus text rendering. */
#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "utf8.h"

#define METRICS_MAP_LIMIT 1024	    /* series per label map; more go to "other" */
#define METRICS_LABEL_MAX 256	    /* bytes of one label value kept */
#define METRICS_OVERFLOW_LABEL "other"

const double metrics_buckets[METRICS_BUCKETS] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
						  0.25,	 0.5,	 1,	2.5,  5,     10 };

static const char *const outcome_names[] = { "created", "duplicate", "replayed", "requeued",
					      "dead_lettered" };
#define METRICS_OUTCOMES (sizeof outcome_names / sizeof outcome_names[0])

static const char *const retry_kind_names[METRICS_RETRY_KINDS] = { "requeue", "in_place" };
static const char *const batch_path_names[METRICS_BATCH_PATHS] = { "set", "set_checked",
								    "one_by_one" };

/* The x-error-class values that reach the dead-letter topic (SPEC section 4), present at 0 from
 * the start so rate() and alerts see a series before the first dead letter. */
static const char *const dead_letter_classes[] = {
	"not_null_violation",  "foreign_key_violation", "check_violation",
	"exclusion_violation", "integrity_violation",	"data_exception",
	"malformed_message",   "unsupported_message",	"retries_exhausted",
	"database_error",
};

static const struct {
	const char *name;
	const char *help;
} gauge_desc[METRICS_GAUGES] = {
	[METRICS_PARTITIONS_PAUSED] = { "partitions_paused",
					"Partitions whose consumption is paused." },
	[METRICS_INFLIGHT_REQUESTS] = { "inflight_requests",
					"Requests fetched and not yet in a final state." },
	[METRICS_ASSIGNED_PARTITIONS] = { "assigned_partitions",
					  "Partitions assigned to this worker (input and retry)." },
	[METRICS_GROUP_JOINED] = { "group_joined",
				   "1 when this worker holds an assignment of the consumer group "
				   "(possibly empty)." },
	[METRICS_DB_UP] = { "db_up", "1 when the PostgreSQL session works." },
	[METRICS_FORWARDS_REFUSED] = { "forwards_refused",
				       "Requeues and dead letters the broker refused with a "
				       "permanent error, waiting to be sent again." },
};

/* A series of a label map: one or two label values. */
struct metrics_series {
	char *a;
	char *b; /* NULL for one-label maps */
	int64_t value;
};

struct metrics_map {
	struct metrics_series *items;
	size_t n, cap;
};

static struct {
	_Atomic uint64_t outcomes[METRICS_OUTCOMES];
	_Atomic uint64_t retries[METRICS_RETRY_KINDS];
	_Atomic uint64_t batches[METRICS_BATCH_PATHS];
	_Atomic uint64_t reconnects;
	_Atomic uint64_t buckets[METRICS_BUCKETS + 1]; /* not cumulative; last is +Inf */
	_Atomic uint64_t sum_ns;
	_Atomic int64_t gauges[METRICS_GAUGES];
	_Atomic int64_t tick_mono_ms; /* 0: never ticked */
	_Atomic int64_t tick_wall_ms;
	_Atomic int64_t start_wall_ms;

	pthread_mutex_t lock; /* the maps and the info strings */
	struct metrics_map dead_letters;
	struct metrics_map db_errors;
	struct metrics_map lag; /* a = topic, b = partition in decimal */
	char *version, *group, *worker_id;
} g_metrics = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* ---- label maps (callers hold g_metrics.lock) ---- */

/* A label value as it is stored and compared: at most METRICS_LABEL_MAX bytes of valid UTF-8
 * (the text format requires UTF-8; a byte that is not part of a character becomes '?'). */
static void metrics_label_norm(const char *in, char out[METRICS_LABEL_MAX + 1])
{
	size_t len, i = 0;

	snprintf(out, METRICS_LABEL_MAX + 1, "%s", in ? in : "");
	utf8_truncate(out, METRICS_LABEL_MAX);
	len = strlen(out);
	while (i < len) {
		size_t n = utf8_sequence_len((const unsigned char *)out + i, len - i);
		if (!n) {
			out[i] = '?';
			n = 1;
		}
		i += n;
	}
}

static struct metrics_series *metrics_map_find(struct metrics_map *m, const char *a,
					       const char *b)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->items[i].a, a) == 0 &&
		    (b ? m->items[i].b && strcmp(m->items[i].b, b) == 0 : !m->items[i].b))
			return &m->items[i];
	return NULL;
}

/* The series (a, b) of normalised labels, created at 0 if new. NULL when out of memory or
 * the map already holds `limit` series. */
static struct metrics_series *metrics_map_get(struct metrics_map *m, const char *a,
					      const char *b, size_t limit)
{
	struct metrics_series *s = metrics_map_find(m, a, b);
	char *ca = NULL, *cb = NULL;

	if (s)
		return s;
	if (m->n >= limit)
		return NULL;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct metrics_series *grown = realloc(m->items, cap * sizeof *grown);
		if (!grown)
			return NULL;
		m->items = grown;
		m->cap = cap;
	}
	ca = strdup(a);
	cb = b ? strdup(b) : NULL;
	if (!ca || (b && !cb)) {
		free(ca);
		free(cb);
		return NULL;
	}
	s = &m->items[m->n++];
	s->a = ca;
	s->b = cb;
	s->value = 0;
	return s;
}

/* Adds 1 to the series `label`, or to "other" once the map is full. */
static void metrics_map_count(struct metrics_map *m, const char *label)
{
	char norm[METRICS_LABEL_MAX + 1];
	struct metrics_series *s;

	metrics_label_norm(label, norm);
	pthread_mutex_lock(&g_metrics.lock);
	s = metrics_map_get(m, norm, NULL, METRICS_MAP_LIMIT);
	if (!s) /* "other" may take one slot beyond the limit */
		s = metrics_map_get(m, METRICS_OVERFLOW_LABEL, NULL, METRICS_MAP_LIMIT + 1);
	if (s)
		s->value++;
	pthread_mutex_unlock(&g_metrics.lock);
}

static void metrics_map_free(struct metrics_map *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->items[i].a);
		free(m->items[i].b);
	}
	free(m->items);
	m->items = NULL;
	m->n = m->cap = 0;
}

/* ---- lifecycle ---- */

static char *metrics_info_label(const char *s)
{
	char norm[METRICS_LABEL_MAX + 1];

	metrics_label_norm(s, norm);
	return strdup(norm);
}

void metrics_setup(const char *version, const char *group, const char *worker_id)
{
	int64_t mono = clock_mono_ms(), wall = clock_wall_ms();

	pthread_mutex_lock(&g_metrics.lock);
	free(g_metrics.version);
	free(g_metrics.group);
	free(g_metrics.worker_id);
	g_metrics.version = metrics_info_label(version);
	g_metrics.group = metrics_info_label(group);
	g_metrics.worker_id = metrics_info_label(worker_id);
	for (size_t i = 0; i < sizeof dead_letter_classes / sizeof dead_letter_classes[0]; i++)
		(void)metrics_map_get(&g_metrics.dead_letters, dead_letter_classes[i], NULL,
				      METRICS_MAP_LIMIT);
	pthread_mutex_unlock(&g_metrics.lock);
	atomic_store_explicit(&g_metrics.start_wall_ms, wall, memory_order_relaxed);
	metrics_loop_tick_at(mono, wall);
}

void metrics_cleanup(void)
{
	pthread_mutex_lock(&g_metrics.lock);
	metrics_map_free(&g_metrics.dead_letters);
	metrics_map_free(&g_metrics.db_errors);
	metrics_map_free(&g_metrics.lag);
	free(g_metrics.version);
	free(g_metrics.group);
	free(g_metrics.worker_id);
	g_metrics.version = g_metrics.group = g_metrics.worker_id = NULL;
	pthread_mutex_unlock(&g_metrics.lock);

	for (size_t i = 0; i < METRICS_OUTCOMES; i++)
		atomic_store(&g_metrics.outcomes[i], 0);
	for (size_t i = 0; i < METRICS_RETRY_KINDS; i++)
		atomic_store(&g_metrics.retries[i], 0);
	for (size_t i = 0; i < METRICS_BATCH_PATHS; i++)
		atomic_store(&g_metrics.batches[i], 0);
	for (size_t i = 0; i <= METRICS_BUCKETS; i++)
		atomic_store(&g_metrics.buckets[i], 0);
	for (size_t i = 0; i < METRICS_GAUGES; i++)
		atomic_store(&g_metrics.gauges[i], 0);
	atomic_store(&g_metrics.reconnects, 0);
	atomic_store(&g_metrics.sum_ns, 0);
	atomic_store(&g_metrics.tick_mono_ms, 0);
	atomic_store(&g_metrics.tick_wall_ms, 0);
	atomic_store(&g_metrics.start_wall_ms, 0);
}

/* ---- updates ---- */

int metrics_count_outcome(const char *outcome)
{
	for (size_t i = 0; outcome && i < METRICS_OUTCOMES; i++)
		if (strcmp(outcome, outcome_names[i]) == 0) {
			atomic_fetch_add_explicit(&g_metrics.outcomes[i], 1, memory_order_relaxed);
			return 0;
		}
	return -1;
}

void metrics_count_dead_letter(const char *error_class)
{
	metrics_map_count(&g_metrics.dead_letters,
			  error_class && *error_class ? error_class : "unknown");
}

void metrics_count_db_error(const char *sqlstate)
{
	metrics_map_count(&g_metrics.db_errors, sqlstate && *sqlstate ? sqlstate : "none");
}

void metrics_count_batch(enum metrics_batch_path path)
{
	if ((unsigned)path < METRICS_BATCH_PATHS)
		atomic_fetch_add_explicit(&g_metrics.batches[path], 1, memory_order_relaxed);
}

void metrics_count_retry(enum metrics_retry_kind kind)
{
	if ((unsigned)kind < METRICS_RETRY_KINDS)
		atomic_fetch_add_explicit(&g_metrics.retries[kind], 1, memory_order_relaxed);
}

void metrics_count_db_reconnect(void)
{
	atomic_fetch_add_explicit(&g_metrics.reconnects, 1, memory_order_relaxed);
}

void metrics_observe_processing(double seconds)
{
	size_t i = 0;
	uint64_t ns;

	if (!(seconds >= 0)) /* negative or NaN */
		return;
	while (i < METRICS_BUCKETS && seconds > metrics_buckets[i])
		i++;
	/* A value beyond ~584 years is a bug upstream; cap it rather than overflow. */
	ns = seconds < 1.8e10 ? (uint64_t)llround(seconds * 1e9) : (uint64_t)1.8e19;
	atomic_fetch_add_explicit(&g_metrics.buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&g_metrics.sum_ns, ns, memory_order_relaxed);
}

void metrics_set_lag(const char *topic, int32_t partition, int64_t lag)
{
	char part[16], norm[METRICS_LABEL_MAX + 1];
	struct metrics_series *s;

	if (!topic)
		return;
	snprintf(part, sizeof part, "%" PRId32, partition);
	metrics_label_norm(topic, norm);
	pthread_mutex_lock(&g_metrics.lock);
	s = metrics_map_get(&g_metrics.lag, norm, part, METRICS_MAP_LIMIT);
	if (s)
		s->value = lag;
	pthread_mutex_unlock(&g_metrics.lock);
}

void metrics_forget_partition(const char *topic, int32_t partition)
{
	char part[16], norm[METRICS_LABEL_MAX + 1];
	struct metrics_map *m = &g_metrics.lag;
	struct metrics_series *s;

	if (!topic)
		return;
	snprintf(part, sizeof part, "%" PRId32, partition);
	metrics_label_norm(topic, norm);
	pthread_mutex_lock(&g_metrics.lock);
	s = metrics_map_find(m, norm, part);
	if (s) {
		free(s->a);
		free(s->b);
		*s = m->items[--m->n]; /* order is not part of the format */
	}
	pthread_mutex_unlock(&g_metrics.lock);
}

void metrics_set_gauge(enum metrics_gauge g, int64_t value)
{
	if ((unsigned)g < METRICS_GAUGES)
		atomic_store_explicit(&g_metrics.gauges[g], value, memory_order_relaxed);
}

void metrics_add_gauge(enum metrics_gauge g, int64_t delta)
{
	if ((unsigned)g < METRICS_GAUGES)
		atomic_fetch_add_explicit(&g_metrics.gauges[g], delta, memory_order_relaxed);
}

int64_t metrics_get_gauge(enum metrics_gauge g)
{
	if ((unsigned)g >= METRICS_GAUGES)
		return 0;
	return atomic_load_explicit(&g_metrics.gauges[g], memory_order_relaxed);
}

void metrics_loop_tick(void)
{
	metrics_loop_tick_at(clock_mono_ms(), clock_wall_ms());
}

void metrics_loop_tick_at(int64_t mono_ms, int64_t wall_ms)
{
	atomic_store_explicit(&g_metrics.tick_wall_ms, wall_ms, memory_order_relaxed);
	/* 0 means "never": a monotonic clock that reads 0 ms is taken as 1 ms. */
	atomic_store_explicit(&g_metrics.tick_mono_ms, mono_ms ? mono_ms : 1, memory_order_relaxed);
}

double metrics_loop_age(void)
{
	int64_t at = atomic_load_explicit(&g_metrics.tick_mono_ms, memory_order_relaxed);

	if (!at)
		return -1;
	return (double)(clock_mono_ms() - at) / 1000.0;
}

/* ---- rendering ---- */

struct metrics_buf {
	char *p;
	size_t len, cap;
	int oom;
};

__attribute__((format(printf, 2, 3))) static void metrics_printf(struct metrics_buf *b,
								 const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap * 2 + (size_t)n;
		char *grown = realloc(b->p, cap);
		if (!grown) {
			b->oom = 1;
			return;
		}
		b->p = grown;
		b->cap = cap;
	}
}

/* A label value with \ " and newline escaped, as the text format requires. */
static void metrics_escaped(struct metrics_buf *b, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\\')
			metrics_printf(b, "\\\\");
		else if (*s == '"')
			metrics_printf(b, "\\\"");
		else if (*s == '\n')
			metrics_printf(b, "\\n");
		else
			metrics_printf(b, "%c", *s);
	}
}

static void metrics_header(struct metrics_buf *b, const char *name, const char *type,
			   const char *help)
{
	metrics_printf(b, "# HELP asset_worker_%s %s\n# TYPE asset_worker_%s %s\n", name, help,
		       name, type);
}

/* name{label="value"} N */
static void metrics_labelled(struct metrics_buf *b, const char *name, const char *label,
			     const char *value, uint64_t n)
{
	metrics_printf(b, "asset_worker_%s{%s=\"", name, label);
	metrics_escaped(b, value);
	metrics_printf(b, "\"} %" PRIu64 "\n", n);
}

static void metrics_render_map(struct metrics_buf *b, const struct metrics_map *m,
			       const char *name, const char *label)
{
	for (size_t i = 0; i < m->n; i++)
		metrics_labelled(b, name, label, m->items[i].a, (uint64_t)m->items[i].value);
}

static void metrics_render_histogram(struct metrics_buf *b)
{
	uint64_t cum = 0, sum_ns;

	metrics_header(b, "processing_seconds", "histogram",
		       "Time from decoding a request to its outcome.");
	for (size_t i = 0; i <= METRICS_BUCKETS; i++) {
		cum += atomic_load_explicit(&g_metrics.buckets[i], memory_order_relaxed);
		if (i < METRICS_BUCKETS)
			metrics_printf(b, "asset_worker_processing_seconds_bucket{le=\"%g\"} %" PRIu64
				       "\n", metrics_buckets[i], cum);
		else
			metrics_printf(b, "asset_worker_processing_seconds_bucket{le=\"+Inf\"} %"
				       PRIu64 "\n", cum);
	}
	/* _count is the +Inf bucket by construction, even while another thread observes. */
	sum_ns = atomic_load_explicit(&g_metrics.sum_ns, memory_order_relaxed);
	metrics_printf(b, "asset_worker_processing_seconds_sum %" PRIu64 ".%09" PRIu64 "\n",
		       sum_ns / 1000000000u, sum_ns % 1000000000u);
	metrics_printf(b, "asset_worker_processing_seconds_count %" PRIu64 "\n", cum);
}

static void metrics_render_seconds(struct metrics_buf *b, const char *name, const char *help,
				   int64_t ms)
{
	uint64_t abs_ms = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;

	metrics_header(b, name, "gauge", help);
	metrics_printf(b, "asset_worker_%s %s%" PRIu64 ".%03" PRIu64 "\n", name, ms < 0 ? "-" : "",
		       abs_ms / 1000, abs_ms % 1000);
}

int metrics_render(char **out, size_t *len)
{
	struct metrics_buf b = { .cap = 8192 };

	*out = NULL;
	*len = 0;
	if (!(b.p = malloc(b.cap)))
		return -1;
	b.p[0] = '\0';

	metrics_header(&b, "requests_total", "counter", "Requests by final outcome.");
	for (size_t i = 0; i < METRICS_OUTCOMES; i++)
		metrics_labelled(&b, "requests_total", "outcome", outcome_names[i],
				 atomic_load_explicit(&g_metrics.outcomes[i], memory_order_relaxed));

	metrics_header(&b, "retries_total", "counter",
		       "Retries: requeue to the retry topic, or in place after a transient error.");
	for (size_t i = 0; i < METRICS_RETRY_KINDS; i++)
		metrics_labelled(&b, "retries_total", "kind", retry_kind_names[i],
				 atomic_load_explicit(&g_metrics.retries[i], memory_order_relaxed));
	metrics_header(&b, "batches_total", "counter",
		       "Batch transactions tried: the set statement, with the refusal check, or "
		       "request by request.");
	for (size_t i = 0; i < METRICS_BATCH_PATHS; i++)
		metrics_labelled(&b, "batches_total", "path", batch_path_names[i],
				 atomic_load_explicit(&g_metrics.batches[i], memory_order_relaxed));

	metrics_header(&b, "db_reconnects_total", "counter", "PostgreSQL reconnections.");
	metrics_printf(&b, "asset_worker_db_reconnects_total %" PRIu64 "\n",
		       atomic_load_explicit(&g_metrics.reconnects, memory_order_relaxed));

	metrics_render_histogram(&b);

	for (size_t i = 0; i < METRICS_GAUGES; i++) {
		metrics_header(&b, gauge_desc[i].name, "gauge", gauge_desc[i].help);
		metrics_printf(&b, "asset_worker_%s %" PRId64 "\n", gauge_desc[i].name,
			       atomic_load_explicit(&g_metrics.gauges[i], memory_order_relaxed));
	}

	metrics_render_seconds(&b, "last_loop_timestamp_seconds",
			       "Wall clock of the last turn of the consume loop.",
			       atomic_load_explicit(&g_metrics.tick_wall_ms, memory_order_relaxed));
	metrics_render_seconds(&b, "start_time_seconds", "Wall clock when the worker started.",
			       atomic_load_explicit(&g_metrics.start_wall_ms, memory_order_relaxed));

	pthread_mutex_lock(&g_metrics.lock);
	metrics_header(&b, "dead_letters_total", "counter",
		       "Requests sent to the dead-letter topic, by x-error-class.");
	metrics_render_map(&b, &g_metrics.dead_letters, "dead_letters_total", "error_class");
	metrics_header(&b, "db_errors_total", "counter",
		       "Failed PostgreSQL statements, by SQLSTATE (none: no server answer).");
	metrics_render_map(&b, &g_metrics.db_errors, "db_errors_total", "sqlstate");
	metrics_header(&b, "consumer_lag", "gauge",
		       "Records behind the high watermark, by assigned partition.");
	for (size_t i = 0; i < g_metrics.lag.n; i++) {
		const struct metrics_series *s = &g_metrics.lag.items[i];
		metrics_printf(&b, "asset_worker_consumer_lag{topic=\"");
		metrics_escaped(&b, s->a);
		metrics_printf(&b, "\",partition=\"%s\"} %" PRId64 "\n", s->b, s->value);
	}
	metrics_header(&b, "info", "gauge", "The worker's version, consumer group and id.");
	metrics_printf(&b, "asset_worker_info{version=\"");
	metrics_escaped(&b, g_metrics.version);
	metrics_printf(&b, "\",group=\"");
	metrics_escaped(&b, g_metrics.group);
	metrics_printf(&b, "\",worker_id=\"");
	metrics_escaped(&b, g_metrics.worker_id);
	metrics_printf(&b, "\"} 1\n");
	pthread_mutex_unlock(&g_metrics.lock);

	if (b.oom) {
		free(b.p);
		return -1;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}
