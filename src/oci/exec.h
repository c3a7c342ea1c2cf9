/* exec into a running container. */
#ifndef COVE_OCI_EXEC_H
#define COVE_OCI_EXEC_H

#include "oci/runtime.h"

struct oci_exec_opts {
	const char *console_socket;
	const char *pid_file;
	bool detach;
	int preserve_fds;
	/* --tty in the foreground without a console socket: the pty master is handed to this,
	 * which relays it to our stdio and returns when the pty closes (runc does the same). */
	void (*pty_proxy)(int master);
};

/* Runs proc in st's container (cfg supplies seccomp); waits unless detached. */
int oci_exec(const struct oci_exec_opts *o, struct oci_state *st, const struct oci_config *cfg,
	     const struct oci_process *proc, int *exit_status, struct cove_err *err);

#endif
