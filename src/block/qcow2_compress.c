/* qcow2: compressed clusters, deflate (raw zlib streams) and zstd. */
#include "block/qcow2.h"

#include <errno.h>
#include <zlib.h>
#include <zstd.h>

int q2_decompress(const struct qcow2 *q, const void *src, size_t slen, void *dst, size_t dlen)
{
	if (q->compression_type == 1) {
		ZSTD_DCtx *z = ZSTD_createDCtx();
		if (!z)
			return -ENOMEM;
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
		ZSTD_freeDCtx(z);
		return ret;
	}
	z_stream s = {0};
	if (inflateInit2(&s, -15) != Z_OK)
		return -ENOMEM;
	s.next_in = (Bytef *)src;
	s.avail_in = (uInt)slen;
	s.next_out = dst;
	s.avail_out = (uInt)dlen;
	int r = inflate(&s, Z_FINISH);
	int ret = 0;
	if ((r != Z_STREAM_END && r != Z_BUF_ERROR && r != Z_OK) || s.avail_out != 0)
		ret = -EIO;
	inflateEnd(&s);
	return ret;
}

long q2_compress(int type, const void *src, size_t slen, void *dst, size_t dcap)
{
	if (type == 1) {
		size_t r = ZSTD_compress(dst, dcap, src, slen, 3);
		if (ZSTD_isError(r))
			return -ENOSPC;
		return (long)r;
	}
	z_stream s = {0};
	if (deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	s.next_in = (Bytef *)src;
	s.avail_in = (uInt)slen;
	s.next_out = dst;
	s.avail_out = (uInt)dcap;
	int r = deflate(&s, Z_FINISH);
	long n = (long)(dcap - s.avail_out);
	deflateEnd(&s);
	return r == Z_STREAM_END ? n : -ENOSPC;
}
