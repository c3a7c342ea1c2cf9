/* The device clock for unit tests: the real one plus what a test skips ahead (timeouts). */
#ifndef COVE_TESTS_SKIPCLOCK_H
#define COVE_TESTS_SKIPCLOCK_H

#include "devices/devutil.h" /* devclock_mono_ns, devclock_real_ns */

#include <stdint.h>

/* Added to every devclock_mono_ns() reading; a test raises it to jump past a timeout. */
extern uint64_t clock_skip_ns;

#endif
