/* The decision core (worker/decide.h), driven by tests/data/decide_cases.txt: no server, no
 * Kafka, no libpq; the file's header documents the case language. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_data.h"

#include "decide.h"

#define MAX_TOKENS 64
#define PLAN_MAX 16

/* Where we are in the file, and what went wrong so far. */
struct run {
	const char *path;
	int lineno;
	int failures;
	int cases, plans, steps;
	int seen[4]; /* per decision_kind */
	int seen_alone, seen_commit_refused, seen_override;
};

#define CHECK(rn, cond, ...)                                                         \
	do {                                                                         \
		if (!(cond)) {                                                       \
			print_error("%s:%d: ", (rn)->path, (rn)->lineno);            \
			print_error(__VA_ARGS__);                                    \
			print_error("\n");                                           \
			(rn)->failures++;                                            \
		}                                                                    \
	} while (0)

/* A case's inputs: the policy and one request's history. Not to be copied (pointers in). */
struct opts {
	struct decide_policy pol;
	struct config_property ov[8];
	char ovbuf[256];
	double random;
	int64_t now;
	struct decide_request r;
	uint64_t commits;
	int attempts_of[PLAN_MAX];
};

static long num(const struct run *rn, const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (end == s || *end)
		fail_msg("%s:%d: \"%s\" is not a number", rn->path, rn->lineno, s);
	return v;
}

static const char *const kinds[] = { [DECIDE_COMMITTED] = "committed",
				     [DECIDE_REQUEUE] = "requeue",
				     [DECIDE_DEAD_LETTER] = "dead_letter",
				     [DECIDE_RETRY_IN_PLACE] = "retry" };

static int kind_of(const struct run *rn, const char *s)
{
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
		if (strcmp(s, kinds[k]) == 0)
			return (int)k;
	fail_msg("%s:%d: unknown decision \"%s\"", rn->path, rn->lineno, s);
	return -1;
}

static const char *sqlstate_of(const char *s) { return strcmp(s, "-") == 0 ? "" : s; }

static size_t split(char *s, const char *sep, char **tok, size_t max)
{
	size_t n = 0;
	char *save;
	for (char *t = strtok_r(s, sep, &save); t && n < max; t = strtok_r(NULL, sep, &save))
		tok[n++] = t;
	return n;
}

static void opts_init(struct opts *o)
{
	memset(o, 0, sizeof *o);
	o->pol = (struct decide_policy){ .max_attempts = 5,
					 .max_in_place_attempts = 20,
					 .backoff = { 100, 30000, 2.0 },
					 .classify = o->ov,
					 .batch_size = 50 };
	o->now = 1000000;
}

/* Applies an option token; 0 when it was one. */
static int opts_parse(struct run *rn, struct opts *o, const char *tok)
{
	const char *v = strchr(tok, '=');
	if (!v)
		return -1;
	v++;
	if (strncmp(tok, "attempts=", 9) == 0) {
		const char *colon = strchr(v, ':');
		if (!colon) {
			o->r.attempts = (int)num(rn, v);
			return 0;
		}
		char idx[16];
		snprintf(idx, sizeof idx, "%.*s", (int)(colon - v), v);
		long i = num(rn, idx);
		if (i < 0 || i >= PLAN_MAX)
			fail_msg("%s:%d: request %ld out of range", rn->path, rn->lineno, i);
		o->attempts_of[i] = (int)num(rn, colon + 1);
	} else if (strncmp(tok, "classify=", 9) == 0) {
		char *pair[8], *kv[3];
		snprintf(o->ovbuf, sizeof o->ovbuf, "%s", v);
		size_t n = split(o->ovbuf, ",", pair, 8);
		for (size_t i = 0; i < n; i++) {
			if (split(pair[i], ":", kv, 3) != 2)
				fail_msg("%s:%d: classify= wants CODE:ACTION", rn->path, rn->lineno);
			o->ov[i] = (struct config_property){ kv[0], kv[1] };
		}
		o->pol.nclassify = n;
		rn->seen_override = 1;
	} else if (strncmp(tok, "max_attempts=", 13) == 0) {
		o->pol.max_attempts = (int)num(rn, v);
	} else if (strncmp(tok, "max_in_place=", 13) == 0) {
		o->pol.max_in_place_attempts = (int)num(rn, v);
	} else if (strncmp(tok, "random=", 7) == 0) {
		o->random = strtod(v, NULL);
	} else if (strncmp(tok, "now=", 4) == 0) {
		o->now = num(rn, v);
	} else if (strncmp(tok, "own=", 4) == 0) {
		o->r.own_failures = (int)num(rn, v);
	} else if (strncmp(tok, "first=", 6) == 0) {
		o->r.failed_before = 1;
		o->r.commits_at_failure = (uint64_t)num(rn, v);
	} else if (strncmp(tok, "commits=", 8) == 0) {
		o->commits = (uint64_t)num(rn, v);
	} else {
		return -1;
	}
	return 0;
}

static void seen(struct run *rn, const struct decision *d)
{
	rn->seen[d->kind]++;
	rn->seen_alone |= d->failing_alone;
	rn->seen_commit_refused |= d->commit_refused;
}

/* "KIND CLASS ATTEMPT [expect...]" against d. */
static void expect_decision(struct run *rn, const struct decision *d, char **tok, size_t n)
{
	int alone = 0, commit_refused = 0, reconnect = 0;

	if (n < 3)
		fail_msg("%s:%d: expected KIND CLASS ATTEMPT", rn->path, rn->lineno);
	CHECK(rn, (int)d->kind == kind_of(rn, tok[0]), "expected %s, got %s", tok[0],
	      kinds[d->kind]);
	CHECK(rn, d->error_class && strcmp(d->error_class, tok[1]) == 0,
	      "expected class %s, got %s", tok[1], d->error_class ? d->error_class : "(null)");
	CHECK(rn, d->attempt == num(rn, tok[2]), "expected attempt %s, got %d", tok[2],
	      d->attempt);
	for (size_t i = 3; i < n; i++) {
		const char *v = strchr(tok[i], '=');
		if (strcmp(tok[i], "alone") == 0)
			alone = 1;
		else if (strcmp(tok[i], "commit_refused") == 0)
			commit_refused = 1;
		else if (strcmp(tok[i], "reconnect") == 0)
			reconnect = 1;
		else if (strncmp(tok[i], "delay=", 6) == 0)
			CHECK(rn, d->delay_ms == num(rn, v + 1), "expected %s, got %lld", tok[i],
			      (long long)d->delay_ms);
		else if (strncmp(tok[i], "not_before=", 11) == 0)
			CHECK(rn, d->not_before_ms == num(rn, v + 1), "expected %s, got %lld",
			      tok[i], (long long)d->not_before_ms);
		else if (strncmp(tok[i], "own=", 4) == 0)
			CHECK(rn, d->own_failures == num(rn, v + 1), "expected %s, got %d", tok[i],
			      d->own_failures);
		else if (strncmp(tok[i], "cause=", 6) == 0)
			CHECK(rn, d->sqlstate_class && strcmp(d->sqlstate_class, v + 1) == 0,
			      "expected %s, got %s", tok[i],
			      d->sqlstate_class ? d->sqlstate_class : "(null)");
		else
			fail_msg("%s:%d: unknown expectation \"%s\"", rn->path, rn->lineno, tok[i]);
	}
	CHECK(rn, d->failing_alone == alone, "failing_alone %d, expected %d", d->failing_alone,
	      alone);
	CHECK(rn, d->commit_refused == commit_refused, "commit_refused %d, expected %d",
	      d->commit_refused, commit_refused);
	CHECK(rn, d->reconnect == reconnect, "reconnect %d, expected %d", d->reconnect, reconnect);
	if (d->kind == DECIDE_REQUEUE)
		CHECK(rn, d->delay_ms > 0, "a requeue without a backoff");
}

static size_t arrow(const struct run *rn, char **tok, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(tok[i], "->") == 0)
			return i;
	fail_msg("%s:%d: no \"->\"", rn->path, rn->lineno);
	return 0;
}

/* fail FAULT SQLSTATE [options] -> expect */
static void case_fail(struct run *rn, char **tok, size_t n)
{
	static const char *const faults[] = { [DECIDE_FAULT_ROW] = "row",
					      [DECIDE_FAULT_ITEM] = "item",
					      [DECIDE_FAULT_COMMIT] = "commit" };
	struct opts o;
	size_t a = arrow(rn, tok, n);
	int fault = -1;

	opts_init(&o);
	if (a < 3)
		fail_msg("%s:%d: fail FAULT SQLSTATE ...", rn->path, rn->lineno);
	for (size_t f = 0; f < 3; f++)
		if (strcmp(tok[1], faults[f]) == 0)
			fault = (int)f;
	if (fault < 0)
		fail_msg("%s:%d: unknown fault \"%s\"", rn->path, rn->lineno, tok[1]);
	for (size_t i = 3; i < a; i++)
		if (opts_parse(rn, &o, tok[i]) < 0)
			fail_msg("%s:%d: unknown option \"%s\"", rn->path, rn->lineno, tok[i]);
	struct decision d = decide_failure(&o.pol, &o.r, sqlstate_of(tok[2]),
					   (enum decide_fault)fault, o.commits, o.now, o.random);
	seen(rn, &d);
	expect_decision(rn, &d, tok + a + 1, n - a - 1);
	/* The request's history is what the decision reports. */
	CHECK(rn, d.own_failures == o.r.own_failures, "own_failures %d, history %d",
	      d.own_failures, o.r.own_failures);
}

static void case_undecodable(struct run *rn, char **tok, size_t n)
{
	struct opts o;
	size_t a = arrow(rn, tok, n);

	opts_init(&o);
	for (size_t i = 2; i < a; i++)
		if (opts_parse(rn, &o, tok[i]) < 0)
			fail_msg("%s:%d: unknown option \"%s\"", rn->path, rn->lineno, tok[i]);
	enum decode_status st = strcmp(tok[1], "unsupported") == 0 ? DECODE_UNSUPPORTED
								    : DECODE_MALFORMED;
	struct decision d = decide_undecodable(&o.r, st);
	seen(rn, &d);
	expect_decision(rn, &d, tok + a + 1, n - a - 1);
}

static void case_limit(struct run *rn, char **tok, size_t n)
{
	if (n != 7 || strcmp(tok[5], "->") != 0)
		fail_msg("%s:%d: limit LIMIT N REFUSED MAX -> NEW", rn->path, rn->lineno);
	size_t got = decide_batch_limit((size_t)num(rn, tok[1]), (size_t)num(rn, tok[2]),
					(size_t)num(rn, tok[3]), (size_t)num(rn, tok[4]));
	CHECK(rn, got == (size_t)num(rn, tok[6]), "expected limit %s, got %zu", tok[6], got);
}

/* "I,J,.." into v; returns the count. */
static size_t list(const struct run *rn, const char *s, size_t *v, size_t max)
{
	char buf[128], *tok[PLAN_MAX];
	snprintf(buf, sizeof buf, "%s", s);
	size_t n = split(buf, ",", tok, PLAN_MAX);
	if (n > max)
		fail_msg("%s:%d: list too long", rn->path, rn->lineno);
	for (size_t i = 0; i < n; i++)
		v[i] = (size_t)num(rn, tok[i]);
	return n;
}

/* "IDX:KIND[:CLASS][:flag...]" against d. */
static void expect_plan_decision(struct run *rn, const struct decision *d, char *spec)
{
	char *f[6];
	size_t n = split(spec, ":", f, 6);
	int alone = 0, commit_refused = 0, reconnect = 0;

	if (n < 2)
		fail_msg("%s:%d: IDX:KIND expected, got \"%s\"", rn->path, rn->lineno, spec);
	CHECK(rn, d->request == (size_t)num(rn, f[0]), "decision for request %zu, expected %s",
	      d->request, f[0]);
	CHECK(rn, (int)d->kind == kind_of(rn, f[1]), "request %s: %s, expected %s", f[0],
	      kinds[d->kind], f[1]);
	for (size_t i = 2; i < n; i++) {
		if (strcmp(f[i], "alone") == 0)
			alone = 1;
		else if (strcmp(f[i], "commit_refused") == 0)
			commit_refused = 1;
		else if (strcmp(f[i], "reconnect") == 0)
			reconnect = 1;
		else
			CHECK(rn, d->error_class && strcmp(d->error_class, f[i]) == 0,
			      "request %s: class %s, expected %s", f[0],
			      d->error_class ? d->error_class : "(null)", f[i]);
	}
	CHECK(rn, d->failing_alone == alone, "request %s: failing_alone %d", f[0],
	      d->failing_alone);
	CHECK(rn, d->commit_refused == commit_refused, "request %s: commit_refused %d", f[0],
	      d->commit_refused);
	CHECK(rn, d->reconnect == reconnect, "request %s: reconnect %d", f[0], d->reconnect);
}

static void plan_step(struct run *rn, struct opts *o, struct decide_plan *pl, char *step)
{
	static struct decision out[PLAN_MAX];
	char *tok[MAX_TOKENS];
	size_t n = split(step, " \t", tok, MAX_TOKENS), want[PLAN_MAX], nd = 0, i;
	double rnd[PLAN_MAX + 1];
	struct plan_wait pw;

	rn->steps++;
	if (n == 1 && strncmp(tok[0], "remove=", 7) == 0) {
		decide_plan_remove(pl, (size_t)num(rn, tok[0] + 7));
		return;
	}
	if (n < 3 || strncmp(tok[0], "run=", 4) != 0 || strcmp(tok[2], "=>") != 0)
		fail_msg("%s:%d: step: run=.. ANSWER => ..", rn->path, rn->lineno);
	size_t k = decide_plan_next_size(pl), nwant = list(rn, tok[0] + 4, want, PLAN_MAX);
	CHECK(rn, k == nwant, "runs %zu requests, expected %zu", k, nwant);
	if (k != nwant)
		return;
	for (i = 0; i < k; i++)
		CHECK(rn, pl->order[i] == want[i], "position %zu runs request %zu, expected %zu", i,
		      pl->order[i], want[i]);
	for (i = 0; i <= k; i++)
		rnd[i] = o->random;

	const char *answer = tok[1];
	if (strcmp(answer, "ok") == 0 || strncmp(answer, "rows=", 5) == 0) {
		const char *refused[PLAN_MAX] = { 0 };
		if (answer[0] == 'r') {
			char buf[128], *r[PLAN_MAX];
			snprintf(buf, sizeof buf, "%s", answer + 5);
			size_t nr = split(buf, ",", r, PLAN_MAX);
			CHECK(rn, nr == k, "rows= has %zu answers for %zu requests", nr, k);
			for (i = 0; i < nr && i < k; i++)
				refused[i] = strcmp(r[i], "-") == 0 ? NULL : strdup(r[i]);
		}
		nd = decide_plan_on_committed(pl, refused, o->now, rnd, out, &pw);
		for (i = 0; i < k; i++)
			free((char *)refused[i]);
	} else if (strncmp(answer, "item=", 5) == 0) {
		const char *colon = strchr(answer, ':');
		char pos[16];
		if (!colon)
			fail_msg("%s:%d: item=POS:SQLSTATE", rn->path, rn->lineno);
		snprintf(pos, sizeof pos, "%.*s", (int)(colon - answer - 5), answer + 5);
		nd = decide_plan_on_item_failed(pl, (size_t)num(rn, pos), sqlstate_of(colon + 1),
						o->now, rnd, out, &pw);
	} else if (strncmp(answer, "fail=", 5) == 0) {
		nd = decide_plan_on_failed(pl, sqlstate_of(answer + 5), o->now, rnd, out, &pw);
	} else {
		fail_msg("%s:%d: unknown answer \"%s\"", rn->path, rn->lineno, answer);
	}

	size_t expected = 0;
	int wait = 0, reconnect = 0;
	for (i = 3; i < n; i++) {
		const char *t = tok[i];
		if (t[0] >= '0' && t[0] <= '9') {
			if (expected < nd)
				expect_plan_decision(rn, &out[expected], tok[i]);
			expected++;
		} else if (strncmp(t, "wait=", 5) == 0) {
			char *f[3];
			size_t nf = split(tok[i] + 5, ":", f, 3);
			wait = 1;
			CHECK(rn, pw.wait, "no wait, expected one");
			CHECK(rn, pw.request == (size_t)num(rn, f[0]),
			      "wait reported with request %zu, expected %s", pw.request, f[0]);
			if (nf > 1)
				CHECK(rn, pw.error_class && strcmp(pw.error_class, f[1]) == 0,
				      "wait class %s, expected %s",
				      pw.error_class ? pw.error_class : "(null)", f[1]);
		} else if (strncmp(t, "tries=", 6) == 0) {
			CHECK(rn, pw.tries == num(rn, t + 6), "tries %d, expected %s", pw.tries, t + 6);
		} else if (strncmp(t, "delay=", 6) == 0) {
			CHECK(rn, pw.delay_ms == num(rn, t + 6), "wait %lld ms, expected %s",
			      (long long)pw.delay_ms, t + 6);
		} else if (strcmp(t, "reconnect") == 0) {
			reconnect = 1;
		} else {
			fail_msg("%s:%d: unknown expectation \"%s\"", rn->path, rn->lineno, t);
		}
	}
	CHECK(rn, nd == expected, "%zu decisions, expected %zu", nd, expected);
	CHECK(rn, pw.wait == wait, "wait %d, expected %d", pw.wait, wait);
	CHECK(rn, pw.reconnect == reconnect, "reconnect %d, expected %d", pw.reconnect, reconnect);
	for (i = 0; i < nd; i++)
		seen(rn, &out[i]);
}

static void plan_end(struct run *rn, struct decide_plan *pl, char *end)
{
	char *tok[MAX_TOKENS];
	size_t n = split(end, " \t", tok, MAX_TOKENS), want[PLAN_MAX];

	if (n == 0)
		fail_msg("%s:%d: a plan ends with end or left=", rn->path, rn->lineno);
	if (strcmp(tok[0], "end") == 0) {
		size_t k = decide_plan_next_size(pl);
		CHECK(rn, k == 0, "%zu requests still to run", k);
	} else if (strncmp(tok[0], "left=", 5) == 0) {
		size_t nwant = list(rn, tok[0] + 5, want, PLAN_MAX);
		CHECK(rn, pl->n == nwant, "%zu requests left, expected %zu", pl->n, nwant);
		for (size_t i = 0; i < nwant && i < pl->n; i++)
			CHECK(rn, pl->order[i] == want[i], "left: %zu, expected %zu", pl->order[i],
			      want[i]);
	} else {
		fail_msg("%s:%d: a plan ends with end or left=", rn->path, rn->lineno);
	}
	for (size_t i = 1; i < n; i++) {
		if (strncmp(tok[i], "refused=", 8) == 0)
			CHECK(rn, pl->refused == (size_t)num(rn, tok[i] + 8), "refused %zu, expected %s",
			      pl->refused, tok[i] + 8);
		else if (strncmp(tok[i], "commits=", 8) == 0)
			CHECK(rn, pl->commits == (uint64_t)num(rn, tok[i] + 8),
			      "commits %llu, expected %s", (unsigned long long)pl->commits,
			      tok[i] + 8);
		else
			fail_msg("%s:%d: unknown \"%s\"", rn->path, rn->lineno, tok[i]);
	}
}

/* plan N [options] | step | ... | end */
static void case_plan(struct run *rn, char *line)
{
	struct opts o;
	struct decide_request req[PLAN_MAX];
	size_t order[PLAN_MAX];
	struct decide_plan pl;
	char *seg[MAX_TOKENS], *tok[MAX_TOKENS];
	size_t nseg = split(line, "|", seg, MAX_TOKENS);
	size_t n = split(seg[0], " \t", tok, MAX_TOKENS);

	if (nseg < 2 || n < 2)
		fail_msg("%s:%d: plan N [options] | step | ... | end", rn->path, rn->lineno);
	opts_init(&o);
	long nreq = num(rn, tok[1]);
	if (nreq < 0 || nreq > PLAN_MAX)
		fail_msg("%s:%d: at most %d requests", rn->path, rn->lineno, PLAN_MAX);
	for (size_t i = 2; i < n; i++)
		if (opts_parse(rn, &o, tok[i]) < 0)
			fail_msg("%s:%d: unknown option \"%s\"", rn->path, rn->lineno, tok[i]);
	memset(req, 0, sizeof req);
	for (size_t i = 0; i < (size_t)nreq; i++) {
		req[i].attempts = o.attempts_of[i];
		order[i] = i;
	}
	decide_plan_init(&pl, &o.pol, req, order, (size_t)nreq);
	int before = rn->failures;
	for (size_t s = 1; s + 1 < nseg && rn->failures == before; s++)
		plan_step(rn, &o, &pl, seg[s]);
	if (rn->failures == before) /* after a wrong step the rest says nothing */
		plan_end(rn, &pl, seg[nseg - 1]);
	rn->plans++;
}

static void test_cases(void **state)
{
	(void)state;
	char *path = test_path("decide_cases.txt");
	FILE *f = fopen(path, "r");
	char line[2048], copy[2048];
	struct run rn = { .path = path };

	if (!f)
		fail_msg("cannot open %s", path);
	while (fgets(line, sizeof line, f)) {
		char *tok[MAX_TOKENS];
		rn.lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		snprintf(copy, sizeof copy, "%s", line);
		size_t n = split(line, " \t\r\n", tok, MAX_TOKENS);
		if (n == 0)
			continue;
		rn.cases++;
		if (strcmp(tok[0], "fail") == 0)
			case_fail(&rn, tok, n);
		else if (strcmp(tok[0], "undecodable") == 0)
			case_undecodable(&rn, tok, n);
		else if (strcmp(tok[0], "limit") == 0)
			case_limit(&rn, tok, n);
		else if (strcmp(tok[0], "plan") == 0)
			case_plan(&rn, strtok(copy, "\r\n"));
		else
			fail_msg("%s:%d: unknown case \"%s\"", path, rn.lineno, tok[0]);
	}
	fclose(f);
	free(path);
	/* The table must exist and reach every decision, or it proves nothing. */
	assert_true(rn.cases >= 100);
	assert_true(rn.plans >= 20 && rn.steps >= 60);
	for (size_t k = 0; k < 4; k++)
		assert_true(rn.seen[k] > 0);
	assert_true(rn.seen_alone && rn.seen_commit_refused && rn.seen_override);
	assert_int_equal(rn.failures, 0);
}

/* The plan reports the request's history back: a request taken out of the in-place loop has
 * its failures counted in the caller's decide_request (the shell keeps them across waits). */
static void test_history_in_callers_array(void **state)
{
	(void)state;
	struct decide_policy p = { 5, 2, { 100, 30000, 2.0 }, NULL, 0, 50 };
	struct decide_request req[2] = { { 0 } };
	size_t order[2] = { 0, 1 };
	struct decision out[2];
	struct plan_wait pw;
	const double rnd[3] = { 0, 0, 0 };
	struct decide_plan pl;

	decide_plan_init(&pl, &p, req, order, 2);
	assert_int_equal(decide_plan_next_size(&pl), 2);
	decide_plan_on_item_failed(&pl, 0, "57014", 0, rnd, out, &pw);
	assert_true(req[0].failed_before);
	assert_int_equal(req[0].commits_at_failure, 0);
	assert_int_equal(decide_plan_next_size(&pl), 1);
	const char *ok[1] = { NULL };
	decide_plan_on_committed(&pl, ok, 0, rnd, out, &pw);
	decide_plan_next_size(&pl);
	decide_plan_on_item_failed(&pl, 0, "57014", 0, rnd, out, &pw);
	assert_int_equal(req[0].own_failures, 1);
	assert_false(req[1].failed_before);
}

/* Same inputs, same decisions: nothing but the arguments is read. */
static void test_deterministic(void **state)
{
	(void)state;
	struct decide_policy p = { 5, 20, { 100, 30000, 2.0 }, NULL, 0, 50 };
	for (int i = 0; i < 3; i++) {
		struct decide_request r = { .attempts = 2 };
		struct decision d = decide_failure(&p, &r, "23505", DECIDE_FAULT_ROW, 0, 42, 0.25);
		assert_int_equal(d.kind, DECIDE_REQUEUE);
		assert_int_equal(d.delay_ms, 250);
		assert_int_equal(d.not_before_ms, 292);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_history_in_callers_array),
		cmocka_unit_test(test_deterministic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
