/* The transactional producer (KIP-447). Requeues and dead letters are produced inside a Kafka
 * transaction together with the input offsets of every request settled since the last one,
 * so a read_committed reader sees a forward exactly when the offset of its input record was
 * committed with it: exactly once, with no bookkeeping of our own. The consumer's group
 * metadata travels with the offsets, so the group coordinator refuses the commit of a worker
 * whose generation is over (a zombie, frozen while its partitions moved) and its forwards are
 * aborted with it.
 *
 * A transaction is begun lazily (first forward or settled offset) and committed every
 * kafka.transaction_interval_ms, or sooner when a revoke or shutdown asks.
 *
 * Errors are classified once, here, as librdkafka's transactional API defines them:
 * retriable (the same call again later: TXN_BUSY), abortable (the transaction is aborted:
 * TXN_ABORTED, and the caller rewinds its consumer to the committed offsets) and fatal
 * (fenced by a newer instance with our transactional.id, or idempotence lost: TXN_FATAL, the
 * worker exits 1 for its supervisor; no producer instance recovers from a fatal error). */
#ifndef AW_KAFKA_TXN_H
#define AW_KAFKA_TXN_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum txn_status {
	TXN_OK,      /* committed, or nothing was due */
	TXN_BUSY,    /* a commit or abort is under way (the broker did not answer in time): call
		      * again; nothing may be produced meanwhile */
	TXN_ABORTED, /* the transaction was aborted: rewind to the committed offsets */
	TXN_FATAL,   /* the producer is unusable: stop */
};

/* The input record a forward settles. */
struct txn_input {
	const char *topic;
	int32_t partition;
	int64_t offset;
};

/* What becomes of a produced forward: delivered (with its place), or refused by the broker or
 * the client (err). Forwards of an aborted transaction are not reported. */
typedef void(txn_delivered_cb)(void *opaque, const struct txn_input *input, const char *topic,
			       int32_t partition, int64_t offset);
typedef void(txn_refused_cb)(void *opaque, const struct txn_input *input, const char *topic,
			     rd_kafka_resp_err_t err);

enum txn_state {
	TXN_IDLE,       /* no transaction */
	TXN_OPEN,       /* begun: forwards and offsets go in */
	TXN_FLUSHING,   /* the commit is due: no more forwards; waiting for the broker to
			 * acknowledge those in flight, so the commit's calls do not block on them */
	TXN_COMMITTING, /* commit started, not yet answered */
	TXN_ABORTING,   /* abort started, not yet answered */
	TXN_DEAD,       /* fatal */
};

struct kafka_txn {
	rd_kafka_t *producer;
	enum txn_state state;
	int doomed;       /* a forward failed: the open transaction can only be aborted */
	int offsets_sent; /* COMMITTING: the offsets are in; only the commit is left */
	size_t produced;  /* forwards in the open transaction */
	size_t inflight;  /* forwards produced and not yet acknowledged (or failed) */
	rd_kafka_topic_partition_list_t *offsets; /* next offset to consume, per partition */
	rd_kafka_topic_partition_list_t *sending; /* COMMITTING: the offsets of that commit */
	rd_kafka_consumer_group_metadata_t *cgmd; /* COMMITTING: the metadata sent */
	int64_t opened_ms;
	int interval_ms;
	uint64_t commits, aborts;
	txn_delivered_cb *delivered;
	txn_refused_cb *refused;
	void *opaque;
};

/* Creates the producer (transactional.id "<group_id>.<worker_id>") and initializes
 * transactions, fencing any earlier instance with that id (and aborting its open
 * transaction). Retriable failures are retried until keep_waiting(arg) says stop. */
int kafka_txn_setup(struct kafka_txn *t, const struct config *cfg, const char *worker_id,
		    txn_delivered_cb *delivered, txn_refused_cb *refused, void *opaque,
		    int (*keep_waiting)(void *), void *arg, char *errbuf, size_t errsize);
/* Aborts what is open (unless fast) and destroys the producer. */
void kafka_txn_cleanup(struct kafka_txn *t, int fast);

/* Produces one record into the open transaction (begun if need be); takes hdrs. Returns 0, or
 * -1 when it could not be produced: then the transaction is doomed and `refused` was called. */
int kafka_txn_produce(struct kafka_txn *t, const struct txn_input *input, const char *topic,
		      const void *key, size_t key_len, const void *value, size_t value_len,
		      rd_kafka_headers_t *hdrs);
/* The partition may be committed up to `next` with the next transaction. */
void kafka_txn_offset(struct kafka_txn *t, const char *topic, int32_t partition, int64_t next);
/* Adds the partition at `offset` unless it is in the next commit already. A transaction with
 * forwards must carry offsets: they are what the group coordinator fences a zombie by. */
void kafka_txn_offset_include(struct kafka_txn *t, const char *topic, int32_t partition,
			      int64_t offset);
/* Forgets a partition's offset waiting for the next commit (the partition was lost). */
void kafka_txn_forget(struct kafka_txn *t, const char *topic, int32_t partition);

/* Commits when due (the interval passed, or `now` set), finishes a commit or abort under way,
 * aborts a doomed transaction. */
enum txn_status kafka_txn_tick(struct kafka_txn *t, rd_kafka_t *consumer, int now);
/* Aborts the open transaction (a lost assignment). */
enum txn_status kafka_txn_abort(struct kafka_txn *t);

/* Serves delivery reports. */
void kafka_txn_poll(struct kafka_txn *t, int timeout_ms);
/* Milliseconds until a commit is due (0: now), or -1 when nothing waits for one. */
int64_t kafka_txn_due_in(const struct kafka_txn *t);
/* Whether a commit or abort is under way (or due, waiting for acknowledgements): nothing
 * may be produced until it is over. */
int kafka_txn_busy(const struct kafka_txn *t);
/* Whether anything awaits a commit (forwards, offsets, or a commit under way). */
int kafka_txn_pending(const struct kafka_txn *t);

#endif
