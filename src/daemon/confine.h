/*
 * Confinement of a VMM that coved starts, as Firecracker's jailer does it: its own
 * unprivileged user (one per VM), its own mount namespace (and, set up by the caller,
 * PID namespace and cgroup) whose root holds only /usr (read-only), a
 * private /dev with kvm, tun and the basics, its kernel, initrd and disks, and its run
 * directory; no capabilities and no way to gain any (no_new_privs). The seccomp
 * allow-list is the VMM's own (cove run --sandbox), installed before the first guest
 * instruction.
 */
#ifndef COVE_DAEMON_CONFINE_H
#define COVE_DAEMON_CONFINE_H

#include <stdbool.h>
#include <sys/types.h>

#define CONFINE_MAX_BINDS 40

struct confine_spec {
	uid_t uid;
	gid_t gid;
	char root[4200];		      /* an empty directory: the new root */
	const char *binds[CONFINE_MAX_BINDS]; /* absolute host paths, bound at the same path */
	bool bind_rw[CONFINE_MAX_BINDS];
	int nbinds;
	bool tun;    /* give it /dev/net/tun */
	bool pid_ns; /* it has its own PID namespace: a fresh /proc of it, never the host's */
	/* A seccomp filter (BPF, built by confine_build_filter before fork), or NULL. */
	void *filter;
	unsigned short filter_len; /* instructions */
};

/*
 * Builds coved's coarse seccomp filter into c: system calls no VMM needs (mount,
 * pivot_root, ptrace, module and kexec loading, bpf, namespaces, keyrings, ...) kill the
 * process. The VMM's own allow-list (cove run --sandbox) narrows this further. Returns 0
 * or -errno. Free with confine_free_filter().
 */
int confine_build_filter(struct confine_spec *c);
void confine_free_filter(struct confine_spec *c);

/* Adds a path to bind (kept, not copied); returns -E2BIG when full, -EINVAL for a relative
 * path or one with a ".." component, -ENAMETOOLONG. */
int confine_add(struct confine_spec *c, const char *path, bool rw);

/*
 * In the child, just before exec: enters the confinement. Only system calls and string
 * handling (safe after fork in a threaded process). On failure writes why to fd 2 and
 * returns -errno; the caller must then _exit.
 */
int confine_enter(const struct confine_spec *c);

#endif
