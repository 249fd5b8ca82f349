/* The transactional producer (KIP-447). Requeues and dead letters are produced inside a Kafka
 * transaction together with the input offsets of every request settled since the last one,
 * so a read_committed reader sees a forward exactly when the offset of its input record was
 * committed with it: exactly once, with no bookkeeping of our own. The consumer's group
 * metadata travels with the offsets, so the group coordinator refuses the commit of a worker
 * whose generation is over (a zombie, frozen while its partitions moved) and its forwards are
 * aborted with it.
 *
 * A transaction is begun lazily (first forward or settled offset) and committed every
 * kafka.transaction_interval_ms, or sooner when a revoke or shutdown asks. The commit (send
 * the offsets, flush, end the transaction: round trips to two coordinators) runs on a thread
 * of its own, so the loop goes on with the next batch meanwhile; only a forward waits for it
 * (kafka_txn_busy). Everything else, delivery reports included, happens on the loop's thread:
 * the producer reports by events the loop polls, never by callbacks on the commit thread.
 *
 * Errors are classified once, on the commit thread, as librdkafka's transactional API defines
 * them: retriable (the same call again), abortable (the transaction is aborted: TXN_ABORTED,
 * and the caller rewinds its consumer to the committed offsets) and fatal (fenced by a newer
 * instance with our transactional.id, or by the broker after transaction.timeout.ms; or
 * idempotence lost: TXN_FATAL, the worker exits 1 for its supervisor; no producer instance
 * recovers from a fatal error). */
#ifndef AW_KAFKA_TXN_H
#define AW_KAFKA_TXN_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum txn_status {
	TXN_OK,      /* committed, or nothing was due */
	TXN_BUSY,    /* a commit or abort is under way: nothing may be produced meanwhile */
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
 * the client (err). A forward purged by an abort is not reported; one acknowledged before its
 * transaction aborted is reported delivered. Called on the loop's thread (kafka_txn_poll,
 * kafka_txn_produce). */
typedef void(txn_delivered_cb)(void *opaque, const struct txn_input *input, const char *topic,
			       int32_t partition, int64_t offset);
typedef void(txn_refused_cb)(void *opaque, const struct txn_input *input, const char *topic,
			     rd_kafka_resp_err_t err);

enum txn_state {
	TXN_IDLE,       /* no transaction */
	TXN_OPEN,       /* begun: forwards and offsets go in */
	TXN_COMMITTING, /* the commit thread commits it */
	TXN_ABORTING,   /* the commit thread aborts it */
	TXN_DEAD,       /* fatal */
};

/* The commit thread's work: one job at a time, handed over under `mu`. On the heap, so a
 * thread left running at a fast stop never touches memory the worker frees. */
struct txn_job {
	rd_kafka_t *producer;     /* the same as kafka_txn's */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int started;
	int pending;              /* a job is waiting or running */
	int done;                 /* its result is ready */
	int abort_only;           /* abort rather than commit */
	int stop;                 /* the thread must end after the current call */
	enum txn_status result;
	char reason[256];         /* why it aborted or died */
	rd_kafka_topic_partition_list_t *offsets; /* the commit's offsets */
	rd_kafka_consumer_group_metadata_t *cgmd;
};

struct kafka_txn {
	rd_kafka_t *producer;
	rd_kafka_queue_t *events; /* delivery reports and errors, polled by the loop */
	enum txn_state state;
	int doomed;       /* a forward failed: the open transaction can only be aborted */
	size_t produced;  /* forwards in the open transaction */
	size_t inflight;  /* forwards produced and not yet reported */
	rd_kafka_topic_partition_list_t *offsets; /* next offset to consume, per partition */
	int64_t opened_ms;
	int interval_ms;
	uint64_t commits, aborts;
	txn_delivered_cb *delivered;
	txn_refused_cb *refused;
	void *opaque;
	struct txn_job *job;
};

/* Creates the producer (transactional.id "<group_id>.<worker_id>"), initializes transactions
 * (fencing any earlier instance with that id and aborting its open transaction) and starts the
 * commit thread. Retriable failures are retried until keep_waiting(arg) says stop. */
int kafka_txn_setup(struct kafka_txn *t, const struct config *cfg, const char *worker_id,
		    txn_delivered_cb *delivered, txn_refused_cb *refused, void *opaque,
		    int (*keep_waiting)(void *), void *arg, char *errbuf, size_t errsize);
/* Aborts what is open (unless fast) and destroys the producer. With `fast`, a commit thread
 * still waiting for the broker is left to the process's exit. */
void kafka_txn_cleanup(struct kafka_txn *t, int fast);

/* Produces one record into the open transaction (begun if need be); takes hdrs. Returns 0, or
 * -1 when it could not be produced: then the transaction is doomed (aborted at the next tick)
 * and, if the record itself was refused, `refused` was called. */
int kafka_txn_produce(struct kafka_txn *t, const struct txn_input *input, const char *topic,
		      const void *key, size_t key_len, const void *value, size_t value_len,
		      rd_kafka_headers_t *hdrs);
/* The partition may be committed up to `next` with the next transaction. */
void kafka_txn_offset(struct kafka_txn *t, const char *topic, int32_t partition, int64_t next);
/* Forgets a partition's offset waiting for the next commit (the partition was lost). */
void kafka_txn_forget(struct kafka_txn *t, const char *topic, int32_t partition);

/* Hands the commit to the commit thread when due (the interval passed, or `now` set), picks
 * up the result of one under way, aborts a doomed transaction. */
enum txn_status kafka_txn_tick(struct kafka_txn *t, rd_kafka_t *consumer, int now);
/* Aborts the open transaction (a lost assignment): TXN_BUSY until the abort is done, then
 * kafka_txn_tick says TXN_ABORTED. */
enum txn_status kafka_txn_abort(struct kafka_txn *t);

/* Serves delivery reports and producer errors for up to timeout_ms. */
void kafka_txn_poll(struct kafka_txn *t, int timeout_ms);
/* Milliseconds until a commit is due (0: now), or -1 when nothing waits for one. */
int64_t kafka_txn_due_in(const struct kafka_txn *t);
/* Whether a commit or abort is under way: nothing may be produced until it is over. */
int kafka_txn_busy(const struct kafka_txn *t);
/* Whether anything awaits a commit (forwards, offsets, or a commit under way). */
int kafka_txn_pending(const struct kafka_txn *t);

#endif
