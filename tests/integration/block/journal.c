/* blkcat's power-cut journal (tests only): records the block layer's writes and syncs to one file.
 *
 * blkcat is linked with -Wl,--wrap for pwrite64, pwritev64, ftruncate64, fallocate64, fsync and
 * fdatasync, so every such call in blkcat and the (static) block library comes here first. With
 * BLKCAT_JOURNAL=FILE and BLKCAT_JOURNAL_IMAGE=IMAGE set, each call that succeeds on IMAGE is
 * appended to FILE (a write with its data, a truncate, a fallocate, a sync); powercut.py then
 * rebuilds what a power cut could have left on disk. Without the variables the calls pass
 * straight through. Nothing here is part of libcove.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

ssize_t __real_pwrite64(int fd, const void *buf, size_t len, off_t off);
ssize_t __real_pwritev64(int fd, const struct iovec *iov, int iovcnt, off_t off);
int __real_ftruncate64(int fd, off_t len);
int __real_fallocate64(int fd, int mode, off_t off, off_t len);
int __real_fsync(int fd);
int __real_fdatasync(int fd);

ssize_t __wrap_pwrite64(int fd, const void *buf, size_t len, off_t off);
ssize_t __wrap_pwritev64(int fd, const struct iovec *iov, int iovcnt, off_t off);
int __wrap_ftruncate64(int fd, off_t len);
int __wrap_fallocate64(int fd, int mode, off_t off, off_t len);
int __wrap_fsync(int fd);
int __wrap_fdatasync(int fd);

/* One record; a write's data follows it. The layout is read by powercut.py. */
enum { J_WRITE = 1, J_SYNC = 2, J_TRUNCATE = 3, J_FALLOCATE = 4 };
struct jrec {
	uint32_t type;
	uint32_t mode; /* fallocate's mode */
	uint64_t off;  /* truncate: the new length */
	uint64_t len;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int jfd = -1;
static dev_t img_dev;
static ino_t img_ino;

static void setup(void)
{
	const char *jpath = getenv("BLKCAT_JOURNAL"), *img = getenv("BLKCAT_JOURNAL_IMAGE");
	struct stat st;
	if (!jpath || !img)
		return;
	if (stat(img, &st)) {
		fprintf(stderr, "blkcat journal: %s: %s\n", img, strerror(errno));
		abort();
	}
	img_dev = st.st_dev;
	img_ino = st.st_ino;
	jfd = open(jpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (jfd < 0) {
		fprintf(stderr, "blkcat journal: %s: %s\n", jpath, strerror(errno));
		abort();
	}
}

static bool tracked(int fd)
{
	pthread_once(&once, setup);
	struct stat st;
	return jfd >= 0 && fstat(fd, &st) == 0 && st.st_dev == img_dev && st.st_ino == img_ino;
}

/* A journal that cannot be written would make the test lie: stop at once. */
static void put(const void *p, size_t len)
{
	const uint8_t *b = p;
	while (len) {
		ssize_t n = write(jfd, b, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			perror("blkcat journal: write");
			abort();
		}
		b += n;
		len -= (size_t)n;
	}
}

static void record(uint32_t type, uint32_t mode, uint64_t off, uint64_t len,
		   const struct iovec *iov, int iovcnt)
{
	struct jrec r = {type, mode, off, len};
	pthread_mutex_lock(&lock);
	put(&r, sizeof(r));
	for (int i = 0; i < iovcnt; i++)
		put(iov[i].iov_base, iov[i].iov_len);
	pthread_mutex_unlock(&lock);
}

/* A partial write is recorded as far as it went: that is what reached the file. */
static void record_write(const struct iovec *iov, int iovcnt, off_t off, ssize_t done)
{
	struct iovec *part = calloc((size_t)iovcnt, sizeof(*part));
	if (!part)
		abort();
	int n = 0;
	size_t left = (size_t)done;
	for (int i = 0; i < iovcnt && left; i++) {
		size_t take = iov[i].iov_len < left ? iov[i].iov_len : left;
		part[n++] = (struct iovec){iov[i].iov_base, take};
		left -= take;
	}
	record(J_WRITE, 0, (uint64_t)off, (uint64_t)done, part, n);
	free(part);
}

ssize_t __wrap_pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t r = __real_pwrite64(fd, buf, len, off);
	if (r > 0 && tracked(fd)) {
		struct iovec v = {(void *)buf, len};
		record_write(&v, 1, off, r);
	}
	return r;
}

ssize_t __wrap_pwritev64(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	ssize_t r = __real_pwritev64(fd, iov, iovcnt, off);
	if (r > 0 && tracked(fd))
		record_write(iov, iovcnt, off, r);
	return r;
}

int __wrap_ftruncate64(int fd, off_t len)
{
	int r = __real_ftruncate64(fd, len);
	if (r == 0 && tracked(fd))
		record(J_TRUNCATE, 0, (uint64_t)len, 0, NULL, 0);
	return r;
}

int __wrap_fallocate64(int fd, int mode, off_t off, off_t len)
{
	int r = __real_fallocate64(fd, mode, off, len);
	if (r == 0 && tracked(fd))
		record(J_FALLOCATE, (uint32_t)mode, (uint64_t)off, (uint64_t)len, NULL, 0);
	return r;
}

int __wrap_fsync(int fd)
{
	int r = __real_fsync(fd);
	if (r == 0 && tracked(fd))
		record(J_SYNC, 0, 0, 0, NULL, 0);
	return r;
}

int __wrap_fdatasync(int fd)
{
	int r = __real_fdatasync(fd);
	if (r == 0 && tracked(fd))
		record(J_SYNC, 0, 0, 0, NULL, 0);
	return r;
}
