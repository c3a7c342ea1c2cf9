/* Helpers shared by the device models (not exported): clocks, access values, saved state. */
#ifndef COVE_DEVICES_DEVUTIL_H
#define COVE_DEVICES_DEVUTIL_H

#include "vmm/device.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Clocks (clock.c; unit tests link a fake instead). */
uint64_t devclock_mono_ns(void); /* CLOCK_MONOTONIC */
int64_t devclock_real_ns(void);	 /* CLOCK_REALTIME */

/* The value of an access of len bytes (1, 2, 4 or 8; anything else reads as 1). */
static inline uint64_t dev_load(const void *data, unsigned len)
{
	uint64_t v = 0;
	memcpy(&v, data, len <= 8 ? len : 1);
	return v;
}

static inline void dev_store(void *data, unsigned len, uint64_t v)
{
	memcpy(data, &v, len <= 8 ? len : 1);
}

/* Saved state: little-endian fields after a 4-byte magic and a 2-byte version. */
struct state_w {
	struct state_buf *buf;
	int err;
};

static inline void sw_bytes(struct state_w *w, const void *p, size_t n)
{
	if (!w->err)
		w->err = state_buf_put(w->buf, p, n);
}

static inline void sw_u8(struct state_w *w, uint8_t v)
{
	sw_bytes(w, &v, 1);
}

static inline void sw_u16(struct state_w *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	sw_bytes(w, b, 2);
}

static inline void sw_u32(struct state_w *w, uint32_t v)
{
	uint8_t b[4];
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	sw_bytes(w, b, 4);
}

static inline void sw_u64(struct state_w *w, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	sw_bytes(w, b, 8);
}

struct state_r {
	const uint8_t *p;
	size_t len;
	size_t pos;
	bool bad;
};

static inline const uint8_t *sr_take(struct state_r *r, size_t n)
{
	if (r->bad || n > r->len - r->pos) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p + r->pos;
	r->pos += n;
	return p;
}

static inline void sr_bytes(struct state_r *r, void *out, size_t n)
{
	const uint8_t *p = sr_take(r, n);
	if (p)
		memcpy(out, p, n);
	else
		memset(out, 0, n);
}

static inline uint64_t sr_uint(struct state_r *r, unsigned n)
{
	const uint8_t *p = sr_take(r, n);
	uint64_t v = 0;
	for (unsigned i = 0; p && i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static inline uint8_t sr_u8(struct state_r *r)
{
	return (uint8_t)sr_uint(r, 1);
}

static inline uint16_t sr_u16(struct state_r *r)
{
	return (uint16_t)sr_uint(r, 2);
}

static inline uint32_t sr_u32(struct state_r *r)
{
	return (uint32_t)sr_uint(r, 4);
}

static inline uint64_t sr_u64(struct state_r *r)
{
	return sr_uint(r, 8);
}

/* Opens a saved state: checks the magic and version. */
static inline void sw_header(struct state_w *w, uint32_t magic, uint16_t version)
{
	sw_u32(w, magic);
	sw_u16(w, version);
}

static inline bool sr_header(struct state_r *r, uint32_t magic, uint16_t version)
{
	uint32_t m = sr_u32(r);
	uint16_t v = sr_u16(r);
	if (m != magic || v != version)
		r->bad = true;
	return !r->bad;
}

/* True when the whole state was read and nothing was wrong. */
static inline bool sr_done(const struct state_r *r)
{
	return !r->bad && r->pos == r->len;
}

#define DEV_MAGIC(a, b, c, d) \
	((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

#endif
