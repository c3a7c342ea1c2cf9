/* A bzImage's compressed payload: found, named and decompressed within a bound (untrusted). */
#include "vmm/loader.h"

#include <errno.h>
#include <lz4.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#define MARKER_MAX    64
#define PAYLOAD_SINCE 0x0208 /* boot protocol 2.08 added payload_offset/length */

/* LZ4's legacy frame (lz4 -l, the kernel's "lz4" compression): the magic, then blocks each
 * after its little-endian compressed size, each decompressing to at most 8 MiB. */
#define LZ4_LEGACY_MAGIC 0x184C2102u
#define LZ4_LEGACY_BLOCK (8 << 20)

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static enum payload_kind identify(const uint8_t *p, size_t len)
{
	if (len >= 2 && p[0] == 0x1F && p[1] == 0x8B)
		return PAYLOAD_GZIP;
	if (len >= 4 && !memcmp(p, "\x28\xB5\x2F\xFD", 4))
		return PAYLOAD_ZSTD;
	if (len >= 6 && !memcmp(p, "\xFD\x37\x7A\x58\x5A\x00", 6)) /* FD "7zXZ" 00 */
		return PAYLOAD_XZ;
	if (len >= 4 && rd32(p) == LZ4_LEGACY_MAGIC)
		return PAYLOAD_LZ4;
	if (len >= 3 && !memcmp(p, "BZh", 3))
		return PAYLOAD_BZIP2;
	if (len >= 3 && !memcmp(p, "\x5D\x00\x00", 3))
		return PAYLOAD_LZMA;
	if (len >= 4 && !memcmp(p, "\x89LZO", 4))
		return PAYLOAD_LZO;
	return PAYLOAD_UNKNOWN;
}

const char *kernel_payload_name(enum payload_kind kind)
{
	static const char *const names[] = {"unknown", "gzip",	"zstd", "xz",
					    "lz4",     "bzip2", "lzma", "lzo"};
	return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "unknown";
}

int kernel_payload_find(const uint8_t *img, size_t len, struct kernel_payload *out,
			struct cove_err *err)
{
	memset(out, 0, sizeof(*out));
	/* The loader's own parser: the setup's size and the payload fields are read one way. */
	struct bzimage_info bz;
	int r = bzimage_parse(img, len, &bz, err);
	if (r)
		return r;
	if (bz.version < PAYLOAD_SINCE)
		return cove_err_set(err, -ENOTSUP,
				    "bzImage boot protocol %u.%02u has no payload "
				    "fields (2.08 or later needed)",
				    bz.version >> 8, bz.version & 0xFF);
	uint64_t off = (uint64_t)bz.setup_size + bz.payload_offset, plen = bz.payload_length;
	if (plen < 6)
		return cove_err_set(err, -EINVAL,
				    "bzImage has no compressed payload "
				    "(payload_length %llu)",
				    (unsigned long long)plen);
	if (off > len || plen > len - off)
		return cove_err_set(err, -EINVAL,
				    "bzImage payload (%llu bytes at %llu) is not "
				    "inside the file of %zu bytes",
				    (unsigned long long)plen, (unsigned long long)off, len);
	out->data = img + off;
	out->len = (size_t)plen;
	out->kind = identify(out->data, out->len);
	return 0;
}

static int gunzip(const uint8_t *in, size_t len, uint8_t *dst, size_t cap, size_t *out)
{
	z_stream z = {0};
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len; /* both under 4 GiB: the caller bounds them */
	z.next_out = dst;
	z.avail_out = (uInt)cap;
	int zr = inflate(&z, Z_FINISH);
	*out = cap - z.avail_out;
	inflateEnd(&z);
	if (zr == Z_STREAM_END)
		return 0;
	if (zr == Z_MEM_ERROR)
		return -ENOMEM;
	if ((zr == Z_BUF_ERROR || zr == Z_OK) && z.avail_out == 0)
		return -EFBIG;
	return -EINVAL; /* damaged, or the input ended first */
}

/* Streaming: exactly the first cap bytes when the output is longer. */
static int unzstd_stream(const uint8_t *in, size_t len, uint8_t *dst, size_t cap, size_t *out)
{
	ZSTD_DStream *d = ZSTD_createDStream();
	if (!d)
		return -ENOMEM;
	ZSTD_initDStream(d);
	ZSTD_inBuffer ib = {in, len, 0};
	ZSTD_outBuffer ob = {dst, cap, 0};
	int ret;
	for (;;) {
		size_t before_in = ib.pos, before_out = ob.pos;
		size_t zr = ZSTD_decompressStream(d, &ob, &ib);
		if (ZSTD_isError(zr)) {
			ret = ZSTD_getErrorCode(zr) == ZSTD_error_memory_allocation ? -ENOMEM
										    : -EINVAL;
			break;
		}
		if (zr == 0) { /* the frame is complete; what follows is ignored */
			ret = 0;
			break;
		}
		if (ob.pos == cap) {
			ret = -EFBIG;
			break;
		}
		if (ib.pos == ib.size || (ib.pos == before_in && ob.pos == before_out)) {
			ret = -EINVAL; /* truncated */
			break;
		}
	}
	*out = ob.pos;
	ZSTD_freeDStream(d);
	return ret;
}

static int unzstd(const uint8_t *in, size_t len, uint8_t *dst, size_t cap, size_t *out)
{
	/* One frame decompressed in one call goes straight into dst, with no window buffer of
	 * its own; the streaming decoder handles the rest (a peek, an output too big). */
	size_t flen = ZSTD_findFrameCompressedSize(in, len);
	unsigned long long size = ZSTD_getFrameContentSize(in, len);
	if (ZSTD_isError(flen) || size == ZSTD_CONTENTSIZE_ERROR)
		return -EINVAL;
	if (size == ZSTD_CONTENTSIZE_UNKNOWN || size > cap)
		return unzstd_stream(in, len, dst, cap, out);
	ZSTD_DCtx *d = ZSTD_createDCtx();
	if (!d)
		return -ENOMEM;
	size_t zr = ZSTD_decompressDCtx(d, dst, cap, in, flen);
	ZSTD_freeDCtx(d);
	if (ZSTD_isError(zr)) {
		*out = 0;
		return ZSTD_getErrorCode(zr) == ZSTD_error_memory_allocation ? -ENOMEM : -EINVAL;
	}
	*out = zr;
	return 0;
}

static int unxz(const uint8_t *in, size_t len, uint8_t *dst, size_t cap, size_t *out)
{
	lzma_stream z = LZMA_STREAM_INIT;
	/* The kernel's xz dictionary is at most 64 MiB; 256 MiB bounds a hostile one. */
	if (lzma_stream_decoder(&z, 256u << 20, 0) != LZMA_OK)
		return -ENOMEM;
	z.next_in = in;
	z.avail_in = len;
	z.next_out = dst;
	z.avail_out = cap;
	lzma_ret zr = lzma_code(&z, LZMA_FINISH);
	*out = cap - z.avail_out;
	lzma_end(&z);
	if (zr == LZMA_STREAM_END)
		return 0;
	if (zr == LZMA_MEM_ERROR)
		return -ENOMEM;
	if ((zr == LZMA_OK || zr == LZMA_BUF_ERROR) && z.avail_out == 0)
		return -EFBIG;
	return -EINVAL;
}

static int unlz4(const uint8_t *in, size_t len, uint8_t *dst, size_t cap, size_t *out)
{
	const size_t bound = LZ4_COMPRESSBOUND(LZ4_LEGACY_BLOCK);
	size_t pos = 4, n = 0;
	int ret = 0;
	while (len - pos >= 4) {
		uint32_t csize = rd32(in + pos);
		if (csize == LZ4_LEGACY_MAGIC) { /* another stream follows, as the kernel allows */
			pos += 4;
			continue;
		}
		size_t left = len - pos - 4;
		/* The stream ends at a size no block can have (the kernel build's appended
		 * decompressed size) or at the last 4 bytes; a block cut short is damage. */
		if (csize == 0 || csize > bound || (left == 0 && n > 0))
			break;
		if (csize > left) {
			ret = -EINVAL;
			break;
		}
		const char *src = (const char *)in + pos + 4;
		size_t room = cap - n;
		int want = room < LZ4_LEGACY_BLOCK ? (int)room : LZ4_LEGACY_BLOCK;
		int r = LZ4_decompress_safe(src, (char *)dst + n, (int)csize, want);
		if (r < 0) {
			/* Too little room, or damage: a partial decode to the end of dst tells. */
			if (want < LZ4_LEGACY_BLOCK &&
			    LZ4_decompress_safe_partial(src, (char *)dst + n, (int)csize, want,
							want) == want) {
				n = cap;
				ret = -EFBIG;
			} else {
				ret = -EINVAL;
			}
			break;
		}
		n += (size_t)r;
		pos += 4 + csize;
	}
	if (!ret && n == 0)
		ret = -EINVAL; /* no block at all */
	*out = n;
	return ret;
}

int kernel_payload_decompress(const struct kernel_payload *p, uint8_t *dst, size_t cap,
			      size_t *out_len)
{
	*out_len = 0;
	if (cap > KERNEL_PAYLOAD_MAX)
		cap = KERNEL_PAYLOAD_MAX;
	if (p->len > UINT32_MAX) /* zlib counts in 32 bits; no kernel comes near */
		return -EINVAL;
	switch (p->kind) {
	case PAYLOAD_GZIP:
		return gunzip(p->data, p->len, dst, cap, out_len);
	case PAYLOAD_ZSTD:
		return unzstd(p->data, p->len, dst, cap, out_len);
	case PAYLOAD_XZ:
		return unxz(p->data, p->len, dst, cap, out_len);
	case PAYLOAD_LZ4:
		return unlz4(p->data, p->len, dst, cap, out_len);
	default:
		return -ENOTSUP; /* bzip2, lzma, lzo: no distribution ships them for x86-64 */
	}
}

#define PAGE_UP(x) (((x) + 0xFFFULL) & ~0xFFFULL)

int kernel_payload_decompress_alloc(const struct kernel_payload *p, size_t max, uint8_t **out,
				    size_t *out_len)
{
	*out = NULL;
	*out_len = 0;
	if (max > KERNEL_PAYLOAD_MAX)
		max = KERNEL_PAYLOAD_MAX;
	if (max == 0)
		return -EFBIG;
	/* Address space for the bound; only the pages written are ever backed. */
	size_t map = PAGE_UP(max);
	uint8_t *buf = mmap(NULL, map, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (buf == MAP_FAILED)
		return -ENOMEM;
	size_t n;
	int r = kernel_payload_decompress(p, buf, max, &n);
	if (r && r != -EFBIG) {
		munmap(buf, map);
		return r;
	}
	size_t keep = PAGE_UP(n ? n : 1);
	if (keep < map)
		munmap(buf + keep, map - keep);
	*out = buf;
	*out_len = n;
	return r;
}

void kernel_payload_free(uint8_t *buf, size_t len)
{
	if (buf)
		munmap(buf, PAGE_UP(len ? len : 1));
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
	struct kernel_payload p;
	int r = kernel_payload_find(k, len, &p, NULL);
	if (r)
		return r == -ENOEXEC ? -EINVAL : r;
	uint8_t *buf;
	size_t n;
	r = kernel_payload_decompress_alloc(&p, KERNEL_PAYLOAD_MAX, &buf, &n);
	if (r && r != -EFBIG) /* more than the bound: its first 512 MiB are searched */
		return r;
	r = memmem(buf, n, marker, mlen) != NULL;
	kernel_payload_free(buf, n);
	return r;
}
