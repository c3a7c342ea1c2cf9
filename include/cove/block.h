/*
 * The block layer: disk images (raw, qcow2) opened by path, read and written by byte
 * ranges, with backing chains. Synchronous calls for tools (`cove img`), an asynchronous
 * interface for the VMM (virtio-blk). All calls return 0 (or a count) or -errno; calls
 * that can fail for a reason worth telling the user take a struct cove_err.
 *
 * A struct blk is not thread-safe: one thread uses it at a time (the VMM's event loop,
 * or a tool), except that blk_aio_* completions may be produced by worker threads that
 * the implementation owns.
 */
#ifndef COVE_BLOCK_H
#define COVE_BLOCK_H

#include <cove/error.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

enum blk_format {
	BLK_FMT_AUTO = 0, /* probe: qcow2 magic, else raw */
	BLK_FMT_RAW,
	BLK_FMT_QCOW2,
};

/* "raw", "qcow2"; NULL for AUTO. */
const char *blk_format_name(enum blk_format fmt);
/* Parses "raw" / "qcow2". Returns 0 or -EINVAL. */
int blk_format_parse(const char *name, enum blk_format *out);
/* Whether an image that starts with head (its first len bytes) would probe as raw: false when
 * it starts with the magic of qcow2 or of another format the probe knows. A VMM checks what
 * a guest writes to sector 0 of a probed raw image with it (a guest must not make its raw
 * disk look like a qcow2 file naming a host file as backing). */
bool blk_probe_is_raw(const void *head, size_t len);

struct blk;

struct blk_open_opts {
	enum blk_format format;	 /* BLK_FMT_AUTO probes the file */
	bool readonly;		 /* open O_RDONLY; writes fail with -EROFS */
	bool direct;		 /* O_DIRECT (cache=none) */
	bool no_backing;	 /* do not open the backing file (reads of unallocated → zero) */
	bool no_repair;		 /* do not repair a dirty image on a read-write open */
	const char *backing_fmt; /* override the backing format recorded in the image, or NULL */
	uint64_t cache_bytes;	 /* bound on cached metadata (L2/refcount tables); 0 = default */
	bool unsafe;		 /* cache=unsafe: never fdatasync (qemu-img convert's default for
				    its target); metadata is still written in order */
	bool trust_data_file;	 /* open a qcow2 external data file wherever the image says:
				    by default it must be a plain name beside the image (no '/',
				    not a symlink, a regular file), since a hostile image could
				    name any host file (-EPERM otherwise) */
};

/*
 * Opens path (and its backing chain, unless no_backing). opts may be NULL (probe,
 * read-write). On failure *out is untouched and err says why (unsupported features are
 * named, e.g. "qcow2: unsupported incompatible feature 'xyz' (bit 7)").
 * A qcow2 image with the corrupt bit opens, but writes fail with -EROFS until
 * blk_check(BLK_CHECK_FIX_ERRORS) repairs it; a write that finds inconsistent metadata sets
 * that bit. A dirty image (lazy refcounts) is repaired on a read-write open unless no_repair.
 */
int blk_open(const char *path, const struct blk_open_opts *opts, struct blk **out,
	     struct cove_err *err);
/* Flushes (if writable) and closes b and its backing chain. NULL is allowed. */
void blk_close(struct blk *b);

uint64_t blk_size(const struct blk *b); /* virtual disk size in bytes */
enum blk_format blk_get_format(const struct blk *b);
const char *blk_filename(const struct blk *b);
bool blk_is_readonly(const struct blk *b);
struct blk *blk_backing(const struct blk *b); /* NULL at the end of the chain */
/* Preferred I/O granularity: the cluster size for qcow2, 512 for raw. */
uint32_t blk_cluster_size(const struct blk *b);

/* Synchronous I/O on byte ranges. Ranges past blk_size() fail with -EINVAL. */
int blk_pread(struct blk *b, void *buf, uint64_t len, uint64_t offset);
int blk_pwrite(struct blk *b, const void *buf, uint64_t len, uint64_t offset);
int blk_preadv(struct blk *b, const struct iovec *iov, int iovcnt, uint64_t offset);
int blk_pwritev(struct blk *b, const struct iovec *iov, int iovcnt, uint64_t offset);
int blk_flush(struct blk *b);
/* Deallocates the range (reads return zero afterwards or the backing data: see qcow2 spec). */
int blk_discard(struct blk *b, uint64_t offset, uint64_t len);

#define BLK_ZERO_MAY_UNMAP (1u << 0) /* the range may be deallocated instead of written */
int blk_write_zeroes(struct blk *b, uint64_t offset, uint64_t len, unsigned flags);

/*
 * Writes one whole cluster compressed (qcow2 only; the image's compression type).
 * offset is cluster-aligned; len is the cluster size, or less for the last cluster.
 * Returns -ENOTSUP for formats without compression.
 */
int blk_write_compressed(struct blk *b, const void *buf, uint64_t len, uint64_t offset);

/*
 * The two halves of blk_write_compressed, so that a tool can compress on several threads:
 * blk_compress_cluster is thread-safe (it only reads b's settings) and returns the compressed
 * length of one cluster (len as for blk_write_compressed), -ENOSPC when compression would not
 * save space (write the cluster uncompressed instead), or -ENOTSUP for raw images.
 * blk_write_precompressed then stores that output for the cluster at offset.
 */
long blk_compress_cluster(const struct blk *b, const void *src, uint64_t len, void *dst,
			  uint64_t cap);
int blk_write_precompressed(struct blk *b, const void *cdata, uint64_t clen, uint64_t offset);

/* Block status of a range, as `qemu-img map` reports it. */
#define BLK_STATUS_DATA	      (1u << 0) /* reads return data (not known zero) */
#define BLK_STATUS_ZERO	      (1u << 1) /* reads return zeroes */
#define BLK_STATUS_ALLOCATED  (1u << 2) /* allocated in this image (not from backing) */
#define BLK_STATUS_OFFSET     (1u << 3) /* file_offset is valid (raw host offset) */
#define BLK_STATUS_COMPRESSED (1u << 4)

struct blk_status {
	uint64_t len;	       /* bytes from offset with this same status (> 0) */
	unsigned flags;	       /* BLK_STATUS_* */
	uint64_t file_offset;  /* with BLK_STATUS_OFFSET: offset in file_name */
	const char *file_name; /* the file that holds the data (for qemu-img map's "filename") */
	int depth;	       /* 0: this image; n: the n-th backing image holds it */
};
/* Status of [offset, offset+len) from offset on; st->len tells how far it holds. */
int blk_block_status(struct blk *b, uint64_t offset, uint64_t len, struct blk_status *st);

/* ---- Asynchronous I/O (virtio-blk) ---------------------------------------------- */

enum blk_aio_op {
	BLK_AIO_READ,
	BLK_AIO_WRITE,
	BLK_AIO_FLUSH,
	BLK_AIO_DISCARD,
	BLK_AIO_WRITE_ZEROES,
};

struct blk_aio_req {
	enum blk_aio_op op;
	const struct iovec *iov; /* READ/WRITE: the buffers; must stay valid until completion */
	int iovcnt;
	uint64_t offset;
	uint64_t len;	/* DISCARD/WRITE_ZEROES: bytes; READ/WRITE: ignored (sum of iov) */
	unsigned flags; /* WRITE_ZEROES: BLK_ZERO_MAY_UNMAP */
	/* Called from blk_aio_complete() in the thread that calls it. ret: 0 or -errno. */
	void (*done)(struct blk_aio_req *req, int ret);
	void *opaque;
	/* Private to the implementation. */
	uint64_t priv[4];
};

/*
 * Queues req. Returns 0 (done() will be called exactly once, later) or -errno (queue
 * full: -EAGAIN; done() is not called). The number of requests in flight is bounded by
 * blk_aio_setup().
 */
int blk_aio_setup(struct blk *b, unsigned max_in_flight);
int blk_aio_submit(struct blk *b, struct blk_aio_req *req);
/* Submits everything queued by blk_aio_submit since the last call (one syscall). */
int blk_aio_flush_submissions(struct blk *b);
/* An fd that becomes readable when completions are ready (for epoll). */
int blk_aio_event_fd(struct blk *b);
/* Runs done() for every finished request. Returns how many completed.
 * qcow2: the metadata that requests changed (new clusters' L2 entries, refcounts) is
 * written to the file from here, without fdatasync, once requests have paused for 100 ms
 * and at the latest 1 s after the first of them (the event fd wakes the caller for it), so
 * that a completed write survives a kill of the process; only a flush makes it survive a
 * power cut. */
int blk_aio_complete(struct blk *b);

/* ---- Creation and image management (cove img) ----------------------------------- */

enum blk_prealloc {
	BLK_PREALLOC_OFF = 0,
	BLK_PREALLOC_METADATA,
	BLK_PREALLOC_FALLOC,
	BLK_PREALLOC_FULL,
};
int blk_prealloc_parse(const char *name, enum blk_prealloc *out);

enum blk_compression {
	BLK_COMPRESS_DEFLATE = 0, /* qcow2 compression_type 0 (zlib) */
	BLK_COMPRESS_ZSTD = 1,
};

struct blk_create_opts {
	enum blk_format format; /* RAW or QCOW2 */
	uint64_t size; /* virtual size in bytes (may be 0 with a backing file: take its size) */
	enum blk_prealloc prealloc;
	/* qcow2 only; 0 / NULL means the default (as qemu-img's). */
	uint32_t cluster_size;	/* 512 .. 2 MiB, power of two; default 64 KiB */
	unsigned refcount_bits; /* 1, 2, 4, 8, 16, 32, 64; default 16 */
	bool compat_v2;		/* compat=0.10 (version 2) instead of 1.1 (version 3) */
	bool lazy_refcounts;
	bool extended_l2;
	enum blk_compression compression;
	const char *backing_file;
	const char *backing_fmt;
	const char *data_file; /* external data file (creation may return -ENOTSUP) */
};

/*
 * Creates a new image at path, through a temporary file renamed into place once flushed.
 * Fails with -EEXIST if path exists and !overwrite.
 */
int blk_create(const char *path, const struct blk_create_opts *opts, bool overwrite,
	       struct cove_err *err);
/*
 * Creates a new image in place at path, which must not exist (-EEXIST): no temporary file
 * and no rename; the file is removed again on failure. It is NOT synced: the caller syncs
 * it (fsync) before renaming it into place, or skips that on purpose (cache=unsafe). For
 * callers that keep their own temporary name and rename it into place themselves (cove img
 * does, so that an interrupt can remove it). A relative backing file is resolved beside
 * path.
 */
int blk_create_new(const char *path, const struct blk_create_opts *opts, struct cove_err *err);

struct blk_snapshot_info {
	char id[32];
	char name[256];
	uint64_t vm_state_size;
	uint64_t disk_size; /* virtual size at the time of the snapshot */
	uint64_t date_sec;
	uint32_t date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t icount; /* (uint64_t)-1 when absent */
};

struct blk_info {
	enum blk_format format;
	uint64_t virtual_size;
	uint64_t actual_size;  /* bytes allocated on the host (st_blocks * 512) */
	uint64_t file_length;  /* length of the image file */
	uint32_t cluster_size; /* 0 for raw */
	/* qcow2 */
	unsigned version; /* 2 or 3 */
	unsigned refcount_bits;
	bool lazy_refcounts;
	bool extended_l2;
	bool corrupt;
	bool dirty;
	enum blk_compression compression;
	char backing_file[4096];
	char backing_fmt[32];
	char data_file[4096];
	unsigned nb_snapshots;
	struct blk_snapshot_info *snapshots; /* owned by the caller: free() it */
};
int blk_get_info(struct blk *b, struct blk_info *info);

struct blk_check_result {
	uint64_t corruptions;
	uint64_t leaks;
	uint64_t check_errors;
	uint64_t corruptions_fixed;
	uint64_t leaks_fixed;
	uint64_t image_end_offset;
	uint64_t total_clusters;
	uint64_t allocated_clusters;
	uint64_t fragmented_clusters;
	uint64_t compressed_clusters;
	char first_problem[256]; /* a human line describing the first problem found, or "" */
};
#define BLK_CHECK_FIX_LEAKS  (1u << 0)
#define BLK_CHECK_FIX_ERRORS (1u << 1)
/* Checks (and with fix flags, repairs) b's metadata. raw: all zero counts. */
int blk_check(struct blk *b, unsigned fix, struct blk_check_result *res, struct cove_err *err);

/* Changes the virtual size. Shrinking fails with -EBUSY unless shrink is set; with it, the
 * data past the new end is discarded (qcow2: its clusters are freed, L2 entries cleared and
 * synced before the refcounts drop, and the file is cut after the last cluster in use, as
 * qemu-img 7.2 does). qcow2 images with internal snapshots cannot be resized (-ENOTSUP, as
 * qemu-img 7.2). */
int blk_resize(struct blk *b, uint64_t new_size, bool shrink, enum blk_prealloc prealloc,
	       struct cove_err *err);

/* Rewrites the backing file name and format in the header only (rebase -u). */
int blk_set_backing(struct blk *b, const char *backing_file, const char *backing_fmt,
		    struct cove_err *err);

/* Internal snapshots (qcow2). list: *out is malloc'ed, the caller frees it. */
int blk_snapshot_list(struct blk *b, struct blk_snapshot_info **out, unsigned *count);
int blk_snapshot_create(struct blk *b, const char *name, struct cove_err *err);
int blk_snapshot_apply(struct blk *b, const char *name_or_id, struct cove_err *err);
int blk_snapshot_delete(struct blk *b, const char *name_or_id, struct cove_err *err);

/* Changes options of an existing image (qemu-img amend): compat, lazy_refcounts,
 * refcount_bits, backing. Fields equal to the current value are left alone. */
int blk_amend(struct blk *b, const struct blk_create_opts *opts, struct cove_err *err);

struct blk_measure {
	uint64_t required;	  /* bytes a new image needs for src's data */
	uint64_t fully_allocated; /* bytes with every cluster allocated */
};
/* As qemu-img measure: opts gives the target format; src (or NULL with opts->size). */
int blk_measure(const struct blk_create_opts *opts, struct blk *src, struct blk_measure *out,
		struct cove_err *err);

#endif
