/* "tmpcopyup": copies the image's files under a mountpoint into the tmpfs mounted over it. */
#include "oci/rootfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* An image is hostile input: a bound on depth keeps a deep tree from exhausting the stack. */
#define COPYUP_MAX_DEPTH 64

static int copy_file(int sfd, int dfd, const char *name, const struct stat *st)
{
	/* The entry may have changed since it was looked at: never block on a FIFO put there. */
	int in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (in < 0)
		return -errno;
	struct stat now;
	if (fstat(in, &now) < 0 || !S_ISREG(now.st_mode)) {
		close(in);
		return -EINVAL;
	}
	int out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			 st->st_mode & 07777);
	if (out < 0) {
		int e = errno;
		close(in);
		return -e;
	}
	int rc = 0;
	char buf[65536];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				rc = w < 0 ? -errno : -EIO;
				break;
			}
			off += w;
		}
		if (rc)
			break;
	}
	close(in);
	close(out);
	return rc;
}

/* Copies the entries of directory sfd into dfd; on failure names the entry in what. */
static int copy_tree(int sfd, int dfd, int depth, char *what, size_t len)
{
	if (depth > COPYUP_MAX_DEPTH) {
		snprintf(what, len, "directories nested deeper than %d", COPYUP_MAX_DEPTH);
		return -ELOOP;
	}
	int lfd = dup(sfd);
	DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
	if (!d) {
		if (lfd >= 0)
			close(lfd);
		snprintf(what, len, "reading the directory");
		return -errno;
	}
	int rc = 0;
	struct dirent *e;
	while (!rc && (e = readdir(d))) {
		const char *n = e->d_name;
		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
			continue;
		struct stat st;
		if (fstatat(sfd, n, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = -errno;
			snprintf(what, len, "%s", n);
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			if (mkdirat(dfd, n, st.st_mode & 07777) < 0 && errno != EEXIST)
				rc = -errno;
			int s2 =
			    rc ? -1
			       : openat(sfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			int d2 = s2 < 0 ? -1
					: openat(dfd, n,
						 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (!rc && (s2 < 0 || d2 < 0))
				rc = -errno;
			if (!rc)
				rc = copy_tree(s2, d2, depth + 1, what, len);
			if (s2 >= 0)
				close(s2);
			if (d2 >= 0)
				close(d2);
			if (rc && !what[0])
				snprintf(what, len, "%s", n);
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t l = readlinkat(sfd, n, target, sizeof(target) - 1);
			if (l < 0)
				rc = -errno;
			else {
				target[l] = '\0';
				if (symlinkat(target, dfd, n) < 0)
					rc = -errno;
			}
		} else if (S_ISREG(st.st_mode)) {
			rc = copy_file(sfd, dfd, n, &st);
		} else if (mknodat(dfd, n, st.st_mode, st.st_rdev) < 0) {
			rc = -errno; /* device, fifo or socket node */
		}
		/* Owner and mode as in the image (mkdir and open applied the umask). */
		if (!rc && fchownat(dfd, n, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 &&
		    errno != EPERM && errno != EINVAL)
			rc = -errno;
		if (!rc && !S_ISLNK(st.st_mode) && fchmodat(dfd, n, st.st_mode & 07777, 0) < 0)
			rc = -errno;
		if (rc && !what[0])
			snprintf(what, len, "%s", n);
	}
	closedir(d);
	return rc;
}

int rootfs_copyup(int under_fd, int tmpfs_fd, char *what, size_t len)
{
	what[0] = '\0';
	return copy_tree(under_fd, tmpfs_fd, 0, what, len);
}
