/* create, run, start, state, kill, delete: the commands containerd's shim calls most. */
#include "cli/oci/oci_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

struct create_args {
	struct oci_create_opts o;
	bool detach, keep;
	char bundle[PATH_MAX];
};

static int parse_create(struct oci_global *g, int argc, char **argv, struct create_args *c,
			bool run)
{
	memset(c, 0, sizeof(*c));
	c->o.root = g->root;
	c->o.systemd_cgroup = g->systemd_cgroup;
	const char *bundle = ".";
	for (int i = 1; i < argc; i++) {
		const char *v = NULL, *a = argv[i];
		if (a[0] != '-') {
			if (c->o.id)
				return oci_cli_usage_error("unexpected argument %s", a);
			c->o.id = a;
		} else if (oci_cli_opt(argc, argv, &i, "bundle|b", &v)) {
			if (!(bundle = v))
				return oci_cli_usage_error("%s needs a value", a);
		} else if (oci_cli_opt(argc, argv, &i, "pid-file", &v)) {
			if (!(c->o.pid_file = v))
				return oci_cli_usage_error("%s needs a value", a);
		} else if (oci_cli_opt(argc, argv, &i, "console-socket", &v)) {
			if (!(c->o.console_socket = v))
				return oci_cli_usage_error("%s needs a value", a);
		} else if (oci_cli_opt(argc, argv, &i, "preserve-fds", &v)) {
			char *end;
			long n = v ? strtol(v, &end, 10) : -1;
			if (!v || *end || n < 0 || n > 1024)
				return oci_cli_usage_error("--preserve-fds: bad value %s", v);
			c->o.preserve_fds = (int)n;
		} else if (oci_cli_opt(argc, argv, &i, "no-pivot", NULL)) {
			c->o.no_pivot = true;
		} else if (oci_cli_opt(argc, argv, &i, "no-new-keyring", NULL)) {
			c->o.no_new_keyring = true;
		} else if (run && oci_cli_opt(argc, argv, &i, "detach|d", NULL)) {
			c->detach = true;
		} else if (run && oci_cli_opt(argc, argv, &i, "keep", NULL)) {
			c->keep = true;
		} else if (oci_cli_opt(argc, argv, &i, "criu|notify-socket", &v)) {
			continue;
		} else if (oci_cli_opt(argc, argv, &i, "no-subreaper", NULL)) {
			continue;
		} else {
			return oci_cli_usage_error("unknown option %s", a);
		}
	}
	if (!c->o.id)
		return oci_cli_usage_error("%s", "missing container id");
	if (!realpath(bundle, c->bundle))
		return oci_cli_usage_error("bundle %s does not exist", bundle);
	c->o.bundle = c->bundle;
	return 0;
}

static int do_create(struct create_args *c, pid_t *pid)
{
	struct cove_err err = {0};
	struct oci_config cfg;
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/config.json", c->bundle);
	/* Read once: the same bytes are parsed and kept in the state directory. */
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cove_err_set(&err, -errno, "%s: %s", path, strerror(errno));
		return oci_cli_fail(&err);
	}
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < (64 << 20)) {
		text = malloc((size_t)st.st_size + 1);
		while (text && len < (size_t)st.st_size) {
			ssize_t n = read(fd, text + len, (size_t)st.st_size - len);
			if (n <= 0)
				break;
			len += (size_t)n;
		}
	}
	close(fd);
	if (!text) {
		cove_err_set(&err, -EINVAL, "%s: cannot read", path);
		return oci_cli_fail(&err);
	}
	int rc = oci_config_parse(text, len, 0, &cfg, &err);
	if (rc) {
		free(text);
		return oci_cli_fail(&err);
	}
	/* The spec says to ignore what we do not know; say so, since it may be a typo. */
	size_t shown = sizeof(cfg.unknown) / sizeof(cfg.unknown[0]);
	for (size_t k = 0; k < cfg.n_unknown && k < shown; k++)
		oci_cli_log(OCI_LOG_WARNING, "config.json: unknown field %s ignored",
			    cfg.unknown[k]);
	if (cfg.n_unknown > shown)
		oci_cli_log(OCI_LOG_WARNING, "config.json: %zu more unknown fields ignored",
			    cfg.n_unknown - shown);
	rc = oci_create(&c->o, &cfg, text, len, pid, &err);
	free(text);
	oci_config_free(&cfg);
	if (rc)
		return oci_cli_fail(&err);
	oci_cli_log(OCI_LOG_DEBUG, "container %s created from %s: init pid %d, waiting for start",
		    c->o.id, c->bundle, (int)*pid);
	return 0;
}

int oci_cmd_create(struct oci_global *g, int argc, char **argv)
{
	struct create_args c;
	if (parse_create(g, argc, argv, &c, false))
		return 1;
	pid_t pid;
	return do_create(&c, &pid);
}

void oci_cli_proxy_pty(int master)
{
	struct termios saved;
	bool raw = isatty(0) && tcgetattr(0, &saved) == 0;
	if (raw) {
		struct termios t = saved;
		cfmakeraw(&t);
		tcsetattr(0, TCSANOW, &t);
		struct winsize ws;
		if (ioctl(0, TIOCGWINSZ, &ws) == 0)
			ioctl(master, TIOCSWINSZ, &ws);
	}
	bool in_open = true;
	char buf[4096];
	for (;;) {
		struct pollfd p[2] = {{.fd = master, .events = POLLIN},
				      {.fd = in_open ? 0 : -1, .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents) {
			ssize_t n = read(master, buf, sizeof(buf));
			if (n <= 0)
				break; /* EIO: every process holding the pty has gone */
			for (ssize_t off = 0; off < n;) {
				ssize_t w = write(1, buf + off, (size_t)(n - off));
				if (w <= 0)
					break;
				off += w;
			}
		}
		if (in_open && p[1].revents) {
			ssize_t n = read(0, buf, sizeof(buf));
			if (n <= 0)
				in_open = false;
			else if (write(master, buf, (size_t)n) < 0)
				in_open = false;
		}
	}
	if (raw)
		tcsetattr(0, TCSANOW, &saved);
}

static volatile sig_atomic_t fwd_pid;

static void forward(int sig)
{
	if (fwd_pid > 0)
		kill(fwd_pid, sig);
}

int oci_cmd_run(struct oci_global *g, int argc, char **argv)
{
	struct create_args c;
	if (parse_create(g, argc, argv, &c, true))
		return 1;
	c.o.foreground = !c.detach;
	int master = -1;
	if (!c.detach)
		c.o.pty_master = &master;
	pid_t pid;
	if (do_create(&c, &pid))
		return 1;
	struct cove_err err = {0};
	if (!c.detach) {
		fwd_pid = pid;
		struct sigaction sa = {.sa_handler = forward, .sa_flags = SA_RESTART};
		static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
		for (size_t k = 0; k < sizeof(sigs) / sizeof(sigs[0]); k++)
			sigaction(sigs[k], &sa, NULL);
	}
	if (oci_start(g->root, c.o.id, &err)) {
		struct oci_state st;
		struct cove_err e2 = {0};
		kill(pid, SIGKILL);
		if (!oci_state_load(g->root, c.o.id, &st, &e2)) {
			oci_destroy(&st, &e2);
			oci_state_free(&st);
		}
		return oci_cli_fail(&err);
	}
	if (c.detach)
		return 0;
	if (master >= 0) {
		oci_cli_proxy_pty(master);
		close(master);
	}
	int ws = 0;
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	int code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	if (!c.keep) {
		struct oci_state st;
		if (!oci_state_load(g->root, c.o.id, &st, &err)) {
			/* Other processes of the container go with its init. */
			pid_t *pids = NULL;
			size_t n = 0;
			if (oci_cgroup_pids(&st.cg, &pids, &n) == 0)
				for (size_t k = 0; k < n; k++)
					kill(pids[k], SIGKILL);
			free(pids);
			oci_destroy(&st, &err);
			oci_state_free(&st);
		}
	}
	return code;
}

static const char *need_id(int argc, char **argv, int first)
{
	for (int i = first; i < argc; i++)
		if (argv[i][0] != '-')
			return argv[i];
	return NULL;
}

int oci_cmd_start(struct oci_global *g, int argc, char **argv)
{
	const char *id = need_id(argc, argv, 1);
	if (!id)
		return oci_cli_usage_error("%s", "missing container id");
	struct cove_err err = {0};
	if (oci_start(g->root, id, &err))
		return oci_cli_fail(&err);
	oci_cli_log(OCI_LOG_DEBUG, "container %s started", id);
	/* poststart runs after the user process started, from the runtime. */
	struct oci_state st;
	if (oci_state_load(g->root, id, &st, &err) == 0 &&
	    !(st.hooks & (1u << OCI_HOOK_POSTSTART))) {
		oci_state_free(&st);
	} else if (!err.code) {
		char path[PATH_MAX + 16];
		struct oci_config cfg;
		snprintf(path, sizeof(path), "%s/config.json", st.dir);
		struct cove_err e2 = {0};
		if (oci_config_load(path, 0, &cfg, &e2) == 0) {
			if (cfg.hooks.count[OCI_HOOK_POSTSTART]) {
				char *sj = oci_state_json(&st, OCI_RUNNING, false);
				if (sj && oci_hooks_run(&cfg.hooks, OCI_HOOK_POSTSTART, sj, &e2))
					oci_cli_log(OCI_LOG_WARNING, "%s", e2.msg);
				free(sj);
			}
			oci_config_free(&cfg);
		}
		oci_state_free(&st);
	}
	return 0;
}

int oci_cmd_state(struct oci_global *g, int argc, char **argv)
{
	const char *id = need_id(argc, argv, 1);
	if (!id)
		return oci_cli_usage_error("%s", "missing container id");
	struct cove_err err = {0};
	struct oci_state st;
	if (oci_state_load(g->root, id, &st, &err))
		return oci_cli_fail(&err);
	char *j = oci_state_json(&st, oci_state_status(&st), true);
	oci_state_free(&st);
	if (!j)
		return 1;
	puts(j);
	free(j);
	return 0;
}

int oci_cmd_kill(struct oci_global *g, int argc, char **argv)
{
	bool all = false;
	const char *id = NULL, *sig_name = "SIGTERM";
	for (int i = 1; i < argc; i++) {
		if (oci_cli_opt(argc, argv, &i, "all|a", NULL))
			all = true;
		else if (argv[i][0] == '-' && argv[i][1])
			return oci_cli_usage_error("unknown option %s", argv[i]);
		else if (!id)
			id = argv[i];
		else
			sig_name = argv[i];
	}
	if (!id)
		return oci_cli_usage_error("%s", "missing container id");
	int sig = oci_signal_parse(sig_name);
	if (sig < 0)
		return oci_cli_usage_error("unknown signal %s", sig_name);
	struct cove_err err = {0};
	struct oci_state st;
	if (oci_state_load(g->root, id, &st, &err))
		return oci_cli_fail(&err);
	enum oci_status status = oci_state_status(&st);
	int rc = 0;
	if (status == OCI_STOPPED || status == OCI_CREATING) {
		/* containerd's shim matches on these words. */
		cove_err_set(&err, -ESRCH, "container not running");
		rc = 1;
	} else if (all) {
		pid_t *pids = NULL;
		size_t n = 0;
		if (oci_cgroup_pids(&st.cg, &pids, &n) < 0 || n == 0)
			n = 0;
		for (size_t k = 0; k < n; k++)
			kill(pids[k], sig);
		free(pids);
		if (kill(st.pid, sig) < 0 && errno != ESRCH && n == 0)
			rc = cove_err_set(&err, -errno, "%s", strerror(errno)) ? 1 : 1;
		if (status == OCI_PAUSED && (sig == SIGKILL || sig == SIGTERM))
			oci_cgroup_freeze(&st.cg, false, NULL);
	} else if (kill(st.pid, sig) < 0) {
		cove_err_set(&err, -errno, errno == ESRCH ? "no such process" : "%s",
			     strerror(errno));
		rc = 1;
	}
	oci_state_free(&st);
	return rc ? oci_cli_fail(&err) : 0;
}

static void wait_gone(pid_t pid, unsigned long long start)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd >= 0) {
		struct pollfd p = {.fd = pfd, .events = POLLIN};
		poll(&p, 1, 10000);
		close(pfd);
		return;
	}
	for (int i = 0; i < 10000; i++) {
		bool zombie;
		unsigned long long t = oci_proc_start_time(pid, &zombie);
		if (!t || zombie || t != start)
			return;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
}

int oci_cmd_delete(struct oci_global *g, int argc, char **argv)
{
	bool force = false;
	const char *id = NULL;
	for (int i = 1; i < argc; i++) {
		if (oci_cli_opt(argc, argv, &i, "force|f", NULL))
			force = true;
		else if (argv[i][0] == '-')
			return oci_cli_usage_error("unknown option %s", argv[i]);
		else
			id = argv[i];
	}
	if (!id)
		return oci_cli_usage_error("%s", "missing container id");
	struct cove_err err = {0};
	struct oci_state st;
	if (oci_state_load(g->root, id, &st, &err)) {
		if (force && err.code == -ENOENT)
			return 0;
		return oci_cli_fail(&err);
	}
	enum oci_status status = oci_state_status(&st);
	if (status == OCI_CREATING && !force) {
		oci_state_free(&st);
		cove_err_set(&err, -EBUSY, "cannot delete container %s that is being created", id);
		return oci_cli_fail(&err);
	}
	if ((status == OCI_RUNNING || status == OCI_PAUSED) && !force) {
		oci_state_free(&st);
		cove_err_set(&err, -EBUSY, "cannot delete container %s that is not stopped: %s", id,
			     oci_status_name(status));
		return oci_cli_fail(&err);
	}
	if (status != OCI_STOPPED && status != OCI_CREATING) {
		/* created: init waits on the FIFO; running with --force: everything goes. */
		pid_t *pids = NULL;
		size_t n = 0;
		if (oci_cgroup_pids(&st.cg, &pids, &n) == 0)
			for (size_t k = 0; k < n; k++)
				kill(pids[k], SIGKILL);
		free(pids);
		kill(st.pid, SIGKILL);
		if (status == OCI_PAUSED)
			oci_cgroup_freeze(&st.cg, false, NULL);
		wait_gone(st.pid, st.start_time);
	}
	int rc = oci_destroy(&st, &err);
	oci_state_free(&st);
	if (rc)
		return oci_cli_fail(&err);
	oci_cli_log(OCI_LOG_DEBUG, "container %s deleted (it was %s)", id, oci_status_name(status));
	return 0;
}
