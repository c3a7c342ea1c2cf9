/* Monotonic time in milliseconds, for deadlines (one helper rather than a copy per file). */
#ifndef COVE_UTIL_CLOCK_H
#define COVE_UTIL_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds. */
int64_t clock_mono_ms(void);

#endif
