/* qcow2: compressed clusters, deflate (raw zlib streams) and zstd. */
#include "block/qcow2.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <zlib.h>
#include <zstd.h>

void q2_compress_free(struct qcow2 *q)
{
	if (q->zdctx)
		ZSTD_freeDCtx(q->zdctx);
	if (q->zinit)
		inflateEnd(q->zs);
	free(q->zs);
}

int q2_decompress(struct qcow2 *q, const void *src, size_t slen, void *dst, size_t dlen)
{
	if (q->compression_type == 1) {
		if (!q->zdctx && !(q->zdctx = ZSTD_createDCtx()))
			return -ENOMEM;
		ZSTD_DCtx *z = q->zdctx;
		/* Fast path: one frame, decoded in one call (the input is padded to a sector). */
		size_t fsz = ZSTD_findFrameCompressedSize(src, slen);
		if (!ZSTD_isError(fsz)) {
			size_t r = ZSTD_decompressDCtx(z, dst, dlen, src, fsz);
			if (!ZSTD_isError(r))
				return r == dlen ? 0 : -EIO;
		}
		ZSTD_DCtx_reset(z, ZSTD_reset_session_only);
		ZSTD_inBuffer in = {src, slen, 0};
		ZSTD_outBuffer out = {dst, dlen, 0};
		int ret = 0;
		/* The input may carry padding after the frame: stop once the cluster is full. */
		while (out.pos < out.size) {
			size_t r = ZSTD_decompressStream(z, &out, &in);
			if (ZSTD_isError(r)) {
				ret = -EIO;
				break;
			}
			if (r == 0 && out.pos < out.size) {
				ret = -EIO; /* frame ended short */
				break;
			}
			if (in.pos == in.size && out.pos < out.size) {
				ret = -EIO;
				break;
			}
		}
		return ret;
	}
	if (!q->zs && !(q->zs = calloc(1, sizeof(*q->zs))))
		return -ENOMEM;
	z_stream *s = q->zs;
	if (!q->zinit) {
		if (inflateInit2(s, -15) != Z_OK)
			return -ENOMEM;
		q->zinit = true;
	} else if (inflateReset(s) != Z_OK) {
		return -EIO;
	}
	s->next_in = (Bytef *)src;
	s->avail_in = (uInt)slen;
	s->next_out = dst;
	s->avail_out = (uInt)dlen;
	int r = inflate(s, Z_FINISH);
	if ((r != Z_STREAM_END && r != Z_BUF_ERROR && r != Z_OK) || s->avail_out != 0)
		return -EIO;
	return 0;
}

long q2_compress(int type, const void *src, size_t slen, void *dst, size_t dcap)
{
	if (type == 1) {
		/* One context per thread: compression may run on several threads at once. */
		static __thread ZSTD_CCtx *cctx;
		if (!cctx && !(cctx = ZSTD_createCCtx()))
			return -ENOMEM;
		size_t r = ZSTD_compressCCtx(cctx, dst, dcap, src, slen, 3);
		if (ZSTD_isError(r))
			return -ENOSPC;
		return (long)r;
	}
	/* Raw deflate with a 4 KiB window, as QEMU writes it; one stream per thread. */
	static __thread z_stream s;
	static __thread bool ready;
	if (!ready) {
		if (deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			return -ENOMEM;
		ready = true;
	} else if (deflateReset(&s) != Z_OK) {
		return -EIO;
	}
	s.next_in = (Bytef *)src;
	s.avail_in = (uInt)slen;
	s.next_out = dst;
	s.avail_out = (uInt)dcap;
	int r = deflate(&s, Z_FINISH);
	long n = (long)(dcap - s.avail_out);
	return r == Z_STREAM_END ? n : -ENOSPC;
}
