/* The container's filesystem setup, run by init inside its new mount namespace. */
#ifndef COVE_OCI_ROOTFS_H
#define COVE_OCI_ROOTFS_H

#include "oci/runtime.h"

struct rootfs_ctx {
	const struct oci_config *cfg;
	const struct oci_cgroup *cg;
	const char *rootfs; /* absolute host path */
	const char *bundle;
	int rootfd; /* O_PATH of the rootfs */
	bool in_userns;
};

/* Each returns 0, or -1 with a message naming the field in msg. */
int rootfs_mounts(struct rootfs_ctx *r, char *msg, size_t len);
int rootfs_devices(const struct rootfs_ctx *r, char *msg, size_t len);
int rootfs_pivot(const struct rootfs_ctx *r, bool no_pivot, char *msg, size_t len);
/* tmpcopyup: copies directory under_fd's tree into tmpfs_fd; on failure what names the entry. */
int rootfs_copyup(int under_fd, int tmpfs_fd, char *what, size_t len);
/* After the pivot: masked and read-only paths, read-only root, shared propagation. */
int rootfs_finish(const struct rootfs_ctx *r, char *msg, size_t len);

#endif
