/*
 * The VM supervisor: starts each VM as its own `cove run` process that outlives coved
 * (double fork into a new session, under a small shim that records the exit status),
 * follows console output into a ring buffer, notices exits and re-attaches after a
 * restart.
 *
 * Crash safety (coved may be killed at any moment): a "starting" runtime record is
 * committed before the fork; the shim writes sup/NAME/pid before it lets the VMM run,
 * and only while coved is still there (under sup/NAME/start.lock, which a restarted
 * coved takes before it looks), so every VMM is found again by its record or pid file.
 * Destroy and reboot requests are recorded before they act.
 */
#include "api/json.h"
#include "daemon/cgroup.h"
#include "daemon/confine.h"
#include "daemon/daemon.h"
#include "daemon/network.h"
#include "util/log.h"
#ifdef COVED_HAVE_BLOCK
#include <cove/block.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 32

void sup_crash_point(const char *point)
{
	const char *v = getenv("COVED_TEST_CRASH_AT");
	if (v && strcmp(v, point) == 0)
		raise(SIGKILL);
}

uint64_t sup_proc_start(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return 0;
	char state = p[2];
	if (state == 'Z' || state == 'X')
		return 0;
	/* Fields after the comm: state is field 3; starttime is field 22. */
	unsigned long long start = 0;
	int field = 3;
	for (char *q = p + 2; *q && field < 22; q++)
		if (*q == ' ')
			field++, start = strtoull(q + 1, NULL, 10);
	return field == 22 ? start : 0;
}

bool sup_proc_alive(pid_t pid, uint64_t start)
{
	return pid > 0 && start && sup_proc_start(pid) == start;
}

struct vm_rt *sup_find(struct coved *d, const char *name)
{
	for (int i = 0; i < COVED_MAX_RUNNING; i++)
		if (d->running[i] && strcmp(d->running[i]->name, name) == 0)
			return d->running[i];
	return NULL;
}

/* state_dir/sup/NAME/FILE: coved's own records of a VM's run (its pid file, exit status,
 * start lock, lent files, cgroup), out of reach of a confined VMM, which owns only
 * run/NAME/vmm (SUP_VMM_DIR): root writes and reads nothing a VMM could swap. */
static void sup_path(const struct coved *d, const char *name, const char *file, char *out,
		     size_t cap)
{
	snprintf(out, cap, "%s/sup/%s%s%s", d->state_dir, name, file[0] ? "/" : "", file);
}

/* Opens a lent disk to change its owner: never through a symbolic link, never blocking
 * (a FIFO swapped in), and only a regular file or block device. Returns an fd or -errno. */
static int open_lent(const char *path, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) != 0 || !(S_ISREG(st->st_mode) || S_ISBLK(st->st_mode))) {
		close(fd);
		return -EINVAL;
	}
	return fd;
}

/* Gives a file to a confined VM's user, recording its owner and identity (device and
 * inode) for sup_release, which gives back that file only, whatever the path names then. */
static int lend(const struct coved *d, const char *name, const char *path, uid_t uid,
		struct cove_err *err)
{
	if (strchr(path, '\n'))
		return cove_err_set(err, -EINVAL, "a disk path with a newline cannot be lent");
	struct stat st;
	int fd = open_lent(path, &st);
	if (fd == -ELOOP)
		return cove_err_set(err, -EINVAL,
				    "%s is a symbolic link: a writable disk is lent to the VM's "
				    "user, so name the file itself",
				    path);
	if (fd == -EINVAL)
		return cove_err_set(err, fd, "%s is not a regular file or block device", path);
	if (fd < 0)
		return cove_err_set(err, fd, "%s: %s", path, strerror(-fd));
	if (st.st_uid == uid && st.st_gid == (gid_t)uid) {
		close(fd);
		return 0;
	}
	char rec[PATH_MAX + 64];
	sup_path(d, name, "lent", rec, sizeof(rec));
	FILE *f = fopen(rec, "ae");
	if (!f) {
		int e = errno;
		close(fd);
		return cove_err_set(err, -e, "%s: %s", rec, strerror(e));
	}
	fprintf(f, "%u %u %llu %llu %s\n", (unsigned)st.st_uid, (unsigned)st.st_gid,
		(unsigned long long)st.st_dev, (unsigned long long)st.st_ino, path);
	bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
	fclose(f);
	ok = ok && fchown(fd, uid, (gid_t)uid) == 0;
	int e = errno;
	close(fd);
	if (!ok)
		return cove_err_set(err, -e, "giving %s to the VM's user %u: %s", path,
				    (unsigned)uid, strerror(e));
	return 0;
}

/* Gives one lent file back (a line of the lent record), if the path still names it. */
static void give_back(const char *name, const char *line)
{
	unsigned u, g;
	unsigned long long dev, ino;
	int off = 0;
	if (sscanf(line, "%u %u %llu %llu %n", &u, &g, &dev, &ino, &off) != 4 || off <= 0) {
		log_warn("%s: unreadable record of a lent file: %s", name, line);
		return;
	}
	const char *path = line + off;
	struct stat st;
	int fd = open_lent(path, &st);
	if (fd < 0 && fd != -ELOOP && fd != -EINVAL) {
		log_warn("%s: cannot give %s back to uid %u: %s", name, path, u, strerror(-fd));
		return;
	}
	if (fd < 0 || st.st_dev != (dev_t)dev || st.st_ino != (ino_t)ino)
		log_warn("%s: %s is no longer the file lent to the VM: not given back", name, path);
	else if (fchown(fd, u, g) != 0)
		log_warn("%s: cannot give %s back to uid %u: %s", name, path, u, strerror(errno));
	if (fd >= 0)
		close(fd);
}

void sup_release(struct coved *d, const char *name)
{
	net_taps_remove(name);
	char rec[PATH_MAX + 64], line[PATH_MAX + 128];
	/* Lent files go back to their owners, the VMM's directory to coved. */
	sup_path(d, name, "lent", rec, sizeof(rec));
	FILE *f = fopen(rec, "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = '\0';
			give_back(name, line);
		}
		fclose(f);
		unlink(rec);
	}
	if (d->confine) {
		char run[PATH_MAX + 64];
		snprintf(run, sizeof(run), "%s/run/%s/" SUP_VMM_DIR, d->state_dir, name);
		if (chown(run, geteuid(), getegid()) != 0 && errno != ENOENT)
			log_warn("%s: cannot take back %s: %s", name, run, strerror(errno));
	}
	sup_path(d, name, "cgroup", rec, sizeof(rec));
	cg_remove(rec);
}

static int add_running(struct coved *d, struct vm_rt *rt)
{
	for (int i = 0; i < COVED_MAX_RUNNING; i++) {
		if (!d->running[i]) {
			d->running[i] = rt;
			return 0;
		}
	}
	return -ENOSPC;
}

static void ring_put(struct vm_rt *rt, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rt->ring[(rt->console_total + i) % COVED_RING_SIZE] = buf[i];
	rt->console_total += n;
}

size_t sup_console_read(const struct vm_rt *rt, uint64_t *pos, char *buf, size_t cap)
{
	uint64_t oldest =
	    rt->console_total > COVED_RING_SIZE ? rt->console_total - COVED_RING_SIZE : 0;
	if (*pos < oldest)
		*pos = oldest;
	size_t n = 0;
	while (*pos < rt->console_total && n < cap)
		buf[n++] = rt->ring[(*pos)++ % COVED_RING_SIZE];
	return n;
}

/* Reads new console output from the log file into the ring. Returns true on new data. */
static bool pump_console(struct vm_rt *rt)
{
	if (rt->console_fd < 0)
		return false;
	char buf[8192];
	bool any = false;
	for (int i = 0; i < 64; i++) { /* bounded per tick */
		ssize_t n = read(rt->console_fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		ring_put(rt, buf, (size_t)n);
		any = true;
	}
	return any;
}

static void path_in(char *out, size_t cap, const struct vm_rt *rt, const char *file)
{
	snprintf(out, cap, "%s/%s", rt->dir, file);
}

int sup_open_log(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	return fd;
}

/* The last cap-1 bytes of a file, NUL-terminated, or "" when unreadable. */
static void file_tail(const char *path, char *out, size_t cap)
{
	out[0] = '\0';
	int fd = sup_open_log(path);
	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > (off_t)cap - 1 ? end - (off_t)cap + 1 : 0;
	ssize_t n = pread(fd, out, cap - 1, from);
	close(fd);
	if (n > 0)
		out[n] = '\0';
}

/* A string in the async-signal-safe world of the shim. */
static size_t utoa(unsigned long v, char *out)
{
	char tmp[24];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

/* Writes "SHIM VMM\n" to tmp, then renames it to path: async-signal-safe calls only. */
static int write_pidfile(const char *tmp, const char *path, pid_t shim, pid_t vmm)
{
	char line[64];
	size_t n = utoa((unsigned long)shim, line);
	line[n++] = ' ';
	n += utoa((unsigned long)vmm, line + n);
	line[n++] = '\n';
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	bool ok = write(fd, line, n) == (ssize_t)n && fsync(fd) == 0;
	close(fd);
	return ok && rename(tmp, path) == 0 ? 0 : -1;
}

struct shim_args {
	char *const *argv;
	int in_fd, out_fd, err_fd;
	int report_fd; /* the pids go to coved here */
	int alive_fd;  /* read end of a pipe only coved writes: hangs up once coved is gone */
	const struct confine_spec *jail;
	bool pid_ns;	     /* the VMM gets its own PID namespace (it is its pid 1) */
	struct vm_cgroup cg; /* the VMM joins these before it runs */
	char lock[PATH_MAX + 32], pid[PATH_MAX + 32], pid_tmp[PATH_MAX + 32];
	char exit[PATH_MAX + 32], exit_tmp[PATH_MAX + 32];
};

/*
 * The shim: runs in the grandchild, after fork() from a threaded process, so it only
 * makes async-signal-safe calls. Forks the VMM, records both pids in the pid file (only
 * while coved still runs), then lets the VMM run, reports the pids through report_fd,
 * waits for the VMM and writes "exited N" or "signaled N" to the exit file (atomically).
 */
static void shim(const struct shim_args *a)
{
	prctl(PR_SET_NAME, "cove-shim");
	int go[2];
	if (pipe2(go, O_CLOEXEC) != 0)
		_exit(1);
	/* The VMM sees no host process: its first child is pid 1 of a new namespace. */
	if (a->pid_ns && unshare(CLONE_NEWPID) != 0) {
		static const char msg[] = "coved: cannot give the VMM its own PID namespace\n";
		(void)!write(a->err_fd, msg, sizeof(msg) - 1);
		_exit(1);
	}
	pid_t vmm = fork();
	if (vmm == 0) {
		close(go[1]);
		char c;
		ssize_t r;
		while ((r = read(go[0], &c, 1)) < 0 && errno == EINTR)
			;
		if (r != 1) /* the shim gave up: coved went away before it was recorded */
			_exit(125);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		dup2(a->in_fd, 0);
		dup2(a->out_fd, 1);
		dup2(a->err_fd, 2);
		if (cg_join(&a->cg) != 0) {
			static const char msg[] = "coved: cannot move the VMM into its cgroup\n";
			(void)!write(2, msg, sizeof(msg) - 1);
			_exit(126);
		}
		close_range(3, ~0U, 0);
		if (a->jail && confine_enter(a->jail) != 0)
			_exit(126);
		execv(a->argv[0], a->argv);
		static const char msg[] = "coved: cannot execute the VMM\n";
		(void)!write(2, msg, sizeof(msg) - 1);
		_exit(127);
	}
	close(go[0]);
	if (vmm < 0)
		_exit(1);
	/* A restarted coved takes the lock before it looks for the pid file: either it
	 * finds the file, or we see that the coved which started us is gone and give up. */
	int lk = open(a->lock, O_RDWR | O_CLOEXEC);
	if (lk >= 0)
		flock(lk, LOCK_EX);
	struct pollfd pf = {.fd = a->alive_fd, .events = POLLIN};
	bool gone = poll(&pf, 1, 0) == 1 && (pf.revents & (POLLHUP | POLLERR));
	if (!gone)
		gone = write_pidfile(a->pid_tmp, a->pid, getpid(), vmm) != 0;
	if (lk >= 0)
		close(lk);
	if (gone) {
		close(go[1]); /* the VMM never runs */
		while (waitpid(vmm, NULL, 0) < 0 && errno == EINTR)
			;
		_exit(1);
	}
	(void)!write(go[1], "g", 1);
	close(go[1]);
	pid_t pids[2] = {getpid(), vmm};
	(void)!write(a->report_fd, pids, sizeof(pids));
	/* Hold nothing of coved's: not its sockets, not its files. */
	close_range(0, ~0U, 0);
	int status = 0;
	while (waitpid(vmm, &status, 0) < 0 && errno == EINTR)
		;
	char line[64];
	size_t n;
	if (WIFSIGNALED(status)) {
		memcpy(line, "signaled ", 9);
		n = 9 + utoa((unsigned long)WTERMSIG(status), line + 9);
	} else {
		memcpy(line, "exited ", 7);
		n = 7 + utoa((unsigned long)WEXITSTATUS(status), line + 7);
	}
	line[n++] = '\n';
	int fd = open(a->exit_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		(void)!write(fd, line, n);
		fsync(fd);
		close(fd);
		rename(a->exit_tmp, a->exit);
	}
	_exit(0);
}

/*
 * Reads run/NAME/pid. Returns -ENOENT without one, else 0 with the pids, and *alive
 * when that shim still runs (its pid is a process named cove-shim).
 */
static int read_pidfile(const char *dir, pid_t *shim_pid, pid_t *vmm_pid, bool *alive)
{
	char p[PATH_MAX + 32], buf[64] = "";
	snprintf(p, sizeof(p), "%s/pid", dir);
	file_tail(p, buf, sizeof(buf));
	int s = 0, v = 0;
	*alive = false;
	if (sscanf(buf, "%d %d", &s, &v) != 2 || s <= 0 || v <= 0)
		return -ENOENT;
	*shim_pid = s;
	*vmm_pid = v;
	char comm[32] = "";
	snprintf(p, sizeof(p), "/proc/%d/comm", s);
	file_tail(p, comm, sizeof(comm));
	*alive = strcmp(comm, "cove-shim\n") == 0 && sup_proc_start(s) != 0;
	return 0;
}

static void rt_to_store(const struct vm_rt *rt, struct store_runtime *srt)
{
	memset(srt, 0, sizeof(*srt));
	snprintf(srt->name, sizeof(srt->name), "%s", rt->name);
	srt->shim_pid = rt->shim_pid;
	srt->vmm_pid = rt->vmm_pid;
	srt->shim_start = rt->shim_start;
	srt->started_at = rt->started_at;
	snprintf(srt->state, sizeof(srt->state), "%s", rt->state);
	srt->stop_requested = rt->stop_requested;
	srt->destroy_requested = rt->destroy_requested;
	srt->reboot_requested = rt->reboot_requested;
}

int sup_persist(struct coved *d, const struct vm_rt *rt)
{
	struct store_runtime srt;
	rt_to_store(rt, &srt);
	return store_runtime_set(d->store, &srt, NULL);
}

/* Copies of a confined VMM's extra bind paths (freed after the fork). */
struct bind_names {
	char *name[CONFINE_MAX_BINDS];
	unsigned n;
};

static void bind_names_free(struct bind_names *b)
{
	for (unsigned i = 0; i < b->n; i++)
		free(b->name[i]);
	b->n = 0;
}

/* A qcow2 disk's backing files are opened inside the jail too: bound read-only, at the
 * paths the image names (read now). An image that does not open is left to the VMM, which
 * says what is wrong with it. */
static int confine_backing(struct confine_spec *jail, const struct vmdef_disk *disk,
			   struct bind_names *names)
{
#ifdef COVED_HAVE_BLOCK
	struct blk_open_opts o = {.readonly = true};
	if (disk->format[0])
		blk_format_parse(disk->format, &o.format);
	struct blk *b;
	struct cove_err e = {0};
	if (blk_open(disk->path, &o, &b, &e))
		return 0;
	int r = 0;
	for (struct blk *k = blk_backing(b); k && !r; k = blk_backing(k)) {
		if (names->n == CONFINE_MAX_BINDS) {
			r = -E2BIG;
			break;
		}
		char *copy = strdup(blk_filename(k));
		if (!copy) {
			r = -ENOMEM;
			break;
		}
		names->name[names->n++] = copy;
		r = confine_add(jail, copy, false);
	}
	blk_close(b);
	return r;
#else
	(void)jail;
	(void)disk;
	(void)names;
	return 0;
#endif
}
static int prepare_dir(struct coved *d, struct vm_rt *rt, struct cove_err *err)
{
	char run[PATH_MAX + 8];
	snprintf(run, sizeof(run), "%s/run", d->state_dir);
	mkdir(run, 0700);
	if (snprintf(rt->dir, sizeof(rt->dir), "%s/%s", run, rt->name) >= (int)sizeof(rt->dir))
		return cove_err_set(err, -ENAMETOOLONG, "state directory path too long");
	if (mkdir(rt->dir, 0700) != 0 && errno != EEXIST)
		return cove_err_set(err, -errno, "mkdir %s: %s", rt->dir, strerror(errno));
	/* The run directory is root's alone (a confined VMM of an older coved owned it and
	 * may have left links there): its files are made afresh, only the VMM's directory
	 * inside is ever its user's. */
	int dfd = open(rt->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	bool mine = dfd >= 0 && fchown(dfd, geteuid(), getegid()) == 0 && fchmod(dfd, 0700) == 0;
	int e = errno;
	if (dfd >= 0)
		close(dfd);
	if (!mine)
		return cove_err_set(err, -e, "taking %s: %s", rt->dir, strerror(e));
	char p[PATH_MAX + 32];
	const char *stale[] = {"console.log", "vmm.log",  "console.in",
			       "exit",	      "exit.tmp", "api.sock"};
	for (size_t i = 0; i < sizeof(stale) / sizeof(stale[0]); i++) {
		path_in(p, sizeof(p), rt, stale[i]);
		unlink(p);
	}
	path_in(p, sizeof(p), rt, SUP_VMM_DIR);
	struct stat st;
	if (lstat(p, &st) == 0 && !S_ISDIR(st.st_mode))
		unlink(p);
	if (mkdir(p, 0700) != 0 && errno != EEXIST)
		return cove_err_set(err, -errno, "mkdir %s: %s", p, strerror(errno));
	if (chown(p, geteuid(), getegid()) != 0)
		return cove_err_set(err, -errno, "taking %s: %s", p, strerror(errno));
	path_in(p, sizeof(p), rt, SUP_VMM_DIR "/api.sock");
	unlink(p);
	/* coved's private records of the run (root only). */
	snprintf(p, sizeof(p), "%s/sup", d->state_dir);
	mkdir(p, 0700);
	sup_path(d, rt->name, "", p, sizeof(p));
	if (mkdir(p, 0700) != 0 && errno != EEXIST)
		return cove_err_set(err, -errno, "mkdir %s: %s", p, strerror(errno));
	const char *own_stale[] = {"pid", "exit", "exit.tmp"};
	for (size_t i = 0; i < sizeof(own_stale) / sizeof(own_stale[0]); i++) {
		sup_path(d, rt->name, own_stale[i], p, sizeof(p));
		unlink(p);
	}
	sup_path(d, rt->name, "start.lock", p, sizeof(p));
	int lk = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lk < 0)
		return cove_err_set(err, -errno, "creating %s: %s", p, strerror(errno));
	close(lk);
	path_in(p, sizeof(p), rt, "console.in");
	if (mkfifo(p, 0600) != 0 && errno != EEXIST)
		return cove_err_set(err, -errno, "mkfifo %s: %s", p, strerror(errno));
	return 0;
}

int sup_start(struct coved *d, const struct vmdef *def, const char *reason, struct cove_err *err)
{
	if (sup_find(d, def->name))
		return cove_err_set(err, -EBUSY, "VM '%s' is already running", def->name);
	/* A VMM that coved has no record of (it cannot happen while the records hold, but
	 * two VMMs on the same disks must never happen): refuse. */
	char dir[PATH_MAX];
	pid_t os, ov;
	bool alive = false;
	sup_path(d, def->name, "", dir, sizeof(dir));
	if (read_pidfile(dir, &os, &ov, &alive) == 0 && alive)
		return cove_err_set(err, -EBUSY,
				    "a VMM of VM '%s' still runs (pid %d) though coved has no "
				    "record of it; stop it (kill %d) before starting the VM again",
				    def->name, (int)ov, (int)ov);
	struct vm_rt *rt = calloc(1, sizeof(*rt));
	struct vmdef *own = malloc(sizeof(*own));
	if (!rt || !own) {
		free(rt);
		free(own);
		return cove_err_set(err, -ENOMEM, "out of memory");
	}
	*own = *def;
	def = own;
	snprintf(rt->name, sizeof(rt->name), "%s", def->name);
	rt->console_fd = -1;
	rt->uid = (uid_t)-1;
	/* A confined VM runs as its own user, kept from start to start. */
	int rc = 0;
	if (d->confine) {
		rc = store_vm_uid(d->store, def->name, d->confine_uid_base, d->confine_uid_count,
				  &rt->uid, err);
		if (rc) {
			free(rt);
			free(own);
			return rc;
		}
	}
	/* NICs on a coved network get a tap on its bridge (the network comes up on first
	 * use); the VMM sees only tap names. A confined VM's taps are its user's, so that
	 * the VMM can attach to them without privileges. */
	for (unsigned i = 0; i < own->nnics; i++) {
		int nrc = 0;
		if (own->nics[i].network[0]) {
			net_tap_name(own->name, i, own->nics[i].tap);
			nrc = net_ensure(d->state_dir, own->nics[i].network, err);
			if (!nrc)
				nrc = net_tap_create(own->nics[i].network, own->nics[i].tap,
						     rt->uid, err);
		} else if (d->confine) {
			nrc = net_tap_own(own->nics[i].tap, rt->uid, err);
		}
		if (nrc) {
			net_taps_remove(own->name);
			free(rt);
			free(own);
			return cove_err_prefix(err, "nics[%u]", i);
		}
	}
	rc = prepare_dir(d, rt, err);
	if (rc)
		goto err_free;

	/* cove run's options; disks and NICs only when the VMM lists them in --help. */
	if ((def->ndisks && !d->vmm_disk) || (def->nnics && !d->vmm_net)) {
		rc = cove_err_set(err, -ENOTSUP,
				  "the VMM (%s) does not take %s yet; remove them from the "
				  "definition or use a newer cove",
				  d->vmm, def->ndisks && !d->vmm_disk ? "--disk" : "--net");
		goto err_free;
	}
	char cpus[16], mem[32], sock[PATH_MAX + 48], vmm_dir[PATH_MAX + 16];
	path_in(vmm_dir, sizeof(vmm_dir), rt, SUP_VMM_DIR);
	char devs[VMDEF_MAX_DISKS + VMDEF_MAX_NICS][VMDEF_PATH_MAX + 32];
	snprintf(cpus, sizeof(cpus), "%u", def->cpus);
	snprintf(mem, sizeof(mem), "%llu", (unsigned long long)def->memory_mib);
	char *argv[MAX_ARGS + 2 * (VMDEF_MAX_DISKS + VMDEF_MAX_NICS)];
	int ac = 0, nd = 0;
	argv[ac++] = d->vmm;
	argv[ac++] = "run";
	if (def->kernel[0]) {
		argv[ac++] = "--kernel";
		argv[ac++] = (char *)def->kernel;
	}
	if (def->initrd[0]) {
		argv[ac++] = "--initrd";
		argv[ac++] = (char *)def->initrd;
	}
	if (def->cmdline[0]) {
		argv[ac++] = "--cmdline";
		argv[ac++] = (char *)def->cmdline;
	}
	argv[ac++] = "--cpus";
	argv[ac++] = cpus;
	argv[ac++] = "--memory";
	argv[ac++] = mem;
	for (unsigned i = 0; i < def->ndisks; i++, nd++) {
		snprintf(devs[nd], sizeof(devs[nd]), "path=%s%s%s%s", def->disks[i].path,
			 def->disks[i].readonly ? ",readonly=on" : "",
			 def->disks[i].format[0] ? ",format=" : "", def->disks[i].format);
		argv[ac++] = "--disk";
		argv[ac++] = devs[nd];
	}
	for (unsigned i = 0; i < def->nnics; i++, nd++) {
		snprintf(devs[nd], sizeof(devs[nd]), "tap=%s%s%s", def->nics[i].tap,
			 def->nics[i].mac[0] ? ",mac=" : "", def->nics[i].mac);
		argv[ac++] = "--net";
		argv[ac++] = devs[nd];
	}
	argv[ac++] = "--console";
	argv[ac++] = strcmp(def->console, "none") == 0 ? "none" : "stdio";
	if (d->vmm_api_sock) {
		snprintf(sock, sizeof(sock), "%s/api.sock", vmm_dir);
		argv[ac++] = "--api-sock";
		argv[ac++] = sock;
		rt->has_api = true;
	}
	/* A confined VMM also gets the seccomp allow-list before its first guest instruction. */
	if (d->confine && d->vmm_seccomp)
		argv[ac++] = "--seccomp";
	argv[ac] = NULL;

	struct confine_spec *jail = NULL;
	struct bind_names backing = {0};
	char vmm_real[PATH_MAX];
	if (d->confine) {
		jail = calloc(1, sizeof(*jail));
		if (!jail) {
			rc = cove_err_set(err, -ENOMEM, "out of memory");
			goto err_free;
		}
		jail->uid = rt->uid;
		jail->gid = (gid_t)rt->uid;
		jail->tun = def->nnics > 0;
		jail->pid_ns = true;
		snprintf(jail->root, sizeof(jail->root), "%s/jail", d->state_dir);
		mkdir(jail->root, 0711);
		snprintf(jail->root, sizeof(jail->root), "%s/jail/%s", d->state_dir, def->name);
		mkdir(jail->root, 0700);
		if (!realpath(d->vmm, vmm_real))
			snprintf(vmm_real, sizeof(vmm_real), "%s", d->vmm);
		int jr = confine_add(jail, vmm_real, false);
		if (!jr && def->kernel[0])
			jr = confine_add(jail, def->kernel, false);
		if (!jr && def->initrd[0])
			jr = confine_add(jail, def->initrd, false);
		for (unsigned i = 0; !jr && i < def->ndisks; i++) {
			jr = confine_add(jail, def->disks[i].path, !def->disks[i].readonly);
			if (!jr)
				jr = confine_backing(jail, &def->disks[i], &backing);
		}
		if (!jr) /* its own directory only: nothing coved opens lives there */
			jr = confine_add(jail, vmm_dir, true);
		if (jr == -E2BIG)
			cove_err_set(
			    err, jr,
			    "too many files to bind into the VMM's jail: its disks and their "
			    "backing files, with the VMM, kernel and initrd, come to more "
			    "than %d",
			    CONFINE_MAX_BINDS - 1);
		else if (jr == -EINVAL)
			cove_err_set(err, jr,
				     "a file to bind into the VMM's jail (a backing file named by "
				     "a disk image?) is not an absolute path without '..'");
		/* What the VMM opens must be open to its user: writable disks are lent to
		 * it (and given back when it ends); the rest must be readable by all. */
		const char *ro[2 + VMDEF_MAX_DISKS];
		int nro = 0;
		if (def->kernel[0])
			ro[nro++] = def->kernel;
		if (def->initrd[0])
			ro[nro++] = def->initrd;
		for (unsigned i = 0; !jr && i < def->ndisks; i++) {
			if (def->disks[i].readonly)
				ro[nro++] = def->disks[i].path;
			else if ((jr = lend(d, def->name, def->disks[i].path, rt->uid, err)))
				break;
		}
		for (int i = 0; !jr && i < nro; i++) {
			struct stat st;
			if (stat(ro[i], &st) != 0) {
				jr = cove_err_set(err, -errno, "%s: %s", ro[i], strerror(errno));
			} else if (!(st.st_mode & S_IROTH)) {
				jr = cove_err_set(
				    err, -EACCES,
				    "%s is not readable by other users (mode %04o): "
				    "the confined VMM runs as its own user (%u); make "
				    "it readable (chmod o+r), or for a disk, writable "
				    "(coved then lends it to the VM)",
				    ro[i], (unsigned)(st.st_mode & 07777), (unsigned)rt->uid);
			}
		}
		/* The VMM creates its API socket in its directory. */
		if (!jr && chown(vmm_dir, jail->uid, jail->gid) != 0)
			jr = -errno;
		if (!jr)
			jr = confine_build_filter(jail);
		if (jr) { /* the first message stands; this one is for errors without one */
			confine_free_filter(jail);
			free(jail);
			bind_names_free(&backing);
			rc = cove_err_set(err, jr, "preparing the VMM's confinement: %s",
					  strerror(-jr));
			goto err_free;
		}
	}
	struct shim_args sa = {.argv = argv, .jail = jail, .pid_ns = jail != NULL};
	if (jail) {
		/* Memory: the guest's RAM plus the VMM's overhead; tasks: its threads. */
		char id[VMDEF_NAME_MAX + 16], rec[PATH_MAX + 64];
		uint32_t h = 2166136261u;
		for (const char *c = d->state_dir; *c; c++)
			h = (h ^ (uint8_t)*c) * 16777619u;
		snprintf(id, sizeof(id), "%08x-%s", h, def->name);
		sup_path(d, def->name, "cgroup", rec, sizeof(rec));
		struct cove_err cerr = {0};
		if (cg_create(id, cg_memory_limit(def->memory_mib), 256, rec, &sa.cg, &cerr) != 0)
			log_warn("%s: runs without a cgroup: %s", def->name, cerr.msg);
	}
	char p_in[PATH_MAX + 32], p_out[PATH_MAX + 32], p_err[PATH_MAX + 32];
	path_in(p_in, sizeof(p_in), rt, "console.in");
	path_in(p_out, sizeof(p_out), rt, "console.log");
	path_in(p_err, sizeof(p_err), rt, "vmm.log");
	sup_path(d, def->name, "exit", sa.exit, sizeof(sa.exit));
	sup_path(d, def->name, "exit.tmp", sa.exit_tmp, sizeof(sa.exit_tmp));
	sup_path(d, def->name, "pid", sa.pid, sizeof(sa.pid));
	sup_path(d, def->name, "pid.tmp", sa.pid_tmp, sizeof(sa.pid_tmp));
	sup_path(d, def->name, "start.lock", sa.lock, sizeof(sa.lock));
	/* O_RDWR: the FIFO never reads EOF when coved (the writer) goes away. */
	int in_fd = open(p_in, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	int out_fd = open(p_out, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	int err_fd = open(p_err, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	int pfd[2] = {-1, -1}, alive_p[2] = {-1, -1};
	bool recorded = false;
	if (in_fd < 0 || out_fd < 0 || err_fd < 0 || pipe2(pfd, O_CLOEXEC) != 0 ||
	    pipe2(alive_p, O_CLOEXEC) != 0) {
		rc = cove_err_set(err, -errno, "preparing %s: %s", rt->dir, strerror(errno));
		goto err_fds;
	}
	rt->console_fd = sup_open_log(p_out);

	/* Recorded before the fork: a restart finds the VM however far this got. */
	strcpy(rt->state, "starting");
	rt->started_at = (int64_t)time(NULL);
	rc = sup_persist(d, rt);
	if (rc) {
		rc = cove_err_set(err, rc, "recording the VM's start in the store failed");
		goto err_fds;
	}
	recorded = true;
	sup_crash_point("starting");
	sa.in_fd = in_fd;
	sa.out_fd = out_fd;
	sa.err_fd = err_fd;
	sa.report_fd = pfd[1];
	sa.alive_fd = alive_p[0];
	pid_t a = fork();
	if (a < 0) {
		rc = cove_err_set(err, -errno, "fork: %s", strerror(errno));
		goto err_fds;
	}
	if (a == 0) {
		close(alive_p[1]); /* only coved holds the write end */
		setsid();
		pid_t b = fork();
		if (b == 0)
			shim(&sa);
		_exit(b < 0 ? 1 : 0);
	}
	close(pfd[1]);
	pfd[1] = -1;
	while (waitpid(a, NULL, 0) < 0 && errno == EINTR)
		;
	pid_t pids[2] = {0, 0};
	struct pollfd pp = {.fd = pfd[0], .events = POLLIN};
	ssize_t got = poll(&pp, 1, 5000) == 1 ? read(pfd[0], pids, sizeof(pids)) : -1;
	if (got != (ssize_t)sizeof(pids) || pids[1] <= 0) {
		rc = cove_err_set(err, -ECHILD, "the VM process did not start");
		goto err_fds;
	}
	sup_crash_point("forked");
	close(pfd[0]);
	close(alive_p[0]);
	close(alive_p[1]);
	close(in_fd);
	close(out_fd);
	close(err_fd);
	rt->shim_pid = pids[0];
	rt->vmm_pid = pids[1];
	rt->shim_start = sup_proc_start(rt->shim_pid);
	strcpy(rt->state, "running");
	if (!rt->shim_start) /* already gone: the monitor reports how it ended */
		rt->shim_start = 1;
	/* Should this fail, the pid file still leads a restarted coved to the VMM. */
	if (sup_persist(d, rt) != 0)
		log_warn("%s: cannot record its pids in the store", rt->name);
	if (add_running(d, rt) != 0) {
		kill(rt->vmm_pid, SIGKILL);
		rc = cove_err_set(err, -ENOSPC, "too many running VMs (%d)", COVED_MAX_RUNNING);
		goto err_console;
	}
	coved_event(d, rt->name, "started", reason, NULL);
	if (jail)
		confine_free_filter(jail);
	free(jail);
	bind_names_free(&backing);
	free(own);
	return 0;
err_fds:
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	if (alive_p[0] >= 0)
		close(alive_p[0]);
	if (alive_p[1] >= 0)
		close(alive_p[1]);
	if (in_fd >= 0)
		close(in_fd);
	if (out_fd >= 0)
		close(out_fd);
	if (err_fd >= 0)
		close(err_fd);
err_console:
	if (recorded)
		store_runtime_clear(d->store, rt->name, NULL);
	if (jail)
		confine_free_filter(jail);
	free(jail);
	bind_names_free(&backing);
	if (rt->console_fd >= 0)
		close(rt->console_fd);
err_free:
	sup_release(d, own->name);
	free(rt);
	free(own);
	return rc;
}

/* Starts a VM again after its reboot (from its stored definition). */
static void restart(struct coved *d, const char *name)
{
	char *json = NULL;
	struct vmdef *def = NULL;
	struct cove_err err = {0};
	if (store_vm_get(d->store, name, &json, &err) == 0 &&
	    vmdef_parse(json, strlen(json), &def, &err) == 0 &&
	    sup_start(d, def, "reboot requested", &err) == 0) {
		log_info("%s: rebooted", name);
	} else {
		store_runtime_clear(d->store, name, NULL);
		coved_event(d, name, "crashed", "reboot failed", err.msg);
	}
	vmdef_free(def);
	free(json);
}

/* Called when the shim has gone: reports how the VM ended and forgets it. */
static void finish(struct coved *d, struct vm_rt *rt)
{
	pump_console(rt);
	char p[PATH_MAX + 32], status[64] = "";
	sup_path(d, rt->name, "exit", p, sizeof(p));
	file_tail(p, status, sizeof(status));
	char *nl = strchr(status, '\n');
	if (nl)
		*nl = '\0';
	int code = -1, sig = 0;
	if (sscanf(status, "exited %d", &code) != 1 && sscanf(status, "signaled %d", &sig) != 1)
		code = -1;
	bool reboot = rt->reboot_requested && code == 0 && !rt->destroy_requested;
	char reason[128];
	/* The events and the end of the runtime record go together, or not at all. */
	store_begin(d->store);
	if (rt->destroy_requested) {
		coved_event(d, rt->name, "stopped", "destroyed", NULL);
	} else if (code == 0) {
		const char *why = rt->stop_requested ? "shutdown requested" : "guest powered off";
		if (rt->reboot_requested)
			why = "reboot requested";
		coved_event(d, rt->name, "shutdown", why, NULL);
		coved_event(d, rt->name, "stopped", why, NULL);
	} else {
		if (sig)
			snprintf(reason, sizeof(reason), "killed by signal %d", sig);
		else if (code > 0)
			snprintf(reason, sizeof(reason), "exit status %d", code);
		else
			snprintf(reason, sizeof(reason), "ended with no exit status recorded");
		char *tail = malloc(4096), *ctail = malloc(2048);
		if (tail && ctail) {
			path_in(p, sizeof(p), rt, "vmm.log");
			file_tail(p, tail, 2048);
			path_in(p, sizeof(p), rt, "console.log");
			file_tail(p, ctail, 2048);
			if (ctail[0]) {
				size_t tl = strlen(tail);
				snprintf(tail + tl, 4096 - tl, "%s--- console ---\n%s",
					 tl && tail[tl - 1] != '\n' ? "\n" : "", ctail);
			}
		}
		coved_event(d, rt->name, "crashed", reason, tail);
		coved_event(d, rt->name, "stopped", "crashed", NULL);
		free(tail);
		free(ctail);
	}
	if (reboot) { /* kept as "rebooting" until the new VMM is recorded */
		struct store_runtime srt = {0};
		snprintf(srt.name, sizeof(srt.name), "%s", rt->name);
		strcpy(srt.state, "rebooting");
		srt.reboot_requested = true;
		store_runtime_set(d->store, &srt, NULL);
	} else {
		store_runtime_clear(d->store, rt->name, NULL);
	}
	store_commit(d->store);
	sup_path(d, rt->name, "pid", p, sizeof(p));
	unlink(p);
	sup_release(d, rt->name);
	for (int i = 0; i < COVED_MAX_RUNNING; i++)
		if (d->running[i] == rt)
			d->running[i] = NULL;
	char name[VMDEF_NAME_MAX];
	snprintf(name, sizeof(name), "%s", rt->name);
	if (rt->console_fd >= 0)
		close(rt->console_fd);
	free(rt);
	if (reboot) {
		sup_crash_point("rebooting");
		restart(d, name);
	}
}

/*
 * A VM recorded as "starting": coved stopped between recording it and recording its
 * VMM. The pid file, read under the shim's lock, says whether a VMM got to run.
 * Returns true when srt now describes that VMM (to re-attach), false when none ran.
 */
static bool resolve_starting(struct coved *d, struct store_runtime *srt)
{
	char dir[PATH_MAX], p[PATH_MAX + 32];
	sup_path(d, srt->name, "", dir, sizeof(dir));
	snprintf(p, sizeof(p), "%s/start.lock", dir);
	int lk = open(p, O_RDWR | O_CLOEXEC);
	if (lk >= 0)
		flock(lk, LOCK_EX); /* waits while a shim is deciding */
	pid_t shim_pid = 0, vmm_pid = 0;
	bool alive = false;
	int rc = read_pidfile(dir, &shim_pid, &vmm_pid, &alive);
	if (lk >= 0)
		close(lk);
	if (rc) {
		log_info("%s: coved stopped while starting it, before its VMM ran", srt->name);
		store_runtime_clear(d->store, srt->name, NULL);
		sup_release(d, srt->name);
		return false;
	}
	srt->shim_pid = shim_pid;
	srt->vmm_pid = vmm_pid;
	srt->shim_start = alive ? sup_proc_start(shim_pid) : 1;
	if (!srt->shim_start)
		srt->shim_start = 1; /* gone since: reported as it ended */
	strcpy(srt->state, "running");
	store_runtime_set(d->store, srt, NULL);
	coved_event(d, srt->name, "started", "start requested (recorded after a coved restart)",
		    NULL);
	return true;
}

static void reattach_one(struct coved *d, struct store_runtime *srt)
{
	if (strcmp(srt->state, "rebooting") == 0) {
		restart(d, srt->name);
		return;
	}
	if (strcmp(srt->state, "starting") == 0 && !resolve_starting(d, srt))
		return;
	struct vm_rt *rt = calloc(1, sizeof(*rt));
	if (!rt)
		return;
	snprintf(rt->name, sizeof(rt->name), "%s", srt->name);
	snprintf(rt->dir, sizeof(rt->dir), "%s/run/%s", d->state_dir, srt->name);
	rt->shim_pid = srt->shim_pid;
	rt->vmm_pid = srt->vmm_pid;
	rt->shim_start = srt->shim_start;
	rt->started_at = srt->started_at;
	rt->stop_requested = srt->stop_requested;
	rt->destroy_requested = srt->destroy_requested;
	rt->reboot_requested = srt->reboot_requested;
	snprintf(rt->state, sizeof(rt->state), "%s", srt->state);
	rt->uid = (uid_t)-1;
	if (d->confine)
		store_vm_uid(d->store, rt->name, d->confine_uid_base, d->confine_uid_count,
			     &rt->uid, NULL);
	char p[PATH_MAX + 32];
	path_in(p, sizeof(p), rt, SUP_VMM_DIR "/api.sock");
	rt->has_api = access(p, F_OK) == 0;
	path_in(p, sizeof(p), rt, "console.log");
	rt->console_fd = sup_open_log(p);
	if (rt->console_fd >= 0) { /* late attachers see the recent output again */
		off_t end = lseek(rt->console_fd, 0, SEEK_END);
		off_t from = end > COVED_RING_SIZE ? end - COVED_RING_SIZE : 0;
		lseek(rt->console_fd, from, SEEK_SET);
		rt->console_total = (uint64_t)from; /* ring positions are file offsets */
		pump_console(rt);
	}
	if (add_running(d, rt) != 0) {
		if (rt->console_fd >= 0)
			close(rt->console_fd);
		free(rt);
		return;
	}
	if (sup_proc_alive(rt->shim_pid, rt->shim_start))
		log_info("%s: re-attached to pid %d", rt->name, (int)rt->vmm_pid);
	else
		finish(d, rt); /* ended while coved was away */
}

struct rt_list {
	struct store_runtime *v;
	size_t n, cap;
};

static int collect_rt(void *ctx, const struct store_runtime *srt)
{
	struct rt_list *l = ctx;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct store_runtime *nv = realloc(l->v, cap * sizeof(*nv));
		if (!nv)
			return 1;
		l->v = nv;
		l->cap = cap;
	}
	l->v[l->n++] = *srt;
	return 0;
}

void sup_reattach(struct coved *d)
{
	/* Read all records first: re-attaching changes them. */
	struct rt_list l = {0};
	store_runtime_foreach(d->store, collect_rt, &l);
	for (size_t i = 0; i < l.n; i++)
		reattach_one(d, &l.v[i]);
	free(l.v);
}

static void *monitor(void *arg)
{
	struct coved *d = arg;
	while (!d->stopping) {
		/* Reap shims that were re-parented to us (we are their subreaper). */
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		pthread_mutex_lock(&d->lock);
		bool news = false;
		for (int i = 0; i < COVED_MAX_RUNNING; i++) {
			struct vm_rt *rt = d->running[i];
			if (!rt)
				continue;
			news |= pump_console(rt);
			if (!sup_proc_alive(rt->shim_pid, rt->shim_start)) {
				finish(d, rt);
				news = true;
			}
		}
		if (news)
			pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->lock);
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int sup_monitor_start(struct coved *d)
{
	/* Orphaned shims come to us while we live, so they never linger as zombies. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	return -pthread_create(&d->monitor, NULL, monitor, d);
}

void sup_monitor_stop(struct coved *d)
{
	d->stopping = true;
	pthread_join(d->monitor, NULL);
}
