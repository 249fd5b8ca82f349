/* retry_delay: a min-heap of not-yet-due retry records. Real rd_kafka_message_t objects come
 * from librdkafka's in-process mock cluster (produced once, consumed with assign), because
 * retry_delay destroys the messages it owns. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "clock.h"
#include "retry_delay.h"

#define POOL_SIZE 6000
#define TOPIC "assets.create.retry"

/* Messages handed out to the tests; whatever is left is destroyed at teardown. */
struct pool {
	rd_kafka_t *producer; /* owns the mock cluster */
	rd_kafka_t *consumer;
	rd_kafka_message_t *msgs[POOL_SIZE];
	size_t next, count;
};

static struct pool g_pool;

static void conf_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
	char err[512];
	if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK)
		fail_msg("%s=%s: %s", k, v, err);
}

static int pool_setup(void **state)
{
	(void)state;
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	conf_set(conf, "test.mock.num.brokers", "1");
	conf_set(conf, "log_level", "3");
	conf_set(conf, "linger.ms", "5");
	g_pool.producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
	if (!g_pool.producer) {
		fprintf(stderr, "producer: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	/* conf is now owned by the producer */
	rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(g_pool.producer);
	if (!mc || rd_kafka_mock_topic_create(mc, TOPIC, 1, 1) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return -1;

	for (int i = 0; i < POOL_SIZE; i++) {
		char val[32];
		int n = snprintf(val, sizeof val, "v%d", i);
		rd_kafka_resp_err_t e;
		while ((e = rd_kafka_producev(g_pool.producer, RD_KAFKA_V_TOPIC(TOPIC),
					      RD_KAFKA_V_PARTITION(0),
					      RD_KAFKA_V_VALUE(val, (size_t)n),
					      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					      RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(g_pool.producer, 10);
		if (e) {
			fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e));
			return -1;
		}
	}
	if (rd_kafka_flush(g_pool.producer, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return -1;

	conf = rd_kafka_conf_new();
	conf_set(conf, "bootstrap.servers",
		 rd_kafka_mock_cluster_bootstraps(mc));
	conf_set(conf, "group.id", "test_retry_delay");
	conf_set(conf, "enable.auto.commit", "false");
	conf_set(conf, "log_level", "3");
	g_pool.consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
	if (!g_pool.consumer) {
		fprintf(stderr, "consumer: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	rd_kafka_poll_set_consumer(g_pool.consumer);
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(parts, TOPIC, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_resp_err_t e = rd_kafka_assign(g_pool.consumer, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	if (e)
		return -1;

	int64_t deadline = clock_mono_ms() + 15000;
	while (g_pool.count < POOL_SIZE && clock_mono_ms() < deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(g_pool.consumer, 100);
		if (!m)
			continue;
		if (m->err) {
			rd_kafka_message_destroy(m);
			continue;
		}
		g_pool.msgs[g_pool.count++] = m;
	}
	if (g_pool.count < POOL_SIZE) {
		fprintf(stderr, "consumed only %zu of %d messages\n", g_pool.count, POOL_SIZE);
		return -1;
	}
	return 0;
}

static int pool_teardown(void **state)
{
	(void)state;
	for (size_t i = g_pool.next; i < g_pool.count; i++)
		rd_kafka_message_destroy(g_pool.msgs[i]);
	if (g_pool.consumer) {
		rd_kafka_consumer_close(g_pool.consumer);
		rd_kafka_destroy(g_pool.consumer);
	}
	if (g_pool.producer)
		rd_kafka_destroy(g_pool.producer);
	memset(&g_pool, 0, sizeof g_pool);
	return 0;
}

static rd_kafka_message_t *take(void)
{
	if (g_pool.next >= g_pool.count)
		fail_msg("message pool exhausted (%d): raise POOL_SIZE", POOL_SIZE);
	return g_pool.msgs[g_pool.next++];
}

/* Holds a pool message as a record of (topic, partition), due at `due`. */
static rd_kafka_message_t *hold(struct retry_delay *d, const char *topic, int32_t partition,
				int64_t due)
{
	rd_kafka_message_t *m = take();
	struct tracked_offset in = { topic, partition, m->offset, 1 };
	retry_delay_hold(d, m, &in, due);
	return m;
}

static void assert_heap(const struct retry_delay *d)
{
	assert_true(d->count <= d->cap);
	for (size_t i = 1; i < d->count; i++)
		if (d->heap[(i - 1) / 2].due_wall_ms > d->heap[i].due_wall_ms)
			fail_msg("heap property broken at %zu: parent %lld > child %lld", i,
				 (long long)d->heap[(i - 1) / 2].due_wall_ms,
				 (long long)d->heap[i].due_wall_ms);
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static void test_pool_sane(void **state)
{
	(void)state;
	/* the pool is what the tests think it is: distinct real messages, increasing offsets */
	assert_int_equal(g_pool.count, POOL_SIZE);
	for (size_t i = 1; i < g_pool.count; i++)
		assert_true(g_pool.msgs[i]->offset > g_pool.msgs[i - 1]->offset);
	assert_string_equal(rd_kafka_topic_name(g_pool.msgs[0]->rkt), TOPIC);
}

static void test_empty(void **state)
{
	(void)state;
	struct retry_delay d;
	struct delayed_record out;

	memset(&d, 0x5a, sizeof d);
	retry_delay_init(&d);
	assert_int_equal(d.count, 0);
	assert_int_equal(retry_delay_next_in(&d, 0), -1);
	assert_int_equal(retry_delay_next_in(&d, INT64_MAX), -1);
	assert_int_equal(retry_delay_pop_due(&d, INT64_MAX, &out), -1);
	assert_int_equal(retry_delay_drop_partition(&d, TOPIC, 0), 0);
	retry_delay_cleanup(&d);
	retry_delay_cleanup(&d); /* twice is harmless */
}

static void test_single_due(void **state)
{
	(void)state;
	struct retry_delay d;
	struct delayed_record out;
	retry_delay_init(&d);

	rd_kafka_message_t *m = hold(&d, TOPIC, 4, 1000);
	assert_int_equal(retry_delay_next_in(&d, 0), 1000);
	assert_int_equal(retry_delay_next_in(&d, 400), 600);
	assert_int_equal(retry_delay_next_in(&d, 999), 1);
	assert_int_equal(retry_delay_next_in(&d, 1000), 0);
	assert_int_equal(retry_delay_next_in(&d, 5000), 0);
	assert_int_equal(retry_delay_next_in(&d, -100), 1100);

	assert_int_equal(retry_delay_pop_due(&d, 999, &out), -1);
	assert_int_equal(d.count, 1);
	assert_int_equal(retry_delay_pop_due(&d, 1000, &out), 0);
	assert_ptr_equal(out.msg, m);
	assert_int_equal(out.due_wall_ms, 1000);
	assert_string_equal(out.input.topic, TOPIC);
	assert_int_equal(out.input.partition, 4);
	assert_int_equal(out.input.offset, m->offset);
	assert_int_equal(out.input.generation, 1);
	assert_int_equal(d.count, 0);
	assert_int_equal(retry_delay_next_in(&d, 0), -1);
	assert_int_equal(retry_delay_pop_due(&d, INT64_MAX, &out), -1);
	rd_kafka_message_destroy(out.msg); /* popped: ours now */
	retry_delay_cleanup(&d);
}

/* Records come out by due time, whatever the insertion order, and only once due. */
static void test_order(void **state)
{
	(void)state;
	enum { N = 1500 };
	struct retry_delay d;
	struct delayed_record out;
	uint64_t seed = 42;
	int64_t base = 1700000000000LL, max_due = 0;
	retry_delay_init(&d);

	for (int i = 0; i < N; i++) {
		/* a narrow range, so equal due times occur */
		int64_t due = base + (int64_t)(rng_next(&seed) % 700);
		if (due > max_due)
			max_due = due;
		hold(&d, TOPIC, i % 3, due);
		assert_heap(&d);
	}
	assert_int_equal(d.count, N);
	assert_true(d.cap >= N);

	size_t popped = 0;
	int64_t last = INT64_MIN;
	for (int64_t now = base - 10; now <= max_due + 10; now += 7) {
		int64_t next = retry_delay_next_in(&d, now);
		if (d.count)
			assert_int_equal(next, d.heap[0].due_wall_ms > now ? d.heap[0].due_wall_ms - now : 0);
		while (retry_delay_pop_due(&d, now, &out) == 0) {
			assert_true(out.due_wall_ms <= now);
			assert_true(out.due_wall_ms >= last);
			assert_int_equal(out.input.offset, out.msg->offset);
			last = out.due_wall_ms;
			popped++;
			rd_kafka_message_destroy(out.msg);
			assert_heap(&d);
		}
		/* what stays is not due yet */
		if (d.count) {
			assert_true(d.heap[0].due_wall_ms > now);
			assert_true(retry_delay_next_in(&d, now) > 0);
		}
	}
	assert_int_equal(popped, N);
	assert_int_equal(d.count, 0);
	retry_delay_cleanup(&d);
}

/* Strictly decreasing insertions (every hold sifts to the root), then interleaved
 * hold/pop: the heap stays right across reuse. */
static void test_descending_and_interleaved(void **state)
{
	(void)state;
	struct retry_delay d;
	struct delayed_record out;
	rd_kafka_message_t *ms[200];
	retry_delay_init(&d);

	for (int i = 0; i < 200; i++)
		ms[i] = hold(&d, TOPIC, 0, 10000 - i);
	for (int i = 199; i >= 100; i--) {
		assert_int_equal(retry_delay_pop_due(&d, INT64_MAX, &out), 0);
		assert_ptr_equal(out.msg, ms[i]);
		assert_int_equal(out.due_wall_ms, 10000 - i);
		rd_kafka_message_destroy(out.msg);
	}
	/* new, earlier records overtake the remaining ones */
	rd_kafka_message_t *early = hold(&d, TOPIC, 0, 5);
	rd_kafka_message_t *late = hold(&d, TOPIC, 0, 20000);
	assert_int_equal(retry_delay_next_in(&d, 0), 5);
	assert_int_equal(retry_delay_pop_due(&d, 5, &out), 0);
	assert_ptr_equal(out.msg, early);
	rd_kafka_message_destroy(out.msg);
	assert_int_equal(retry_delay_pop_due(&d, 9900, &out), -1); /* earliest left: 9901 */
	for (int i = 99; i >= 0; i--) {
		assert_int_equal(retry_delay_pop_due(&d, 19999, &out), 0);
		assert_ptr_equal(out.msg, ms[i]);
		rd_kafka_message_destroy(out.msg);
	}
	assert_int_equal(retry_delay_pop_due(&d, 19999, &out), -1);
	assert_int_equal(retry_delay_next_in(&d, 19999), 1);
	assert_int_equal(d.count, 1);
	assert_ptr_equal(d.heap[0].msg, late);
	retry_delay_cleanup(&d); /* destroys `late` */
	assert_int_equal(d.count, 0);
	assert_null(d.heap);
}

/* Dropping a revoked partition removes exactly its records (by topic and partition) and
 * leaves a valid heap that still pops in order. */
static void test_drop_partition(void **state)
{
	(void)state;
	enum { N = 2000 };
	static const char *const topics[] = { TOPIC, "assets.create" };
	struct retry_delay d;
	struct delayed_record out;
	uint64_t seed = 7;
	size_t expect_drop = 0;
	retry_delay_init(&d);

	for (int i = 0; i < N; i++) {
		const char *topic = topics[i % 2];
		int32_t part = (int32_t)(rng_next(&seed) % 5);
		hold(&d, topic, part, (int64_t)(rng_next(&seed) % 100000));
		if (part == 2 && i % 2 == 0)
			expect_drop++;
	}
	assert_true(expect_drop > 100);
	assert_int_equal(retry_delay_drop_partition(&d, TOPIC, 2), expect_drop);
	assert_int_equal(d.count, N - expect_drop);
	assert_heap(&d);
	assert_int_equal(retry_delay_drop_partition(&d, TOPIC, 2), 0);
	assert_int_equal(retry_delay_drop_partition(&d, "unknown", 2), 0);
	assert_int_equal(retry_delay_drop_partition(&d, TOPIC, 99), 0);
	assert_int_equal(d.count, N - expect_drop);
	assert_heap(&d);

	/* pop half, drop another partition, pop the rest: always in order */
	int64_t last = INT64_MIN;
	size_t popped = 0, half = d.count / 2;
	while (popped < half && retry_delay_pop_due(&d, INT64_MAX, &out) == 0) {
		assert_true(out.due_wall_ms >= last);
		assert_false(out.input.partition == 2 && strcmp(out.input.topic, TOPIC) == 0);
		last = out.due_wall_ms;
		popped++;
		rd_kafka_message_destroy(out.msg);
	}
	size_t before = d.count;
	size_t dropped = retry_delay_drop_partition(&d, "assets.create", 0);
	assert_true(dropped > 0);
	assert_int_equal(d.count, before - dropped);
	assert_heap(&d);
	while (retry_delay_pop_due(&d, INT64_MAX, &out) == 0) {
		assert_true(out.due_wall_ms >= last);
		assert_false(out.input.partition == 2 && strcmp(out.input.topic, TOPIC) == 0);
		assert_false(out.input.partition == 0 &&
			     strcmp(out.input.topic, "assets.create") == 0);
		last = out.due_wall_ms;
		popped++;
		rd_kafka_message_destroy(out.msg);
	}
	assert_int_equal(popped + dropped + expect_drop, N);
	retry_delay_cleanup(&d);
}

/* Dropping every record, and dropping from small heaps (0, 1, 2, 3 records left). */
static void test_drop_edges(void **state)
{
	(void)state;
	struct retry_delay d;
	struct delayed_record out;
	retry_delay_init(&d);

	for (int i = 0; i < 100; i++)
		hold(&d, TOPIC, 1, 100 - i);
	assert_int_equal(retry_delay_drop_partition(&d, TOPIC, 1), 100);
	assert_int_equal(d.count, 0);
	assert_int_equal(retry_delay_next_in(&d, 0), -1);

	for (int keep = 1; keep <= 3; keep++) {
		for (int i = 0; i < 10; i++)
			hold(&d, TOPIC, 1, 50 + i);
		for (int i = 0; i < keep; i++)
			hold(&d, TOPIC, 2, 90 - i);
		assert_int_equal(retry_delay_drop_partition(&d, TOPIC, 1), 10);
		assert_int_equal(d.count, keep);
		assert_heap(&d);
		assert_int_equal(retry_delay_next_in(&d, 0), 90 - keep + 1);
		for (int i = keep - 1; i >= 0; i--) {
			assert_int_equal(retry_delay_pop_due(&d, 1000, &out), 0);
			assert_int_equal(out.due_wall_ms, 90 - i);
			assert_int_equal(out.input.partition, 2);
			rd_kafka_message_destroy(out.msg);
		}
	}
	retry_delay_cleanup(&d);
}

/* A message never destroyed keeps librdkafka's handle alive: rd_kafka_destroy would then
 * wait forever. Fail instead of hanging. */
static void on_alarm(int sig)
{
	static const char msg[] = "test_retry_delay: timed out (a message not destroyed makes "
				  "rd_kafka_destroy wait forever)\n";
	(void)sig;
	ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
	(void)w;
	_exit(1);
}

int main(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	alarm(30);

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_sane),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_single_due),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_descending_and_interleaved),
		cmocka_unit_test(test_drop_partition),
		cmocka_unit_test(test_drop_edges),
	};
	return cmocka_run_group_tests(tests, pool_setup, pool_teardown);
}
