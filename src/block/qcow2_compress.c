/* qcow2: compressed clusters, deflate (raw zlib streams) and zstd. */
#include "block/qcow2.h"

#include <errno.h>
#include <pthread.h>
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

/*
 * Compression may run on several threads at once (cove img convert's workers), so each
 * thread has its own contexts. They live in thread-specific data whose destructor frees
 * them when the thread ends; the main thread's stay reachable until exit.
 */
struct comp_ctx {
	ZSTD_CCtx *zstd;
	z_stream deflate;
	bool deflate_ready;
};
static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static int ctx_key_err;

static void ctx_free(void *p)
{
	struct comp_ctx *c = p;
	if (c->zstd)
		ZSTD_freeCCtx(c->zstd);
	if (c->deflate_ready)
		deflateEnd(&c->deflate);
	free(c);
}

static void ctx_key_init(void)
{
	ctx_key_err = pthread_key_create(&ctx_key, ctx_free);
}

static struct comp_ctx *ctx_get(void)
{
	if (pthread_once(&ctx_once, ctx_key_init) || ctx_key_err)
		return NULL;
	struct comp_ctx *c = pthread_getspecific(ctx_key);
	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (c && pthread_setspecific(ctx_key, c)) {
		free(c);
		c = NULL;
	}
	return c;
}

long q2_compress(int type, const void *src, size_t slen, void *dst, size_t dcap)
{
	struct comp_ctx *c = ctx_get();
	if (!c)
		return -ENOMEM;
	if (type == 1) {
		if (!c->zstd && !(c->zstd = ZSTD_createCCtx()))
			return -ENOMEM;
		size_t r = ZSTD_compressCCtx(c->zstd, dst, dcap, src, slen, 3);
		if (ZSTD_isError(r))
			return -ENOSPC;
		return (long)r;
	}
	/* Raw deflate with a 4 KiB window, as QEMU writes it. */
	z_stream *s = &c->deflate;
	if (!c->deflate_ready) {
		if (deflateInit2(s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			return -ENOMEM;
		c->deflate_ready = true;
	} else if (deflateReset(s) != Z_OK) {
		return -EIO;
	}
	s->next_in = (Bytef *)src;
	s->avail_in = (uInt)slen;
	s->next_out = dst;
	s->avail_out = (uInt)dcap;
	int r = deflate(s, Z_FINISH);
	long n = (long)(dcap - s->avail_out);
	return r == Z_STREAM_END ? n : -ENOSPC;
}
