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

/* Prints "cove-runc: msg" and appends it to --log (a JSON line with --log-format json). */
void oci_cli_error(const char *msg);
int oci_cli_fail(const struct cove_err *err);
/* fmt has one %s for arg. */
int oci_cli_usage_error(const char *fmt, const char *arg);
/* Matches one option (names "long|short"); with val, takes its value (NULL if missing). */
bool oci_cli_opt(int argc, char **argv, int *i, const char *names, const char **val);

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
