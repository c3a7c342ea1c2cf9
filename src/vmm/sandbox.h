/* Confinement of the VMM process: jail, unprivileged user, no capabilities, seccomp. */
#ifndef COVE_VMM_SANDBOX_H
#define COVE_VMM_SANDBOX_H

#include <cove/error.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Where the jail's tmpfs is mounted (in the VMM's own mount namespace) by default. */
#define SANDBOX_DEFAULT_JAIL "/run/cove/jail"
/* Default per-VM user: the first free uid (no passwd or group entry) from here on. */
#define SANDBOX_UID_BASE  64000u
#define SANDBOX_UID_COUNT 1000u
/* The KVM device inside the jail (a node of /dev/kvm's number, owned by the VMM's user). */
#define SANDBOX_KVM_PATH "/dev/kvm"

/* The settings, as given (options --sandbox, --sandbox-uid, ... or the JSON config). */
struct sandbox_opts {
	bool enabled;
	bool seccomp_only; /* --seccomp: only the allow-list (the caller confined the process) */
	bool seccomp_log;  /* SCMP_ACT_LOG instead of killing: to find missing syscalls */
	char *uid;	   /* user name or number, NULL: a free per-VM uid */
	char *gid;	   /* group name or number, NULL: the user's group (or gid = uid) */
	char *jail_dir;	   /* NULL: SANDBOX_DEFAULT_JAIL */
};

void sandbox_opts_free(struct sandbox_opts *o);

/* True for the keys sandbox_opts_set takes (sandbox, seccomp, sandbox-uid, sandbox-gid,
 * jail-dir, seccomp-log; '_' may stand for '-'). */
bool sandbox_opts_is_key(const char *key);

/*
 * Sets one setting from text, as --KEY VALUE would ("true"/"false" for the flags; giving
 * any of uid, gid, jail-dir or seccomp-log does not by itself turn the sandbox on).
 * Returns 0, -ENOENT for a key that is not the sandbox's, or -EINVAL with a message in err.
 */
int sandbox_opts_set(struct sandbox_opts *o, const char *key, const char *value,
		     struct cove_err *err);

/*
 * Parses a user or group: a decimal id (0 refused: the point is to leave root) or a name
 * looked up with getpwnam/getgrnam. Returns 0 or -EINVAL / -ENOENT with a message in err.
 */
int sandbox_parse_uid(const char *text, uid_t *uid, gid_t *user_gid, struct cove_err *err);
int sandbox_parse_gid(const char *text, gid_t *gid, struct cove_err *err);

/* What the VMM still opens by path inside the jail (after --on-reboot restart, too). */
#define SANDBOX_MAX_PATHS 32
enum {
	SANDBOX_BIND_RO = 1,	 /* read-only in the jail */
	SANDBOX_BIND_DIR_OF = 2, /* bind the directory holding the path (a socket made later) */
};
struct sandbox_needs {
	const char *paths[SANDBOX_MAX_PATHS]; /* bound into the jail at the same absolute path */
	unsigned flags[SANDBOX_MAX_PATHS];    /* SANDBOX_BIND_* */
	unsigned npaths;
	bool tun; /* a /dev/net/tun node (taps): also keeps the host's network namespace */
	/* The KVM device copied as the jail's /dev/kvm; NULL: $COVE_KVM_DEV or /dev/kvm. */
	const char *kvm_path;
};

/* Adds a path (kept by reference: it must outlive sandbox_enter). Returns 0 or -E2BIG. */
int sandbox_needs_add(struct sandbox_needs *n, const char *path, unsigned flags);

/* The resolved sandbox of one VMM process. */
struct sandbox {
	uid_t uid;
	gid_t gid;
	bool seccomp_log;
	bool entered;	/* the jail is set up (or, keep_user, the descriptors closed) */
	bool keep_user; /* --seccomp only: no change of user */
	bool locked;	/* the user is dropped and the filter on */
	char jail[4096];
};

/*
 * Step 1, while the process is still one thread and still root: resolves the user, makes
 * the jail's mount point, closes every descriptor above stderr but keep_fds, and moves the
 * process into new mount, IPC, UTS, cgroup (and, without taps, network) namespaces whose
 * root is a tmpfs holding only /dev/kvm (and /dev/net/tun) and the needed paths. Also drops
 * the capability bounding set, the inheritable and ambient sets, and sets no_new_privs.
 * The VM is then built inside the jail as root.
 * Returns 0 or -errno with a one-line message in err (the process may be half-confined
 * then; the caller exits).
 */
int sandbox_enter(struct sandbox *sb, const struct sandbox_opts *o, const struct sandbox_needs *n,
		  const int *keep_fds, unsigned nkeep, struct cove_err *err);

/*
 * With only --seccomp (a caller such as coved confined the process already, and it need
 * not be root): sets no_new_privs and keeps every descriptor (keep_fds is unused: the
 * caller chose what to pass); sandbox_lock then keeps the user and installs the filter.
 * Returns 0 or -errno.
 */
int sandbox_enter_seccomp_only(struct sandbox *sb, const struct sandbox_opts *o,
			       const int *keep_fds, unsigned nkeep, struct cove_err *err);

/*
 * Step 2, after the VM is built and before its first instruction: switches to the
 * unprivileged user (all threads), clears every capability and installs the seccomp
 * allow-list on every thread (TSYNC). From here a forbidden system call kills the process
 * with SIGSYS. Returns 0 or -errno with a message in err.
 */
int sandbox_lock(struct sandbox *sb, struct cove_err *err);

/* The allow-list (sandbox_filter.c). */

/*
 * Writes the BPF program of the allow-list for a process whose pid is pid to fd (for
 * tests and for reading it with a BPF disassembler). Returns 0 or -errno.
 */
int sandbox_filter_export(int fd, pid_t pid, bool log);

/* Builds and loads the filter on every thread of the process. Returns 0 or -errno. */
int sandbox_filter_load(pid_t pid, bool log);

/* Number of system calls in the allow-list (the table's rows). */
unsigned sandbox_filter_count(void);

#endif
