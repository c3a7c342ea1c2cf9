/* Internals of the block layer shared by its files: struct blk, file I/O helpers. */
#ifndef COVE_BLOCK_INT_H
#define COVE_BLOCK_INT_H

#include <cove/block.h>

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define BLK_MAX_CHAIN	 64 /* backing chain depth cap */
#define BLK_DIRECT_ALIGN 4096
#define BLK_IOV_BATCH	 512

struct qcow2;
struct blk_aio;

/* A host file: fd plus whether it is opened O_DIRECT (then I/O goes through bounce buffers
 * when the caller's buffers or offsets are not aligned). */
struct blk_file {
	int fd;
	bool direct;
	uint64_t *wend; /* if set: raised to the end of every write (what was ever written) */
	bool nosync;	/* cache=unsafe */
};

struct blk {
	enum blk_format fmt;
	char *filename;
	struct blk_file file;
	bool readonly;
	uint64_t size;
	struct blk *backing;
	struct qcow2 *q;
	struct blk_aio *aio;
	dev_t dev;
	ino_t ino;
};

struct stat;
/* file.c: opens path with flags (plus O_CLOEXEC, O_NOCTTY) and fills *st, never blocking in
 * open: a FIFO where an image or data file should be would wait for a writer. O_NONBLOCK is
 * cleared again before returning, so I/O on the fd blocks as usual. fd or -errno. */
int file_open_stat(const char *path, int flags, struct stat *st);
/* file.c: full reads (bytes past EOF read as zero), full writes, sync. 0 or -errno. */
int file_pread(const struct blk_file *f, void *buf, uint64_t len, uint64_t off);
int file_pwrite(const struct blk_file *f, const void *buf, uint64_t len, uint64_t off);
int file_preadv(const struct blk_file *f, const struct iovec *iov, int iovcnt, uint64_t off);
int file_pwritev(const struct blk_file *f, const struct iovec *iov, int iovcnt, uint64_t off);
int file_sync(const struct blk_file *f);
int file_size(const struct blk_file *f, uint64_t *out);
int file_truncate(const struct blk_file *f, uint64_t size);
/* Deallocates (punch) or zeroes a range; falls back to writing zeroes. */
int file_zero(const struct blk_file *f, uint64_t off, uint64_t len, bool punch);

/* iov helpers */
uint64_t iov_total(const struct iovec *iov, int iovcnt);
/* Fills out[] with the part [off, off+len) of iov; returns the count (<= max), and sets
 * *got to the bytes covered (may be less than len when max is reached). */
int iov_slice(const struct iovec *iov, int iovcnt, uint64_t off, uint64_t len, struct iovec *out,
	      int max, uint64_t *got);
void iov_memset(const struct iovec *iov, int iovcnt, uint64_t off, int c, uint64_t len);
void iov_to_buf(const struct iovec *iov, int iovcnt, uint64_t off, void *buf, uint64_t len);
void iov_from_buf(const struct iovec *iov, int iovcnt, uint64_t off, const void *buf, uint64_t len);

/* raw.c */
int raw_open(struct blk *b, struct cove_err *err);
int raw_preadv(struct blk *b, const struct iovec *iov, int iovcnt, uint64_t off, uint64_t len);
int raw_pwritev(struct blk *b, const struct iovec *iov, int iovcnt, uint64_t off, uint64_t len);
int raw_zero(struct blk *b, uint64_t off, uint64_t len, bool unmap);
int raw_block_status(struct blk *b, uint64_t off, uint64_t len, struct blk_status *st);

/* The images opened so far above a backing file, for loop detection. */
struct blk_chain {
	dev_t dev;
	ino_t ino;
	const struct blk_chain *up;
};
/* Opens an image; depth counts the chain so far, for the cap. */
int blk_open_depth(const char *path, const struct blk_open_opts *opts, int depth,
		   const struct blk_chain *chain, struct blk **out, struct cove_err *err);
/* Resolves a backing file name relative to the image's directory. Caller frees. */
char *blk_resolve_relative(const char *image, const char *name);

/* aio.c */
void blk_aio_free(struct blk *b);

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}
static inline uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

#endif
