/* aw-dev-broker: librdkafka's mock cluster on loopback, only for the tests that need a fault
 * the real broker (scripts/kafka.sh) cannot be made to show: an exact error code on chosen
 * requests (push-errors). The demo, the benchmark and every other test use real Kafka.
 *
 * It is librdkafka's own mock cluster (rdkafka_mock.h) kept alive as a daemon: clients reach
 * it over TCP exactly as they reach a real cluster (metadata, produce with idempotence, fetch,
 * list offsets, consumer groups with the group coordinator, offset commits). Everything lives
 * in memory and is gone when the process exits.
 *
 *   aw-dev-broker [--brokers N] [--topic NAME:PARTITIONS]... [--address-file PATH]
 *                 [--control FIFO] [--debug CONTEXTS]
 *
 * The control FIFO takes one command per line, for fault injection by tests:
 *   broker-down ID | broker-up ID          ID is 1..N, or "all"
 *   push-errors APIKEY ERRCODE COUNT       the next COUNT requests of APIKEY fail with ERRCODE
 *   clear-errors APIKEY
 *   rtt ID MS                              delay every response of broker ID by MS
 *   topic-create NAME PARTITIONS
 * Each command is answered by one log line ("control" ok/failed) on stderr. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "log.h"

#define BROKER_MAX 16
#define PARTITIONS_MAX 1024
#define CONTROL_LINE_MAX 1024
#define PUSH_ERRORS_MAX 1000000

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

struct topic_spec {
	char *name;
	int partitions;
};

struct broker_opts {
	int broker_cnt;
	struct topic_spec *topics; /* owned */
	size_t ntopics;
	const char *address_file; /* NULL: none */
	const char *control_path; /* NULL: none */
	const char *debug;	  /* librdkafka debug contexts, NULL: none */
};

struct broker {
	rd_kafka_t *rk; /* the throwaway handle the mock cluster runs on */
	rd_kafka_mock_cluster_t *mcluster;
	int broker_cnt;
	int control_fd; /* -1 while closed */
	int control_created; /* we made the FIFO, so we remove it */
	char control_buf[CONTROL_LINE_MAX];
	size_t control_len;
	int control_overlong; /* discarding the rest of a too-long line */
};

/* ---- topics -------------------------------------------------------------------------------- */

static int topic_create(struct broker *b, const char *name, int partitions)
{
	int rf = b->broker_cnt < 3 ? b->broker_cnt : 3;
	rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(b->mcluster, name, partitions, rf);

	if (err) {
		log_error("topic_create_failed", LOG_S("topic", name),
			  LOG_I("partitions", partitions), LOG_S("error", rd_kafka_err2str(err)));
		return -1;
	}
	/* The mock keeps at most 5 MiB (100000 batches) per partition and drops the oldest
	 * beyond that: it serves only the few tests that need an exact error code, with small
	 * streams. Everything else runs on the real broker (scripts/kafka.sh). */
	log_info("topic_created", LOG_S("topic", name), LOG_I("partitions", partitions),
		 LOG_I("replication_factor", rf));
	return 0;
}

/* ---- parsing ------------------------------------------------------------------------------- */

static int parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* "NAME:PARTITIONS" */
static int topic_spec_parse(const char *arg, struct topic_spec *out)
{
	const char *colon = strrchr(arg, ':');
	long n;

	if (!colon || colon == arg || parse_int(colon + 1, 1, PARTITIONS_MAX, &n) != 0)
		return -1;
	out->name = strndup(arg, (size_t)(colon - arg));
	if (!out->name)
		return -1;
	out->partitions = (int)n;
	return 0;
}

static const struct {
	const char *name;
	int16_t key;
} api_names[] = {
	{ "Produce", 0 },	 { "Fetch", 1 },	{ "ListOffsets", 2 },
	{ "Metadata", 3 },	 { "OffsetCommit", 8 }, { "OffsetFetch", 9 },
	{ "FindCoordinator", 10 }, { "JoinGroup", 11 },	{ "Heartbeat", 12 },
	{ "LeaveGroup", 13 },	 { "SyncGroup", 14 },	{ "ApiVersions", 18 },
	{ "InitProducerId", 22 },
};

static int apikey_parse(const char *s, int16_t *out)
{
	long v;

	if (!s)
		return -1;
	for (size_t i = 0; i < sizeof api_names / sizeof api_names[0]; i++)
		if (strcasecmp(s, api_names[i].name) == 0) {
			*out = api_names[i].key;
			return 0;
		}
	if (parse_int(s, 0, 1000, &v) != 0)
		return -1;
	*out = (int16_t)v;
	return 0;
}

/* Broker id 1..N, or "all" / -1 for every broker. */
static int broker_id_parse(const struct broker *b, const char *s, int32_t *out)
{
	long v;

	if (s && strcasecmp(s, "all") == 0) {
		*out = -1;
		return 0;
	}
	if (parse_int(s, -1, b->broker_cnt, &v) != 0 || v == 0)
		return -1;
	*out = (int32_t)v;
	return 0;
}

/* ---- control FIFO -------------------------------------------------------------------------- */

static void control_reply(const char *line, rd_kafka_resp_err_t err, const char *why)
{
	if (why)
		log_warn("control", LOG_S("command", line), LOG_S("result", "failed"),
			 LOG_S("error", why));
	else if (err)
		log_warn("control", LOG_S("command", line), LOG_S("result", "failed"),
			 LOG_S("error", rd_kafka_err2str(err)));
	else
		log_info("control", LOG_S("command", line), LOG_S("result", "ok"));
}

/* Executes one command line. Bad input is reported, never fatal. */
static void control_execute(struct broker *b, char *line)
{
	char copy[CONTROL_LINE_MAX];
	char *save = NULL, *cmd, *a1, *a2, *a3, *extra;
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
	rd_kafka_resp_err_t *errs;
	const char *why = NULL;
	int32_t id;
	int16_t apikey;
	long n, code, count;

	snprintf(copy, sizeof copy, "%s", line);
	cmd = strtok_r(line, " \t\r", &save);
	if (!cmd || cmd[0] == '#')
		return;
	a1 = strtok_r(NULL, " \t\r", &save);
	a2 = strtok_r(NULL, " \t\r", &save);
	a3 = strtok_r(NULL, " \t\r", &save);
	extra = strtok_r(NULL, " \t\r", &save);

	if (strcmp(cmd, "broker-down") == 0 || strcmp(cmd, "broker-up") == 0) {
		if (a2 || broker_id_parse(b, a1, &id) != 0)
			why = "usage: broker-down|broker-up ID|all";
		else if (strcmp(cmd, "broker-down") == 0)
			err = rd_kafka_mock_broker_set_down(b->mcluster, id);
		else
			err = rd_kafka_mock_broker_set_up(b->mcluster, id);
	} else if (strcmp(cmd, "push-errors") == 0) {
		if (extra || apikey_parse(a1, &apikey) != 0 || parse_int(a2, -1, 32767, &code) != 0 ||
		    parse_int(a3, 1, PUSH_ERRORS_MAX, &count) != 0) {
			why = "usage: push-errors APIKEY ERRCODE COUNT";
		} else if (!(errs = malloc((size_t)count * sizeof *errs))) {
			why = "out of memory";
		} else {
			for (long i = 0; i < count; i++)
				errs[i] = (rd_kafka_resp_err_t)code;
			rd_kafka_mock_push_request_errors_array(b->mcluster, apikey, (size_t)count,
								errs);
			free(errs);
		}
	} else if (strcmp(cmd, "clear-errors") == 0) {
		if (a2 || apikey_parse(a1, &apikey) != 0)
			why = "usage: clear-errors APIKEY";
		else
			rd_kafka_mock_clear_request_errors(b->mcluster, apikey);
	} else if (strcmp(cmd, "rtt") == 0) {
		if (a3 || broker_id_parse(b, a1, &id) != 0 || parse_int(a2, 0, 3600000, &n) != 0)
			why = "usage: rtt ID|all MS";
		else
			err = rd_kafka_mock_broker_set_rtt(b->mcluster, id, (int)n);
	} else if (strcmp(cmd, "topic-create") == 0) {
		if (a3 || !a1 || parse_int(a2, 1, PARTITIONS_MAX, &n) != 0)
			why = "usage: topic-create NAME PARTITIONS";
		else if (topic_create(b, a1, (int)n) != 0)
			why = "could not create topic";
	} else {
		why = "unknown command";
	}
	control_reply(copy, err, why);
}

static int control_open(struct broker *b, const char *path)
{
	/* Non-blocking, so opening does not wait for a writer and reads never hang. */
	b->control_fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (b->control_fd < 0) {
		log_error("control_open_failed", LOG_S("path", path), LOG_S("error", strerror(errno)));
		return -1;
	}
	return 0;
}

static int control_setup(struct broker *b, const char *path)
{
	struct stat st;

	if (mkfifo(path, 0600) == 0) {
		b->control_created = 1;
	} else if (errno != EEXIST) {
		log_error("control_mkfifo_failed", LOG_S("path", path),
			  LOG_S("error", strerror(errno)));
		return -1;
	} else if (stat(path, &st) != 0 || !S_ISFIFO(st.st_mode)) {
		log_error("control_not_a_fifo", LOG_S("path", path));
		return -1;
	}
	return control_open(b, path);
}

static void control_consume(struct broker *b, const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = data[i];
		if (c == '\n') {
			if (!b->control_overlong) {
				b->control_buf[b->control_len] = '\0';
				control_execute(b, b->control_buf);
			}
			b->control_len = 0;
			b->control_overlong = 0;
		} else if (b->control_overlong) {
			continue;
		} else if (b->control_len + 1 >= sizeof b->control_buf) {
			log_warn("control", LOG_S("result", "failed"), LOG_S("error", "line too long"));
			b->control_overlong = 1;
		} else {
			b->control_buf[b->control_len++] = c;
		}
	}
}

/* Reads whatever is there. After EOF (every writer closed) the FIFO is reopened, because a
 * read end that saw EOF polls readable forever. */
static int control_read(struct broker *b, const char *path)
{
	char data[4096];

	for (;;) {
		ssize_t n = read(b->control_fd, data, sizeof data);
		if (n > 0) {
			control_consume(b, data, (size_t)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n < 0)
			log_warn("control_read_failed", LOG_S("error", strerror(errno)));
		if (b->control_len > 0)
			control_consume(b, "\n", 1); /* a last line without its newline */
		close(b->control_fd);
		b->control_fd = -1;
		return control_open(b, path);
	}
}

/* ---- address file -------------------------------------------------------------------------- */

/* Written to a temporary name and renamed, so a reader never sees half an address. */
static int address_file_write(const char *path, const char *bootstraps)
{
	char *tmp = NULL;
	FILE *f = NULL;
	int rc = -1;

	if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0) {
		tmp = NULL;
		goto cleanup;
	}
	f = fopen(tmp, "w");
	if (!f)
		goto cleanup;
	if (fprintf(f, "%s\n", bootstraps) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0)
		goto cleanup;
	if (fclose(f) != 0) {
		f = NULL;
		goto cleanup;
	}
	f = NULL;
	if (rename(tmp, path) != 0)
		goto cleanup;
	rc = 0;
cleanup:
	if (rc != 0)
		log_error("address_file_failed", LOG_S("path", path), LOG_S("error", strerror(errno)));
	if (f)
		fclose(f);
	if (tmp) {
		if (rc != 0)
			unlink(tmp);
		free(tmp);
	}
	return rc;
}

/* ---- setup and main loop ------------------------------------------------------------------- */

/* librdkafka's own lines go through our logger. Notices are debug here: the throwaway handle
 * warns that it has no bootstrap.servers, which is true and harmless. */
static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	enum log_level l = level <= 3 ? LOG_ERROR : level == 4 ? LOG_WARN : LOG_DEBUG;

	(void)rk;
	if (log_enabled(l))
		log_write(l, "rdkafka", (const struct log_field[]){ LOG_S("facility", fac),
								  LOG_S("message", buf) },
			  2);
}

static int broker_setup(struct broker *b, const struct broker_opts *o)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);

	if (o->debug && rd_kafka_conf_set(conf, "debug", o->debug, errstr, sizeof errstr) !=
				RD_KAFKA_CONF_OK) {
		log_error("bad_debug_contexts", LOG_S("error", errstr));
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	b->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
	if (!b->rk) {
		log_error("rd_kafka_new_failed", LOG_S("error", errstr));
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	conf = NULL; /* now owned by rk */
	b->mcluster = rd_kafka_mock_cluster_new(b->rk, o->broker_cnt);
	if (!b->mcluster) {
		log_error("mock_cluster_failed", LOG_I("brokers", o->broker_cnt));
		return -1;
	}
	b->broker_cnt = o->broker_cnt;
	for (size_t i = 0; i < o->ntopics; i++)
		if (topic_create(b, o->topics[i].name, o->topics[i].partitions) != 0)
			return -1;
	return 0;
}

static void broker_cleanup(struct broker *b, const struct broker_opts *o)
{
	if (b->control_fd >= 0)
		close(b->control_fd);
	if (b->control_created)
		unlink(o->control_path);
	if (b->mcluster)
		rd_kafka_mock_cluster_destroy(b->mcluster);
	if (b->rk)
		rd_kafka_destroy(b->rk);
}

static void broker_run(struct broker *b, const struct broker_opts *o)
{
	while (!g_stop) {
		struct pollfd pfd = { .fd = b->control_fd, .events = POLLIN };
		int r = poll(&pfd, b->control_fd >= 0 ? 1 : 0, 200);

		if (r > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			control_read(b, o->control_path);
		else if (r < 0 && errno != EINTR)
			log_warn("poll_failed", LOG_S("error", strerror(errno)));
		if (o->control_path && b->control_fd < 0 && control_open(b, o->control_path) != 0)
			sleep(1); /* keep serving the cluster; retry the FIFO later */
	}
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: aw-dev-broker [--brokers N] [--topic NAME:PARTITIONS]...\n"
		"                     [--address-file PATH] [--control FIFO] [--debug CONTEXTS]\n"
		"  --brokers N              number of brokers, 1..%d (default 1)\n"
		"  --topic NAME:PARTITIONS  create a topic; repeatable (default: assets.create:4,\n"
		"                           assets.create.retry:4, assets.create.dlq:1)\n"
		"  --address-file PATH      write the bootstrap list there once topics exist\n"
		"  --control FIFO           read fault-injection commands from this FIFO:\n"
		"       broker-down ID|all, broker-up ID|all, rtt ID|all MS,\n"
		"       push-errors APIKEY ERRCODE COUNT, clear-errors APIKEY,\n"
		"       topic-create NAME PARTITIONS\n"
		"  --debug CONTEXTS         librdkafka debug contexts, e.g. mock,cgrp\n"
		"Runs until SIGTERM or SIGINT.\n",
		BROKER_MAX);
}

static int opts_add_topic(struct broker_opts *o, const char *arg)
{
	struct topic_spec spec;
	struct topic_spec *grown;

	if (topic_spec_parse(arg, &spec) != 0)
		return -1;
	grown = realloc(o->topics, (o->ntopics + 1) * sizeof *grown);
	if (!grown) {
		free(spec.name);
		return -1;
	}
	o->topics = grown;
	o->topics[o->ntopics++] = spec;
	return 0;
}

static void opts_free(struct broker_opts *o)
{
	for (size_t i = 0; i < o->ntopics; i++)
		free(o->topics[i].name);
	free(o->topics);
}

/* Returns 0 to run, 1 when --help was answered, 2 for a usage error (already reported). */
static int opts_parse(int argc, char **argv, struct broker_opts *o)
{
	static const struct option longopts[] = {
		{ "brokers", required_argument, NULL, 'b' },
		{ "topic", required_argument, NULL, 't' },
		{ "address-file", required_argument, NULL, 'a' },
		{ "control", required_argument, NULL, 'c' },
		{ "debug", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const default_topics[] = { "assets.create:4", "assets.create.retry:4",
						      "assets.create.dlq:1" };
	long n;
	int c;

	o->broker_cnt = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (parse_int(optarg, 1, BROKER_MAX, &n) != 0) {
				fprintf(stderr, "aw-dev-broker: --brokers: expected 1..%d\n", BROKER_MAX);
				return 2;
			}
			o->broker_cnt = (int)n;
			break;
		case 't':
			if (opts_add_topic(o, optarg) != 0) {
				fprintf(stderr, "aw-dev-broker: --topic: expected NAME:PARTITIONS "
						"(1..%d), got '%s'\n",
					PARTITIONS_MAX, optarg);
				return 2;
			}
			break;
		case 'a':
			o->address_file = optarg;
			break;
		case 'c':
			o->control_path = optarg;
			break;
		case 'd':
			o->debug = optarg;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "aw-dev-broker: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (o->ntopics == 0)
		for (size_t i = 0; i < sizeof default_topics / sizeof default_topics[0]; i++)
			if (opts_add_topic(o, default_topics[i]) != 0)
				return 2;
	return 0;
}

int main(int argc, char **argv)
{
	struct broker_opts o = { 0 };
	struct broker b = { .control_fd = -1 };
	struct sigaction sa = { .sa_handler = on_signal };
	struct sigaction ign = { .sa_handler = SIG_IGN };
	const char *bootstraps;
	int rc = 1;

	log_setup(LOG_INFO, LOG_FORMAT_TEXT, "aw-dev-broker");
	rc = opts_parse(argc, argv, &o);
	if (rc != 0) {
		rc = rc == 1 ? 0 : rc;
		goto cleanup;
	}
	if (o.debug)
		log_set_level(LOG_DEBUG);
	rc = 1;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPIPE, &ign, NULL);

	if (broker_setup(&b, &o) != 0)
		goto cleanup;
	if (o.control_path && control_setup(&b, o.control_path) != 0)
		goto cleanup;
	bootstraps = rd_kafka_mock_cluster_bootstraps(b.mcluster);
	/* Published last: whoever reads the address may use every topic at once. */
	if (o.address_file && address_file_write(o.address_file, bootstraps) != 0)
		goto cleanup;
	log_info("listening", LOG_S("bootstrap", bootstraps), LOG_I("brokers", o.broker_cnt),
		 LOG_S("control", o.control_path), LOG_S("address_file", o.address_file),
		 LOG_I("pid", getpid()));

	broker_run(&b, &o);

	log_info("stopping", LOG_S("bootstrap", bootstraps));
	if (o.address_file)
		unlink(o.address_file); /* the address dies with us */
	rc = 0;
cleanup:
	broker_cleanup(&b, &o);
	opts_free(&o);
	log_cleanup();
	return rc;
}
