/* Looks for a string inside a kernel image, through a bzImage's compressed payload. */
#include "vmm/loader.h"

#include <errno.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#define CHUNK	      (1u << 20)
#define MAX_INFLATED  (512ull << 20) /* far above any kernel: a bound for hostile files */
#define MARKER_MAX    64
#define PAYLOAD_SINCE 0x0208 /* boot protocol 2.08 added payload_offset/length */

/* Searches the decompressed stream chunk by chunk; the last len-1 bytes of one chunk are
 * kept in front of the next, so a marker split across two chunks is still found. */
struct scan {
	const char *marker;
	size_t mlen;
	uint8_t *buf; /* MARKER_MAX - 1 carried bytes, then CHUNK new ones */
	size_t carry;
	uint64_t total;
};

static bool scan_feed(struct scan *s, size_t n)
{
	uint8_t *start = s->buf + (MARKER_MAX - 1) - s->carry;
	size_t have = s->carry + n;
	s->total += n;
	if (memmem(start, have, s->marker, s->mlen))
		return true;
	size_t keep = have < s->mlen - 1 ? have : s->mlen - 1;
	memmove(s->buf + (MARKER_MAX - 1) - keep, start + have - keep, keep);
	s->carry = keep;
	return false;
}

static uint8_t *scan_out(struct scan *s)
{
	return s->buf + MARKER_MAX - 1;
}

static int scan_gzip(struct scan *s, const uint8_t *in, size_t len)
{
	z_stream z = {0};
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)in;
	z.avail_in = len > UINT32_MAX ? UINT32_MAX : (uInt)len;
	int ret = 0;
	for (;;) {
		z.next_out = scan_out(s);
		z.avail_out = CHUNK;
		int zr = inflate(&z, Z_NO_FLUSH);
		if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
			ret = -EINVAL;
			break;
		}
		if (scan_feed(s, CHUNK - z.avail_out)) {
			ret = 1;
			break;
		}
		if (zr == Z_STREAM_END || (zr == Z_BUF_ERROR && z.avail_out == CHUNK) ||
		    s->total > MAX_INFLATED)
			break;
	}
	inflateEnd(&z);
	return ret;
}

static int scan_zstd(struct scan *s, const uint8_t *in, size_t len)
{
	ZSTD_DStream *d = ZSTD_createDStream();
	if (!d)
		return -ENOMEM;
	ZSTD_initDStream(d);
	ZSTD_inBuffer ib = {in, len, 0};
	int ret = 0;
	for (;;) {
		ZSTD_outBuffer ob = {scan_out(s), CHUNK, 0};
		size_t zr = ZSTD_decompressStream(d, &ob, &ib);
		if (ZSTD_isError(zr)) {
			ret = -EINVAL;
			break;
		}
		if (scan_feed(s, ob.pos)) {
			ret = 1;
			break;
		}
		if (zr == 0 || (ob.pos == 0 && ib.pos == ib.size) || s->total > MAX_INFLATED)
			break;
	}
	ZSTD_freeDStream(d);
	return ret;
}

static int scan_xz(struct scan *s, const uint8_t *in, size_t len)
{
	lzma_stream z = LZMA_STREAM_INIT;
	if (lzma_stream_decoder(&z, 256u << 20, 0) != LZMA_OK)
		return -ENOMEM;
	z.next_in = in;
	z.avail_in = len;
	int ret = 0;
	for (;;) {
		z.next_out = scan_out(s);
		z.avail_out = CHUNK;
		lzma_ret zr = lzma_code(&z, LZMA_FINISH);
		if (zr != LZMA_OK && zr != LZMA_STREAM_END && zr != LZMA_BUF_ERROR) {
			ret = -EINVAL;
			break;
		}
		if (scan_feed(s, CHUNK - z.avail_out)) {
			ret = 1;
			break;
		}
		if (zr != LZMA_OK || s->total > MAX_INFLATED)
			break;
	}
	lzma_end(&z);
	return ret;
}

int kernel_find_marker(const uint8_t *k, size_t len, const char *marker)
{
	size_t mlen = strlen(marker);
	if (!mlen || mlen >= MARKER_MAX)
		return -EINVAL;
	if (memmem(k, len, marker, mlen))
		return 1;
	if (kernel_detect(k, len) != KERNEL_BZIMAGE)
		return 0; /* an uncompressed kernel: the search above was the whole answer */
	/* The loader's own parser: the setup's size and the payload fields are read one way. */
	struct bzimage_info bz;
	struct cove_err err = {0};
	int r = bzimage_parse(k, len, &bz, &err);
	if (r)
		return r;
	if (bz.version < PAYLOAD_SINCE)
		return -ENOTSUP;
	uint64_t off = (uint64_t)bz.setup_size + bz.payload_offset, plen = bz.payload_length;
	if (off > len || plen > len - off || plen < 6)
		return -EINVAL;
	const uint8_t *p = k + off;
	struct scan s = {.marker = marker, .mlen = mlen};
	s.buf = malloc(MARKER_MAX - 1 + CHUNK);
	if (!s.buf)
		return -ENOMEM;
	int ret;
	if (p[0] == 0x1F && p[1] == 0x8B)
		ret = scan_gzip(&s, p, plen);
	else if (!memcmp(p, "\x28\xB5\x2F\xFD", 4))
		ret = scan_zstd(&s, p, plen);
	else if (!memcmp(p,
			 "\xFD"
			 "7zXZ\0",
			 6))
		ret = scan_xz(&s, p, plen);
	else
		ret = -ENOTSUP; /* bzip2, lzma, lzo, lz4: not read here */
	free(s.buf);
	return ret;
}
