/* Shared pieces of the `cove oci` command-line front end. */
#ifndef COVE_CLI_OCI_CLI_H
#define COVE_CLI_OCI_CLI_H

#include "oci/exec.h"
#include "oci/runtime.h"

#define COVE_OCI_VERSION "0.1.0"

struct oci_global {
	const char *root;
	bool systemd_cgroup;
	bool debug;
};

enum oci_log_level { OCI_LOG_ERROR, OCI_LOG_WARNING, OCI_LOG_INFO, OCI_LOG_DEBUG };

/* Logs at level if the level is on (warnings by default, everything with --debug): to --log
 * (a JSON line with --log-format json), else to stderr; errors go to stderr as well. */
void oci_cli_log(enum oci_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints "cove-runc: msg" and appends it to --log (a JSON line with --log-format json). */
void oci_cli_error(const char *msg);
int oci_cli_fail(const struct cove_err *err);
/* fmt has one %s for arg. */
int oci_cli_usage_error(const char *fmt, const char *arg);
/* Matches one option (names "long|short"); with val, takes its value (NULL if missing). */
bool oci_cli_opt(int argc, char **argv, int *i, const char *names, const char **val);

/* run and exec with a terminal and no console socket: our stdin to the pty master and the
 * master to our stdout (raw mode and the window size when stdin is a tty), until it closes. */
void oci_cli_proxy_pty(int master);

int oci_cmd_create(struct oci_global *g, int argc, char **argv);
int oci_cmd_run(struct oci_global *g, int argc, char **argv);
int oci_cmd_start(struct oci_global *g, int argc, char **argv);
int oci_cmd_state(struct oci_global *g, int argc, char **argv);
int oci_cmd_kill(struct oci_global *g, int argc, char **argv);
int oci_cmd_delete(struct oci_global *g, int argc, char **argv);
int oci_cmd_exec(struct oci_global *g, int argc, char **argv);
int oci_cmd_ps(struct oci_global *g, int argc, char **argv);
int oci_cmd_list(struct oci_global *g, int argc, char **argv);
int oci_cmd_pause(struct oci_global *g, int argc, char **argv);
int oci_cmd_resume(struct oci_global *g, int argc, char **argv);
int oci_cmd_update(struct oci_global *g, int argc, char **argv);
int oci_cmd_features(struct oci_global *g, int argc, char **argv);
int oci_cmd_spec(struct oci_global *g, int argc, char **argv);

#endif
