/* create, start and teardown: the runtime side of a container's life. */
#include "oci/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CLONE_INTO_CGROUP_FLAG 0x200000000ULL

/* clone3's argument block (linux/sched.h, version 2 with the cgroup field). */
struct clone3_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
	    set_tid_size, cgroup;
};

static void now_rfc3339(char *buf, size_t len)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char base[32];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%09ldZ", base, ts.tv_nsec);
}

static int write_idmap(pid_t pid, const char *file, const struct oci_idmap *m, size_t n,
		       struct cove_err *err)
{
	char path[64], buf[340 * 40];
	size_t off = 0;
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%u %u %u\n",
					m[i].container_id, m[i].host_id, m[i].size);
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	int r = oci_write_file(path, buf, off);
	if (r < 0)
		return cove_err_set(err, r, "linux.%s: writing %s: %s",
				    file[0] == 'u' ? "uidMappings" : "gidMappings", path,
				    strerror(-r));
	return 0;
}

static int mkdir_all(const char *path)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0711) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0711) < 0 && errno != EEXIST ? -1 : 0;
}

static int clone_flags(const struct oci_config *c)
{
	static const int f[] = {[OCI_NS_PID] = CLONE_NEWPID, [OCI_NS_NET] = CLONE_NEWNET,
				[OCI_NS_MNT] = CLONE_NEWNS,  [OCI_NS_IPC] = CLONE_NEWIPC,
				[OCI_NS_UTS] = CLONE_NEWUTS, [OCI_NS_USER] = CLONE_NEWUSER};
	int flags = 0;
	for (int t = 0; t <= OCI_NS_USER; t++)
		if (c->ns[t].present && !c->ns[t].path)
			flags |= f[t];
	return flags;
}

/* Tells init to go on ('G' and the state JSON, which the hooks get too: *sj, the caller's
 * to free, also on failure). Returns the bytes sent or -errno. */
static ssize_t send_go(int fd, const struct oci_state *st, char **sj)
{
	*sj = oci_state_json(st, OCI_CREATING, false);
	size_t l = *sj ? strlen(*sj) : 0;
	char *msg = *sj ? malloc(l + 2) : NULL;
	if (!msg)
		return -ENOMEM;
	msg[0] = 'G';
	memcpy(msg + 1, *sj, l + 1);
	ssize_t n = send(fd, msg, l + 1, MSG_NOSIGNAL);
	int e = errno;
	free(msg);
	return n < 0 ? -e : n;
}

/* Two-stage init: the real init's 'P' message, whose pid the kernel puts in its credentials
 * (translated into our pid namespace). Returns the pid, or a negative error. */
static pid_t read_stage2_pid(int fd, struct cove_err *err)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} u;
	char ebuf[600];
	struct iovec eiov = {.iov_base = ebuf, .iov_len = sizeof(ebuf) - 1};
	struct msghdr mh = {.msg_iov = &eiov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	ssize_t n;
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return cove_err_set(err, -EPIPE, "container init exited during setup");
	ebuf[n] = '\0';
	if (ebuf[0] == 'E')
		return cove_err_set(err, -EINVAL, "%s", ebuf + 1);
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (ebuf[0] == 'P' && cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_CREDENTIALS) {
			struct ucred uc;
			memcpy(&uc, CMSG_DATA(cm), sizeof(uc));
			if (uc.pid > 0)
				return uc.pid;
		}
	}
	return cove_err_set(err, -EPROTO, "container init: no pid from the second stage");
}

/* Reads the next message from init: 'R' ready, 'H' run hooks, 'E...' an error. */
static int read_msg(int fd, char *buf, size_t len, struct cove_err *err)
{
	ssize_t n;
	do
		n = recv(fd, buf, len - 1, 0);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return cove_err_set(err, -EPIPE, "container init exited during setup");
	buf[n] = '\0';
	if (buf[0] == 'E')
		return cove_err_set(err, -EINVAL, "%s", buf + 1);
	return buf[0];
}

int oci_create(const struct oci_create_opts *o, struct oci_config *cfg, const char *cfg_text,
	       size_t cfg_len, pid_t *pid_out, struct cove_err *err)
{
	if (!oci_id_valid(o->id))
		return cove_err_set(err, -EINVAL, "invalid container id format: %s", o->id);
	if (!cfg->has_process)
		return cove_err_set(err, -EINVAL, "process: required field is missing");
	if (cfg->process.terminal && !o->console_socket && !o->foreground)
		return cove_err_set(err, -EINVAL,
				    "cannot allocate tty if runc will detach without setting "
				    "console socket");
	char rootfs[PATH_MAX], raw[PATH_MAX * 2];
	if (cfg->root_path[0] == '/')
		snprintf(raw, sizeof(raw), "%s", cfg->root_path);
	else
		snprintf(raw, sizeof(raw), "%s/%s", o->bundle, cfg->root_path);
	struct stat st;
	if (!realpath(raw, rootfs) || stat(rootfs, &st) < 0 || !S_ISDIR(st.st_mode))
		return cove_err_set(err, -ENOENT, "root.path: rootfs (%s) does not exist", raw);

	struct oci_state s;
	memset(&s, 0, sizeof(s));
	snprintf(s.id, sizeof(s.id), "%s", o->id);
	snprintf(s.bundle, sizeof(s.bundle), "%s", o->bundle);
	snprintf(s.rootfs, sizeof(s.rootfs), "%s", rootfs);
	if ((size_t)snprintf(s.dir, sizeof(s.dir), "%s/%s", o->root, o->id) >= sizeof(s.dir))
		return cove_err_set(err, -ENAMETOOLONG, "--root: path too long");
	now_rfc3339(s.created, sizeof(s.created));
	s.owner = getuid();
	for (int k = 0; k < OCI_HOOK_COUNT; k++)
		if (cfg->hooks.count[k])
			s.hooks |= 1u << k;
	if (mkdir_all(o->root) < 0)
		return cove_err_set(err, -errno, "--root %s: %s", o->root, strerror(errno));
	if (mkdir(s.dir, 0711) < 0) {
		if (errno == EEXIST)
			return cove_err_set(err, -EEXIST, "container with id exists: %s", o->id);
		return cove_err_set(err, -errno, "%s: %s", s.dir, strerror(errno));
	}
	int rc = 0, sv[2] = {-1, -1}, own_pidns = -1;
	pid_t pid = -1;
	bool cg_made = false;
	char fifo[PATH_MAX + 16], path[PATH_MAX + 16], buf[600];
	struct oci_init_args a = {.cfg = cfg,
				  .opts = o,
				  .rootfs = rootfs,
				  .fifo_path = fifo,
				  .bundle = o->bundle,
				  .cg = &s.cg,
				  .console_fd = -1};
	int pty[2] = {-1, -1};
	for (int t = 0; t < OCI_NS_COUNT; t++)
		a.ns_fds[t] = -1;
	snprintf(fifo, sizeof(fifo), "%s/exec.fifo", s.dir);
	/* Writable by the container's root even when it is mapped to another host uid. */
	if (mkfifo(fifo, 0622) < 0 || chmod(fifo, 0622) < 0) {
		rc = cove_err_set(err, -errno, "%s: %s", fifo, strerror(errno));
		goto err_state;
	}
	if (cfg_text) {
		snprintf(path, sizeof(path), "%s/config.json", s.dir);
		int r = oci_write_file_atomic(path, cfg_text, cfg_len, 0600);
		if (r < 0) {
			rc = cove_err_set(err, r, "%s: %s", path, strerror(-r));
			goto err_state;
		}
	}
	if (oci_fail_at("state")) {
		rc = cove_err_set(err, -EIO, "injected failure at state (COVE_OCI_FAIL_AT)");
		goto err_state;
	}
	rc = oci_cgroup_init(&s.cg, cfg->cgroups_path, o->id, o->systemd_cgroup, err);
	if (rc)
		goto err_state;
	if (oci_cgroup_exists(&s.cg)) {
		/* Only a group we made is ours to remove on failure. */
		rc = cove_err_set(err, -EEXIST, "linux.cgroupsPath: cgroup %s is already in use",
				  s.cg.path);
		s.cg.path[0] = '\0';
		goto err_state;
	}
	cg_made = true;
	rc = oci_cgroup_create(&s.cg, cfg->has_resources ? &cfg->resources : NULL, cfg, err);
	if (rc)
		goto err_cgroup;
	if (oci_fail_at("cgroup")) {
		rc = cove_err_set(err, -EIO, "injected failure at cgroup (COVE_OCI_FAIL_AT)");
		goto err_cgroup;
	}
	for (int t = 0; t < OCI_NS_COUNT; t++) {
		if (!cfg->ns[t].path)
			continue;
		a.ns_fds[t] = open(cfg->ns[t].path, O_RDONLY | O_CLOEXEC);
		if (a.ns_fds[t] < 0) {
			rc = cove_err_set(err, -errno, "linux.namespaces: %s: %s", cfg->ns[t].path,
					  strerror(errno));
			goto err_cgroup;
		}
	}
	/* Joining a pid namespace applies to children: enter it here, before the clone, and
	 * come back after it. */
	if (a.ns_fds[OCI_NS_PID] >= 0)
		own_pidns = open("/proc/self/ns/pid_for_children", O_RDONLY | O_CLOEXEC);
	if (a.ns_fds[OCI_NS_PID] >= 0 && setns(a.ns_fds[OCI_NS_PID], CLONE_NEWPID) < 0) {
		rc = cove_err_set(err, -errno, "linux.namespaces: joining %s: %s",
				  cfg->ns[OCI_NS_PID].path, strerror(errno));
		goto err_cgroup;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = cove_err_set(err, -errno, "socketpair: %s", strerror(errno));
		goto err_cgroup;
	}
	/* New namespaces must belong to a user namespace joined by path, so they are made
	 * after init joins it (init.c), and the real init's pid comes back in credentials. */
	a.stage2_flags = clone_flags(cfg);
	a.two_stage = cfg->ns[OCI_NS_USER].path && a.stage2_flags;
	int one = 1;
	if (a.two_stage && setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
		rc = cove_err_set(err, -errno, "SO_PASSCRED: %s", strerror(errno));
		goto err_cgroup;
	}
	int first_flags = a.two_stage ? 0 : a.stage2_flags;
	if (cfg->process.terminal && !o->console_socket && o->pty_master) {
		/* run in the foreground: the pty master comes back to us to proxy. */
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pty) < 0) {
			rc = cove_err_set(err, -errno, "socketpair: %s", strerror(errno));
			goto err_cgroup;
		}
		a.console_fd = pty[1];
	}
	fflush(NULL);
	pid = -1;
	a.self_attach = false;
	int cgfd = oci_cgroup_open_v2(&s.cg);
	if (cgfd >= 0) {
		/* Born in the v2 group; the child moves itself into the v1 ones. */
		struct clone3_args ca = {.flags = (uint64_t)first_flags | CLONE_INTO_CGROUP_FLAG,
					 .exit_signal = SIGCHLD,
					 .cgroup = (uint64_t)cgfd};
		a.self_attach = true;
		pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
		close(cgfd); /* in both: the child must not carry a host directory fd */
		if (pid < 0)
			a.self_attach = false;
	}
	if (pid < 0) {
		/* No clone3 (or no v2 group): v1 groups are still entered by the child. */
		a.self_attach = s.cg.mode == OCI_CG_V1;
		pid = (pid_t)syscall(SYS_clone, first_flags | SIGCHLD, NULL, NULL, NULL, NULL);
	}
	if (pid < 0) {
		rc = cove_err_set(err, -errno, "clone: %s", strerror(errno));
		goto err_cgroup;
	}
	if (pid == 0) {
		close(sv[0]);
		a.sync_fd = sv[1];
		oci_init_main(&a);
	}
	close(sv[1]);
	sv[1] = -1;
	if (own_pidns >= 0) {
		setns(own_pidns, CLONE_NEWPID);
		close(own_pidns);
		own_pidns = -1;
	}
	if (oci_fail_at("clone")) {
		rc = cove_err_set(err, -EIO, "injected failure at clone (COVE_OCI_FAIL_AT)");
		goto err_kill;
	}
	if (cfg->ns[OCI_NS_USER].present && !cfg->ns[OCI_NS_USER].path) {
		rc = write_idmap(pid, "uid_map", cfg->uid_maps, cfg->n_uid_maps, err);
		if (!rc)
			rc = write_idmap(pid, "gid_map", cfg->gid_maps, cfg->n_gid_maps, err);
		if (rc)
			goto err_kill;
	}
	if (!a.self_attach) {
		rc = oci_cgroup_attach(&s.cg, pid, err);
		if (rc)
			goto err_kill;
	}
	if (cfg->process.has_oom_score_adj) {
		snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", (int)pid);
		snprintf(buf, sizeof(buf), "%d", cfg->process.oom_score_adj);
		int r = oci_write_file(path, buf, strlen(buf));
		if (r < 0) {
			rc = cove_err_set(err, r, "process.oomScoreAdj: %s", strerror(-r));
			goto err_kill;
		}
	}
	s.pid = pid;
	s.start_time = oci_proc_start_time(pid, NULL);
	{
		char *sj = NULL;
		ssize_t n = send_go(sv[0], &s, &sj);
		if (n >= 0 && a.two_stage) {
			/* The first stage exits once the real init runs: reap it, then send the
			 * state again with the real init's pid. */
			pid_t p2 = read_stage2_pid(sv[0], err);
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
			pid = p2;
			if (p2 < 0) {
				free(sj);
				rc = p2;
				goto err_state_killed;
			}
			s.pid = pid;
			s.start_time = oci_proc_start_time(pid, NULL);
			free(sj);
			n = send_go(sv[0], &s, &sj);
		}
		if (n < 0) {
			free(sj);
			rc = n == -ENOMEM ? cove_err_set(err, -ENOMEM, "out of memory")
					  : cove_err_set(err, (int)n, "sync with init: %s",
							 strerror((int)-n));
			goto err_kill;
		}
		for (;;) {
			int m = read_msg(sv[0], buf, sizeof(buf), err);
			if (m == 'H') {
				rc = oci_hooks_run(&cfg->hooks, OCI_HOOK_PRESTART, sj, err);
				if (!rc)
					rc = oci_hooks_run(&cfg->hooks, OCI_HOOK_CREATE_RUNTIME, sj,
							   err);
				if (rc || send(sv[0], "h", 1, MSG_NOSIGNAL) != 1) {
					free(sj);
					rc = rc ? rc : cove_err_set(err, -EPIPE, "sync with init");
					goto err_kill;
				}
				continue;
			}
			free(sj);
			if (m < 0) {
				rc = m;
				goto err_kill;
			}
			if (m != 'R') {
				rc = cove_err_set(err, -EPROTO, "unexpected message from init");
				goto err_kill;
			}
			break;
		}
	}
	close(sv[0]);
	sv[0] = -1;
	if (pty[0] >= 0) {
		int m = oci_recv_fd(pty[0]);
		if (m < 0) {
			rc = cove_err_set(err, -EIO, "terminal: no pty master from init");
			goto err_kill;
		}
		*o->pty_master = m;
	}
	if (oci_fail_at("ready")) {
		rc = cove_err_set(err, -EIO, "injected failure at ready (COVE_OCI_FAIL_AT)");
		goto err_kill;
	}
	rc = oci_state_save(&s, err);
	if (rc)
		goto err_kill;
	if (o->pid_file) {
		snprintf(buf, sizeof(buf), "%d", (int)pid);
		int r = oci_write_file_atomic(o->pid_file, buf, strlen(buf), 0644);
		if (r == 0 && oci_fail_at("pidfile"))
			unlink(o->pid_file);
		if (r < 0 || oci_fail_at("pidfile")) {
			rc = cove_err_set(err, r < 0 ? r : -EIO, "--pid-file %s: %s", o->pid_file,
					  r < 0 ? strerror(-r)
						: "injected failure (COVE_OCI_FAIL_AT)");
			goto err_kill;
		}
	}
	for (int t = 0; t < OCI_NS_COUNT; t++)
		if (a.ns_fds[t] >= 0)
			close(a.ns_fds[t]);
	for (int k = 0; k < 2; k++)
		if (pty[k] >= 0)
			close(pty[k]);
	*pid_out = pid;
	return 0;

err_kill:
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
err_state_killed:
	/* (a second-stage init that was cloned sees the socket close and exits) */
err_cgroup:
	if (cg_made)
		oci_cgroup_destroy(&s.cg);
err_state:
	for (int k = 0; k < 2; k++)
		if (pty[k] >= 0)
			close(pty[k]);
	if (o->pty_master && *o->pty_master >= 0) {
		close(*o->pty_master);
		*o->pty_master = -1;
	}
	if (own_pidns >= 0) {
		setns(own_pidns, CLONE_NEWPID);
		close(own_pidns);
	}
	for (int k = 0; k < 2; k++)
		if (sv[k] >= 0)
			close(sv[k]);
	for (int t = 0; t < OCI_NS_COUNT; t++)
		if (a.ns_fds[t] >= 0)
			close(a.ns_fds[t]);
	oci_state_remove(s.dir);
	return rc;
}

int oci_start(const char *root, const char *id, struct cove_err *err)
{
	struct oci_state st;
	int rc = oci_state_load(root, id, &st, err);
	if (rc)
		return rc;
	enum oci_status status = oci_state_status(&st);
	if (status != OCI_CREATED) {
		oci_state_free(&st);
		if (status == OCI_STOPPED)
			return cove_err_set(err, -EINVAL,
					    "cannot start a container that has stopped");
		if (status == OCI_RUNNING)
			return cove_err_set(err, -EINVAL,
					    "cannot start an already running container");
		return cove_err_set(err, -EINVAL, "cannot start a container in the %s state",
				    oci_status_name(status));
	}
	char fifo[PATH_MAX + 16];
	snprintf(fifo, sizeof(fifo), "%s/exec.fifo", st.dir);
	int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		oci_state_free(&st);
		return cove_err_set(err, -errno, "cannot start an already running container");
	}
	/* Init opens the write side as soon as we are here; wait while it lives. */
	char c = 0;
	rc = -ETIMEDOUT;
	for (int i = 0; i < 10000; i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, 10);
		if (r > 0 && read(fd, &c, 1) == 1) {
			rc = 0;
			break;
		}
		if (r > 0 && (p.revents & POLLHUP) && i > 0) {
			/* Writer went away without writing. */
		}
		bool zombie;
		unsigned long long t = oci_proc_start_time(st.pid, &zombie);
		if (!t || zombie) {
			rc = -ESRCH;
			break;
		}
	}
	close(fd);
	unlink(fifo);
	oci_state_free(&st);
	if (rc == -ESRCH)
		return cove_err_set(err, rc, "container init exited before start");
	if (rc)
		return cove_err_set(err, rc, "timed out waiting for container init");
	return 0;
}

int oci_destroy(struct oci_state *st, struct cove_err *err)
{
	int rc = 0;
	if (oci_cgroup_frozen(&st->cg))
		oci_cgroup_freeze(&st->cg, false, NULL);
	if (oci_cgroup_destroy(&st->cg) < 0) {
		/* Stray processes keep it: kill them and try once more. */
		pid_t *pids = NULL;
		size_t n = 0;
		if (oci_cgroup_pids(&st->cg, &pids, &n) == 0)
			for (size_t i = 0; i < n; i++)
				kill(pids[i], SIGKILL);
		free(pids);
		if (oci_cgroup_destroy(&st->cg) < 0)
			rc = cove_err_set(err, -EBUSY, "cgroup %s: cannot remove", st->cg.path);
	}
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/config.json", st->dir);
	struct oci_config cfg;
	struct cove_err e2 = {0};
	if ((st->hooks & (1u << OCI_HOOK_POSTSTOP)) && oci_config_load(path, 0, &cfg, &e2) == 0) {
		if (cfg.hooks.count[OCI_HOOK_POSTSTOP]) {
			char *sj = oci_state_json(st, OCI_STOPPED, false);
			if (sj && oci_hooks_run(&cfg.hooks, OCI_HOOK_POSTSTOP, sj, &e2))
				fprintf(stderr, "cove-runc: warning: %s\n", e2.msg);
			free(sj);
		}
		oci_config_free(&cfg);
	}
	oci_state_remove(st->dir);
	return rc;
}
