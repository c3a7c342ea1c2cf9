/* OCI hooks: run each with the container state on stdin, under its timeout. */
#include "oci/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *const kind_names[OCI_HOOK_COUNT] = {
    "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"};

static int run_one(const struct oci_hook *hk, const char *state, struct cove_err *err)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return cove_err_set(err, -errno, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(pfd[0]);
		close(pfd[1]);
		return cove_err_set(err, -e, "fork: %s", strerror(e));
	}
	if (pid == 0) {
		dup2(pfd[0], 0);
		static const char *const empty[] = {NULL};
		const char *argv0[] = {hk->path, NULL};
		execve(hk->path, (char *const *)(hk->args && hk->args[0] ? hk->args : argv0),
		       (char *const *)(hk->env ? hk->env : empty));
		_exit(127);
	}
	close(pfd[0]);
	/* A hook that does not read stdin must not block us: ignore EPIPE. */
	struct sigaction ign = {.sa_handler = SIG_IGN}, old;
	sigaction(SIGPIPE, &ign, &old);
	size_t len = strlen(state), off = 0;
	while (off < len) {
		ssize_t n = write(pfd[1], state + off, len - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(pfd[1]);
	sigaction(SIGPIPE, &old, NULL);
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int timeout_ms = hk->timeout > 0 ? hk->timeout * 1000 : -1;
	if (pidfd >= 0) {
		struct pollfd p = {.fd = pidfd, .events = POLLIN};
		int r;
		do
			r = poll(&p, 1, timeout_ms);
		while (r < 0 && errno == EINTR);
		close(pidfd);
		if (r == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return cove_err_set(err, -ETIMEDOUT, "hook %s timed out after %d s",
					    hk->path, hk->timeout);
		}
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		return cove_err_set(err, -EIO, "hook %s exited with status %d", hk->path,
				    WEXITSTATUS(status));
	return cove_err_set(err, -EIO, "hook %s killed by signal %d", hk->path, WTERMSIG(status));
}

int oci_hooks_run(const struct oci_hooks *h, enum oci_hook_kind kind, const char *state_json,
		  struct cove_err *err)
{
	for (size_t i = 0; i < h->count[kind]; i++) {
		int r = run_one(&h->list[kind][i], state_json, err);
		if (r)
			return cove_err_prefix(err, "%s hook #%zu", kind_names[kind], i);
	}
	return 0;
}
