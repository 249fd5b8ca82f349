/* librdkafka configuration built from worker.yaml: our defaults, then the operator's
 * kafka.properties, then the few settings the delivery guarantees depend on. */
#ifndef AW_KAFKA_CONF_H
#define AW_KAFKA_CONF_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "config.h"

enum kafka_role { KAFKA_CONSUMER, KAFKA_PRODUCER };

/* Returns a new conf (the caller owns it until rd_kafka_new takes it), or NULL with errbuf
 * set. `group_id` is used for consumers. librdkafka's own logs go through log.h. */
rd_kafka_conf_t *kafka_conf_new(const struct config *cfg, enum kafka_role role,
				const char *client_id, const char *group_id, char *errbuf,
				size_t errsize);

/* Sets one property; returns 0 or -1 with errbuf "key: reason". */
int kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *errbuf,
		   size_t errsize);

#endif
