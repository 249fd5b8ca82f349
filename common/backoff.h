/* Exponential backoff with jitter, shared by requeues and in-place retries. */
#ifndef AW_BACKOFF_H
#define AW_BACKOFF_H

#include <stdint.h>

struct backoff_policy {
	int initial_ms;
	int max_ms;
	double multiplier;
};

/* Delay before try number `attempt` + 1 (attempt >= 1 tries already made).
 * "Equal jitter": half the exponential delay is fixed, half is random, so retries of many
 * racing requests spread out yet never come back sooner than half the nominal delay.
 * `random01` in [0,1) is passed in so tests are deterministic. */
int64_t backoff_delay_ms(const struct backoff_policy *p, int attempt, double random01);

/* A random number in [0,1) for backoff_delay_ms (thread-unsafe, seeded once per process). */
double backoff_random(void);

#endif
