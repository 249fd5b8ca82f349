/* consumer_lag{topic,partition} for /metrics, from what librdkafka already knows: no broker
 * round trip, so it is cheap enough for the consume loop. */
#ifndef AW_CONSUMER_LAG_H
#define AW_CONSUMER_LAG_H

#include <librdkafka/rdkafka.h>

/* For every partition currently assigned to the consumer rk: lag = high watermark (as of the
 * last fetch response) - position (the next offset the application will consume), at least
 * 0, set with metrics_set_lag(). A partition whose position is not known yet (nothing
 * consumed since it was assigned) or whose watermark was not seen yet is left as it was.
 * Call from the thread that polls rk, every few seconds. Returns the number of partitions
 * updated, or -1 when the assignment cannot be read. Revoked partitions are not removed here:
 * call metrics_forget_partition() for each when they are revoked or lost. */
int consumer_lag_update(rd_kafka_t *rk);

#endif
