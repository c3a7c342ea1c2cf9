/* The VMM's jail (namespaces, tmpfs root), its unprivileged user and capabilities (libcap). */
#include "vmm/sandbox.h"
#include "util/log.h"
#include "util/path.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

void sandbox_opts_free(struct sandbox_opts *o)
{
	free(o->uid);
	free(o->gid);
	free(o->jail_dir);
	memset(o, 0, sizeof(*o));
}

/* "sandbox_uid" and "sandbox-uid" are the same key. */
static bool key_is(const char *key, const char *name)
{
	for (; *key && *name; key++, name++) {
		char a = *key == '_' ? '-' : *key;
		if (a != *name)
			return false;
	}
	return *key == *name;
}

bool sandbox_opts_is_key(const char *key)
{
	return key_is(key, "sandbox") || key_is(key, "seccomp") || key_is(key, "sandbox-uid") ||
	       key_is(key, "sandbox-gid") || key_is(key, "jail-dir") || key_is(key, "seccomp-log");
}

static int set_flag(const char *key, const char *value, bool *out, struct cove_err *err)
{
	static const char *const yes[] = {"true", "on", "1", "yes"};
	static const char *const no[] = {"false", "off", "0", "no"};
	for (unsigned i = 0; i < 4; i++) {
		if (!strcmp(value, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcmp(value, no[i])) {
			*out = false;
			return 0;
		}
	}
	return cove_err_set(err, -EINVAL, "%s '%s': expected true or false", key, value);
}

static int set_text(const char *key, const char *value, char **dst, struct cove_err *err)
{
	if (!*value)
		return cove_err_set(err, -EINVAL, "%s: empty", key);
	if (strlen(value) >= 4000)
		return cove_err_set(err, -EINVAL, "%s: too long", key);
	char *s = strdup(value);
	if (!s)
		return cove_err_set(err, -ENOMEM, "out of memory");
	free(*dst);
	*dst = s;
	return 0;
}

int sandbox_opts_set(struct sandbox_opts *o, const char *key, const char *value,
		     struct cove_err *err)
{
	if (key_is(key, "sandbox"))
		return set_flag(key, value, &o->enabled, err);
	if (key_is(key, "seccomp"))
		return set_flag(key, value, &o->seccomp_only, err);
	if (key_is(key, "seccomp-log"))
		return set_flag(key, value, &o->seccomp_log, err);
	if (key_is(key, "sandbox-uid"))
		return set_text(key, value, &o->uid, err);
	if (key_is(key, "sandbox-gid"))
		return set_text(key, value, &o->gid, err);
	if (key_is(key, "jail-dir"))
		return set_text(key, value, &o->jail_dir, err);
	return -ENOENT;
}

/* A decimal id in 1..2^32-2 (-1 means "unchanged" to the kernel). -EINVAL if not a number. */
static int parse_id(const char *text, unsigned long *out)
{
	if (*text < '0' || *text > '9')
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || *end || v == 0 || v >= UINT32_MAX)
		return -ERANGE;
	*out = (unsigned long)v;
	return 0;
}

int sandbox_parse_uid(const char *text, uid_t *uid, gid_t *user_gid, struct cove_err *err)
{
	unsigned long v;
	int r = parse_id(text, &v);
	if (r == -ERANGE)
		return cove_err_set(
		    err, -EINVAL, "sandbox-uid %s: out of range (1 to 4294967294; not root)", text);
	if (r == 0) {
		*uid = (uid_t)v;
		*user_gid = (gid_t)v;
		return 0;
	}
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwnam_r(text, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return cove_err_set(err, -ENOENT, "sandbox-uid %s: no such user", text);
	if (res->pw_uid == 0)
		return cove_err_set(err, -EINVAL, "sandbox-uid %s: is root", text);
	*uid = res->pw_uid;
	*user_gid = res->pw_gid;
	return 0;
}

int sandbox_parse_gid(const char *text, gid_t *gid, struct cove_err *err)
{
	unsigned long v;
	int r = parse_id(text, &v);
	if (r == -ERANGE)
		return cove_err_set(
		    err, -EINVAL, "sandbox-gid %s: out of range (1 to 4294967294; not root)", text);
	if (r == 0) {
		*gid = (gid_t)v;
		return 0;
	}
	struct group gr, *res = NULL;
	char buf[4096];
	if (getgrnam_r(text, &gr, buf, sizeof(buf), &res) != 0 || !res)
		return cove_err_set(err, -ENOENT, "sandbox-gid %s: no such group", text);
	if (res->gr_gid == 0)
		return cove_err_set(err, -EINVAL, "sandbox-gid %s: is root's group", text);
	*gid = res->gr_gid;
	return 0;
}

/* A per-VM uid that no account or group uses, so that VMMs do not share one. */
static int pick_uid(uid_t *uid, struct cove_err *err)
{
	pid_t pid = getpid();
	for (unsigned i = 0; i < SANDBOX_UID_COUNT; i++) {
		uid_t u = SANDBOX_UID_BASE + ((unsigned)pid + i) % SANDBOX_UID_COUNT;
		if (!getpwuid(u) && !getgrgid((gid_t)u)) {
			*uid = u;
			return 0;
		}
	}
	return cove_err_set(err, -EAGAIN, "sandbox: no free uid in %u..%u (give --sandbox-uid)",
			    SANDBOX_UID_BASE, SANDBOX_UID_BASE + SANDBOX_UID_COUNT - 1);
}

/* mkdir -p with mode 0755; path is absolute. */
static int mkdirs(const char *path)
{
	char buf[4096];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || !*p) {
			char c = *p;
			*p = '\0';
			if (mkdir(buf, 0755) < 0 && errno != EEXIST)
				return -errno;
			*p = c;
			if (!c)
				break;
		}
	}
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* Closes every descriptor above stderr that is not in keep (inherited ones: not needed). */
static void close_others(const int *keep, unsigned nkeep)
{
	unsigned from = 3;
	for (;;) {
		unsigned next = UINT_MAX; /* the smallest kept fd >= from */
		for (unsigned i = 0; i < nkeep; i++)
			if (keep[i] >= (int)from && (unsigned)keep[i] < next)
				next = (unsigned)keep[i];
		if (next > from)
			syscall(SYS_close_range, from, next - 1, 0);
		if (next == UINT_MAX)
			break;
		from = next + 1;
	}
}

static int make_node(const char *jail, const char *name, dev_t rdev, uid_t uid, gid_t gid)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s%s", jail, name);
	if (mknod(path, S_IFCHR | 0600, rdev) < 0 || chown(path, uid, gid) < 0)
		return -errno;
	return 0;
}

int sandbox_needs_add(struct sandbox_needs *n, const char *path, unsigned flags)
{
	if (n->npaths >= SANDBOX_MAX_PATHS)
		return -E2BIG;
	n->paths[n->npaths] = path;
	n->flags[n->npaths++] = flags;
	return 0;
}

/* A path to bind, opened (O_PATH) before the tmpfs could hide it. */
struct bind_src {
	int fd;
	char abs[4096]; /* where it goes in the jail: its absolute path on the host */
};

static int open_source(struct bind_src *b, const char *src, unsigned flags, const char *cwd,
		       struct cove_err *err)
{
	b->fd = -1;
	int r = path_absolute(src, cwd, b->abs, sizeof(b->abs));
	if (!r && (flags & SANDBOX_BIND_DIR_OF)) {
		char *slash = strrchr(b->abs, '/');
		if (slash == b->abs)
			r = -EINVAL; /* not the whole root */
		else
			*slash = '\0';
	}
	if (r)
		return cove_err_set(err, r, "sandbox: %s: cannot be bound into the jail (%s)", src,
				    r == -EINVAL ? "no '..' or '/' please" : strerror(-r));
	b->fd = open(b->abs, O_PATH | O_CLOEXEC);
	if (b->fd < 0)
		return cove_err_set(err, -errno, "sandbox: %s: %s", b->abs, strerror(errno));
	return 0;
}

/* Binds b at its own absolute path inside the jail. */
static int bind_in(const char *jail, const struct bind_src *b, unsigned flags, struct cove_err *err)
{
	char dst[8300], src[64];
	struct stat st;
	if (fstat(b->fd, &st) < 0)
		return cove_err_set(err, -errno, "sandbox: %s: %s", b->abs, strerror(errno));
	snprintf(dst, sizeof(dst), "%s%s", jail, b->abs);
	snprintf(src, sizeof(src), "/proc/self/fd/%d", b->fd);
	int r;
	if (S_ISDIR(st.st_mode)) {
		r = mkdirs(dst);
	} else {
		char *slash = strrchr(dst, '/');
		*slash = '\0';
		r = mkdirs(dst);
		*slash = '/';
		int fd = r ? -1 : open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (!r && fd < 0)
			r = -errno;
		if (fd >= 0)
			close(fd);
	}
	unsigned long ro = flags & SANDBOX_BIND_RO ? MS_RDONLY : 0;
	if (!r && mount(src, dst, NULL, MS_BIND, NULL) < 0)
		r = -errno;
	/* A bind keeps its source's flags until remounted: no devices, set-uid or programs. */
	if (!r && mount(NULL, dst, NULL,
			MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC | ro, NULL) < 0)
		r = -errno;
	if (r)
		return cove_err_set(err, r, "sandbox: cannot bind %s into the jail: %s", b->abs,
				    strerror(-r));
	return 0;
}

static int open_all(const struct sandbox_needs *n, const char *cwd, struct bind_src *srcs,
		    struct cove_err *err)
{
	int r = 0;
	for (unsigned i = 0; i < n->npaths && !r; i++)
		r = open_source(&srcs[i], n->paths[i], n->flags[i], cwd, err);
	return r;
}

/* The tmpfs with the device nodes and the binds. */
static int fill_jail(struct sandbox *sb, const struct sandbox_needs *n, dev_t kvm,
		     const struct bind_src *srcs, struct cove_err *err)
{
	if (mount("cove-jail", sb->jail, "tmpfs", MS_NOSUID | MS_NOEXEC,
		  "mode=0755,size=64k,nr_inodes=4096") < 0)
		return cove_err_set(err, -errno, "sandbox: tmpfs on %s: %s", sb->jail,
				    strerror(errno));
	char dev[4200];
	snprintf(dev, sizeof(dev), "%s/dev", sb->jail);
	int r = mkdirs(dev);
	if (!r)
		r = make_node(sb->jail, "/dev/kvm", kvm, sb->uid, sb->gid);
	if (!r && n->tun) {
		snprintf(dev, sizeof(dev), "%s/dev/net", sb->jail);
		r = mkdirs(dev);
		if (!r)
			r = make_node(sb->jail, "/dev/net/tun", makedev(10, 200), sb->uid, sb->gid);
	}
	if (r)
		return cove_err_set(err, r, "sandbox: device nodes in %s: %s", sb->jail,
				    strerror(-r));
	for (unsigned i = 0; i < n->npaths; i++)
		if ((r = bind_in(sb->jail, &srcs[i], n->flags[i], err)))
			return r;
	return 0;
}

/* pivot_root(".", "."): the old root ends up on top and is detached at once. */
static int pivot(struct sandbox *sb, const char *cwd, struct cove_err *err)
{
	if (chdir(sb->jail) < 0)
		return cove_err_set(err, -errno, "sandbox: %s: %s", sb->jail, strerror(errno));
	if (syscall(SYS_pivot_root, ".", ".") == 0) {
		if (umount2(".", MNT_DETACH) < 0)
			return cove_err_set(err, -errno, "sandbox: detaching the old root: %s",
					    strerror(errno));
	} else {
		log_debug("sandbox: pivot_root: %s; using chroot", strerror(errno));
		if (chroot(".") < 0)
			return cove_err_set(err, -errno, "sandbox: chroot %s: %s", sb->jail,
					    strerror(errno));
	}
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL) <
	    0)
		return cove_err_set(err, -errno, "sandbox: read-only jail: %s", strerror(errno));
	/* Relative paths keep working when their directory is in the jail. */
	if (chdir(cwd) < 0 && chdir("/") < 0)
		return cove_err_set(err, -errno, "sandbox: chdir: %s", strerror(errno));
	return 0;
}

/* New namespaces, a tmpfs at the jail dir holding only what is needed, then pivot_root. */
static int build_jail(struct sandbox *sb, const struct sandbox_needs *n, struct cove_err *err)
{
	char cwd[4096];
	if (!getcwd(cwd, sizeof(cwd)))
		snprintf(cwd, sizeof(cwd), "/");
	int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;
	if (!n->tun)
		flags |= CLONE_NEWNET;
	if (unshare(flags) < 0)
		return cove_err_set(err, -errno, "sandbox: unshare: %s", strerror(errno));
	/* Nothing mounted from here on shows on the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return cove_err_set(err, -errno, "sandbox: making / private: %s", strerror(errno));
	/* The device and paths to bind, before the tmpfs could hide one under the jail dir. */
	const char *kvm = n->kvm_path ? n->kvm_path : getenv("COVE_KVM_DEV");
	if (!kvm || !*kvm)
		kvm = "/dev/kvm";
	struct stat st;
	errno = 0;
	if (stat(kvm, &st) < 0 || !S_ISCHR(st.st_mode))
		return cove_err_set(err, -ENODEV, "sandbox: %s: %s", kvm,
				    errno == ENOENT ? "no such device (is KVM available?)"
						    : "not a character device");
	struct bind_src *srcs = calloc(n->npaths ? n->npaths : 1, sizeof(*srcs));
	if (!srcs)
		return cove_err_set(err, -ENOMEM, "out of memory");
	for (unsigned i = 0; i < n->npaths; i++)
		srcs[i].fd = -1;
	int r = open_all(n, cwd, srcs, err);
	if (!r)
		r = fill_jail(sb, n, st.st_rdev, srcs, err);
	for (unsigned i = 0; i < n->npaths; i++)
		if (srcs[i].fd >= 0)
			close(srcs[i].fd);
	free(srcs);
	if (r)
		return r;
	return pivot(sb, cwd, err);
}

/* Bounding, inheritable and ambient sets emptied; effective and permitted kept for setup. */
static int drop_inheritable_caps(struct cove_err *err)
{
	for (int c = 0; CAP_IS_SUPPORTED(c); c++) {
		if (cap_drop_bound((cap_value_t)c) < 0)
			return cove_err_set(err, -errno, "sandbox: dropping capability %d: %s", c,
					    strerror(errno));
	}
	if (CAP_AMBIENT_SUPPORTED() && cap_reset_ambient() < 0)
		return cove_err_set(err, -errno, "sandbox: clearing ambient capabilities: %s",
				    strerror(errno));
	cap_t caps = cap_get_proc();
	int r = 0;
	if (!caps || cap_clear_flag(caps, CAP_INHERITABLE) < 0 || cap_set_proc(caps) < 0)
		r = cove_err_set(err, -errno, "sandbox: clearing inheritable capabilities: %s",
				 strerror(errno));
	cap_free(caps);
	return r;
}

/* Threads of this process (from /proc/self/status), or -1. */
static int count_threads(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return -1;
	char line[256];
	int n = -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

int sandbox_enter(struct sandbox *sb, const struct sandbox_opts *o, const struct sandbox_needs *n,
		  const int *keep_fds, unsigned nkeep, struct cove_err *err)
{
	memset(sb, 0, sizeof(*sb));
	sb->seccomp_log = o->seccomp_log;
	if (geteuid() != 0)
		return cove_err_set(err, -EPERM,
				    "--sandbox needs root (it makes namespaces and changes user)");
	int r;
	gid_t user_gid;
	if (o->uid) {
		if ((r = sandbox_parse_uid(o->uid, &sb->uid, &user_gid, err)))
			return r;
	} else {
		if ((r = pick_uid(&sb->uid, err)))
			return r;
		user_gid = (gid_t)sb->uid;
	}
	sb->gid = user_gid;
	if (o->gid && (r = sandbox_parse_gid(o->gid, &sb->gid, err)))
		return r;
	const char *jail = o->jail_dir ? o->jail_dir : SANDBOX_DEFAULT_JAIL;
	char cwd[4096];
	if (!getcwd(cwd, sizeof(cwd)))
		snprintf(cwd, sizeof(cwd), "/");
	if ((r = path_absolute(jail, cwd, sb->jail, sizeof(sb->jail))) || (r = mkdirs(sb->jail)))
		return cove_err_set(err, r, "jail-dir %s: cannot create it: %s", jail,
				    r == -EINVAL ? "no '..' please" : strerror(-r));
	if (!strcmp(sb->jail, "/"))
		return cove_err_set(err, -EINVAL, "jail-dir %s: cannot be /", jail);
	/* Namespaces, root and the bounding set are per thread: one thread only, or a thread
	 * started earlier would stay outside the jail. */
	if ((r = count_threads()) < 0)
		return cove_err_set(err, -ENOENT, "sandbox: cannot count threads (no /proc?)");
	if (r != 1)
		return cove_err_set(err, -EBUSY, "sandbox: entered with %d threads running", r);
	close_others(keep_fds, nkeep);
	if ((r = build_jail(sb, n, err)) || (r = drop_inheritable_caps(err)))
		return r;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return cove_err_set(err, -errno, "sandbox: no_new_privs: %s", strerror(errno));
	sb->entered = true;
	log_debug("sandbox: jail %s, uid %u, gid %u", sb->jail, (unsigned)sb->uid,
		  (unsigned)sb->gid);
	return 0;
}

int sandbox_enter_seccomp_only(struct sandbox *sb, const struct sandbox_opts *o,
			       const int *keep_fds, unsigned nkeep, struct cove_err *err)
{
	memset(sb, 0, sizeof(*sb));
	sb->seccomp_log = o->seccomp_log;
	sb->keep_user = true;
	sb->uid = getuid();
	sb->gid = getgid();
	/* Descriptors stay: the API socket may be open already; the caller chose what to pass. */
	(void)keep_fds;
	(void)nkeep;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return cove_err_set(err, -errno, "sandbox: no_new_privs: %s", strerror(errno));
	sb->entered = true;
	return 0;
}

/* The test hook: a thread that makes a forbidden call after the given delay. */
static void *forbidden_thread(void *arg)
{
	long ms = (long)(intptr_t)arg;
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
	socket(AF_INET, SOCK_STREAM, 0); /* the filter kills the process here */
	return NULL;
}

static void test_hook(void)
{
	const char *v = getenv("COVE_SANDBOX_TEST_FORBIDDEN");
	if (!v || !*v)
		return;
	long ms = strtol(v, NULL, 10);
	if (ms < 0 || ms > 600000)
		ms = 0;
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, forbidden_thread, (void *)(intptr_t)ms) != 0)
		log_warn("sandbox: test hook: cannot start its thread");
	pthread_attr_destroy(&attr);
}

int sandbox_lock(struct sandbox *sb, struct cove_err *err)
{
	if (!sb->entered)
		return cove_err_set(err, -EINVAL, "sandbox: not entered");
	/* glibc applies these to every thread of the process. */
	if (!sb->keep_user && (setgroups(0, NULL) < 0 || setresgid(sb->gid, sb->gid, sb->gid) < 0 ||
			       setresuid(sb->uid, sb->uid, sb->uid) < 0))
		return cove_err_set(err, -errno, "sandbox: switching to uid %u gid %u: %s",
				    (unsigned)sb->uid, (unsigned)sb->gid, strerror(errno));
	uid_t ru, eu, su;
	if (!sb->keep_user &&
	    (getresuid(&ru, &eu, &su) < 0 || ru != sb->uid || eu != sb->uid || su != sb->uid))
		return cove_err_set(err, -EPERM, "sandbox: the uid did not change");
	/* Leaving root emptied the permitted and effective sets; make sure of all of them. */
	cap_t none = cap_init();
	int r = none && cap_set_proc(none) == 0 ? 0 : -errno;
	cap_free(none);
	if (r)
		return cove_err_set(err, r, "sandbox: clearing capabilities: %s", strerror(-r));
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if ((r = sandbox_filter_load(getpid(), sb->seccomp_log)))
		return cove_err_set(err, r, "sandbox: installing the seccomp filter: %s",
				    strerror(-r));
	sb->locked = true;
	test_hook();
	return 0;
}
