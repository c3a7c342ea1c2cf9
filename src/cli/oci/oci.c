/* `cove oci` / `cove-runc`: runc's command line over the OCI runtime in src/oci. */
#include "cli/commands.h"
#include "cli/oci/oci_cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *log_path, *log_format = "text";
static enum oci_log_level log_level = OCI_LOG_WARNING; /* --debug: OCI_LOG_DEBUG */

static const char *const level_names[] = {"error", "warning", "info", "debug"};

/* One line in --log: logrus's text format, or a JSON object with --log-format json. */
static void log_line(enum oci_log_level level, const char *msg)
{
	FILE *f = fopen(log_path, "ae");
	if (!f)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char t[40];
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
	bool json = strcmp(log_format, "json") == 0;
	if (json)
		fprintf(f, "{\"level\":\"%s\",\"msg\":\"", level_names[level]);
	else
		fprintf(f, "time=\"%s\" level=%s msg=\"", t, level_names[level]);
	for (const char *p = msg; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, json ? "\\u%04x" : "\\x%02x", c);
		else
			fputc(c, f);
	}
	if (json)
		fprintf(f, "\",\"time\":\"%s\"}\n", t);
	else
		fputs("\"\n", f);
	fclose(f);
}

void oci_cli_log(enum oci_log_level level, const char *fmt, ...)
{
	if (level > log_level)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Errors always reach stderr (callers show them); the rest goes to --log when given. */
	if (level == OCI_LOG_ERROR)
		fprintf(stderr, "cove-runc: %s\n", msg);
	else if (!log_path)
		fprintf(stderr, "cove-runc: %s: %s\n", level_names[level], msg);
	if (log_path)
		log_line(level, msg);
}

void oci_cli_error(const char *msg)
{
	oci_cli_log(OCI_LOG_ERROR, "%s", msg);
}

int oci_cli_fail(const struct cove_err *err)
{
	oci_cli_error(err->msg[0] ? err->msg : strerror(-err->code));
	return 1;
}

int oci_cli_usage_error(const char *fmt, const char *arg)
{
	char msg[512];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(msg, sizeof(msg), fmt, arg ? arg : "");
#pragma GCC diagnostic pop
	oci_cli_error(msg);
	return 1;
}

/* Matches "--name", "-name", "--name=value", "-name=value"; takes the value if needed. */
bool oci_cli_opt(int argc, char **argv, int *i, const char *names, const char **val)
{
	const char *a = argv[*i];
	if (a[0] != '-')
		return false;
	a += a[1] == '-' ? 2 : 1;
	const char *eq = strchr(a, '=');
	size_t alen = eq ? (size_t)(eq - a) : strlen(a);
	/* names: "bundle|b" */
	const char *n = names;
	while (*n) {
		size_t l = strcspn(n, "|");
		if (l == alen && strncmp(n, a, l) == 0) {
			if (!val) {
				return !eq;
			}
			if (eq) {
				*val = eq + 1;
			} else if (*i + 1 < argc) {
				*val = argv[++*i];
			} else {
				*val = NULL;
			}
			return true;
		}
		n += l;
		if (*n == '|')
			n++;
	}
	return false;
}

static void usage(FILE *out)
{
	fputs("usage: cove-runc [GLOBAL OPTIONS] COMMAND [OPTIONS] ID\n"
	      "       cove oci [GLOBAL OPTIONS] COMMAND [OPTIONS] ID\n\n"
	      "commands: create run start state kill delete exec ps list pause resume update\n"
	      "          features spec\n"
	      "global options: --root DIR (default /run/cove-runc), --log FILE,\n"
	      "          --log-format text|json, --systemd-cgroup, --debug\n",
	      out);
}

int cli_oci_main(int argc, char **argv)
{
	struct oci_global g = {.root = "/run/cove-runc"};
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *v = NULL;
		const char *opt = argv[i];
		if (oci_cli_opt(argc, argv, &i, "root", &v))
			g.root = v;
		else if (oci_cli_opt(argc, argv, &i, "log", &v))
			log_path = v;
		else if (oci_cli_opt(argc, argv, &i, "log-format", &v))
			log_format = v;
		else if (oci_cli_opt(argc, argv, &i, "criu|rootless", &v))
			v = v ? v : "";
		else if (oci_cli_opt(argc, argv, &i, "systemd-cgroup", NULL))
			v = "", g.systemd_cgroup = true;
		else if (oci_cli_opt(argc, argv, &i, "debug", NULL))
			v = "", g.debug = true, log_level = OCI_LOG_DEBUG;
		else if (oci_cli_opt(argc, argv, &i, "version|v", NULL)) {
			printf("cove-runc version " COVE_OCI_VERSION "\nspec: 1.0.2\n");
			return 0;
		} else if (oci_cli_opt(argc, argv, &i, "help|h", NULL)) {
			usage(stdout);
			return 0;
		} else {
			return oci_cli_usage_error("unknown global option %s", opt);
		}
		if (!v)
			return oci_cli_usage_error("option %s needs a value", opt);
	}
	if (!g.root || !log_format)
		return oci_cli_usage_error("%s", "a global option needs a value");
	if (i >= argc) {
		usage(stderr);
		return 1;
	}
	if (g.root[0] != '/') {
		static char abs_root[PATH_MAX * 2 + 2];
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd)))
			return oci_cli_usage_error("getcwd: %s", strerror(errno));
		snprintf(abs_root, sizeof(abs_root), "%s/%s", cwd, g.root);
		g.root = abs_root;
	}
	const char *cmd = argv[i];
	if (g.debug) {
		/* The command as called, for matching a log against what containerd ran. */
		char line[900];
		size_t off = 0;
		for (int k = i; k < argc && off < sizeof(line) - 1; k++)
			off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%s",
						k > i ? " " : "", argv[k]);
		oci_cli_log(OCI_LOG_DEBUG, "%s (root %s)", line, g.root);
	}
	int sub_argc = argc - i;
	char **sub_argv = argv + i;
	static const struct {
		const char *name;
		int (*fn)(struct oci_global *g, int argc, char **argv);
		bool clone;
	} cmds[] = {
	    {"create", oci_cmd_create, true},  {"run", oci_cmd_run, true},
	    {"start", oci_cmd_start, false},   {"state", oci_cmd_state, false},
	    {"kill", oci_cmd_kill, false},     {"delete", oci_cmd_delete, false},
	    {"exec", oci_cmd_exec, true},      {"ps", oci_cmd_ps, false},
	    {"list", oci_cmd_list, false},     {"ls", oci_cmd_list, false},
	    {"pause", oci_cmd_pause, false},   {"resume", oci_cmd_resume, false},
	    {"update", oci_cmd_update, false}, {"features", oci_cmd_features, false},
	    {"spec", oci_cmd_spec, false},
	};
	for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
		if (strcmp(cmds[k].name, cmd) != 0)
			continue;
		if (cmds[k].clone && !getenv("COVE_OCI_NO_CLONE_BINARY")) {
			struct cove_err err = {0};
			if (oci_ensure_cloned_binary(argv - (argv[0] && !strcmp(argv[0], "oci")),
						     &err))
				return oci_cli_fail(&err);
		}
		return cmds[k].fn(&g, sub_argc, sub_argv);
	}
	if (strcmp(cmd, "version") == 0) {
		printf("cove-runc version " COVE_OCI_VERSION "\nspec: 1.0.2\n");
		return 0;
	}
	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	return oci_cli_usage_error("unknown command %s", cmd);
}
