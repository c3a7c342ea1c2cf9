/*
 * The VM supervisor: starts each VM as its own `cove run` process that outlives coved
 * (double fork into a new session, under a small shim that records the exit status),
 * follows console output into a ring buffer, notices exits and re-attaches after a
 * restart.
 */
#include "api/json.h"
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 32

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

/* The last cap-1 bytes of a file, NUL-terminated, or "" when unreadable. */
static void file_tail(const char *path, char *out, size_t cap)
{
	out[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
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

/*
 * The shim: runs in the grandchild, after fork() from a threaded process, so it only
 * makes async-signal-safe calls. Starts the VMM, reports both pids through pfd, waits
 * for the VMM and writes "exited N" or "signaled N" to exit_path (atomically).
 */
static void shim(char *const argv[], int in_fd, int out_fd, int err_fd, int pfd,
		 const char *exit_path, const char *exit_tmp, const struct confine_spec *jail)
{
	prctl(PR_SET_NAME, "cove-shim");
	pid_t vmm = fork();
	if (vmm == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		dup2(in_fd, 0);
		dup2(out_fd, 1);
		dup2(err_fd, 2);
		close_range(3, ~0U, 0);
		if (jail && confine_enter(jail) != 0)
			_exit(126);
		execv(argv[0], argv);
		static const char msg[] = "coved: cannot execute the VMM\n";
		(void)!write(2, msg, sizeof(msg) - 1);
		_exit(127);
	}
	pid_t pids[2] = {getpid(), vmm};
	(void)!write(pfd, pids, sizeof(pids));
	/* Hold nothing of coved's: not its sockets, not its files. */
	close_range(0, ~0U, 0);
	if (vmm < 0)
		_exit(1);
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
	int fd = open(exit_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		(void)!write(fd, line, n);
		fsync(fd);
		close(fd);
		rename(exit_tmp, exit_path);
	}
	_exit(0);
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
	char p[PATH_MAX + 32];
	const char *stale[] = {"exit", "exit.tmp", "api.sock"};
	for (size_t i = 0; i < 3; i++) {
		path_in(p, sizeof(p), rt, stale[i]);
		unlink(p);
	}
	path_in(p, sizeof(p), rt, "console.in");
	if (mkfifo(p, 0600) != 0 && errno != EEXIST)
		return cove_err_set(err, -errno, "mkfifo %s: %s", p, strerror(errno));
	return 0;
}

int sup_start(struct coved *d, const struct vmdef *def, struct cove_err *err)
{
	if (sup_find(d, def->name))
		return cove_err_set(err, -EBUSY, "VM '%s' is already running", def->name);
	struct vm_rt *rt = calloc(1, sizeof(*rt));
	struct vmdef *own = malloc(sizeof(*own));
	if (!rt || !own) {
		free(rt);
		free(own);
		return cove_err_set(err, -ENOMEM, "out of memory");
	}
	/* NICs on a coved network get a tap on its bridge (the network comes up on first
	 * use); the VMM sees only tap names. */
	*own = *def;
	def = own;
	for (unsigned i = 0; i < own->nnics; i++) {
		if (!own->nics[i].network[0])
			continue;
		net_tap_name(own->name, i, own->nics[i].tap);
		int nrc = net_ensure(d->state_dir, own->nics[i].network, err);
		if (!nrc)
			nrc = net_tap_create(own->nics[i].network, own->nics[i].tap, err);
		if (nrc) {
			net_taps_remove(own->name);
			free(rt);
			free(own);
			return cove_err_prefix(err, "nics[%u]", i);
		}
	}
	snprintf(rt->name, sizeof(rt->name), "%s", def->name);
	rt->console_fd = -1;
	int rc = prepare_dir(d, rt, err);
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
	char cpus[16], mem[32], sock[PATH_MAX + 16];
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
		snprintf(sock, sizeof(sock), "%s/api.sock", rt->dir);
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
		jail->uid = d->confine_uid;
		jail->gid = d->confine_gid;
		jail->tun = def->nnics > 0;
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
		if (!jr)
			jr = confine_add(jail, rt->dir, true);
		/* The VMM creates its API socket in its run directory. */
		if (!jr && chown(rt->dir, jail->uid, jail->gid) != 0)
			jr = -errno;
		if (!jr)
			jr = confine_build_filter(jail);
		if (jr) {
			free(jail);
			bind_names_free(&backing);
			rc = cove_err_set(err, jr, "preparing the VMM's confinement: %s",
					  strerror(-jr));
			goto err_free;
		}
	}
	char p_in[PATH_MAX + 32], p_out[PATH_MAX + 32], p_err[PATH_MAX + 32];
	char p_exit[PATH_MAX + 32], p_tmp[PATH_MAX + 32];
	path_in(p_in, sizeof(p_in), rt, "console.in");
	path_in(p_out, sizeof(p_out), rt, "console.log");
	path_in(p_err, sizeof(p_err), rt, "vmm.log");
	path_in(p_exit, sizeof(p_exit), rt, "exit");
	path_in(p_tmp, sizeof(p_tmp), rt, "exit.tmp");
	/* O_RDWR: the FIFO never reads EOF when coved (the writer) goes away. */
	int in_fd = open(p_in, O_RDWR | O_CLOEXEC);
	int out_fd = open(p_out, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	int err_fd = open(p_err, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	int pfd[2] = {-1, -1};
	if (in_fd < 0 || out_fd < 0 || err_fd < 0 || pipe2(pfd, O_CLOEXEC) != 0) {
		rc = cove_err_set(err, -errno, "preparing %s: %s", rt->dir, strerror(errno));
		goto err_fds;
	}
	rt->console_fd = open(p_out, O_RDONLY | O_CLOEXEC);

	pid_t a = fork();
	if (a < 0) {
		rc = cove_err_set(err, -errno, "fork: %s", strerror(errno));
		goto err_fds;
	}
	if (a == 0) {
		setsid();
		pid_t b = fork();
		if (b == 0)
			shim(argv, in_fd, out_fd, err_fd, pfd[1], p_exit, p_tmp, jail);
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
	close(pfd[0]);
	close(in_fd);
	close(out_fd);
	close(err_fd);
	rt->shim_pid = pids[0];
	rt->vmm_pid = pids[1];
	rt->shim_start = sup_proc_start(rt->shim_pid);
	rt->started_at = (int64_t)time(NULL);
	strcpy(rt->state, "running");
	if (!rt->shim_start) /* already gone: the monitor reports how it ended */
		rt->shim_start = 1;

	struct store_runtime srt = {.shim_pid = rt->shim_pid,
				    .vmm_pid = rt->vmm_pid,
				    .shim_start = rt->shim_start,
				    .started_at = rt->started_at};
	snprintf(srt.name, sizeof(srt.name), "%s", rt->name);
	strcpy(srt.state, "running");
	rc = store_runtime_set(d->store, &srt, err);
	if (rc == 0)
		rc = add_running(d, rt);
	if (rc) {
		kill(rt->vmm_pid, SIGKILL);
		cove_err_set(err, rc, "too many running VMs");
		goto err_console;
	}
	coved_event(d, rt->name, "started", "start requested", NULL);
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
	if (in_fd >= 0)
		close(in_fd);
	if (out_fd >= 0)
		close(out_fd);
	if (err_fd >= 0)
		close(err_fd);
err_console:
	if (jail)
		confine_free_filter(jail);
	free(jail);
	bind_names_free(&backing);
	if (rt->console_fd >= 0)
		close(rt->console_fd);
err_free:
	net_taps_remove(own->name);
	free(rt);
	free(own);
	return rc;
}

/* Called when the shim has gone: reports how the VM ended and forgets it. */
static void finish(struct coved *d, struct vm_rt *rt)
{
	pump_console(rt);
	char p[PATH_MAX + 32], status[64] = "";
	path_in(p, sizeof(p), rt, "exit");
	file_tail(p, status, sizeof(status));
	char *nl = strchr(status, '\n');
	if (nl)
		*nl = '\0';
	int code = -1, sig = 0;
	if (sscanf(status, "exited %d", &code) != 1 && sscanf(status, "signaled %d", &sig) != 1)
		code = -1;
	char reason[128];
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
	store_runtime_clear(d->store, rt->name, NULL);
	net_taps_remove(rt->name);
	for (int i = 0; i < COVED_MAX_RUNNING; i++)
		if (d->running[i] == rt)
			d->running[i] = NULL;
	bool reboot = rt->reboot_requested && code == 0;
	char name[VMDEF_NAME_MAX];
	snprintf(name, sizeof(name), "%s", rt->name);
	if (rt->console_fd >= 0)
		close(rt->console_fd);
	free(rt);
	if (reboot) {
		char *json = NULL;
		struct vmdef *def = NULL;
		struct cove_err err = {0};
		if (store_vm_get(d->store, name, &json, &err) == 0 &&
		    vmdef_parse(json, strlen(json), &def, &err) == 0 &&
		    sup_start(d, def, &err) == 0)
			log_info("%s: rebooted", name);
		else
			coved_event(d, name, "crashed", "reboot failed", err.msg);
		vmdef_free(def);
		free(json);
	}
}

static int reattach_one(void *ctx, const struct store_runtime *srt)
{
	struct coved *d = ctx;
	struct vm_rt *rt = calloc(1, sizeof(*rt));
	if (!rt)
		return 0;
	snprintf(rt->name, sizeof(rt->name), "%s", srt->name);
	snprintf(rt->dir, sizeof(rt->dir), "%s/run/%s", d->state_dir, srt->name);
	rt->shim_pid = srt->shim_pid;
	rt->vmm_pid = srt->vmm_pid;
	rt->shim_start = srt->shim_start;
	rt->started_at = srt->started_at;
	rt->stop_requested = srt->stop_requested;
	snprintf(rt->state, sizeof(rt->state), "%s", srt->state);
	char p[PATH_MAX + 32];
	path_in(p, sizeof(p), rt, "api.sock");
	rt->has_api = access(p, F_OK) == 0;
	path_in(p, sizeof(p), rt, "console.log");
	rt->console_fd = open(p, O_RDONLY | O_CLOEXEC);
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
		return 0;
	}
	if (sup_proc_alive(rt->shim_pid, rt->shim_start))
		log_info("%s: re-attached to pid %d", rt->name, (int)rt->vmm_pid);
	else
		finish(d, rt); /* ended while coved was away */
	return 0;
}

void sup_reattach(struct coved *d)
{
	store_runtime_foreach(d->store, reattach_one, d);
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
