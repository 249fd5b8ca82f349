#include "decide.h"

#include <string.h>

#define BATCH_LIMIT_MIN 8

struct error_class decide_classify(const struct decide_policy *p, const char *sqlstate)
{
	return classify_sqlstate(sqlstate, p->classify, p->nclassify);
}

/* Counts a transient failure of the request's own: only once other requests have committed
 * since its first failure (the database works, this request does not). Returns 1 when the
 * request has had its tries. */
static int own_failure(const struct decide_policy *p, struct decide_request *r,
		       uint64_t commits)
{
	if (!r->failed_before) {
		r->failed_before = 1;
		r->commits_at_failure = commits;
	}
	if (commits > r->commits_at_failure)
		r->own_failures++;
	return r->own_failures >= p->max_in_place_attempts;
}

/* Requeue (backoff, then retries_exhausted) or dead-letter, by the class's action. */
static struct decision settle(const struct decide_policy *p, struct error_class cls,
			      int64_t now_ms, double random01, struct decision d)
{
	d.error_class = cls.name;
	if (cls.action == ACTION_REQUEUE && d.attempt < p->max_attempts) {
		d.kind = DECIDE_REQUEUE;
		d.delay_ms = backoff_delay_ms(&p->backoff, d.attempt, random01);
		d.not_before_ms = now_ms + d.delay_ms;
		return d;
	}
	d.kind = DECIDE_DEAD_LETTER;
	if (cls.action == ACTION_REQUEUE)
		d.error_class = ERROR_CLASS_RETRIES_EXHAUSTED;
	return d;
}

struct decision decide_failure(const struct decide_policy *p, struct decide_request *r,
			       const char *sqlstate, enum decide_fault fault, uint64_t commits,
			       int64_t now_ms, double random01)
{
	struct error_class cls = decide_classify(p, sqlstate);
	struct decision d = { .sqlstate_class = cls.name, .attempt = r->attempts + 1 };

	if (cls.action == ACTION_RETRY_IN_PLACE) {
		/* Its own problem when the database named it and the connection is fine. */
		int own = fault == DECIDE_FAULT_ROW || (fault == DECIDE_FAULT_ITEM && !cls.reconnect);
		if (!own || !own_failure(p, r, commits)) {
			d.kind = DECIDE_RETRY_IN_PLACE;
			d.error_class = cls.name;
			d.reconnect = cls.reconnect && fault != DECIDE_FAULT_ROW;
			d.own_failures = r->own_failures;
			return d;
		}
		d.failing_alone = 1; /* out of the in-place loop, onto the requeue path */
		cls.action = ACTION_REQUEUE;
	} else if (fault == DECIDE_FAULT_COMMIT) {
		d.commit_refused = 1; /* a deferred constraint or trigger: its own refusal */
	}
	d.own_failures = r->own_failures;
	return settle(p, cls, now_ms, random01, d);
}

struct decision decide_undecodable(const struct decide_request *r, enum decode_status st)
{
	return (struct decision){
		.kind = DECIDE_DEAD_LETTER,
		.error_class = st == DECODE_UNSUPPORTED ? ERROR_CLASS_UNSUPPORTED
							: ERROR_CLASS_MALFORMED,
		.attempt = r->attempts + 1,
	};
}

size_t decide_batch_limit(size_t limit, size_t n, size_t refused, size_t max)
{
	if (refused > 0 && limit > BATCH_LIMIT_MIN)
		return limit / 2 > BATCH_LIMIT_MIN ? limit / 2 : BATCH_LIMIT_MIN;
	if (refused == 0 && n >= limit && limit < max)
		return limit + BATCH_LIMIT_MIN < max ? limit + BATCH_LIMIT_MIN : max;
	return limit;
}

/* ---- the batch plan ---- */

void decide_plan_init(struct decide_plan *pl, const struct decide_policy *p,
		      struct decide_request *req, size_t *order, size_t n)
{
	*pl = (struct decide_plan){ .policy = p, .req = req, .order = order, .n = n };
}

size_t decide_plan_next_size(struct decide_plan *pl)
{
	if (pl->n == 0)
		pl->batch = 0;
	else if (pl->one_by_one)
		pl->batch = 1;
	else if (pl->hold_last && pl->n > 1)
		pl->batch = pl->n - 1;
	else
		pl->batch = pl->n;
	return pl->batch;
}

void decide_plan_remove(struct decide_plan *pl, size_t pos)
{
	memmove(pl->order + pos, pl->order + pos + 1, (pl->n - pos - 1) * sizeof *pl->order);
	pl->n--;
}

/* Moves order[pos] to the end, so the others run before it again. */
static void rotate_to_end(struct decide_plan *pl, size_t pos)
{
	size_t x = pl->order[pos];
	memmove(pl->order + pos, pl->order + pos + 1, (pl->n - pos - 1) * sizeof *pl->order);
	pl->order[pl->n - 1] = x;
}

static void wait_for(struct decide_plan *pl, size_t request, const char *error_class,
		     int reconnect, double random01, struct plan_wait *wait)
{
	pl->tries++;
	*wait = (struct plan_wait){ 1, request, error_class, pl->tries,
				    backoff_delay_ms(&pl->policy->backoff, pl->tries, random01),
				    reconnect };
}

size_t decide_plan_on_committed(struct decide_plan *pl, const char *const *refused,
				int64_t now_ms, const double *random01, struct decision *out,
				struct plan_wait *wait)
{
	size_t batch = pl->batch, again = 0; /* again: refused by a code made transient */
	const char *again_class = NULL;

	*wait = (struct plan_wait){ 0 };
	for (size_t i = 0; i < batch; i++) {
		size_t r = pl->order[i];
		if (!refused[i]) {
			out[i] = (struct decision){ .kind = DECIDE_COMMITTED, .request = r,
						    .attempt = pl->req[r].attempts + 1 };
			pl->commits++;
			continue;
		}
		/* Refused alone (a row, not an abort): the batch committed without it. */
		out[i] = decide_failure(pl->policy, &pl->req[r], refused[i], DECIDE_FAULT_ROW,
					pl->commits, now_ms, random01[i]);
		out[i].request = r;
		if (out[i].kind == DECIDE_RETRY_IN_PLACE) {
			pl->order[again++] = r;
			again_class = out[i].error_class;
		}
	}
	memmove(pl->order + again, pl->order + batch, (pl->n - batch) * sizeof *pl->order);
	pl->n = pl->n - batch + again;
	pl->hold_last = 0;
	if (again == 0)
		pl->tries = 0;
	else
		wait_for(pl, pl->order[0], again_class, 0, random01[batch], wait);
	return batch;
}

size_t decide_plan_on_item_failed(struct decide_plan *pl, size_t pos, const char *sqlstate,
				  int64_t now_ms, const double *random01, struct decision *out,
				  struct plan_wait *wait)
{
	size_t r = pl->order[pos];

	*wait = (struct plan_wait){ 0 };
	out[0] = decide_failure(pl->policy, &pl->req[r], sqlstate, DECIDE_FAULT_ITEM, pl->commits,
				now_ms, random01[pos]);
	out[0].request = r;
	if (out[0].kind != DECIDE_RETRY_IN_PLACE) {
		/* Settled alone; the others run again without it. */
		if (!out[0].failing_alone)
			pl->refused++;
		decide_plan_remove(pl, pos);
		return 1;
	}
	if (!out[0].reconnect) {
		/* The others first, without it: if they commit, the database is fine. */
		rotate_to_end(pl, pos);
		pl->hold_last = 1;
	}
	wait_for(pl, r, out[0].error_class, out[0].reconnect, random01[pl->batch], wait);
	return 1;
}

size_t decide_plan_on_failed(struct decide_plan *pl, const char *sqlstate, int64_t now_ms,
			     const double *random01, struct decision *out, struct plan_wait *wait)
{
	struct error_class cls = decide_classify(pl->policy, sqlstate);
	size_t r = pl->order[0];

	*wait = (struct plan_wait){ 0 };
	if (cls.action == ACTION_RETRY_IN_PLACE) {
		wait_for(pl, r, cls.name, cls.reconnect, random01[pl->batch], wait);
		return 0;
	}
	if (pl->batch > 1) {
		pl->one_by_one = 1; /* refused at COMMIT: find the request */
		return 0;
	}
	out[0] = decide_failure(pl->policy, &pl->req[r], sqlstate, DECIDE_FAULT_COMMIT,
				pl->commits, now_ms, random01[0]);
	out[0].request = r;
	pl->refused++;
	decide_plan_remove(pl, 0);
	return 1;
}
