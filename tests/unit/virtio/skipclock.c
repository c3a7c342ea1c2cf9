/* devclock_* for unit tests that skip time: these replace clock.c's, which the linker then
 * leaves out of the static library. */
#include "skipclock.h"

#include "devices/devutil.h"

#include <time.h>

uint64_t clock_skip_ns;

uint64_t devclock_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec + clock_skip_ns;
}

int64_t devclock_real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
