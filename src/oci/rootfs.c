/* The container's filesystem: mounts resolved inside the rootfs, devices, pivot_root, masks. */
#include "oci/rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define FAIL(...)                                \
	do {                                     \
		snprintf(msg, len, __VA_ARGS__); \
		return -1;                       \
	} while (0)

/* Opens dest inside the rootfs (symlinks cannot leave it), creating what is missing. */
static int open_in_root(int rootfd, const char *dest, bool create, bool want_dir)
{
	struct open_how how = {.flags = O_PATH | O_CLOEXEC,
			       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
	int fd = (int)syscall(SYS_openat2, rootfd, dest, &how, sizeof(how));
	if (fd >= 0 || errno != ENOENT || !create)
		return fd;
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", dest) >= (int)sizeof(buf))
		return -1;
	size_t n = strlen(buf);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	/* Walk down, creating each missing component in the directory resolved so far. */
	int cur = (int)syscall(SYS_openat2, rootfd, "/", &how, sizeof(how));
	char *save = NULL, *comp = strtok_r(buf, "/", &save);
	while (comp && cur >= 0) {
		char *next = strtok_r(NULL, "/", &save);
		int nfd = (int)syscall(SYS_openat2, cur, comp, &how, sizeof(how));
		if (nfd < 0 && errno == ENOENT) {
			if (next || want_dir) {
				if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST) {
					close(cur);
					return -1;
				}
			} else {
				/* cur is O_PATH: create the file through a real directory fd. */
				struct open_how dh = {.flags = O_DIRECTORY | O_RDONLY | O_CLOEXEC};
				int d = (int)syscall(SYS_openat2, cur, ".", &dh, sizeof(dh));
				int f = d >= 0 ? openat(d, comp,
							O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
							0644)
					       : -1;
				if (d >= 0)
					close(d);
				if (f < 0) {
					close(cur);
					return -1;
				}
				close(f);
			}
			/* Resolve relative to the rootfs again so the new entry is checked too. */
			struct open_how rh = how;
			rh.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
			nfd = (int)syscall(SYS_openat2, cur, comp, &rh, sizeof(rh));
		}
		close(cur);
		cur = nfd;
		comp = next;
	}
	return cur;
}

static void fdpath(char *buf, size_t len, int fd)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

static unsigned long locked_flags(const char *path)
{
	struct statvfs sv;
	unsigned long f = 0;
	if (statvfs(path, &sv) < 0)
		return 0;
	if (sv.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_RDONLY)
		f |= MS_RDONLY;
	return f;
}

static int remount_bind(const char *path, unsigned long flags)
{
	flags &= MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME |
		 MS_RELATIME | MS_STRICTATIME | MS_NOSYMFOLLOW;
	if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | flags, NULL) == 0)
		return 0;
	/* In a user namespace the source's flags are locked: keep them. */
	if (errno == EPERM &&
	    mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | flags | locked_flags(path), NULL) == 0)
		return 0;
	return -1;
}

static int mount_cgroup(const struct rootfs_ctx *r, const struct oci_mount *m, int tfd, char *msg,
			size_t len)
{
	char tp[64];
	fdpath(tp, sizeof(tp), tfd);
	unsigned long fl = m->flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME);
	if (r->cg->mode == OCI_CG_V2) {
		if (mount("cgroup2", tp, "cgroup2", fl | (m->flags & MS_RDONLY), NULL) < 0)
			FAIL("mounts: cgroup2 on %s: %s", m->destination, strerror(errno));
		return 0;
	}
	if (mount("tmpfs", tp, "tmpfs", fl, "mode=755") < 0)
		FAIL("mounts: tmpfs for cgroups on %s: %s", m->destination, strerror(errno));
	static const char *const ctrls[] = {
	    "cpu",   "cpuacct", "cpuset",  "memory",   "devices",    "freezer",
	    "blkio", "pids",	"net_cls", "net_prio", "perf_event", "hugetlb",
	    "rdma",  "misc",	"systemd", "unified",  NULL};
	char dest[PATH_MAX];
	for (const char *const *c = ctrls; *c; c++) {
		char host[PATH_MAX];
		struct stat st;
		snprintf(host, sizeof(host), "/sys/fs/cgroup/%s", *c);
		if (lstat(host, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (strcmp(*c, "unified") == 0 && r->cg->mode != OCI_CG_HYBRID)
			continue;
		oci_cgroup_dir(r->cg, strcmp(*c, "unified") == 0 ? NULL : *c, host, sizeof(host));
		snprintf(dest, sizeof(dest), "%s/%s", m->destination, *c);
		int fd = open_in_root(r->rootfd, dest, true, true);
		if (fd < 0)
			FAIL("mounts: %s: %s", dest, strerror(errno));
		char dp[64];
		fdpath(dp, sizeof(dp), fd);
		int rc = mount(host, dp, NULL, MS_BIND | MS_REC, NULL);
		close(fd);
		if (rc < 0)
			continue; /* a controller the container's group does not have */
	}
	/* One call makes the tmpfs and every bind below it read-only (and nosuid...). */
	int fd = open_in_root(r->rootfd, m->destination, false, true);
	if (fd < 0)
		FAIL("mounts: %s: %s", m->destination, strerror(errno));
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
					      MOUNT_ATTR_NOEXEC |
					      ((m->flags & MS_RDONLY) ? MOUNT_ATTR_RDONLY : 0)};
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) <
	    0) {
		close(fd);
		FAIL("mounts: %s read-only: %s", m->destination, strerror(errno));
	}
	close(fd);
	return 0;
}

static int do_mount(const struct rootfs_ctx *r, const struct oci_mount *m, char *msg, size_t len)
{
	char src[PATH_MAX], tp[64];
	const char *source = m->source;
	bool dir = true;
	if (m->bind) {
		if (source[0] != '/')
			snprintf(src, sizeof(src), "%s/%s", r->bundle, source);
		else
			snprintf(src, sizeof(src), "%s", source);
		source = src;
		struct stat st;
		if (stat(source, &st) < 0)
			FAIL("mounts: bind source %s: %s", source, strerror(errno));
		dir = S_ISDIR(st.st_mode);
	}
	int tfd = open_in_root(r->rootfd, m->destination, true, dir);
	if (tfd < 0)
		FAIL("mounts: destination %s: %s", m->destination, strerror(errno));
	fdpath(tp, sizeof(tp), tfd);
	int rc = 0;
	if (!m->bind && m->type &&
	    (strcmp(m->type, "cgroup") == 0 || !strcmp(m->type, "cgroup2"))) {
		rc = mount_cgroup(r, m, tfd, msg, len);
		close(tfd);
		return rc;
	}
	/* What the image has under the mountpoint, reachable through this fd once covered. */
	int under = -1;
	if (m->tmpcopyup) {
		under = open(tp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (under < 0) {
			close(tfd);
			FAIL("mounts: tmpcopyup on %s: %s", m->destination, strerror(errno));
		}
	}
	if (m->bind) {
		rc = mount(source, tp, NULL, MS_BIND | (m->flags & MS_REC), NULL);
	} else {
		/* tmpcopyup fills the new tmpfs first: ro comes after the copy. */
		unsigned long later = m->tmpcopyup ? MS_RDONLY : 0;
		rc = mount(source, tp, m->type, m->flags & ~(MS_REC | MS_REMOUNT | later), m->data);
		if (rc < 0 && errno == EPERM && strcmp(m->type, "sysfs") == 0)
			rc = mount("/sys", tp, NULL, MS_BIND | MS_REC, NULL);
	}
	int e = errno;
	close(tfd);
	if (rc < 0) {
		if (under >= 0)
			close(under);
		FAIL("mounts: mounting %s on %s (%s): %s", m->source, m->destination,
		     m->type ? m->type : "bind", strerror(e));
	}
	tfd = open_in_root(r->rootfd, m->destination, false, dir);
	if (tfd < 0) {
		e = errno;
		if (under >= 0)
			close(under);
		FAIL("mounts: reopening %s: %s", m->destination, strerror(e));
	}
	fdpath(tp, sizeof(tp), tfd);
	if (under >= 0) {
		char what[NAME_MAX + 64];
		int top = open(tp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int cr = top < 0 ? -errno : rootfs_copyup(under, top, what, sizeof(what));
		if (top < 0)
			snprintf(what, sizeof(what), "the new tmpfs");
		if (top >= 0)
			close(top);
		close(under);
		if (cr < 0) {
			close(tfd);
			FAIL("mounts: tmpcopyup on %s: %s: %s", m->destination, what,
			     strerror(-cr));
		}
		struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
		if ((m->flags & MS_RDONLY) &&
		    syscall(SYS_mount_setattr, tfd, "", AT_EMPTY_PATH, &ro, sizeof(ro)) < 0) {
			e = errno;
			close(tfd);
			FAIL("mounts: making %s read-only after tmpcopyup: %s", m->destination,
			     strerror(e));
		}
	}
	if (m->bind && (m->flags & ~(MS_REC | MS_BIND)) && remount_bind(tp, m->flags) < 0) {
		close(tfd);
		FAIL("mounts: remounting %s: %s", m->destination, strerror(errno));
	}
	if (m->rec_set || m->rec_clr) {
		/* The recursive options reach every mount below this one too (rbind submounts). */
		struct mount_attr attr = {.attr_set = m->rec_set, .attr_clr = m->rec_clr};
		if (syscall(SYS_mount_setattr, tfd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
			    sizeof(attr)) < 0) {
			e = errno;
			close(tfd);
			FAIL("mounts: recursive options (rro, rnosuid...) on %s: %s",
			     m->destination, strerror(e));
		}
	}
	if (m->propagation && mount(NULL, tp, NULL, m->propagation, NULL) < 0) {
		close(tfd);
		FAIL("mounts: propagation of %s: %s", m->destination, strerror(errno));
	}
	close(tfd);
	return 0;
}

static int make_device(const struct rootfs_ctx *r, const char *path, char type, int64_t maj,
		       int64_t min, uint32_t mode, uid_t uid, gid_t gid, char *msg, size_t len)
{
	char parent[PATH_MAX], base[NAME_MAX + 1];
	snprintf(parent, sizeof(parent), "%s", path);
	char *slash = strrchr(parent, '/');
	if (!slash || !slash[1])
		FAIL("linux.devices: bad path %s", path);
	snprintf(base, sizeof(base), "%s", slash + 1);
	if (slash == parent)
		strcpy(parent, "/");
	else
		*slash = '\0';
	int pfd = open_in_root(r->rootfd, parent, true, true);
	if (pfd < 0)
		FAIL("linux.devices: %s: %s", parent, strerror(errno));
	char pp[64];
	fdpath(pp, sizeof(pp), pfd);
	int dfd = open(pp, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	close(pfd);
	if (dfd < 0)
		FAIL("linux.devices: %s: %s", parent, strerror(errno));
	mode_t fmt = type == 'b' ? S_IFBLK : type == 'p' ? S_IFIFO : S_IFCHR;
	int rc = 0;
	if (r->in_userns && type != 'p') {
		/* Device nodes cannot be made in a user namespace: bind the host's. */
		char host[PATH_MAX];
		snprintf(host, sizeof(host), "/dev/%s", base);
		int f = openat(dfd, base, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (f >= 0) {
			char fp[64];
			fdpath(fp, sizeof(fp), f);
			rc = mount(path[0] ? host : host, fp, NULL, MS_BIND, NULL);
			close(f);
		} else {
			rc = -1;
		}
	} else {
		unlinkat(dfd, base, 0);
		rc =
		    mknodat(dfd, base, fmt | (mode & 07777), makedev((unsigned)maj, (unsigned)min));
		if (rc == 0) {
			fchmodat(dfd, base, mode & 07777, 0);
			fchownat(dfd, base, uid, gid, AT_SYMLINK_NOFOLLOW);
		}
	}
	int e = errno;
	close(dfd);
	if (rc < 0)
		FAIL("linux.devices: creating %s: %s", path, strerror(e));
	return 0;
}

int rootfs_devices(const struct rootfs_ctx *r, char *msg, size_t len)
{
	static const struct {
		const char *path;
		int maj, min;
	} dflt[] = {{"/dev/null", 1, 3},   {"/dev/zero", 1, 5},	   {"/dev/full", 1, 7},
		    {"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0}};
	const struct oci_config *c = r->cfg;
	for (size_t i = 0; i < sizeof(dflt) / sizeof(dflt[0]); i++) {
		bool overridden = false;
		for (size_t k = 0; k < c->n_devices; k++)
			if (strcmp(c->devices[k].path, dflt[i].path) == 0)
				overridden = true;
		if (!overridden && make_device(r, dflt[i].path, 'c', dflt[i].maj, dflt[i].min, 0666,
					       0, 0, msg, len))
			return -1;
	}
	for (size_t k = 0; k < c->n_devices; k++) {
		const struct oci_device *d = &c->devices[k];
		if (make_device(r, d->path, d->type == 'u' ? 'c' : d->type, d->major, d->minor,
				d->has_mode ? d->mode : 0666, d->has_uid ? d->uid : 0,
				d->has_gid ? d->gid : 0, msg, len))
			return -1;
	}
	static const char *const links[][2] = {{"/proc/self/fd", "/dev/fd"},
					       {"/proc/self/fd/0", "/dev/stdin"},
					       {"/proc/self/fd/1", "/dev/stdout"},
					       {"/proc/self/fd/2", "/dev/stderr"},
					       {"pts/ptmx", "/dev/ptmx"}};
	int dfd = open_in_root(r->rootfd, "/dev", true, true);
	if (dfd < 0)
		FAIL("/dev: %s", strerror(errno));
	char dp[64];
	fdpath(dp, sizeof(dp), dfd);
	int d = open(dp, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	close(dfd);
	if (d < 0)
		FAIL("/dev: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		if (i == 4)
			unlinkat(d, "ptmx", 0);
		if (symlinkat(links[i][0], d, links[i][1] + 5) < 0 && errno != EEXIST) {
			int e = errno;
			close(d);
			FAIL("/dev: symlink %s: %s", links[i][1], strerror(e));
		}
	}
	close(d);
	return 0;
}

int rootfs_mounts(struct rootfs_ctx *r, char *msg, size_t len)
{
	const struct oci_config *c = r->cfg;
	unsigned long prop = c->rootfs_propagation ? c->rootfs_propagation : MS_SLAVE | MS_REC;
	/* pivot_root refuses shared mounts: share again only after it. */
	unsigned long first = (prop & MS_SHARED) ? MS_SLAVE | MS_REC : prop;
	if (mount(NULL, "/", NULL, first, NULL) < 0)
		FAIL("rootfsPropagation: %s", strerror(errno));
	if (mount(r->rootfs, r->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		FAIL("root.path: bind mounting %s: %s", r->rootfs, strerror(errno));
	r->rootfd = open(r->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (r->rootfd < 0)
		FAIL("root.path: %s: %s", r->rootfs, strerror(errno));
	for (size_t i = 0; i < c->n_mounts; i++) {
		if (do_mount(r, &c->mounts[i], msg, len))
			return -1;
	}
	bool dev_mounted = false;
	for (size_t i = 0; i < c->n_mounts; i++)
		if (strcmp(c->mounts[i].destination, "/dev") == 0 && !c->mounts[i].bind)
			dev_mounted = true;
	if (dev_mounted && rootfs_devices(r, msg, len))
		return -1;
	return 0;
}

int rootfs_pivot(const struct rootfs_ctx *r, bool no_pivot, char *msg, size_t len)
{
	if (no_pivot) {
		if (chdir(r->rootfs) < 0 || mount(r->rootfs, "/", NULL, MS_MOVE, NULL) < 0 ||
		    chroot(".") < 0 || chdir("/") < 0)
			FAIL("--no-pivot: moving the rootfs to /: %s", strerror(errno));
		return 0;
	}
	int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	int newroot = open(r->rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (oldroot < 0 || newroot < 0)
		FAIL("pivot_root: %s", strerror(errno));
	int rc = fchdir(newroot);
	if (rc == 0)
		rc = (int)syscall(SYS_pivot_root, ".", ".");
	if (rc == 0)
		rc = fchdir(oldroot);
	/* The old root sits on top: make it slave so the unmount does not propagate out. */
	if (rc == 0)
		rc = mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL);
	if (rc == 0)
		rc = umount2(".", MNT_DETACH);
	if (rc == 0)
		rc = chdir("/");
	int e = errno;
	close(oldroot);
	close(newroot);
	if (rc < 0)
		FAIL("pivot_root: %s", strerror(e));
	return 0;
}

int rootfs_finish(const struct rootfs_ctx *r, char *msg, size_t len)
{
	const struct oci_config *c = r->cfg;
	for (size_t i = 0; i < c->n_masked; i++) {
		const char *p = c->masked_paths[i];
		struct stat st;
		if (lstat(p, &st) < 0)
			continue;
		int rc = S_ISDIR(st.st_mode)
			     ? mount("tmpfs", p, "tmpfs", MS_RDONLY, "size=0,mode=0")
			     : mount("/dev/null", p, NULL, MS_BIND, NULL);
		if (rc < 0 && errno != ENOENT)
			FAIL("linux.maskedPaths: %s: %s", p, strerror(errno));
	}
	for (size_t i = 0; i < c->n_readonly; i++) {
		const char *p = c->readonly_paths[i];
		if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue;
			FAIL("linux.readonlyPaths: %s: %s", p, strerror(errno));
		}
		if (remount_bind(p, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC) < 0)
			FAIL("linux.readonlyPaths: %s: %s", p, strerror(errno));
	}
	if (c->root_readonly && remount_bind("/", MS_RDONLY) < 0)
		FAIL("root.readonly: %s", strerror(errno));
	unsigned long prop = c->rootfs_propagation;
	if ((prop & MS_SHARED) && mount(NULL, "/", NULL, prop, NULL) < 0)
		FAIL("linux.rootfsPropagation: %s", strerror(errno));
	return 0;
}
