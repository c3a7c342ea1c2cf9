/* exec into a running container. */
#ifndef COVE_OCI_EXEC_H
#define COVE_OCI_EXEC_H

#include "oci/runtime.h"

struct oci_exec_opts {
	const char *console_socket;
	const char *pid_file;
	bool detach;
	int preserve_fds;
};

/* Runs proc in st's container (cfg supplies seccomp); waits unless detached. */
int oci_exec(const struct oci_exec_opts *o, struct oci_state *st, const struct oci_config *cfg,
	     const struct oci_process *proc, int *exit_status, struct cove_err *err);

#endif
