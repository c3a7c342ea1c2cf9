/* The container lifecycle: state directory, cgroups, creation, hooks and exec. */
#ifndef COVE_OCI_RUNTIME_H
#define COVE_OCI_RUNTIME_H

#include "oci/oci.h"

#include <limits.h>
#include <stdio.h>

/* ---- cgroups (cgroup.c) ---- */

enum oci_cg_mode { OCI_CG_V1, OCI_CG_HYBRID, OCI_CG_V2 };

struct oci_cgroup {
	enum oci_cg_mode mode;
	char path[PATH_MAX / 2]; /* "/default/ctr", relative to each hierarchy's root */
};

/* The host's layout and the absolute path for a cgroupsPath (NULL: "/cove-runc/<id>"). */
int oci_cgroup_init(struct oci_cgroup *cg, const char *cgroups_path, const char *id, bool systemd,
		    struct cove_err *err);
/* Refuses settings this layout cannot honour (unified on v1/hybrid, realtime on v2). */
int oci_cgroup_check(const struct oci_cgroup *cg, const struct oci_resources *r,
		     struct cove_err *err);
/* Creates the cgroup in every hierarchy and applies resources (r may be NULL). */
int oci_cgroup_create(const struct oci_cgroup *cg, const struct oci_resources *r,
		      const struct oci_config *cfg, struct cove_err *err);
/* Writes r's values into one group directory: a v1 controller's, or a v2 group. */
int oci_cgroup_write_v1(const char *dir, const char *ctrl, const struct oci_resources *r,
			struct cove_err *err);
int oci_cgroup_write_v2(const char *dir, const struct oci_resources *r, struct cove_err *err);
int oci_cgroup_apply(const struct oci_cgroup *cg, const struct oci_resources *r,
		     struct cove_err *err);
int oci_cgroup_attach(const struct oci_cgroup *cg, pid_t pid, struct cove_err *err);
/*
 * The fast way in, without the global threadgroup lock (an RCU grace period per
 * container): a task writing "0" to a v1 "tasks" file moves itself alone; the v2 group
 * is entered at birth with clone3(CLONE_INTO_CGROUP) through oci_cgroup_open_v2's fd.
 */
int oci_cgroup_attach_self_v1(const struct oci_cgroup *cg, struct cove_err *err);
int oci_cgroup_open_v2(const struct oci_cgroup *cg);
/* v2 has no devices files: attach a BPF program made from r's rules (devfilter.c). */
int oci_devfilter_attach(int cgfd, const struct oci_resources *r, struct cove_err *err);
/* Removes the cgroup everywhere (waits briefly for exiting tasks). */
int oci_cgroup_destroy(const struct oci_cgroup *cg);
int oci_cgroup_freeze(const struct oci_cgroup *cg, bool freeze, struct cove_err *err);
bool oci_cgroup_frozen(const struct oci_cgroup *cg);
/* The pids in the cgroup; *pids is malloc'ed (caller frees). */
int oci_cgroup_pids(const struct oci_cgroup *cg, pid_t **pids, size_t *n);
/* Whether the cgroup directory exists in any hierarchy. */
bool oci_cgroup_exists(const struct oci_cgroup *cg);
/* The directory of one v1 controller (or the v2 dir when ctrl is NULL). */
int oci_cgroup_dir(const struct oci_cgroup *cg, const char *ctrl, char *buf, size_t len);

/* ---- state (state.c) ---- */

struct oci_state {
	char id[256];
	pid_t pid;
	unsigned long long start_time;
	char bundle[PATH_MAX];
	char rootfs[PATH_MAX];
	char created[64];
	uid_t owner;
	struct oci_cgroup cg;
	void *annotations;  /* json_object, owned */
	char dir[PATH_MAX]; /* <root>/<id> */
	bool creating;	    /* the state directory exists but create has not finished */
	unsigned hooks;	    /* bit k: the config has hooks of kind k (saves re-parsing it) */
};

enum oci_status { OCI_CREATING, OCI_CREATED, OCI_RUNNING, OCI_PAUSED, OCI_STOPPED };

bool oci_id_valid(const char *id);
/* Loads <root>/<id>/state.json; -ENOENT: "container with id ... does not exist". */
int oci_state_load(const char *root, const char *id, struct oci_state *st, struct cove_err *err);
void oci_state_free(struct oci_state *st);
int oci_state_save(const struct oci_state *st, struct cove_err *err);
enum oci_status oci_state_status(const struct oci_state *st);
const char *oci_status_name(enum oci_status s);
/* The state JSON of the spec (runc's fields). Returns malloc'ed text. */
char *oci_state_json(const struct oci_state *st, enum oci_status status, bool pretty);
/* Process start time (field 22 of /proc/PID/stat), 0 when gone; *zombie set if dead. */
unsigned long long oci_proc_start_time(pid_t pid, bool *zombie);
/* Removes <root>/<id> and its files. */
void oci_state_remove(const char *dir);
int oci_write_file_atomic(const char *path, const char *data, size_t len, mode_t mode);
int oci_write_file(const char *path, const char *data, size_t len);
/* Reads up to len-1 bytes into buf (NUL-terminated, trailing newline stripped). */
int oci_read_file(const char *path, char *buf, size_t len);

/* ---- hooks (hooks.c) ---- */

/* Runs the hooks of one kind with state on stdin. Returns 0 or the first error. */
int oci_hooks_run(const struct oci_hooks *h, enum oci_hook_kind kind, const char *state_json,
		  struct cove_err *err);

/* ---- create / start / exec (create.c, init.c, exec.c) ---- */

struct oci_create_opts {
	const char *root;
	const char *id;
	const char *bundle;
	const char *pid_file;
	const char *console_socket;
	bool no_pivot;
	bool no_new_keyring;
	bool systemd_cgroup;
	bool foreground; /* run: the caller stays the parent and waits */
	/* run with terminal and no --console-socket: receives the pty master (else -1) */
	int *pty_master;
	int preserve_fds;
};

/* What the container's init needs, shared between create.c and init.c. */
struct oci_init_args {
	const struct oci_config *cfg;
	const struct oci_create_opts *opts;
	const char *rootfs; /* absolute */
	const char *fifo_path;
	const char *bundle;
	int sync_fd;
	int ns_fds[OCI_NS_COUNT]; /* opened namespaces to join, or -1 */
	bool self_attach;	  /* init moves itself into the v1 groups */
	int console_fd;		  /* a connected socket for the pty master, or -1 */
	/* Joining a user namespace by path: init is cloned with no new namespaces, joins it,
	 * then clones the real init with these flags (so the new namespaces belong to the
	 * joined user namespace) as the runtime's child (CLONE_PARENT) and exits. */
	bool two_stage;
	int stage2_flags;
	const struct oci_cgroup *cg;
};

/* Creates the container; returns 0 with *pid set, its init waiting on the exec FIFO. */
int oci_create(const struct oci_create_opts *o, struct oci_config *cfg, const char *cfg_text,
	       size_t cfg_len, pid_t *pid, struct cove_err *err);
/* The child side: never returns. */
_Noreturn void oci_init_main(struct oci_init_args *a);
/* Releases init from the exec FIFO. */
int oci_start(const char *root, const char *id, struct cove_err *err);
/* Tears the container down: cgroup, poststop hooks, state directory. */
int oci_destroy(struct oci_state *st, struct cove_err *err);

/* Sets up the process attributes and execs (init and exec share it); never returns. */
_Noreturn void oci_exec_process(const struct oci_config *cfg, const struct oci_process *p,
				int preserve_fds, int sync_fd);
/* Sends "E<msg>" over the sync socket (if any) and exits 1. */
_Noreturn void oci_child_fail(int sync_fd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Finds process.args[0] in the process's PATH (in the current root). */
int oci_lookup_exec(const struct oci_process *p, char *found, size_t len);
int oci_apply_seccomp(const struct oci_seccomp *s, char *msg, size_t len);

/* Terminal (console.c): open a pty in the current mount namespace, send the master over the
 * socket and make the peer our controlling terminal and stdio. */
int oci_setup_console(int sock_fd, char *msg, size_t len);
/* Receives one fd passed with SCM_RIGHTS; -1 on failure. */
int oci_recv_fd(int sock);

/* CVE-2019-5736: re-executes from a sealed memfd copy of the binary unless already. */
int oci_ensure_cloned_binary(char **argv, struct cove_err *err);

#endif
