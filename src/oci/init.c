/* The container's init before exec: namespaces, rootfs, hostname, sysctl, console, exec FIFO. */
#include "oci/rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static const int ns_flag[OCI_NS_COUNT] = {
    [OCI_NS_PID] = CLONE_NEWPID,       [OCI_NS_NET] = CLONE_NEWNET,   [OCI_NS_MNT] = CLONE_NEWNS,
    [OCI_NS_IPC] = CLONE_NEWIPC,       [OCI_NS_UTS] = CLONE_NEWUTS,   [OCI_NS_USER] = CLONE_NEWUSER,
    [OCI_NS_CGROUP] = CLONE_NEWCGROUP, [OCI_NS_TIME] = CLONE_NEWTIME,
};

static int connect_socket(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void write_sysctl(int sfd, const struct oci_kv *kv)
{
	char path[512];
	int n = snprintf(path, sizeof(path), "/proc/sys/%s", kv->key);
	if (n < 0 || (size_t)n >= sizeof(path))
		oci_child_fail(sfd, "linux.sysctl.%s: name too long", kv->key);
	for (char *p = path + 10; *p; p++)
		if (*p == '.')
			*p = '/';
	int r = oci_write_file(path, kv->value, strlen(kv->value));
	if (r < 0)
		oci_child_fail(sfd, "linux.sysctl.%s: %s", kv->key, strerror(-r));
}

static void run_hooks_in_child(int sfd, const struct oci_config *c, enum oci_hook_kind k,
			       const char *state)
{
	struct cove_err err = {0};
	if (c->hooks.count[k] && oci_hooks_run(&c->hooks, k, state, &err))
		oci_child_fail(sfd, "%s", err.msg);
}

static void mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	}
	mkdir(buf, 0755);
}

_Noreturn void oci_init_main(struct oci_init_args *a)
{
	const struct oci_config *c = a->cfg;
	int sfd = a->sync_fd;
	char msg[512] = "";
	static char state[65536];
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* CVE-2019-5736: the container must not reach our /proc/PID/exe before exec. */
	prctl(PR_SET_DUMPABLE, 0);
	if (a->self_attach) {
		struct cove_err err = {0};
		if (oci_cgroup_attach_self_v1(a->cg, &err))
			oci_child_fail(sfd, "%s", err.msg);
	}
	ssize_t got = recv(sfd, state, sizeof(state) - 1, 0);
	if (got <= 0 || state[0] != 'G')
		_exit(1);
	state[got] = '\0';
	const char *state_json = state + 1;
	/* Open what lives on the host while our credentials are still the host's. */
	int cons = a->console_fd;
	if (cons < 0 && c->process.terminal && a->opts->console_socket) {
		cons = connect_socket(a->opts->console_socket);
		if (cons < 0)
			oci_child_fail(sfd, "--console-socket %s: %s", a->opts->console_socket,
				       strerror(errno));
	}
	int procfd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int fifofd = open(a->fifo_path, O_PATH | O_CLOEXEC);
	if (procfd < 0 || fifofd < 0)
		oci_child_fail(sfd, "opening the exec fifo: %s", strerror(errno));

	bool new_user = c->ns[OCI_NS_USER].present && !c->ns[OCI_NS_USER].path;
	if (a->ns_fds[OCI_NS_USER] >= 0 && setns(a->ns_fds[OCI_NS_USER], CLONE_NEWUSER) < 0)
		oci_child_fail(sfd, "linux.namespaces: joining user namespace: %s",
			       strerror(errno));
	if (c->ns[OCI_NS_USER].present &&
	    (syscall(SYS_setresgid, 0, 0, 0) < 0 || syscall(SYS_setresuid, 0, 0, 0) < 0))
		oci_child_fail(sfd, "linux.uidMappings: becoming root in the user namespace: %s",
			       strerror(errno));
	static const int order[] = {OCI_NS_IPC,	   OCI_NS_UTS,	OCI_NS_NET,
				    OCI_NS_CGROUP, OCI_NS_TIME, OCI_NS_MNT};
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		int t = order[i];
		if (a->ns_fds[t] >= 0 && setns(a->ns_fds[t], ns_flag[t]) < 0)
			oci_child_fail(sfd, "linux.namespaces: joining %s: %s", c->ns[t].path,
				       strerror(errno));
	}
	for (int t = 0; t < OCI_NS_COUNT; t++)
		if (a->ns_fds[t] >= 0)
			close(a->ns_fds[t]);
	if (a->two_stage) {
		pid_t p = (pid_t)syscall(SYS_clone, CLONE_PARENT | a->stage2_flags | SIGCHLD, NULL,
					 NULL, NULL, NULL);
		if (p < 0)
			oci_child_fail(sfd,
				       "linux.namespaces: creating namespaces in the joined user "
				       "namespace: %s",
				       strerror(errno));
		if (p > 0)
			_exit(0);
		/* The real init: the runtime's child now. It learns our pid from the credentials
		 * the kernel attaches to this message, then sends the state again. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		prctl(PR_SET_DUMPABLE, 0);
		if (send(sfd, "P", 1, MSG_NOSIGNAL) != 1)
			_exit(1);
		got = recv(sfd, state, sizeof(state) - 1, 0);
		if (got <= 0 || state[0] != 'G')
			_exit(1);
		state[got] = '\0';
	}
	/* Now inside its cgroup: a new cgroup namespace roots there. */
	if (c->ns[OCI_NS_CGROUP].present && !c->ns[OCI_NS_CGROUP].path &&
	    unshare(CLONE_NEWCGROUP) < 0)
		oci_child_fail(sfd, "linux.namespaces: cgroup: %s", strerror(errno));
	if (c->ns[OCI_NS_TIME].present && !c->ns[OCI_NS_TIME].path) {
		if (unshare(CLONE_NEWTIME) < 0)
			oci_child_fail(sfd, "linux.namespaces: time: %s", strerror(errno));
		if (c->has_time_offsets) {
			char off[128];
			snprintf(off, sizeof(off), "monotonic %lld %lld\nboottime %lld %lld\n",
				 (long long)c->time_offset_mono_sec,
				 (long long)c->time_offset_mono_nsec,
				 (long long)c->time_offset_boot_sec,
				 (long long)c->time_offset_boot_nsec);
			int r = oci_write_file("/proc/self/timens_offsets", off, strlen(off));
			if (r < 0)
				oci_child_fail(sfd, "linux.timeOffsets: %s", strerror(-r));
		}
	}
	if (setsid() < 0)
		oci_child_fail(sfd, "setsid: %s", strerror(errno));
	/* A session keyring of its own, unless --no-new-keyring (errors are harmless:
	 * keyrings may be unavailable in user namespaces). */
	if (!a->opts->no_new_keyring)
		syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, NULL);
	if (oci_fail_at("init"))
		oci_child_fail(sfd, "injected failure at init (COVE_OCI_FAIL_AT)");

	bool hooks_in_parent =
	    c->hooks.count[OCI_HOOK_PRESTART] || c->hooks.count[OCI_HOOK_CREATE_RUNTIME];
	if (c->ns[OCI_NS_MNT].present && !c->ns[OCI_NS_MNT].path) {
		struct rootfs_ctx r = {.cfg = c,
				       .cg = a->cg,
				       .rootfs = a->rootfs,
				       .bundle = a->bundle,
				       .rootfd = -1,
				       .in_userns = c->ns[OCI_NS_USER].present};
		if (rootfs_mounts(&r, msg, sizeof(msg)))
			oci_child_fail(sfd, "%s", msg);
		if (oci_fail_at("mounts"))
			oci_child_fail(sfd, "injected failure at mounts (COVE_OCI_FAIL_AT)");
		if (hooks_in_parent) {
			char reply = 0;
			if (send(sfd, "H", 1, MSG_NOSIGNAL) != 1 || recv(sfd, &reply, 1, 0) != 1 ||
			    reply != 'h')
				_exit(1);
		}
		run_hooks_in_child(sfd, c, OCI_HOOK_CREATE_CONTAINER, state_json);
		if (rootfs_pivot(&r, a->opts->no_pivot, msg, sizeof(msg)))
			oci_child_fail(sfd, "%s", msg);
		/* sysctls are written before /proc/sys turns read-only, as runc does. */
		for (size_t i = 0; i < c->n_sysctl; i++)
			write_sysctl(sfd, &c->sysctl[i]);
		if (rootfs_finish(&r, msg, sizeof(msg)))
			oci_child_fail(sfd, "%s", msg);
		close(r.rootfd);
	} else {
		if (hooks_in_parent) {
			char reply = 0;
			if (send(sfd, "H", 1, MSG_NOSIGNAL) != 1 || recv(sfd, &reply, 1, 0) != 1 ||
			    reply != 'h')
				_exit(1);
		}
		run_hooks_in_child(sfd, c, OCI_HOOK_CREATE_CONTAINER, state_json);
		if (!c->ns[OCI_NS_MNT].present && chroot(a->rootfs) < 0)
			oci_child_fail(sfd, "root.path: chroot %s: %s", a->rootfs, strerror(errno));
		if (chdir("/") < 0)
			oci_child_fail(sfd, "chdir /: %s", strerror(errno));
	}
	if (c->ns[OCI_NS_UTS].present) {
		if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0)
			oci_child_fail(sfd, "hostname: %s", strerror(errno));
		if (c->domainname && setdomainname(c->domainname, strlen(c->domainname)) < 0)
			oci_child_fail(sfd, "domainname: %s", strerror(errno));
	}
	if (!c->ns[OCI_NS_MNT].present || c->ns[OCI_NS_MNT].path)
		for (size_t i = 0; i < c->n_sysctl; i++)
			write_sysctl(sfd, &c->sysctl[i]);
	if (cons >= 0) {
		if (oci_setup_console(cons, msg, sizeof(msg)))
			oci_child_fail(sfd, "%s", msg);
		close(cons);
	}
	/* CVE-2024-21626: the working directory must be inside the container's root. */
	if (chdir(c->process.cwd) < 0) {
		mkdir_p(c->process.cwd);
		if (chdir(c->process.cwd) < 0)
			oci_child_fail(sfd, "process.cwd: %s: %s", c->process.cwd, strerror(errno));
	}
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)) || cwd[0] != '/')
		oci_child_fail(sfd, "process.cwd: %s is outside the container", c->process.cwd);
	char found[PATH_MAX];
	if (oci_lookup_exec(&c->process, found, sizeof(found)) < 0)
		oci_child_fail(sfd, "exec: \"%s\": executable file not found in $PATH",
			       c->process.args[0]);
	(void)new_user;

	prctl(PR_SET_PDEATHSIG, 0);
	if (send(sfd, "R", 1, MSG_NOSIGNAL) != 1)
		_exit(1);
	close(sfd);
	/* Wait for `start`: the open blocks until it opens the FIFO for reading. */
	char fp[64];
	snprintf(fp, sizeof(fp), "self/fd/%d", fifofd);
	int w = openat(procfd, fp, O_WRONLY | O_CLOEXEC);
	if (w < 0)
		oci_child_fail(-1, "opening the exec fifo for writing: %s", strerror(errno));
	if (write(w, "0", 1) != 1)
		oci_child_fail(-1, "writing the exec fifo: %s", strerror(errno));
	close(w);
	close(fifofd);
	close(procfd);
	run_hooks_in_child(-1, c, OCI_HOOK_START_CONTAINER, state_json);
	oci_exec_process(c, &c->process, a->opts->preserve_fds, -1);
}
