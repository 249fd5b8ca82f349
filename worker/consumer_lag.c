/* Lag per assigned partition from librdkafka's cached watermarks and the consumer position. */
#include "consumer_lag.h"

#include "metrics.h"

int consumer_lag_update(rd_kafka_t *rk)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	int updated = 0;

	if (rd_kafka_assignment(rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return -1;
	if (rd_kafka_position(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		rd_kafka_topic_partition_list_destroy(parts);
		return -1;
	}
	for (int i = 0; i < parts->cnt; i++) {
		const rd_kafka_topic_partition_t *p = &parts->elems[i];
		int64_t low, high;

		if (p->offset < 0) /* RD_KAFKA_OFFSET_INVALID: nothing consumed yet */
			continue;
		if (rd_kafka_get_watermark_offsets(rk, p->topic, p->partition, &low, &high) !=
			    RD_KAFKA_RESP_ERR_NO_ERROR ||
		    high < 0)
			continue;
		metrics_set_lag(p->topic, p->partition, high > p->offset ? high - p->offset : 0);
		updated++;
	}
	rd_kafka_topic_partition_list_destroy(parts);
	return updated;
}
