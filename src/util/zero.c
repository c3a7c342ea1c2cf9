/* Zero-buffer test: a short byte check, then memcmp of the buffer with itself shifted. */
#include "util/zero.h"

#include <string.h>

bool mem_is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	/* Once the first 16 bytes are zero, the buffer is zero if it equals itself moved by 16
	 * bytes; memcmp runs vectorised, a byte loop does not. */
	size_t head = len < 16 ? len : 16;
	for (size_t i = 0; i < head; i++)
		if (p[i])
			return false;
	return len <= 16 || memcmp(p, p + 16, len - 16) == 0;
}
