/* Whether a buffer holds only zero bytes (sparse detection, zero fills). */
#ifndef COVE_UTIL_ZERO_H
#define COVE_UTIL_ZERO_H

#include <stdbool.h>
#include <stddef.h>

/* True when all len bytes at buf are zero (true for len 0). */
bool mem_is_zero(const void *buf, size_t len);

#endif
