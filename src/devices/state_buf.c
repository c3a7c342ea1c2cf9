/* The growable byte buffer that devices append their saved state to. */
#include "vmm/device.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int state_buf_put(struct state_buf *buf, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	if (len > SIZE_MAX - buf->len)
		return -ENOMEM;
	size_t need = buf->len + len;
	if (need > buf->cap) {
		size_t cap = buf->cap ? buf->cap : 256;
		while (cap < need) {
			if (cap > SIZE_MAX / 2) {
				cap = need;
				break;
			}
			cap *= 2;
		}
		uint8_t *p = realloc(buf->data, cap);
		if (!p)
			return -ENOMEM;
		buf->data = p;
		buf->cap = cap;
	}
	memcpy(buf->data + buf->len, data, len);
	buf->len = need;
	return 0;
}

void state_buf_free(struct state_buf *buf)
{
	free(buf->data);
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
}
