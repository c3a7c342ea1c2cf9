/* Jailer-style confinement of a VMM: user, mount namespace with a minimal root, no caps. */
#include "daemon/confine.h"
#include "util/path.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int confine_add(struct confine_spec *c, const char *path, bool rw)
{
	if (!path || path[0] != '/')
		return -EINVAL;
	/* The path is made under the jail's root as root (mkdir, open O_CREAT): a ".." (a
	 * backing file's name comes from an image's contents) would climb out of it. */
	char clean[4096];
	int r = path_absolute(path, "/", clean, sizeof(clean));
	if (r)
		return r;
	if (c->nbinds == CONFINE_MAX_BINDS)
		return -E2BIG;
	c->bind_rw[c->nbinds] = rw;
	c->binds[c->nbinds++] = path;
	return 0;
}

static int fail(const char *what, const char *path)
{
	int e = errno;
	dprintf(2, "coved: confining the VMM: %s %s: %s\n", what, path ? path : "", strerror(e));
	return -e;
}

/* mkdir -p of dir (inside the new root). */
static int mkdirs(const char *dir)
{
	char p[4400];
	size_t n = strlen(dir);
	if (n >= sizeof(p))
		return -ENAMETOOLONG;
	memcpy(p, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] == '/' || p[i] == '\0') {
			char c = p[i];
			p[i] = '\0';
			if (mkdir(p, 0755) != 0 && errno != EEXIST)
				return -errno;
			p[i] = c;
		}
	}
	return 0;
}

/* Binds host path src at root+src: a directory or a file (an empty file as the target). */
static int bind_at(const char *root, const char *src, bool rw)
{
	char dst[4400];
	if (snprintf(dst, sizeof(dst), "%s%s", root, src) >= (int)sizeof(dst))
		return -ENAMETOOLONG;
	struct stat st;
	if (stat(src, &st) != 0)
		return fail("stat", src);
	if (S_ISDIR(st.st_mode)) {
		if (mkdirs(dst))
			return fail("mkdir", dst);
	} else {
		char parent[4400];
		memcpy(parent, dst, strlen(dst) + 1);
		char *slash = strrchr(parent, '/');
		if (slash && slash != parent) {
			*slash = '\0';
			if (mkdirs(parent))
				return fail("mkdir", parent);
		}
		int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return fail("create", dst);
		close(fd);
	}
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) != 0)
		return fail("bind", src);
	if (!rw && mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_REC,
			 NULL) != 0)
		return fail("read-only remount", dst);
	return 0;
}

/* A device node in the new /dev: mknod, or a bind of the host's node where mknod is not
 * allowed (containers). */
static int dev_node(const char *root, const char *name, unsigned maj, unsigned min, uid_t uid,
		    gid_t gid)
{
	char dst[4400], src[64];
	snprintf(dst, sizeof(dst), "%s/dev/%s", root, name);
	snprintf(src, sizeof(src), "/dev/%s", name);
	if (mknod(dst, S_IFCHR | 0600, makedev(maj, min)) == 0)
		return chown(dst, uid, gid) == 0 ? 0 : fail("chown", dst);
	if (access(src, F_OK) != 0)
		return 0; /* the host has none either */
	/* A bound node is the host's own: its owner and mode stay as the host set them, so
	 * the VMM's user needs access there (for /dev/kvm: the kvm group). */
	return bind_at(root, src, true);
}

int confine_build_filter(struct confine_spec *c)
{
	static const char *const deny[] = {
	    "mount",
	    "umount2",
	    "pivot_root",
	    "chroot",
	    "ptrace",
	    "process_vm_readv",
	    "process_vm_writev",
	    "kexec_load",
	    "kexec_file_load",
	    "init_module",
	    "finit_module",
	    "delete_module",
	    "reboot",
	    "swapon",
	    "swapoff",
	    "bpf",
	    "unshare",
	    "setns",
	    "keyctl",
	    "add_key",
	    "request_key",
	    "perf_event_open",
	    "acct",
	    "settimeofday",
	    "clock_settime",
	    "open_by_handle_at",
	    "name_to_handle_at",
	    "iopl",
	    "ioperm",
	    "quotactl",
	    "kcmp",
	    "fsopen",
	    "fsmount",
	    "move_mount",
	    "open_tree",
	    "personality",
	    "syslog",
	    "vhangup",
	    "sethostname",
	    "setdomainname",
	};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; !rc && i < sizeof(deny) / sizeof(deny[0]); i++) {
		int nr = seccomp_syscall_resolve_name(deny[i]);
		if (nr != __NR_SCMP_ERROR)
			rc = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, nr, 0);
	}
	/* Export the BPF through a memfd: the child installs it with one prctl. */
	int fd = rc ? -1 : memfd_create("cove-seccomp", MFD_CLOEXEC);
	if (!rc && fd < 0)
		rc = -errno;
	if (!rc)
		rc = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	if (rc) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	off_t len = lseek(fd, 0, SEEK_END);
	if (len <= 0 || len % (off_t)sizeof(struct sock_filter) ||
	    len / (off_t)sizeof(struct sock_filter) > 4096) {
		close(fd);
		return -EIO;
	}
	c->filter = malloc((size_t)len);
	if (!c->filter || pread(fd, c->filter, (size_t)len, 0) != len) {
		free(c->filter);
		c->filter = NULL;
		close(fd);
		return -EIO;
	}
	close(fd);
	c->filter_len = (unsigned short)(len / (off_t)sizeof(struct sock_filter));
	return 0;
}

void confine_free_filter(struct confine_spec *c)
{
	free(c->filter);
	c->filter = NULL;
}

int confine_enter(const struct confine_spec *c)
{
	const char *root = c->root;
	if (unshare(CLONE_NEWNS) != 0)
		return fail("unshare", "CLONE_NEWNS");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		return fail("make / private", NULL);
	if (mount("cove-root", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0755") != 0)
		return fail("tmpfs", root);
	int rc = bind_at(root, "/usr", false);
	if (rc)
		return rc;
	static const char *const links[][2] = {
	    {"usr/bin", "bin"}, {"usr/sbin", "sbin"}, {"usr/lib", "lib"}, {"usr/lib64", "lib64"}};
	char p[4400];
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/%s", root, links[i][1]);
		if (symlink(links[i][0], p) != 0)
			return fail("symlink", p);
	}
	for (int i = 0; i < c->nbinds; i++)
		if ((rc = bind_at(root, c->binds[i], c->bind_rw[i])))
			return rc;
	/* /dev: a small tmpfs with only what a VMM needs. */
	snprintf(p, sizeof(p), "%s/dev", root);
	if (mkdir(p, 0755) != 0 || mount("cove-dev", p, "tmpfs", MS_NOSUID, "size=64k,mode=0755"))
		return fail("mount /dev", p);
	if ((rc = dev_node(root, "null", 1, 3, 0, 0)) ||
	    (rc = dev_node(root, "zero", 1, 5, 0, 0)) ||
	    (rc = dev_node(root, "urandom", 1, 9, 0, 0)) ||
	    (rc = dev_node(root, "kvm", 10, 232, c->uid, c->gid)))
		return rc;
	snprintf(p, sizeof(p), "%s/dev/null", root);
	chmod(p, 0666);
	snprintf(p, sizeof(p), "%s/dev/zero", root);
	chmod(p, 0666);
	snprintf(p, sizeof(p), "%s/dev/urandom", root);
	chmod(p, 0666);
	if (c->tun) {
		snprintf(p, sizeof(p), "%s/dev/net", root);
		mkdir(p, 0755);
		if ((rc = dev_node(root, "net/tun", 10, 200, c->uid, c->gid)))
			return rc;
	}
	/* /proc of this PID namespace (a fresh mount where allowed). In its own PID
	 * namespace the VMM gets that or nothing: the host's would show every process. */
	snprintf(p, sizeof(p), "%s/proc", root);
	mkdir(p, 0555);
	if (mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) {
		if (c->pid_ns)
			dprintf(2, "coved: confining the VMM: no /proc (mount: %s)\n",
				strerror(errno));
		else if ((rc = bind_at(root, "/proc", false)))
			return rc;
	}
	snprintf(p, sizeof(p), "%s/tmp", root);
	mkdir(p, 01777);
	chmod(p, 01777);
	/* Switch roots and forget the old one. */
	snprintf(p, sizeof(p), "%s/.old", root);
	if (mkdir(p, 0700) != 0)
		return fail("mkdir", p);
	if (syscall(SYS_pivot_root, root, p) != 0)
		return fail("pivot_root", root);
	if (chdir("/") != 0 || umount2("/.old", MNT_DETACH) != 0 || rmdir("/.old") != 0)
		return fail("detach the old root", NULL);
	/* The root tmpfs becomes read-only; binds marked rw stay writable. */
	mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID, NULL);
	/* No capabilities, ever again. */
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
		prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return fail("no_new_privs", NULL);
	if (setgroups(0, NULL) != 0 || setresgid(c->gid, c->gid, c->gid) != 0 ||
	    setresuid(c->uid, c->uid, c->uid) != 0)
		return fail("change user", NULL);
	if (c->filter) {
		struct sock_fprog prog = {.len = c->filter_len, .filter = c->filter};
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
			return fail("seccomp", NULL);
	}
	return 0;
}
