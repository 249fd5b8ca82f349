/* consumer_lag_update against librdkafka's in-process mock cluster: a partition with five
 * records of which two were consumed has a lag of three. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "consumer_lag.h"
#include "metrics.h"

#define TOPIC "lag-test"

static rd_kafka_t *client(rd_kafka_type_t type, const char *bootstraps)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];
	rd_kafka_t *rk;

	if (bootstraps)
		assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, err,
						   sizeof err),
				 RD_KAFKA_CONF_OK);
	if (type == RD_KAFKA_CONSUMER) {
		assert_int_equal(rd_kafka_conf_set(conf, "group.id", "lag-test", err, sizeof err),
				 RD_KAFKA_CONF_OK);
		assert_int_equal(rd_kafka_conf_set(conf, "enable.auto.commit", "false", err,
						   sizeof err),
				 RD_KAFKA_CONF_OK);
	}
	rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
	rk = rd_kafka_new(type, conf, err, sizeof err);
	assert_non_null(rk);
	return rk;
}

/* The lag series of a partition in the rendered metrics, -1 when absent. */
static long lag_of(int32_t partition)
{
	char *text, want[128];
	size_t len;
	const char *at;
	long v = -1;

	snprintf(want, sizeof want, "asset_worker_consumer_lag{topic=\"" TOPIC "\",partition=\"%d\"} ",
		 (int)partition);
	assert_int_equal(metrics_render(&text, &len), 0);
	if ((at = strstr(text, want)) != NULL)
		v = strtol(at + strlen(want), NULL, 10);
	free(text);
	return v;
}

static void test_lag(void **state)
{
	rd_kafka_t *owner = client(RD_KAFKA_PRODUCER, NULL), *producer, *consumer;
	rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(owner, 1);
	rd_kafka_topic_partition_list_t *parts;
	int consumed = 0;

	(void)state;
	metrics_setup("t", "g", "w");
	assert_non_null(mc);
	assert_int_equal(rd_kafka_mock_topic_create(mc, TOPIC, 2, 1), RD_KAFKA_RESP_ERR_NO_ERROR);

	producer = client(RD_KAFKA_PRODUCER, rd_kafka_mock_cluster_bootstraps(mc));
	for (int i = 0; i < 5; i++)
		assert_int_equal(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(TOPIC),
						   RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_VALUE("x", 1),
						   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
						   RD_KAFKA_V_END),
				 RD_KAFKA_RESP_ERR_NO_ERROR);
	assert_int_equal(rd_kafka_flush(producer, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);

	consumer = client(RD_KAFKA_CONSUMER, rd_kafka_mock_cluster_bootstraps(mc));
	rd_kafka_poll_set_consumer(consumer);
	parts = rd_kafka_topic_partition_list_new(2);
	rd_kafka_topic_partition_list_add(parts, TOPIC, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_topic_partition_list_add(parts, TOPIC, 1)->offset = RD_KAFKA_OFFSET_BEGINNING;
	assert_int_equal(rd_kafka_assign(consumer, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_topic_partition_list_destroy(parts);

	assert_int_equal(consumer_lag_update(consumer), 0); /* nothing consumed: unknown */
	for (int tries = 0; consumed < 2 && tries < 200; tries++) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, 100);
		if (!m)
			continue;
		if (!m->err) {
			assert_int_equal(m->partition, 0);
			consumed++;
		}
		rd_kafka_message_destroy(m);
	}
	assert_int_equal(consumed, 2);
	/* partition 1 (empty, nothing consumed) has no position: only partition 0 is set */
	assert_int_equal(consumer_lag_update(consumer), 1);
	assert_int_equal(lag_of(0), 3);
	assert_int_equal(lag_of(1), -1);

	metrics_forget_partition(TOPIC, 0);
	assert_int_equal(lag_of(0), -1);

	rd_kafka_consumer_close(consumer);
	rd_kafka_destroy(consumer);
	rd_kafka_destroy(producer);
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(owner);
	metrics_cleanup();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lag),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
