/* exec: run another process inside a running container's namespaces and cgroup. */
#include "oci/exec.h"

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
#include <sys/wait.h>
#include <unistd.h>

static const struct {
	const char *name;
	int flag;
} ns_order[] = {{"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC},	      {"uts", CLONE_NEWUTS},
		{"net", CLONE_NEWNET},	 {"cgroup", CLONE_NEWCGROUP}, {"time", 0x80},
		{"mnt", CLONE_NEWNS}};

static bool same_ns(pid_t pid, const char *name)
{
	char a[64], b[64];
	struct stat sa, sb;
	snprintf(a, sizeof(a), "/proc/%d/ns/%s", (int)pid, name);
	snprintf(b, sizeof(b), "/proc/self/ns/%s", name);
	if (stat(a, &sa) < 0 || stat(b, &sb) < 0)
		return true;
	return sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

int oci_exec(const struct oci_exec_opts *o, struct oci_state *st, const struct oci_config *cfg,
	     const struct oci_process *proc, int *exit_status, struct cove_err *err)
{
	enum oci_status status = oci_state_status(st);
	if (status == OCI_STOPPED || status == OCI_CREATING)
		return cove_err_set(err, -EINVAL, "cannot exec in a stopped container");
	if (status == OCI_PAUSED)
		return cove_err_set(err, -EINVAL, "cannot exec in a paused container");
	if (proc->terminal && !o->console_socket && (o->detach || !o->pty_proxy))
		return cove_err_set(err, -EINVAL,
				    "cannot allocate tty if runc will detach without setting "
				    "console socket");
	int fds[7];
	for (size_t i = 0; i < 7; i++) {
		fds[i] = -1;
		if (same_ns(st->pid, ns_order[i].name))
			continue;
		char p[64];
		snprintf(p, sizeof(p), "/proc/%d/ns/%s", (int)st->pid, ns_order[i].name);
		fds[i] = open(p, O_RDONLY | O_CLOEXEC);
	}
	int pidns = -1, own_pidns = -1, rc = 0, cons = -1, pty[2] = {-1, -1};
	if (!same_ns(st->pid, "pid")) {
		/* Only the child goes in: we come back after the fork (helpers we spawn later,
		 * such as sanitizer threads, must not land in the container). */
		own_pidns = open("/proc/self/ns/pid_for_children", O_RDONLY | O_CLOEXEC);
		char p[64];
		snprintf(p, sizeof(p), "/proc/%d/ns/pid", (int)st->pid);
		pidns = open(p, O_RDONLY | O_CLOEXEC);
		if (pidns < 0 || setns(pidns, CLONE_NEWPID) < 0) {
			rc = cove_err_set(err, -errno, "joining the pid namespace: %s",
					  strerror(errno));
			goto out;
		}
	}
	if (proc->terminal && !o->console_socket) {
		/* The child sends the master back to us over this pair, to relay. */
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pty) < 0) {
			rc = cove_err_set(err, -errno, "socketpair: %s", strerror(errno));
			goto out;
		}
		cons = pty[1];
	} else if (proc->terminal && o->console_socket) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", o->console_socket);
		cons = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (cons < 0 || connect(cons, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			rc = cove_err_set(err, -errno, "--console-socket %s: %s", o->console_socket,
					  strerror(errno));
			goto out;
		}
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = cove_err_set(err, -errno, "socketpair: %s", strerror(errno));
		goto out;
	}
	fflush(NULL);
	/* As in create: born in the v2 group, self-moved into the v1 ones (no global lock). */
	pid_t pid = -1;
	bool self_attach = false;
	int cgfd = oci_cgroup_open_v2(&st->cg);
	if (cgfd >= 0) {
		struct {
			uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack,
			    stack_size, tls, set_tid, set_tid_size, cgroup;
		} ca = {.flags = 0x200000000ULL /* CLONE_INTO_CGROUP */,
			.exit_signal = SIGCHLD,
			.cgroup = (uint64_t)cgfd};
		self_attach = true;
		pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
		close(cgfd);
		if (pid < 0)
			self_attach = false;
	}
	if (pid < 0) {
		self_attach = st->cg.mode == OCI_CG_V1;
		pid = fork();
	}
	if (pid < 0) {
		rc = cove_err_set(err, -errno, "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		goto out;
	}
	if (pid == 0) {
		close(sv[0]);
		int sfd = sv[1];
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		prctl(PR_SET_DUMPABLE, 0);
		char go = 0;
		if (recv(sfd, &go, 1, 0) != 1 || go != 'G')
			_exit(1);
		struct cove_err cerr = {0};
		if (self_attach && oci_cgroup_attach_self_v1(&st->cg, &cerr))
			oci_child_fail(sfd, "%s", cerr.msg);
		for (size_t i = 0; i < 7; i++) {
			if (fds[i] >= 0 && setns(fds[i], ns_order[i].flag) < 0)
				oci_child_fail(sfd, "joining the %s namespace: %s",
					       ns_order[i].name, strerror(errno));
			if (i == 0 && fds[0] >= 0 &&
			    (syscall(SYS_setresgid, 0, 0, 0) < 0 ||
			     syscall(SYS_setresuid, 0, 0, 0) < 0))
				oci_child_fail(sfd, "becoming root in the user namespace: %s",
					       strerror(errno));
		}
		if (setsid() < 0 && proc->terminal)
			oci_child_fail(sfd, "setsid: %s", strerror(errno));
		char msg[512];
		if (cons >= 0 && oci_setup_console(cons, msg, sizeof(msg)))
			oci_child_fail(sfd, "%s", msg);
		if (chdir(proc->cwd) < 0)
			oci_child_fail(sfd, "process.cwd: %s: %s", proc->cwd, strerror(errno));
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd)) || cwd[0] != '/')
			oci_child_fail(sfd, "process.cwd: outside the container");
		char found[PATH_MAX];
		if (oci_lookup_exec(proc, found, sizeof(found)) < 0)
			oci_child_fail(sfd, "exec: \"%s\": executable file not found in $PATH",
				       proc->args[0]);
		prctl(PR_SET_PDEATHSIG, 0);
		/* The exec's own close-on-exec closes sfd: EOF tells the parent it worked. */
		oci_exec_process(cfg, proc, o->preserve_fds, sfd);
	}
	close(sv[1]);
	if (cons >= 0)
		close(cons);
	cons = -1;
	if (own_pidns >= 0)
		setns(own_pidns, CLONE_NEWPID);
	rc = self_attach ? 0 : oci_cgroup_attach(&st->cg, pid, err);
	if (!rc && proc->has_oom_score_adj) {
		char p[64], v[16];
		snprintf(p, sizeof(p), "/proc/%d/oom_score_adj", (int)pid);
		snprintf(v, sizeof(v), "%d", proc->oom_score_adj);
		oci_write_file(p, v, strlen(v));
	}
	if (!rc && send(sv[0], "G", 1, MSG_NOSIGNAL) != 1)
		rc = cove_err_set(err, -EPIPE, "exec: the child went away");
	if (!rc) {
		char msg[600];
		ssize_t n;
		do
			n = recv(sv[0], msg, sizeof(msg) - 1, 0);
		while (n < 0 && errno == EINTR);
		if (n > 0 && msg[0] == 'E') {
			msg[n] = '\0';
			rc = cove_err_set(err, -EINVAL, "%s", msg + 1);
		}
	}
	close(sv[0]);
	if (rc) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto out;
	}
	if (o->pid_file) {
		char v[16];
		snprintf(v, sizeof(v), "%d", (int)pid);
		int r = oci_write_file_atomic(o->pid_file, v, strlen(v), 0644);
		if (r < 0) {
			rc = cove_err_set(err, r, "--pid-file %s: %s", o->pid_file, strerror(-r));
			goto out;
		}
	}
	if (o->detach) {
		*exit_status = 0;
		goto out;
	}
	if (pty[0] >= 0) {
		int master = oci_recv_fd(pty[0]);
		if (master < 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			rc = cove_err_set(err, -EIO,
					  "terminal: no pty master from the exec'd process");
			goto out;
		}
		o->pty_proxy(master);
		close(master);
	}
	int ws = 0;
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	*exit_status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
out:
	if (cons >= 0)
		close(cons);
	if (pty[0] >= 0)
		close(pty[0]);
	for (size_t i = 0; i < 7; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (pidns >= 0)
		close(pidns);
	if (own_pidns >= 0) {
		setns(own_pidns, CLONE_NEWPID);
		close(own_pidns);
	}
	return rc;
}
