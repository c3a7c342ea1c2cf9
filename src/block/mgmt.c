/* Image management entry points: create (through a temporary file), resize, backing, amend,
 * measure. */
#include "block/qcow2.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int check_create_opts(struct blk_create_opts *o, struct cove_err *err)
{
	if (o->format != BLK_FMT_RAW && o->format != BLK_FMT_QCOW2)
		return cove_err_set(err, -EINVAL, "create: format must be raw or qcow2");
	if (o->format == BLK_FMT_RAW) {
		if (o->backing_file)
			return cove_err_set(err, -EINVAL, "raw images cannot have a backing file");
		if (o->prealloc == BLK_PREALLOC_METADATA)
			return cove_err_set(err, -EINVAL,
					    "raw: unsupported preallocation mode 'metadata'");
		return 0;
	}
	if (!o->cluster_size)
		o->cluster_size = 65536;
	if (!o->refcount_bits)
		o->refcount_bits = 16;
	if (o->cluster_size < 512 || o->cluster_size > (2u << 20) ||
	    (o->cluster_size & (o->cluster_size - 1)))
		return cove_err_set(err, -EINVAL,
				    "cluster_size must be a power of two between 512 and 2M");
	if (o->refcount_bits > 64 || (o->refcount_bits & (o->refcount_bits - 1)))
		return cove_err_set(err, -EINVAL,
				    "refcount_bits must be a power of two between 1 and 64");
	if (o->compat_v2) {
		if (o->refcount_bits != 16)
			return cove_err_set(err, -EINVAL, "compat=0.10 needs refcount_bits=16");
		if (o->lazy_refcounts)
			return cove_err_set(err, -EINVAL, "lazy_refcounts needs compat=1.1");
		if (o->extended_l2)
			return cove_err_set(err, -EINVAL, "extended_l2 needs compat=1.1");
		if (o->compression == BLK_COMPRESS_ZSTD)
			return cove_err_set(err, -EINVAL, "compression_type=zstd needs compat=1.1");
	}
	if (o->extended_l2 && o->cluster_size < 16384)
		return cove_err_set(err, -EINVAL,
				    "extended_l2 needs a cluster size of at least 16 KiB");
	if (o->data_file)
		return cove_err_set(err, -ENOTSUP,
				    "qcow2: creating an external data file is not "
				    "supported");
	if (o->backing_fmt && !o->backing_file)
		return cove_err_set(err, -EINVAL, "backing_fmt given without backing_file");
	if (o->backing_file && o->prealloc != BLK_PREALLOC_OFF)
		return cove_err_set(err, -EINVAL,
				    "backing file and preallocation cannot be used together");
	if (o->backing_file && strlen(o->backing_file) > QCOW2_MAX_BACKING_NAME)
		return cove_err_set(err, -ENAMETOOLONG, "backing file name too long");
	return 0;
}

static int raw_fill(struct blk_file *f, uint64_t from, uint64_t to, enum blk_prealloc pa)
{
	if (to <= from || pa == BLK_PREALLOC_OFF)
		return 0;
	if (pa == BLK_PREALLOC_FALLOC) {
		int r = posix_fallocate(f->fd, (off_t)from, (off_t)(to - from));
		return -r;
	}
	return file_zero(f, from, to - from, false) ?: 0;
}

static int write_zeros_full(struct blk_file *f, uint64_t from, uint64_t to)
{
	uint64_t chunk = 1 << 20;
	void *z = calloc(1, chunk);
	if (!z)
		return -ENOMEM;
	int ret = 0;
	for (uint64_t o = from; o < to && !ret; o += chunk)
		ret = file_pwrite(f, z, min_u64(chunk, to - o), o);
	free(z);
	return ret;
}

/* The size to create: the given one, or the backing file's when none is given. */
static int create_size(const char *path, const struct blk_create_opts *o, uint64_t *size,
		       struct cove_err *err)
{
	*size = o->size;
	if (o->backing_file && !o->size) {
		struct blk_open_opts bo = {.readonly = true};
		if (o->backing_fmt && blk_format_parse(o->backing_fmt, &bo.format))
			return cove_err_set(err, -ENOTSUP, "unsupported backing format '%s'",
					    o->backing_fmt);
		char *bp = blk_resolve_relative(path, o->backing_file);
		struct blk *bb;
		if (!bp)
			return -ENOMEM;
		int ret = blk_open(bp, &bo, &bb, err);
		free(bp);
		if (ret)
			return cove_err_prefix(err, "cannot open backing file to get its size");
		*size = blk_size(bb);
		blk_close(bb);
	}
	if (*size > (1ull << 62))
		return cove_err_set(err, -EFBIG, "size too large");
	return 0;
}

/* Writes a new image into fd (an empty file named file), syncs it if sync and closes fd; path
 * is the name the user gave (for messages). */
static int create_into(int fd, const char *file, const char *path, const struct blk_create_opts *o,
		       uint64_t size, bool sync, struct cove_err *err)
{
	int ret;
	struct blk_file f = {.fd = fd};
	if (o->format == BLK_FMT_RAW) {
		ret = file_truncate(&f, size);
		if (!ret && o->prealloc == BLK_PREALLOC_FULL)
			ret = write_zeros_full(&f, 0, size);
		else if (!ret)
			ret = raw_fill(&f, 0, size, o->prealloc);
		if (ret)
			cove_err_set(err, ret, "%s: cannot size the image: %s", path,
				     strerror(-ret));
	} else {
		ret = qcow2_create_file(&f, o, size, err);
	}
	if (!ret && sync && fsync(fd))
		ret = cove_err_set(err, -errno, "%s: fsync: %s", file, strerror(errno));
	close(fd);
	if (!ret && o->format == BLK_FMT_QCOW2 && o->prealloc != BLK_PREALLOC_OFF) {
		/* unsafe: the flush (and close) below still write the metadata back, without
		 * fdatasync, when the caller syncs the file itself. */
		struct blk_open_opts bo = {
		    .format = BLK_FMT_QCOW2, .no_backing = true, .unsafe = !sync};
		struct blk *b;
		ret = blk_open(file, &bo, &b, err);
		if (!ret) {
			ret = qcow2_preallocate(b->q, 0, size, o->prealloc);
			if (!ret)
				ret = qcow2_flush(b);
			if (ret)
				cove_err_set(err, ret, "%s: preallocation failed: %s", path,
					     strerror(-ret));
			blk_close(b);
		}
	}
	return ret;
}

int blk_create(const char *path, const struct blk_create_opts *opts, bool overwrite,
	       struct cove_err *err)
{
	if (!path || !opts)
		return cove_err_set(err, -EINVAL, "create: no path or options");
	struct blk_create_opts o = *opts;
	uint64_t size;
	int ret = check_create_opts(&o, err);
	if (ret)
		return ret;
	struct stat st;
	if (!overwrite && lstat(path, &st) == 0)
		return cove_err_set(err, -EEXIST, "%s: file exists", path);
	ret = create_size(path, &o, &size, err);
	if (ret)
		return ret;
	char *tmp = NULL;
	if (asprintf(&tmp, "%s.tmpXXXXXX", path) < 0)
		return -ENOMEM;
	int fd = mkstemp(tmp);
	if (fd < 0) {
		ret = cove_err_set(err, -errno, "%s: cannot create a temporary file: %s", tmp,
				   strerror(errno));
		free(tmp);
		return ret;
	}
	fchmod(fd, 0644);
	ret = create_into(fd, tmp, path, &o, size, true, err);
	if (!ret && rename(tmp, path))
		ret = cove_err_set(err, -errno, "%s: cannot rename into place: %s", path,
				   strerror(errno));
	if (ret) {
		unlink(tmp);
	} else {
		char *d = strdup(path);
		if (d) {
			int dfd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (dfd >= 0) {
				fsync(dfd);
				close(dfd);
			}
			free(d);
		}
	}
	free(tmp);
	return ret;
}

int blk_create_new(const char *path, const struct blk_create_opts *opts, struct cove_err *err)
{
	if (!path || !opts)
		return cove_err_set(err, -EINVAL, "create: no path or options");
	struct blk_create_opts o = *opts;
	uint64_t size;
	int ret = check_create_opts(&o, err);
	if (!ret)
		ret = create_size(path, &o, &size, err);
	if (ret)
		return ret;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return cove_err_set(err, -errno, "%s: %s", path, strerror(errno));
	ret = create_into(fd, path, path, &o, size, false, err);
	if (ret)
		unlink(path);
	return ret;
}

int blk_resize(struct blk *b, uint64_t new_size, bool shrink, enum blk_prealloc prealloc,
	       struct cove_err *err)
{
	if (b->readonly)
		return cove_err_set(err, -EROFS, "%s: image is read-only", b->filename);
	if (b->q)
		return qcow2_resize(b, new_size, shrink, prealloc, err);
	if (new_size < b->size && !shrink)
		return cove_err_set(
		    err, -EBUSY,
		    "shrinking needs the shrink option (data past the new end would "
		    "be lost)");
	if (prealloc == BLK_PREALLOC_METADATA)
		return cove_err_set(err, -EINVAL, "raw: unsupported preallocation mode 'metadata'");
	uint64_t old = b->size;
	int ret = file_truncate(&b->file, new_size);
	if (!ret && new_size > old)
		ret = prealloc == BLK_PREALLOC_FULL ? write_zeros_full(&b->file, old, new_size)
						    : raw_fill(&b->file, old, new_size, prealloc);
	if (!ret)
		ret = file_sync(&b->file);
	if (ret)
		return cove_err_set(err, ret, "%s: resize failed: %s", b->filename, strerror(-ret));
	b->size = new_size;
	return 0;
}

int blk_set_backing(struct blk *b, const char *backing_file, const char *backing_fmt,
		    struct cove_err *err)
{
	if (!b->q)
		return cove_err_set(err, -ENOTSUP, "%s: raw images have no backing file",
				    b->filename);
	if (b->readonly)
		return cove_err_set(err, -EROFS, "%s: image is read-only", b->filename);
	if (backing_file && strlen(backing_file) > QCOW2_MAX_BACKING_NAME)
		return cove_err_set(err, -ENAMETOOLONG, "backing file name too long");
	if (backing_fmt && *backing_fmt && strlen(backing_fmt) > 31)
		return cove_err_set(err, -EINVAL, "backing format name too long");
	return qcow2_set_backing(b, backing_file, backing_fmt, err);
}

int blk_amend(struct blk *b, const struct blk_create_opts *opts, struct cove_err *err)
{
	if (!b->q)
		return cove_err_set(err, -ENOTSUP, "%s: amend needs a qcow2 image", b->filename);
	if (b->readonly)
		return cove_err_set(err, -EROFS, "%s: image is read-only", b->filename);
	return qcow2_amend(b, opts, err);
}

int blk_measure(const struct blk_create_opts *opts, struct blk *src, struct blk_measure *out,
		struct cove_err *err)
{
	struct blk_create_opts o = *opts;
	o.backing_file = NULL;
	o.backing_fmt = NULL;
	int ret = check_create_opts(&o, err);
	if (ret)
		return ret;
	uint64_t vsize = src ? blk_size(src) : o.size;
	uint64_t cs = o.format == BLK_FMT_QCOW2 ? o.cluster_size : 1;
	uint64_t required = 0;
	if (src) {
		for (uint64_t off = 0; off < vsize;) {
			struct blk_status st;
			ret = blk_block_status(src, off, vsize - off, &st);
			if (ret)
				return cove_err_set(err, ret, "measure: block status failed");
			uint64_t n = st.len;
			if ((st.flags & BLK_STATUS_DATA) && !(st.flags & BLK_STATUS_ZERO)) {
				uint64_t start = off / cs * cs, end = (off + n + cs - 1) / cs * cs;
				required += end - start;
				n = min_u64(end, vsize) - off;
			}
			off += n;
		}
	} else {
		required = vsize;
	}
	if (o.format == BLK_FMT_RAW) {
		/* As QEMU: a raw image needs its whole (sector-rounded) size. */
		out->fully_allocated = out->required = (vsize + 511) / 512 * 512;
		return 0;
	}
	uint64_t av = (vsize + cs - 1) / cs * cs;
	if (!src)
		required = 0;
	if (o.prealloc == BLK_PREALLOC_FULL || o.prealloc == BLK_PREALLOC_FALLOC)
		required = av;
	out->fully_allocated =
	    qcow2_prealloc_size(av, cs, (unsigned)__builtin_ctz(o.refcount_bits), o.extended_l2);
	out->required = out->fully_allocated - av + required;
	return 0;
}
