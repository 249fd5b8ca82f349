/* /metrics, /healthz and /readyz on libmicrohttpd's internal polling thread. */
#include "metrics_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "listen_addr.h"
#include "log.h"
#include "metrics.h"

#define METRICS_HTTP_CONN_LIMIT 32   /* scrapers and probes; more wait in the backlog */
#define METRICS_HTTP_CONN_TIMEOUT_S 10 /* an idle or slow client is dropped after this */
#define METRICS_HTTP_REASON_MAX 256

#define CT_TEXT "text/plain; charset=utf-8"
#define CT_PROMETHEUS "text/plain; version=0.0.4; charset=utf-8"

static struct {
	struct MHD_Daemon *daemon;
	metrics_ready_fn ready;
	void *opaque;
	unsigned port;
	int starting;	     /* MHD messages go to start_err while metrics_http_start runs */
	char start_err[256]; /* the last MHD message during start */
} g_http;

/* MHD's diagnostics: kept for the error of metrics_http_start, logged once serving. */
__attribute__((format(printf, 2, 0))) static void metrics_http_mhd_log(void *cls,
									 const char *fmt,
									 va_list ap)
{
	char msg[256];

	vsnprintf(msg, sizeof msg, fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	if (g_http.starting)
		snprintf(g_http.start_err, sizeof g_http.start_err, "%s", msg);
	else
		log_warn("metrics_http_error", LOG_S("error", msg));
}

int metrics_http_ready_default(void *opaque, char *reason, size_t size)
{
	if (metrics_get_gauge(METRICS_GROUP_JOINED) != 1) {
		snprintf(reason, size, "no assignment from the consumer group yet");
		return 0;
	}
	if (metrics_get_gauge(METRICS_DB_UP) != 1) {
		snprintf(reason, size, "database unreachable");
		return 0;
	}
	if (metrics_get_gauge(METRICS_FORWARDS_REFUSED) > 0) {
		snprintf(reason, size, "the broker refuses requeues or dead letters for good "
				       "(event forward_refused)");
		return 0;
	}
	return 1;
}

/* Queues a response of `len` bytes; MHD frees `body` when `owned`, else copies it. */
static enum MHD_Result metrics_http_reply(struct MHD_Connection *c, unsigned status,
					  const char *type, char *body, size_t len, int owned)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body,
					    owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
	if (!r) {
		if (owned)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result metrics_http_text(struct MHD_Connection *c, unsigned status,
					 const char *text)
{
	return metrics_http_reply(c, status, CT_TEXT, (char *)text, strlen(text), 0);
}

static enum MHD_Result metrics_http_metrics(struct MHD_Connection *c)
{
	char *body;
	size_t len;

	if (metrics_render(&body, &len) < 0)
		return metrics_http_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	return metrics_http_reply(c, MHD_HTTP_OK, CT_PROMETHEUS, body, len, 1);
}

static enum MHD_Result metrics_http_healthz(struct MHD_Connection *c)
{
	char msg[128];
	double age = metrics_loop_age();

	if (age < 0)
		return metrics_http_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
					 "stalled: the consume loop has not started\n");
	if (age > METRICS_HTTP_STALL_S) {
		snprintf(msg, sizeof msg, "stalled: the consume loop last turned %.0f s ago\n", age);
		return metrics_http_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
	}
	return metrics_http_text(c, MHD_HTTP_OK, "ok\n");
}

static enum MHD_Result metrics_http_readyz(struct MHD_Connection *c)
{
	char reason[METRICS_HTTP_REASON_MAX] = "", msg[METRICS_HTTP_REASON_MAX + 16];

	if (g_http.ready(g_http.opaque, reason, sizeof reason) == 1)
		return metrics_http_text(c, MHD_HTTP_OK, "ready\n");
	reason[sizeof reason - 1] = '\0';
	snprintf(msg, sizeof msg, "not ready: %s\n", reason[0] ? reason : "unknown");
	return metrics_http_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
}

static enum MHD_Result metrics_http_handle(void *cls, struct MHD_Connection *c,
					   const char *url, const char *method,
					   const char *version, const char *upload_data,
					   size_t *upload_data_size, void **req_cls)
{
	/* The first call comes with the headers: every answer here is known by then, and any
	 * request body is not read. */
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return metrics_http_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	if (strcmp(url, "/metrics") == 0)
		return metrics_http_metrics(c);
	if (strcmp(url, "/healthz") == 0)
		return metrics_http_healthz(c);
	if (strcmp(url, "/readyz") == 0)
		return metrics_http_readyz(c);
	return metrics_http_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* Starts MHD on one address, with every signal blocked in its thread. NULL on failure. */
static struct MHD_Daemon *metrics_http_daemon(const struct sockaddr *sa, unsigned port,
					      unsigned flags)
{
	sigset_t all, old;
	struct MHD_Daemon *d;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG |
				     flags,
			     (uint16_t)port, NULL, NULL, metrics_http_handle, NULL,
			     MHD_OPTION_EXTERNAL_LOGGER, metrics_http_mhd_log, NULL,
			     MHD_OPTION_SOCK_ADDR, sa,
			     MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_HTTP_CONN_LIMIT,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_HTTP_CONN_TIMEOUT_S,
			     MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return d;
}

/* ":port": every interface, dual-stack where IPv6 exists, else IPv4 only. */
static struct MHD_Daemon *metrics_http_any(unsigned port)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT,
				   .sin6_port = htons((uint16_t)port) };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY),
				  .sin_port = htons((uint16_t)port) };
	struct MHD_Daemon *d = metrics_http_daemon((struct sockaddr *)&a6, port, MHD_USE_DUAL_STACK);

	return d ? d : metrics_http_daemon((struct sockaddr *)&a4, port, 0);
}

/* "host:port": the first address the host resolves to. */
static struct MHD_Daemon *metrics_http_host(const struct listen_addr *la, char *errbuf,
					    size_t errsize)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE };
	struct addrinfo *res = NULL;
	struct MHD_Daemon *d = NULL;
	int gai = getaddrinfo(la->host, NULL, &hints, &res);

	if (gai != 0) {
		snprintf(errbuf, errsize, "cannot resolve \"%s\": %s", la->host, gai_strerror(gai));
		return NULL;
	}
	for (struct addrinfo *ai = res; ai && !d; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET) {
			struct sockaddr_in a4;
			memcpy(&a4, ai->ai_addr, sizeof a4);
			a4.sin_port = htons((uint16_t)la->port);
			d = metrics_http_daemon((struct sockaddr *)&a4, la->port, 0);
		} else if (ai->ai_family == AF_INET6) {
			struct sockaddr_in6 a6;
			memcpy(&a6, ai->ai_addr, sizeof a6);
			a6.sin6_port = htons((uint16_t)la->port);
			d = metrics_http_daemon((struct sockaddr *)&a6, la->port, MHD_USE_IPv6);
		}
	}
	freeaddrinfo(res);
	return d;
}

int metrics_http_start(const char *listen, metrics_ready_fn ready, void *opaque, char *errbuf,
		       size_t errsize)
{
	struct listen_addr la;
	const union MHD_DaemonInfo *info;
	char err[256];

	errbuf[0] = '\0';
	if (g_http.daemon) {
		snprintf(errbuf, errsize, "the metrics server is already running");
		return -1;
	}
	if (!listen || listen_addr_parse(listen, &la, err, sizeof err) < 0) {
		snprintf(errbuf, errsize, "metrics listen address: %s", listen ? err : "none");
		return -1;
	}
	g_http.ready = ready ? ready : metrics_http_ready_default;
	g_http.opaque = opaque;
	g_http.start_err[0] = '\0';
	g_http.starting = 1;
	g_http.daemon = la.host[0] ? metrics_http_host(&la, errbuf, errsize)
				   : metrics_http_any(la.port);
	g_http.starting = 0;
	if (!g_http.daemon) {
		if (!errbuf[0])
			snprintf(errbuf, errsize, "cannot listen on %s: %s", listen,
				 g_http.start_err[0] ? g_http.start_err : "libmicrohttpd failed");
		return -1;
	}
	info = MHD_get_daemon_info(g_http.daemon, MHD_DAEMON_INFO_BIND_PORT);
	g_http.port = info ? info->port : la.port;
	log_info("metrics_http_listening", LOG_S("listen", listen), LOG_I("port", g_http.port));
	return 0;
}

unsigned metrics_http_port(void)
{
	return g_http.daemon ? g_http.port : 0;
}

void metrics_http_stop(void)
{
	if (!g_http.daemon)
		return;
	MHD_stop_daemon(g_http.daemon); /* joins the server thread */
	g_http.daemon = NULL;
	g_http.port = 0;
	g_http.ready = NULL;
	g_http.opaque = NULL;
}
