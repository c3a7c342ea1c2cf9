/* The block layer's public entry points: open with format probe, backing chains, I/O dispatch. */
#include "block/blk_int.h"
#include "block/qcow2.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *blk_format_name(enum blk_format fmt)
{
	switch (fmt) {
	case BLK_FMT_RAW:
		return "raw";
	case BLK_FMT_QCOW2:
		return "qcow2";
	default:
		return NULL;
	}
}

int blk_format_parse(const char *name, enum blk_format *out)
{
	if (!name)
		return -EINVAL;
	if (!strcmp(name, "raw"))
		*out = BLK_FMT_RAW;
	else if (!strcmp(name, "qcow2"))
		*out = BLK_FMT_QCOW2;
	else
		return -EINVAL;
	return 0;
}

int blk_prealloc_parse(const char *name, enum blk_prealloc *out)
{
	static const char *names[] = {"off", "metadata", "falloc", "full"};
	for (int i = 0; i < 4; i++)
		if (name && !strcmp(name, names[i])) {
			*out = (enum blk_prealloc)i;
			return 0;
		}
	return -EINVAL;
}

char *blk_resolve_relative(const char *image, const char *name)
{
	if (name[0] == '/' || !strchr(image, '/'))
		return strdup(name);
	char *copy = strdup(image);
	if (!copy)
		return NULL;
	char *dir = dirname(copy);
	char *out = NULL;
	if (asprintf(&out, "%s/%s", dir, name) < 0)
		out = NULL;
	free(copy);
	return out;
}

/* Other formats' magic, so that a probe names what it found instead of calling it raw. */
static const char *other_format(const uint8_t *m, size_t n)
{
	if (n >= 4 && !memcmp(m, "QFI\xfb", 4))
		return "qcow (version 1)";
	if (n >= 4 && !memcmp(m, "KDMV", 4))
		return "vmdk";
	if (n >= 8 && !memcmp(m, "vhdxfile", 8))
		return "vhdx";
	if (n >= 8 && !memcmp(m, "conectix", 8))
		return "vpc";
	return NULL;
}

bool blk_probe_is_raw(const void *head, size_t len)
{
	return !qcow2_probe(head, len) && !other_format(head, len);
}

static void blk_free(struct blk *b)
{
	if (!b)
		return;
	blk_aio_free(b);
	if (b->q)
		qcow2_close(b);
	blk_close(b->backing);
	if (b->file.fd >= 0)
		close(b->file.fd);
	free(b->filename);
	free(b);
}

int blk_open_depth(const char *path, const struct blk_open_opts *opts, int depth,
		   const struct blk_chain *chain, struct blk **out, struct cove_err *err)
{
	static const struct blk_open_opts defaults;
	if (!opts)
		opts = &defaults;
	if (!path || !*path)
		return cove_err_set(err, -EINVAL, "no image path given");
	if (depth > BLK_MAX_CHAIN)
		return cove_err_set(err, -ELOOP, "%s: backing chain deeper than %d images", path,
				    BLK_MAX_CHAIN);
	struct blk *b = calloc(1, sizeof(*b));
	if (!b)
		return cove_err_set(err, -ENOMEM, "out of memory");
	b->file.fd = -1;
	b->readonly = opts->readonly;
	b->filename = strdup(path);
	int ret;
	if (!b->filename) {
		ret = cove_err_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	struct stat st;
	b->file.fd = file_open_stat(
	    path, (opts->readonly ? O_RDONLY : O_RDWR) | (opts->direct ? O_DIRECT : 0), &st);
	if (b->file.fd < 0) {
		ret = b->file.fd;
		b->file.fd = -1;
		if (ret == -EINVAL && opts->direct)
			cove_err_set(err, ret, "%s: the file system does not support O_DIRECT",
				     path);
		else
			cove_err_set(err, ret, "%s: %s", path, strerror(-ret));
		goto fail;
	}
	b->file.direct = opts->direct;
	b->file.nosync = opts->unsafe;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		ret = cove_err_set(err, -EINVAL, "%s: not a regular file or block device", path);
		goto fail;
	}
	b->dev = st.st_dev;
	b->ino = st.st_ino;
	for (const struct blk_chain *c = chain; c; c = c->up)
		if (c->dev == b->dev && c->ino == b->ino) {
			ret = cove_err_set(err, -ELOOP, "%s: loop in the backing chain", path);
			goto fail;
		}
	uint8_t magic[16] = {0};
	ret = file_pread(&b->file, magic, sizeof(magic), 0);
	if (ret) {
		cove_err_set(err, ret, "%s: cannot read: %s", path, strerror(-ret));
		goto fail;
	}
	b->fmt = opts->format;
	if (b->fmt == BLK_FMT_AUTO) {
		const char *other = other_format(magic, sizeof(magic));
		if (qcow2_probe(magic, sizeof(magic))) {
			b->fmt = BLK_FMT_QCOW2;
		} else if (other) {
			ret = cove_err_set(err, -ENOTSUP, "%s: unsupported image format '%s'", path,
					   other);
			goto fail;
		} else {
			b->fmt = BLK_FMT_RAW;
		}
	}
	if (b->fmt == BLK_FMT_RAW) {
		ret = raw_open(b, err);
		if (ret)
			goto fail;
		*out = b;
		return 0;
	}
	if (b->fmt != BLK_FMT_QCOW2) {
		ret = cove_err_set(err, -EINVAL, "%s: unknown format", path);
		goto fail;
	}
	ret = qcow2_open(b, opts, depth, err);
	if (ret) {
		cove_err_prefix(err, "%s", path);
		goto fail;
	}
	struct qcow2 *q = b->q;
	if (q->backing_file && !opts->no_backing) {
		struct blk_open_opts bo = *opts;
		bo.readonly = true;
		bo.format = BLK_FMT_AUTO;
		bo.backing_fmt = NULL;
		const char *fmt = opts->backing_fmt ? opts->backing_fmt : q->backing_fmt;
		if (fmt && blk_format_parse(fmt, &bo.format)) {
			ret = cove_err_set(err, -ENOTSUP, "%s: unsupported backing format '%s'",
					   path, fmt);
			goto fail;
		}
		char *bp = blk_resolve_relative(path, q->backing_file);
		if (!bp) {
			ret = cove_err_set(err, -ENOMEM, "out of memory");
			goto fail;
		}
		struct blk_chain me = {b->dev, b->ino, chain};
		ret = blk_open_depth(bp, &bo, depth + 1, &me, &b->backing, err);
		if (ret) {
			if (depth == 0)
				cove_err_prefix(err, "%s: cannot open backing file", path);
			free(bp);
			goto fail;
		}
		free(bp);
	}
	*out = b;
	return 0;
fail:
	if (b->q && !b->readonly)
		b->readonly = true; /* do not flush a half-opened image */
	blk_free(b);
	return ret;
}

int blk_open(const char *path, const struct blk_open_opts *opts, struct blk **out,
	     struct cove_err *err)
{
	return blk_open_depth(path, opts, 0, NULL, out, err);
}

void blk_close(struct blk *b)
{
	if (!b)
		return;
	if (b->q && !b->readonly) {
		struct qcow2 *q = b->q;
		if (!qcow2_flush(b) && q->dirty_bit_set) {
			q->incompat &= ~QCOW2_INCOMPAT_DIRTY;
			if (!qcow2_write_header(q))
				file_sync(q->file);
			q->dirty_bit_set = false;
		}
	}
	blk_free(b);
}

uint64_t blk_size(const struct blk *b)
{
	return b->size;
}
enum blk_format blk_get_format(const struct blk *b)
{
	return b->fmt;
}
const char *blk_filename(const struct blk *b)
{
	return b->filename;
}
bool blk_is_readonly(const struct blk *b)
{
	return b->readonly;
}
struct blk *blk_backing(const struct blk *b)
{
	return b->backing;
}
uint32_t blk_cluster_size(const struct blk *b)
{
	return b->q ? (uint32_t)b->q->cluster_size : 512;
}

static int range_ok(const struct blk *b, uint64_t off, uint64_t len)
{
	return off <= b->size && len <= b->size - off;
}

int blk_preadv(struct blk *b, const struct iovec *iov, int iovcnt, uint64_t offset)
{
	uint64_t len = iov_total(iov, iovcnt);
	if (iovcnt < 0 || !range_ok(b, offset, len))
		return -EINVAL;
	if (!len)
		return 0;
	return b->q ? qcow2_preadv(b, iov, iovcnt, offset, len)
		    : raw_preadv(b, iov, iovcnt, offset, len);
}

int blk_pwritev(struct blk *b, const struct iovec *iov, int iovcnt, uint64_t offset)
{
	uint64_t len = iov_total(iov, iovcnt);
	if (iovcnt < 0 || !range_ok(b, offset, len))
		return -EINVAL;
	if (b->readonly)
		return -EROFS;
	if (!len)
		return 0;
	return b->q ? qcow2_pwritev(b, iov, iovcnt, offset, len)
		    : raw_pwritev(b, iov, iovcnt, offset, len);
}

int blk_pread(struct blk *b, void *buf, uint64_t len, uint64_t offset)
{
	struct iovec v = {buf, len};
	return blk_preadv(b, &v, 1, offset);
}

int blk_pwrite(struct blk *b, const void *buf, uint64_t len, uint64_t offset)
{
	struct iovec v = {(void *)buf, len};
	return blk_pwritev(b, &v, 1, offset);
}

int blk_flush(struct blk *b)
{
	if (b->readonly)
		return 0;
	return b->q ? qcow2_flush(b) : file_sync(&b->file);
}

int blk_discard(struct blk *b, uint64_t offset, uint64_t len)
{
	if (!range_ok(b, offset, len))
		return -EINVAL;
	if (b->readonly)
		return -EROFS;
	if (!len)
		return 0;
	return b->q ? qcow2_zero(b, offset, len, true, true) : raw_zero(b, offset, len, true);
}

int blk_write_zeroes(struct blk *b, uint64_t offset, uint64_t len, unsigned flags)
{
	if (!range_ok(b, offset, len))
		return -EINVAL;
	if (b->readonly)
		return -EROFS;
	if (!len)
		return 0;
	bool unmap = flags & BLK_ZERO_MAY_UNMAP;
	return b->q ? qcow2_zero(b, offset, len, unmap, false) : raw_zero(b, offset, len, unmap);
}

int blk_write_compressed(struct blk *b, const void *buf, uint64_t len, uint64_t offset)
{
	if (!b->q)
		return -ENOTSUP;
	if (!range_ok(b, offset, len))
		return -EINVAL;
	if (b->readonly)
		return -EROFS;
	return qcow2_write_compressed(b, buf, len, offset);
}

long blk_compress_cluster(const struct blk *b, const void *src, uint64_t len, void *dst,
			  uint64_t cap)
{
	if (!b->q)
		return -ENOTSUP;
	uint64_t cs = b->q->cluster_size;
	if (!len || len > cs)
		return -EINVAL;
	uint8_t *pad = NULL;
	if (len < cs) {
		pad = calloc(1, cs);
		if (!pad)
			return -ENOMEM;
		memcpy(pad, src, len);
		src = pad;
	}
	if (cap > cs - 1)
		cap = cs - 1; /* it must end up smaller than a cluster */
	long n = q2_compress(b->q->compression_type, src, cs, dst, cap);
	free(pad);
	return n < 0 ? -ENOSPC : n;
}

int blk_write_precompressed(struct blk *b, const void *cdata, uint64_t clen, uint64_t offset)
{
	if (!b->q)
		return -ENOTSUP;
	if (offset >= b->size)
		return -EINVAL;
	if (b->readonly)
		return -EROFS;
	return qcow2_write_precompressed(b, cdata, clen, offset);
}

int blk_block_status(struct blk *b, uint64_t offset, uint64_t len, struct blk_status *st)
{
	if (!len || !range_ok(b, offset, len))
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	return b->q ? qcow2_block_status(b, offset, len, st) : raw_block_status(b, offset, len, st);
}

int blk_get_info(struct blk *b, struct blk_info *info)
{
	memset(info, 0, sizeof(*info));
	info->format = b->fmt;
	info->virtual_size = b->size;
	struct stat st;
	if (fstat(b->file.fd, &st))
		return -errno;
	info->actual_size = (uint64_t)st.st_blocks * 512;
	uint64_t fs;
	if (file_size(&b->file, &fs) == 0)
		info->file_length = fs;
	if (b->q) {
		qcow2_fill_info(b->q, info);
		if (b->q->nsnaps) {
			unsigned n;
			int ret = blk_snapshot_list(b, &info->snapshots, &n);
			if (ret)
				return ret;
			info->nb_snapshots = n;
		}
	}
	return 0;
}

int blk_check(struct blk *b, unsigned fix, struct blk_check_result *res, struct cove_err *err)
{
	memset(res, 0, sizeof(*res));
	if (!b->q)
		return 0;
	if (fix && b->readonly)
		return cove_err_set(err, -EROFS, "%s: cannot repair an image opened read-only",
				    b->filename);
	return qcow2_check(b, fix, res, err);
}
