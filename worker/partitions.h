/* What the worker holds of each partition, and the events that change it: the group's
 * assignments and revocations (cooperative, incremental), the rewind to the committed offsets
 * after an aborted transaction, and the holds on partitions whose forward failed. */
#ifndef AW_PARTITIONS_H
#define AW_PARTITIONS_H

#include <librdkafka/rdkafka.h>

#include "worker.h"

/* The consumer's rebalance callback (rd_kafka_conf_set_rebalance_cb); opaque is the worker. */
void partitions_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			     rd_kafka_topic_partition_list_t *parts, void *opaque);

/* Commits the transaction when due (or now), and acts on the outcome: an abort rewinds every
 * assigned partition, a fatal error stops the worker. Returns kafka_txn_tick's status. */
enum txn_status partitions_commit(struct worker *w, int now);

/* Commits everything settled so far and waits for it: at most timeout_ms, and not after a
 * second signal. Returns the last status; an abort is left for the caller to act on. */
enum txn_status partitions_commit_all(struct worker *w, int timeout_ms);

/* Every assigned partition starts over at its committed offset: what was consumed since is
 * dropped from memory and consumed again. */
void partitions_rewind(struct worker *w);

/* The transactional producer's reports on forwards (kafka_txn.h); opaque is the worker. */
void partitions_forward_delivered(void *opaque, const struct txn_input *input, const char *topic,
				  int32_t partition, int64_t offset);
void partitions_forward_refused(void *opaque, const struct txn_input *input, const char *topic,
				rd_kafka_resp_err_t err);
/* The forward of a record was produced into the transaction: a released hold at that record
 * now waits for its delivery report. */
void partitions_forward_produced(struct worker *w, const char *topic, int32_t partition,
				 int64_t offset);
/* A consumed record of a held partition: pauses the partition (once) and says whether the
 * record must be dropped. */
int partitions_held(struct worker *w, const char *topic, int32_t partition, int64_t offset);
/* Ends the holds whose time has come: their partitions resume at the held record. */
void partitions_release_holds(struct worker *w);
/* The partition's committable offset moved to `next`: a released hold whose record was
 * settled without a forward is over. */
void partitions_advanced(struct worker *w, const char *topic, int32_t partition, int64_t next);

/* Sets (topic, partition)'s offset in `l`, adding the partition if it is not there. */
void partition_list_set(rd_kafka_topic_partition_list_t *l, const char *topic,
			int32_t partition, int64_t offset);

#endif
