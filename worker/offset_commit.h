/* Committing input offsets. The worker commits by itself rather than through librdkafka's
 * auto-commit, because each commit carries metadata: the floors of forward_ledger.h, which
 * tell the next owner of the partition where to look for its forwarded records.
 *
 * Commits go out every COMMIT_INTERVAL_MS when an offset moved, at once after a forward was
 * acknowledged (a crash before the commit would redeliver it), synchronously before a
 * revoke, and every COMMIT_REFRESH_MS for all partitions (a quiet partition's floors would
 * otherwise age and make the next owner's scan long). */
#ifndef AW_OFFSET_COMMIT_H
#define AW_OFFSET_COMMIT_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "forward_ledger.h"

#define COMMIT_INTERVAL_MS 1000
#define COMMIT_REFRESH_MS 30000

struct offset_commits {
	rd_kafka_topic_partition_list_t *next; /* per partition: the offset to commit */
	rd_kafka_topic_partition_list_t *sent; /* per partition: the offset last committed */
	int64_t last_ms, refreshed_ms;
	int soon; /* a forward was acknowledged: commit without waiting for the interval */
};

/* Sets (topic, partition)'s offset in `l`, adding the partition if it is not there. */
void partition_list_set(rd_kafka_topic_partition_list_t *l, const char *topic,
			int32_t partition, int64_t offset);

void offset_commits_init(struct offset_commits *c);
void offset_commits_cleanup(struct offset_commits *c);

/* The partition may now be committed up to `next` (the next offset to consume). */
void offset_commits_set(struct offset_commits *c, const char *topic, int32_t partition,
			int64_t next);
/* `committed` is what the group already holds for the partition (read at assignment). */
void offset_commits_known(struct offset_commits *c, const char *topic, int32_t partition,
			  int64_t committed);
/* The partition is no longer ours: nothing more is committed for it. */
void offset_commits_forget(struct offset_commits *c, const char *topic, int32_t partition);

/* Commits what is due (see above); asynchronously. */
void offset_commits_tick(struct offset_commits *c, rd_kafka_t *consumer,
			 const struct forward_ledger *ledger);
/* Commits the given partitions now and waits for the answer: at most `timeout_ms`, and
 * only while keep_waiting(arg) is true (a second signal ends the wait). */
void offset_commits_sync(struct offset_commits *c, rd_kafka_t *consumer,
			 struct forward_ledger *ledger, const rd_kafka_topic_partition_list_t *parts,
			 int timeout_ms, int (*keep_waiting)(void *), void *arg);

/* The offset-commit callback's work: forwards of committed offsets are no longer needed; a
 * commit that failed is sent again at the next tick. */
void offset_commits_landed(struct offset_commits *c, struct forward_ledger *ledger,
			   rd_kafka_resp_err_t err, const rd_kafka_topic_partition_list_t *offsets);

#endif
