/* Host file I/O for the block layer: full reads and writes, O_DIRECT bounce buffers, iovecs. */
#include "block/blk_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int file_open_stat(const char *path, int flags, struct stat *st)
{
	int fd = open(path, flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	int fl = fcntl(fd, F_GETFL);
	if (fstat(fd, st) || fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK)) {
		int ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

static bool aligned(const void *p, uint64_t len, uint64_t off)
{
	return ((uintptr_t)p % BLK_DIRECT_ALIGN) == 0 && len % BLK_DIRECT_ALIGN == 0 &&
	       off % BLK_DIRECT_ALIGN == 0;
}

static int raw_read_full(int fd, void *buf, uint64_t len, uint64_t off)
{
	uint8_t *p = buf;
	while (len) {
		size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t n = pread(fd, p, chunk, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			memset(p, 0, len);
			return 0;
		}
		p += n;
		len -= (uint64_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int raw_write_full(int fd, const void *buf, uint64_t len, uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t n = pwrite(fd, p, chunk, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (uint64_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* O_DIRECT with unaligned arguments: go through an aligned bounce buffer covering the range. */
static int bounce(const struct blk_file *f, void *rbuf, const void *wbuf, uint64_t len,
		  uint64_t off)
{
	uint64_t start = off & ~(uint64_t)(BLK_DIRECT_ALIGN - 1);
	uint64_t end = (off + len + BLK_DIRECT_ALIGN - 1) & ~(uint64_t)(BLK_DIRECT_ALIGN - 1);
	uint64_t blen = end - start;
	if (blen > (1ull << 31))
		return -EINVAL;
	void *tmp;
	if (posix_memalign(&tmp, BLK_DIRECT_ALIGN, blen))
		return -ENOMEM;
	int ret = 0;
	if (rbuf || start != off || end != off + len)
		ret = raw_read_full(f->fd, tmp, blen, start);
	if (!ret && rbuf)
		memcpy(rbuf, (uint8_t *)tmp + (off - start), len);
	if (!ret && wbuf) {
		memcpy((uint8_t *)tmp + (off - start), wbuf, len);
		/* Never extend the file past what the caller wrote by more than alignment. */
		ret = raw_write_full(f->fd, tmp, blen, start);
	}
	free(tmp);
	return ret;
}

int file_pread(const struct blk_file *f, void *buf, uint64_t len, uint64_t off)
{
	if (off > INT64_MAX || len > INT64_MAX - off)
		return -EINVAL;
	if (f->direct && !aligned(buf, len, off))
		return bounce(f, buf, NULL, len, off);
	return raw_read_full(f->fd, buf, len, off);
}

static void note_write(const struct blk_file *f, uint64_t end)
{
	if (f->wend && end > *f->wend)
		*f->wend = end;
}

int file_pwrite(const struct blk_file *f, const void *buf, uint64_t len, uint64_t off)
{
	if (off > INT64_MAX || len > INT64_MAX - off)
		return -EINVAL;
	note_write(f, off + len);
	if (f->direct && !aligned(buf, len, off))
		return bounce(f, NULL, buf, len, off);
	return raw_write_full(f->fd, buf, len, off);
}

static bool iov_aligned(const struct iovec *iov, int iovcnt, uint64_t off)
{
	if (off % BLK_DIRECT_ALIGN)
		return false;
	for (int i = 0; i < iovcnt; i++)
		if (!aligned(iov[i].iov_base, iov[i].iov_len, 0))
			return false;
	return true;
}

static int vec_io(const struct blk_file *f, const struct iovec *iov, int iovcnt, uint64_t off,
		  bool write)
{
	uint64_t total = iov_total(iov, iovcnt);
	if (off > INT64_MAX || total > INT64_MAX - off)
		return -EINVAL;
	if (write)
		note_write(f, off + total);
	if (f->direct && !iov_aligned(iov, iovcnt, off)) {
		/* Gather into one bounce buffer. */
		void *tmp;
		if (total > (1ull << 31))
			return -EINVAL;
		if (posix_memalign(&tmp, BLK_DIRECT_ALIGN, total ? total : 1))
			return -ENOMEM;
		int ret;
		if (write) {
			iov_to_buf(iov, iovcnt, 0, tmp, total);
			ret = bounce(f, NULL, tmp, total, off);
		} else {
			ret = bounce(f, tmp, NULL, total, off);
			if (!ret)
				iov_from_buf(iov, iovcnt, 0, tmp, total);
		}
		free(tmp);
		return ret;
	}
	struct iovec local[BLK_IOV_BATCH];
	uint64_t done = 0;
	while (done < total) {
		uint64_t got;
		int n = iov_slice(iov, iovcnt, done, total - done, local, BLK_IOV_BATCH, &got);
		ssize_t r = write ? pwritev(f->fd, local, n, (off_t)(off + done))
				  : preadv(f->fd, local, n, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0) {
			if (write)
				return -EIO;
			iov_memset(iov, iovcnt, done, 0, total - done);
			return 0;
		}
		done += (uint64_t)r;
	}
	return 0;
}

int file_preadv(const struct blk_file *f, const struct iovec *iov, int iovcnt, uint64_t off)
{
	return vec_io(f, iov, iovcnt, off, false);
}

int file_pwritev(const struct blk_file *f, const struct iovec *iov, int iovcnt, uint64_t off)
{
	return vec_io(f, iov, iovcnt, off, true);
}

int file_sync(const struct blk_file *f)
{
	if (f->nosync)
		return 0;
	return fdatasync(f->fd) ? -errno : 0;
}

int file_size(const struct blk_file *f, uint64_t *out)
{
	struct stat st;
	if (fstat(f->fd, &st))
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(f->fd, 0, SEEK_END);
		if (end < 0)
			return -errno;
		*out = (uint64_t)end;
		return 0;
	}
	*out = (uint64_t)st.st_size;
	return 0;
}

int file_truncate(const struct blk_file *f, uint64_t size)
{
	if (size > INT64_MAX)
		return -EFBIG;
	return ftruncate(f->fd, (off_t)size) ? -errno : 0;
}

int file_zero(const struct blk_file *f, uint64_t off, uint64_t len, bool punch)
{
	if (!len)
		return 0;
	if (off > INT64_MAX || len > INT64_MAX - off)
		return -EINVAL;
	note_write(f, off + len);
	int mode = punch ? (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) : FALLOC_FL_ZERO_RANGE;
	if (!f->direct || (off % BLK_DIRECT_ALIGN == 0 && len % BLK_DIRECT_ALIGN == 0)) {
		if (fallocate(f->fd, mode, (off_t)off, (off_t)len) == 0)
			return 0;
		if (punch && errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL)
			return -errno;
		if (!punch && fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					(off_t)off, (off_t)len) == 0) {
			/* Keep the range allocated-as-zero only where the file already ends later.
			 */
			return 0;
		}
	}
	/* Write zeroes in chunks. */
	uint64_t chunk = min_u64(len, 1u << 20);
	void *z;
	if (posix_memalign(&z, BLK_DIRECT_ALIGN, chunk))
		return -ENOMEM;
	memset(z, 0, chunk);
	int ret = 0;
	for (uint64_t done = 0; done < len && !ret; done += chunk) {
		uint64_t n = min_u64(chunk, len - done);
		ret = file_pwrite(f, z, n, off + done);
	}
	free(z);
	return ret;
}

uint64_t iov_total(const struct iovec *iov, int iovcnt)
{
	uint64_t t = 0;
	for (int i = 0; i < iovcnt; i++)
		t += iov[i].iov_len;
	return t;
}

int iov_slice(const struct iovec *iov, int iovcnt, uint64_t off, uint64_t len, struct iovec *out,
	      int max, uint64_t *got)
{
	int n = 0;
	uint64_t covered = 0;
	for (int i = 0; i < iovcnt && covered < len && n < max; i++) {
		uint64_t l = iov[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		uint64_t take = min_u64(l - off, len - covered);
		out[n].iov_base = (uint8_t *)iov[i].iov_base + off;
		out[n].iov_len = take;
		n++;
		covered += take;
		off = 0;
	}
	if (got)
		*got = covered;
	return n;
}

void iov_memset(const struct iovec *iov, int iovcnt, uint64_t off, int c, uint64_t len)
{
	for (int i = 0; i < iovcnt && len; i++) {
		uint64_t l = iov[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		uint64_t take = min_u64(l - off, len);
		memset((uint8_t *)iov[i].iov_base + off, c, take);
		len -= take;
		off = 0;
	}
}

void iov_to_buf(const struct iovec *iov, int iovcnt, uint64_t off, void *buf, uint64_t len)
{
	uint8_t *p = buf;
	for (int i = 0; i < iovcnt && len; i++) {
		uint64_t l = iov[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		uint64_t take = min_u64(l - off, len);
		memcpy(p, (uint8_t *)iov[i].iov_base + off, take);
		p += take;
		len -= take;
		off = 0;
	}
}

void iov_from_buf(const struct iovec *iov, int iovcnt, uint64_t off, const void *buf, uint64_t len)
{
	const uint8_t *p = buf;
	for (int i = 0; i < iovcnt && len; i++) {
		uint64_t l = iov[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		uint64_t take = min_u64(l - off, len);
		memcpy((uint8_t *)iov[i].iov_base + off, p, take);
		p += take;
		len -= take;
		off = 0;
	}
}
