/* CVE-2019-5736: run from a sealed memfd copy so a container cannot rewrite the host binary. */
#include "oci/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

extern char **environ;

int oci_ensure_cloned_binary(char **argv, struct cove_err *err)
{
	int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return cove_err_set(err, -errno, "/proc/self/exe: %s", strerror(errno));
	int seals = fcntl(self, F_GET_SEALS);
	if (seals >= 0 && (seals & SEALS) == SEALS) {
		close(self);
		return 0; /* already running from the sealed copy */
	}
	struct stat st;
	if (fstat(self, &st) < 0) {
		close(self);
		return cove_err_set(err, -errno, "/proc/self/exe: %s", strerror(errno));
	}
	int mfd = memfd_create("cove-runc", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0) {
		close(self);
		return cove_err_set(err, -errno, "memfd_create: %s", strerror(errno));
	}
	off_t off = 0;
	while (off < st.st_size) {
		ssize_t n = sendfile(mfd, self, &off, (size_t)(st.st_size - off));
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(self);
			close(mfd);
			return cove_err_set(err, -e, "copying the binary: %s", strerror(e));
		}
	}
	close(self);
	if (fcntl(mfd, F_ADD_SEALS, SEALS) < 0) {
		int e = errno;
		close(mfd);
		return cove_err_set(err, -e, "sealing the binary copy: %s", strerror(e));
	}
	fexecve(mfd, argv, environ);
	int e = errno;
	close(mfd);
	return cove_err_set(err, -e, "re-executing from the sealed copy: %s", strerror(e));
}
