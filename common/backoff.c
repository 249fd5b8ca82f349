#include "backoff.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int64_t backoff_delay_ms(const struct backoff_policy *p, int attempt, double random01)
{
	if (attempt < 1)
		attempt = 1;
	/* pow() can overflow to inf for large attempts; fmin clamps before the cast. */
	double nominal = p->initial_ms * pow(p->multiplier, attempt - 1);
	nominal = fmin(nominal, (double)p->max_ms);
	if (random01 < 0 || random01 >= 1)
		random01 = 0;
	double delay = nominal / 2 + random01 * nominal / 2;
	if (delay < 1)
		delay = 1;
	return (int64_t)delay;
}

double backoff_random(void)
{
	static unsigned short seed[3];
	static int seeded;
	if (!seeded) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed[0] = (unsigned short)ts.tv_nsec;
		seed[1] = (unsigned short)(ts.tv_nsec >> 16);
		seed[2] = (unsigned short)getpid();
		seeded = 1;
	}
	return erand48(seed);
}
