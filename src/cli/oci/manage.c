/* exec, ps, list, pause, resume, update: commands on containers that exist. */
#include "cli/oci/oci_cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *slurp(const char *path, size_t *len)
{
	int fd = strcmp(path, "-") == 0 ? dup(0) : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		if (n == cap) {
			if (cap >= (16u << 20))
				break;
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*len = n;
	return buf;
}

static int load(struct oci_global *g, const char *id, struct oci_state *st, struct oci_config *cfg,
		struct cove_err *err)
{
	int rc = oci_state_load(g->root, id, st, err);
	if (rc || !cfg)
		return rc;
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/config.json", st->dir);
	rc = oci_config_load(path, 0, cfg, err);
	if (rc)
		oci_state_free(st);
	return rc;
}

int oci_cmd_exec(struct oci_global *g, int argc, char **argv)
{
	struct oci_exec_opts o = {.pty_proxy = oci_cli_proxy_pty};
	const char *process = NULL, *id = NULL, *cwd = NULL, *user = NULL;
	const char *envs[64];
	size_t n_env = 0;
	bool tty = false;
	int i = 1;
	for (; i < argc; i++) {
		const char *v = NULL, *a = argv[i];
		if (a[0] != '-') {
			id = a;
			i++;
			break;
		}
		if (oci_cli_opt(argc, argv, &i, "process|p", &v))
			process = v;
		else if (oci_cli_opt(argc, argv, &i, "pid-file", &v))
			o.pid_file = v;
		else if (oci_cli_opt(argc, argv, &i, "console-socket", &v))
			o.console_socket = v;
		else if (oci_cli_opt(argc, argv, &i, "cwd", &v))
			cwd = v;
		else if (oci_cli_opt(argc, argv, &i, "user|u", &v))
			user = v;
		else if (oci_cli_opt(argc, argv, &i, "env|e", &v)) {
			if (v && n_env < 63)
				envs[n_env++] = v;
		} else if (oci_cli_opt(argc, argv, &i, "preserve-fds", &v))
			o.preserve_fds = v ? atoi(v) : 0;
		else if (oci_cli_opt(argc, argv, &i, "detach|d", NULL))
			o.detach = true;
		else if (oci_cli_opt(argc, argv, &i, "tty|t", NULL))
			tty = true;
		else if (oci_cli_opt(argc, argv, &i, "no-new-privs", NULL))
			continue;
		else
			return oci_cli_usage_error("unknown option %s", a);
		if (!v && (strstr(a, "process") || strstr(a, "pid-file") || strstr(a, "socket")))
			return oci_cli_usage_error("%s needs a value", a);
	}
	if (!id)
		return oci_cli_usage_error("%s", "missing container id");
	if (o.preserve_fds < 0 || o.preserve_fds > 1024)
		return oci_cli_usage_error("%s", "--preserve-fds: bad value");
	struct cove_err err = {0};
	struct oci_state st;
	struct oci_config cfg;
	if (load(g, id, &st, &cfg, &err))
		return oci_cli_fail(&err);
	struct oci_process proc;
	int rc = 0;
	if (process) {
		size_t len = 0;
		char *text = slurp(process, &len);
		if (!text)
			rc = cove_err_set(&err, -errno, "--process %s: %s", process,
					  strerror(errno));
		else
			rc = oci_process_parse(text, len, 0, &cfg, &proc, &err);
		free(text);
	} else {
		if (i >= argc) {
			rc = cove_err_set(&err, -EINVAL, "exec: missing the command to run");
		} else {
			proc = cfg.process;
			proc.args = (const char **)(argv + i);
			proc.n_args = (size_t)(argc - i);
			proc.terminal = tty;
			if (cwd)
				proc.cwd = cwd;
			if (user) {
				unsigned uid = 0, gid = 0;
				int k = sscanf(user, "%u:%u", &uid, &gid);
				proc.uid = uid;
				proc.gid = k == 2 ? gid : uid;
			}
			if (n_env) {
				const char **env = calloc(proc.n_env + n_env + 1, sizeof(char *));
				if (env) {
					memcpy(env, proc.env, proc.n_env * sizeof(char *));
					memcpy(env + proc.n_env, envs, n_env * sizeof(char *));
					proc.env = env;
				}
			}
		}
	}
	int status = 0;
	if (!rc)
		rc = oci_exec(&o, &st, &cfg, &proc, &status, &err);
	if (!process && n_env && proc.env != cfg.process.env)
		free((void *)proc.env);
	oci_config_free(&cfg);
	oci_state_free(&st);
	if (rc)
		return oci_cli_fail(&err);
	return status;
}

int oci_cmd_ps(struct oci_global *g, int argc, char **argv)
{
	const char *format = "table", *id = NULL;
	int i = 1;
	for (; i < argc; i++) {
		const char *v = NULL;
		if (argv[i][0] != '-') {
			id = argv[i];
			i++;
			break;
		}
		if (oci_cli_opt(argc, argv, &i, "format|f", &v) && v)
			format = v;
		else
			return oci_cli_usage_error("unknown option %s", argv[i]);
	}
	if (!id)
		return oci_cli_usage_error("%s", "missing container id");
	struct cove_err err = {0};
	struct oci_state st;
	if (load(g, id, &st, NULL, &err))
		return oci_cli_fail(&err);
	pid_t *pids = NULL;
	size_t n = 0;
	int rc = oci_cgroup_pids(&st.cg, &pids, &n);
	oci_state_free(&st);
	if (rc < 0 && rc != -ENOENT) {
		cove_err_set(&err, rc, "reading the container's cgroup: %s", strerror(-rc));
		return oci_cli_fail(&err);
	}
	if (strcmp(format, "json") == 0) {
		putchar('[');
		for (size_t k = 0; k < n; k++)
			printf("%s%d", k ? "," : "", (int)pids[k]);
		puts("]");
		free(pids);
		return 0;
	}
	/* table: ps(1) output restricted to the container's processes. */
	int pfd[2];
	if (pipe(pfd) < 0) {
		free(pids);
		return 1;
	}
	pid_t child = fork();
	if (child == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		char *args[64] = {"ps"};
		int na = 1;
		if (i >= argc)
			args[na++] = "-ef";
		for (; i < argc && na < 63; i++)
			args[na++] = argv[i];
		args[na] = NULL;
		execvp("ps", args);
		_exit(127);
	}
	close(pfd[1]);
	FILE *f = fdopen(pfd[0], "r");
	char line[4096];
	int pid_col = -1, lineno = 0;
	while (f && fgets(line, sizeof(line), f)) {
		char copy[4096];
		snprintf(copy, sizeof(copy), "%s", line);
		int col = 0;
		char *save = NULL;
		bool print = false;
		for (char *tok = strtok_r(copy, " \t\n", &save); tok;
		     tok = strtok_r(NULL, " \t\n", &save), col++) {
			if (lineno == 0 && strcmp(tok, "PID") == 0)
				pid_col = col;
			if (lineno > 0 && col == pid_col) {
				long p = strtol(tok, NULL, 10);
				for (size_t k = 0; k < n; k++)
					if (pids[k] == p)
						print = true;
			}
		}
		if (lineno == 0 || print)
			fputs(line, stdout);
		lineno++;
	}
	if (f)
		fclose(f);
	waitpid(child, NULL, 0);
	free(pids);
	return 0;
}

int oci_cmd_list(struct oci_global *g, int argc, char **argv)
{
	const char *format = "table";
	bool quiet = false;
	for (int i = 1; i < argc; i++) {
		const char *v = NULL;
		if (oci_cli_opt(argc, argv, &i, "quiet|q", NULL))
			quiet = true;
		else if (oci_cli_opt(argc, argv, &i, "format|f", &v) && v)
			format = v;
		else
			return oci_cli_usage_error("unknown option %s", argv[i]);
	}
	bool json = strcmp(format, "json") == 0;
	DIR *d = opendir(g->root);
	struct json_object *arr = json ? json_object_new_array() : NULL;
	if (!json && !quiet)
		printf("%-12s%-8s%-10s%-40s%-32s%s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED",
		       "OWNER");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.' || !oci_id_valid(e->d_name))
			continue;
		struct oci_state st;
		struct cove_err err = {0};
		if (oci_state_load(g->root, e->d_name, &st, &err))
			continue;
		enum oci_status s = oci_state_status(&st);
		if (quiet) {
			puts(st.id);
		} else if (json) {
			char *j = oci_state_json(&st, s, false);
			struct json_object *o = j ? json_tokener_parse(j) : NULL;
			if (o)
				json_object_array_add(arr, o);
			free(j);
		} else {
			printf("%-12s%-8d%-10s%-40s%-32s%s\n", st.id,
			       s == OCI_STOPPED ? 0 : (int)st.pid, oci_status_name(s), st.bundle,
			       st.created, "root");
		}
		oci_state_free(&st);
	}
	if (d)
		closedir(d);
	if (json) {
		puts(json_object_array_length(arr) ? json_object_to_json_string(arr) : "null");
		json_object_put(arr);
	}
	return 0;
}

static int pause_resume(struct oci_global *g, int argc, char **argv, bool pause)
{
	const char *id = argc > 1 ? argv[argc - 1] : NULL;
	if (!id || id[0] == '-')
		return oci_cli_usage_error("%s", "missing container id");
	struct cove_err err = {0};
	struct oci_state st;
	if (load(g, id, &st, NULL, &err))
		return oci_cli_fail(&err);
	enum oci_status s = oci_state_status(&st);
	int rc = 0;
	if (pause && s != OCI_RUNNING && s != OCI_CREATED)
		rc = cove_err_set(&err, -EINVAL, "container not running");
	else if (!pause && s != OCI_PAUSED)
		rc = cove_err_set(&err, -EINVAL, "container not paused");
	else
		rc = oci_cgroup_freeze(&st.cg, pause, &err);
	oci_state_free(&st);
	return rc ? oci_cli_fail(&err) : 0;
}

int oci_cmd_pause(struct oci_global *g, int argc, char **argv)
{
	return pause_resume(g, argc, argv, true);
}

int oci_cmd_resume(struct oci_global *g, int argc, char **argv)
{
	return pause_resume(g, argc, argv, false);
}

int oci_cmd_update(struct oci_global *g, int argc, char **argv)
{
	const char *res = NULL, *id = NULL, *pids_limit = NULL, *memory = NULL;
	for (int i = 1; i < argc; i++) {
		const char *v = NULL;
		if (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)
			id = argv[i];
		else if (oci_cli_opt(argc, argv, &i, "resources|r", &v))
			res = v;
		else if (oci_cli_opt(argc, argv, &i, "pids-limit", &v))
			pids_limit = v;
		else if (oci_cli_opt(argc, argv, &i, "memory", &v))
			memory = v;
		else
			return oci_cli_usage_error("unknown option %s", argv[i]);
	}
	if (!id)
		return oci_cli_usage_error("%s", "missing container id");
	struct cove_err err = {0};
	struct oci_state st;
	struct oci_config cfg;
	if (load(g, id, &st, &cfg, &err))
		return oci_cli_fail(&err);
	struct oci_resources r;
	memset(&r, 0, sizeof(r));
	int rc = 0;
	if (res) {
		size_t len = 0;
		char *text = slurp(res, &len);
		if (!text)
			rc = cove_err_set(&err, -errno, "--resources %s: %s", res, strerror(errno));
		else
			rc = oci_resources_parse(text, len, &cfg, &r, &err);
		free(text);
	}
	if (!rc && pids_limit) {
		r.has_pids_limit = true;
		r.pids_limit = strtoll(pids_limit, NULL, 10);
	}
	if (!rc && memory) {
		r.has_mem_limit = true;
		r.mem_limit = strtoll(memory, NULL, 10);
	}
	enum oci_status s = rc ? OCI_STOPPED : oci_state_status(&st);
	if (!rc && s == OCI_STOPPED)
		rc = cove_err_set(&err, -EINVAL, "container not running");
	if (!rc)
		rc = oci_cgroup_apply(&st.cg, &r, &err);
	oci_config_free(&cfg);
	oci_state_free(&st);
	return rc ? oci_cli_fail(&err) : 0;
}
