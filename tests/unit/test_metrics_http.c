/* The HTTP endpoints, served for real on 127.0.0.1 with a kernel-chosen port and fetched over
 * a plain TCP socket: status codes, content types and bodies of /metrics, /healthz, /readyz,
 * 404, 405, HEAD; the default readiness; start errors. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "listen_addr.h"
#include "metrics.h"
#include "metrics_http.h"

struct reply {
	int status;
	char head[2048]; /* status line and headers */
	char *body;
};

/* Sends `request` (a whole HTTP/1.0 request) to 127.0.0.1:port and reads the reply to EOF. */
static void http(unsigned port, const char *request, struct reply *r)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 10 };
	char *all = NULL, *sep;
	size_t len = 0, cap = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
	for (;;) {
		if (cap - len < 4096) {
			cap = cap * 2 + 4096;
			all = realloc(all, cap);
			assert_non_null(all);
		}
		ssize_t n = read(fd, all + len, cap - len - 1);
		assert_true(n >= 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	all[len] = '\0';
	assert_int_equal(sscanf(all, "HTTP/1.%*d %d", &r->status), 1);
	sep = strstr(all, "\r\n\r\n");
	assert_non_null(sep);
	snprintf(r->head, sizeof r->head, "%.*s", (int)(sep - all), all);
	r->body = strdup(sep + 4);
	free(all);
}

static void get(unsigned port, const char *path, struct reply *r)
{
	char req[256];

	snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
	http(port, req, r);
}

/* 1 when the headers hold `name: value` (name case-insensitive). */
static int has_header(const struct reply *r, const char *name, const char *value)
{
	char want[256];
	size_t n;

	snprintf(want, sizeof want, "%s: %s", name, value);
	n = strlen(want);
	for (const char *line = strstr(r->head, "\r\n"); line; line = strstr(line, "\r\n")) {
		line += 2;
		if (strncasecmp(line, want, strlen(name)) == 0 &&
		    strncmp(line + strlen(name), want + strlen(name), n - strlen(name)) == 0)
			return 1;
	}
	return 0;
}

static atomic_int test_ready;

static int ready_fn(void *opaque, char *reason, size_t size)
{
	/* runs on the server thread: no cmocka assertions here */
	if (opaque == &test_ready && atomic_load(&test_ready))
		return 1;
	snprintf(reason, size, "waiting for the test");
	return 0;
}

static int setup(void **state)
{
	(void)state;
	metrics_setup("9.9.9", "grp", "w-http");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	metrics_http_stop();
	metrics_cleanup();
	return 0;
}

static void test_endpoints(void **state)
{
	char err[256];
	struct reply r;
	unsigned port;

	(void)state;
	atomic_store(&test_ready, 0);
	assert_int_equal(metrics_http_port(), 0);
	assert_int_equal(metrics_http_start("127.0.0.1:0", ready_fn, &test_ready, err, sizeof err), 0);
	port = metrics_http_port();
	assert_true(port > 0 && port <= 65535);

	metrics_count_outcome("created");
	get(port, "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "Content-Type", "text/plain; version=0.0.4"));
	assert_non_null(strstr(r.body, "# TYPE asset_worker_requests_total counter\n"));
	assert_non_null(strstr(r.body, "asset_worker_requests_total{outcome=\"created\"} 1\n"));
	assert_non_null(strstr(r.body, "asset_worker_info{version=\"9.9.9\",group=\"grp\","
					"worker_id=\"w-http\"} 1\n"));
	free(r.body);

	get(port, "/metrics?name[]=x", &r); /* a query string does not change the path */
	assert_int_equal(r.status, 200);
	free(r.body);

	get(port, "/healthz", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ok\n");
	free(r.body);
	metrics_loop_tick_at(clock_mono_ms() - (METRICS_HTTP_STALL_S + 5) * 1000, clock_wall_ms());
	get(port, "/healthz", &r);
	assert_int_equal(r.status, 503);
	assert_non_null(strstr(r.body, "stalled"));
	free(r.body);
	metrics_loop_tick();
	get(port, "/healthz", &r);
	assert_int_equal(r.status, 200);
	free(r.body);

	get(port, "/readyz", &r);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body, "not ready: waiting for the test\n");
	free(r.body);
	atomic_store(&test_ready, 1);
	get(port, "/readyz", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ready\n");
	free(r.body);

	get(port, "/", &r);
	assert_int_equal(r.status, 404);
	free(r.body);
	get(port, "/metricsx", &r);
	assert_int_equal(r.status, 404);
	free(r.body);

	http(port, "POST /metrics HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", &r);
	assert_int_equal(r.status, 405);
	assert_true(has_header(&r, "Allow", "GET, HEAD"));
	free(r.body);
	http(port, "DELETE /healthz HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 405);
	free(r.body);

	http(port, "HEAD /metrics HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "");
	free(r.body);

	/* one server per process */
	assert_int_equal(metrics_http_start("127.0.0.1:0", NULL, NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "already running"));

	metrics_http_stop();
	assert_int_equal(metrics_http_port(), 0);
	metrics_http_stop(); /* idempotent */
}

static void test_default_ready(void **state)
{
	char err[256];
	struct reply r;
	unsigned port;

	(void)state;
	assert_int_equal(metrics_http_start("127.0.0.1:0", NULL, NULL, err, sizeof err), 0);
	port = metrics_http_port();
	get(port, "/readyz", &r);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body, "not ready: no assignment from the consumer group yet\n");
	free(r.body);
	metrics_set_gauge(METRICS_GROUP_JOINED, 1);
	get(port, "/readyz", &r);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body, "not ready: database unreachable\n");
	free(r.body);
	metrics_set_gauge(METRICS_DB_UP, 1);
	get(port, "/readyz", &r);
	assert_int_equal(r.status, 200);
	free(r.body);
	metrics_http_stop();
}

/* ":port" listens on every interface, so 127.0.0.1 reaches it too. */
static void test_any_address(void **state)
{
	char err[256];
	struct reply r;

	(void)state;
	assert_int_equal(metrics_http_start(":0", NULL, NULL, err, sizeof err), 0);
	get(metrics_http_port(), "/healthz", &r);
	assert_int_equal(r.status, 200);
	free(r.body);
	metrics_http_stop();
}

static void test_start_errors(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t salen = sizeof sa;
	char err[256], addr[64];
	int fd;

	(void)state;
	assert_int_equal(metrics_http_start("9464", NULL, NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "not host:port"));
	assert_int_equal(metrics_http_start("127.0.0.1:99999", NULL, NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "out of range"));
	assert_int_equal(metrics_http_start(NULL, NULL, NULL, err, sizeof err), -1);
	assert_int_equal(metrics_http_start("no-such-host.invalid:1", NULL, NULL, err, sizeof err),
			 -1);
	assert_non_null(strstr(err, "cannot resolve"));

	/* a port already taken */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &salen), 0);
	snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
	assert_int_equal(metrics_http_start(addr, NULL, NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "cannot listen on"));
	assert_int_equal(metrics_http_port(), 0);
	close(fd);
}

static void test_listen_addr(void **state)
{
	static const struct {
		const char *in;
		const char *host; /* NULL: refused */
		unsigned port;
	} cases[] = {
		{ ":9464", "", 9464 },
		{ "127.0.0.1:0", "127.0.0.1", 0 },
		{ "localhost:65535", "localhost", 65535 },
		{ "metrics.svc-1_a:80", "metrics.svc-1_a", 80 },
		{ "[::1]:9464", "::1", 9464 },
		{ "[::]:1", "::", 1 },
		{ "[fe80::1%eth0]:9", "fe80::1%eth0", 9 },
		{ "[::ffff:127.0.0.1]:9", "::ffff:127.0.0.1", 9 },
		{ "", NULL, 0 },
		{ "9464", NULL, 0 },
		{ "host:", NULL, 0 },
		{ ":", NULL, 0 },
		{ "host:65536", NULL, 0 },
		{ "host:99999999999999999999", NULL, 0 },
		{ "host:-1", NULL, 0 },
		{ "host:+1", NULL, 0 },
		{ "host:1 ", NULL, 0 },
		{ "ho st:1", NULL, 0 },
		{ "::1:9464", NULL, 0 },
		{ "[::1]9464", NULL, 0 },
		{ "[::1]", NULL, 0 },
		{ "[nothex]:1", NULL, 0 },
		{ "[]:1", NULL, 0 },
		{ "[::1%]:1", NULL, 0 },
	};
	struct listen_addr la;
	char err[128];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc = listen_addr_parse(cases[i].in, &la, err, sizeof err);
		if (!cases[i].host) {
			if (rc != -1)
				fail_msg("\"%s\" accepted", cases[i].in);
			assert_true(err[0] != '\0');
			continue;
		}
		if (rc != 0)
			fail_msg("\"%s\" refused: %s", cases[i].in, err);
		assert_string_equal(la.host, cases[i].host);
		assert_int_equal(la.port, cases[i].port);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_endpoints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_default_ready, setup, teardown),
		cmocka_unit_test_setup_teardown(test_any_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
		cmocka_unit_test(test_listen_addr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
