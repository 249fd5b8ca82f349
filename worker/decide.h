/* The decision core of request processing (STYLE: functional core, imperative shell): what
 * happens to each request of a batch, given what the database answered. Plain structs in,
 * decisions out: no Kafka, no libpq, no I/O, and no clock or randomness read here (the caller
 * passes the time and the random factors in). process_request.c asks, then carries the
 * decisions out; tests/unit/test_decide.c drives it from tests/data/decide_cases.txt.
 *
 * The rules (SPEC 1):
 * - refused for its own sake (by SQLSTATE, under the operator's classify: entries): requeue
 *   with backoff while x-attempt < retry.max_attempts, then dead-letter as retries_exhausted;
 *   or dead-letter at once;
 * - transient: retry in place with backoff, as long as the database is at fault. A request
 *   that keeps failing alone while others commit counts its own failures; after
 *   retry.max_in_place_attempts it takes the requeue path;
 * - a batch runs as one transaction; after a failure the plan says which requests run next
 *   (decide_plan below). */
#ifndef AW_DECIDE_H
#define AW_DECIDE_H

#include <stddef.h>
#include <stdint.h>

#include "asset_message.h"
#include "backoff.h"
#include "config.h"
#include "sqlstate.h"

/* The rules' parameters, from worker.yaml (retry.*, classify:, postgres.batch_size). */
struct decide_policy {
	int max_attempts;          /* tries before a requeue becomes retries_exhausted */
	int max_in_place_attempts; /* own failures before a request leaves the in-place loop */
	struct backoff_policy backoff;
	const struct config_property *classify; /* the operator's overrides (borrowed) */
	size_t nclassify;
	size_t batch_size; /* the most requests per transaction */
};

/* One request's history while it is in hand. Zero it, then set attempts. */
struct decide_request {
	int attempts;                /* tries before this delivery: x-attempt, 0 when absent */
	int own_failures;            /* transient failures counted as its own */
	int failed_before;           /* it has failed transiently in this batch */
	uint64_t commits_at_failure; /* the plan's commit count at that first failure */
};

enum decision_kind {
	DECIDE_COMMITTED,      /* committed in PostgreSQL */
	DECIDE_REQUEUE,        /* to the retry topic, not before not_before_ms */
	DECIDE_DEAD_LETTER,    /* to the dead-letter topic */
	DECIDE_RETRY_IN_PLACE, /* runs again here, after the plan's wait */
};

struct decision {
	enum decision_kind kind;
	size_t request;             /* plans: which request (the caller's index) */
	const char *error_class;    /* x-error-class; NULL when committed */
	const char *sqlstate_class; /* the SQLSTATE's class name (error_class but for
				     * retries_exhausted); NULL when committed or undecodable */
	int attempt;                /* x-attempt: tries including this one */
	int64_t delay_ms;           /* REQUEUE: the backoff before its retry */
	int64_t not_before_ms;      /* REQUEUE: now + delay_ms, x-retry-not-before */
	int reconnect;              /* RETRY_IN_PLACE: the connection is at fault */
	int failing_alone;          /* it left the in-place loop (request_failing_alone) */
	int own_failures;           /* its own failures so far */
	int commit_refused;         /* refused at COMMIT with nothing else in the transaction */
};

/* Where a failure lies, which says whose it is. */
enum decide_fault {
	DECIDE_FAULT_ROW,    /* refused as a row; the rest of the transaction committed */
	DECIDE_FAULT_ITEM,   /* its statement aborted the transaction */
	DECIDE_FAULT_COMMIT, /* the transaction failed naming no statement (COMMIT refused,
			      * connection lost), and this request was alone in it */
};

/* The action for a SQLSTATE: the built-in rules under the policy's overrides. */
struct error_class decide_classify(const struct decide_policy *p, const char *sqlstate);

/* A request failed with `sqlstate` (NULL or "": no server answer). A transient failure of
 * its own (a row, or its statement without the connection at fault) is counted in *r once
 * other requests have committed since its first failure (`commits` now against then).
 * random01 in [0,1) is the backoff's jitter. Never DECIDE_COMMITTED. */
struct decision decide_failure(const struct decide_policy *p, struct decide_request *r,
			       const char *sqlstate, enum decide_fault fault, uint64_t commits,
			       int64_t now_ms, double random01);

/* A record that could not be decoded: dead-lettered without the database. */
struct decision decide_undecodable(const struct decide_request *r, enum decode_status st);

/* The batch limit after a batch of n requests of which `refused` aborted a transaction:
 * halved after a refusal (each makes the requests before it run again), grown by a step after
 * a clean full batch, within [8, max]. */
size_t decide_batch_limit(size_t limit, size_t n, size_t refused, size_t max);

/* ---- The batch plan: which requests run in the next transaction ----
 *
 * Loop: k = decide_plan_next_size(); run order[0..k) as one transaction; tell the plan its
 * answer with one of the decide_plan_on_* functions, which write a decision for each request
 * the database named (out[], at most k) and say whether to wait before the next one. */
struct decide_plan {
	const struct decide_policy *policy; /* borrowed */
	struct decide_request *req;         /* by request index (borrowed) */
	size_t *order;  /* order[0..n): the requests still to run, in running order (borrowed) */
	size_t n;
	size_t batch;   /* the transaction in flight: order[0..batch) */
	int one_by_one; /* a COMMIT refused by no single request: run them alone to find whose */
	int hold_last;  /* the last request failed alone: run the others without it first */
	int tries;      /* waits since a transaction last committed with nothing to retry */
	uint64_t commits;
	size_t refused; /* requests that aborted a transaction (decide_batch_limit) */
};

/* Before the next transaction. */
struct plan_wait {
	int wait;                /* 0: run the next one at once */
	size_t request;          /* the request the wait is reported with */
	const char *error_class; /* the transient failure's class */
	int tries;
	int64_t delay_ms;
	int reconnect; /* the connection is at fault: open a new one */
};

/* order[0..n) lists the requests to run (indices into req[]). */
void decide_plan_init(struct decide_plan *pl, const struct decide_policy *p,
		      struct decide_request *req, size_t *order, size_t n);
/* How many of order[] run in the next transaction; 0 when every request is settled. */
size_t decide_plan_next_size(struct decide_plan *pl);

/* random01[0..k]: a jitter for the request at each position and, last, one for the wait. */

/* The transaction committed. refused[i]: the SQLSTATE of the row refusing position i, or
 * NULL if it committed. Writes one decision per position, in order; returns k. */
size_t decide_plan_on_committed(struct decide_plan *pl, const char *const *refused,
				int64_t now_ms, const double *random01, struct decision *out,
				struct plan_wait *wait);
/* Position `pos` aborted the transaction with `sqlstate`: nothing committed. Returns 1. */
size_t decide_plan_on_item_failed(struct decide_plan *pl, size_t pos, const char *sqlstate,
				  int64_t now_ms, const double *random01, struct decision *out,
				  struct plan_wait *wait);
/* The transaction failed naming no statement: nothing committed (or, the connection lost at
 * COMMIT, nothing known: the requests run again and resolve as replayed). Returns 1 when it
 * settled the request that was alone in it, else 0. */
size_t decide_plan_on_failed(struct decide_plan *pl, const char *sqlstate, int64_t now_ms,
			     const double *random01, struct decision *out, struct plan_wait *wait);

/* Takes order[pos] out of the plan (handed back: its partition was revoked). */
void decide_plan_remove(struct decide_plan *pl, size_t pos);

#endif
