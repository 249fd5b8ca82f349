/* The worker's HTTP endpoints (libmicrohttpd, one internal polling thread), on metrics.listen:
 *
 *   GET /metrics  200, metrics_render() as text/plain; version=0.0.4
 *   GET /healthz  200 "ok" while the consume loop turns (metrics_loop_tick() within the last
 *                 METRICS_HTTP_STALL_S seconds), else 503 "stalled: ..."   (liveness)
 *   GET /readyz   200 "ready" when the ready function says so, else 503 "not ready: <reason>"
 *                 (readiness)
 *   anything else 404; a method other than GET or HEAD 405 (with Allow: GET, HEAD)
 *
 * One server per process: start it after metrics_setup() and once the listen address is
 * known, stop it before metrics_cleanup(). Its thread blocks every signal, so SIGTERM, SIGINT
 * and SIGHUP always reach the main thread. The handlers only read the metrics registry (and
 * call the ready function), never the consume loop's state. */
#ifndef AW_METRICS_HTTP_H
#define AW_METRICS_HTTP_H

#include <stddef.h>

#define METRICS_HTTP_STALL_S 30 /* /healthz fails when the loop has not turned for this long */

/* Decides /readyz. Runs on the HTTP server thread: it may only read what is safe to read from
 * another thread (atomics, e.g. metrics_get_gauge()). Returns 1 when ready; otherwise 0 and a
 * short reason in `reason` (NUL-terminated, at most `size` bytes). */
typedef int (*metrics_ready_fn)(void *opaque, char *reason, size_t size);

/* The default ready function (used when metrics_http_start gets NULL): ready when the worker
 * holds an assignment of the consumer group (METRICS_GROUP_JOINED = 1; an empty assignment
 * counts, as a worker beyond the partition count is healthy and waiting) and the database is
 * reachable (METRICS_DB_UP = 1). */
int metrics_http_ready_default(void *opaque, char *reason, size_t size);

/* Starts serving on `listen`: "host:port", "[v6]:port" or ":port" (every interface, IPv6 and
 * IPv4 where the system has both); port 0 lets the kernel choose (see metrics_http_port()).
 * Binds only that address. ready may be NULL (metrics_http_ready_default); opaque is passed
 * to it. Returns 0, or -1 with the reason in errbuf (bad address, address in use, already
 * started). */
int metrics_http_start(const char *listen, metrics_ready_fn ready, void *opaque, char *errbuf,
		       size_t errsize);

/* The bound TCP port, 0 when not started. */
unsigned metrics_http_port(void);

/* Stops the server and waits for its thread; idempotent, safe when never started. */
void metrics_http_stop(void);

#endif
