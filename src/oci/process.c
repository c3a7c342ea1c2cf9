/* The last steps before a container process runs: rlimits, user, capabilities, seccomp, exec. */
#include "oci/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/securebits.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

_Noreturn void oci_child_fail(int sync_fd, const char *fmt, ...)
{
	char msg[600];
	msg[0] = 'E';
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg + 1, sizeof(msg) - 1, fmt, ap);
	va_end(ap);
	if (sync_fd < 0 || send(sync_fd, msg, strlen(msg), MSG_NOSIGNAL) < 0)
		dprintf(2, "cove-runc: %s\n", msg + 1);
	_exit(1);
}

int oci_apply_seccomp(const struct oci_seccomp *s, char *msg, size_t len)
{
	scmp_filter_ctx ctx = seccomp_init(s->default_action);
	if (!ctx) {
		snprintf(msg, len, "seccomp: cannot initialise the filter");
		return -EINVAL;
	}
	int r = 0;
	/* NNP is set by the caller when the config asks for it, not implied here. */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (s->flag_log)
		seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
	if (s->flag_spec_allow)
		seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1);
	for (size_t i = 0; i < s->n_arches && !r; i++) {
		r = seccomp_arch_add(ctx, s->arches[i]);
		if (r == -EEXIST)
			r = 0;
	}
	for (size_t i = 0; i < s->n_rules && !r; i++) {
		const struct oci_seccomp_rule *rule = &s->rules[i];
		if (rule->action == s->default_action)
			continue;
		struct scmp_arg_cmp cmp[6];
		for (size_t k = 0; k < rule->n_args; k++) {
			cmp[k].arg = rule->args[k].index;
			cmp[k].op = (enum scmp_compare)rule->args[k].op;
			cmp[k].datum_a = rule->args[k].value;
			cmp[k].datum_b = rule->args[k].value_two;
		}
		for (size_t n = 0; n < rule->n_names && !r; n++) {
			int nr = seccomp_syscall_resolve_name(rule->names[n]);
			if (nr == __NR_SCMP_ERROR)
				continue; /* unknown on this kernel or arch: skipped, as runc does
					   */
			r = seccomp_rule_add_array(ctx, rule->action, nr, (unsigned)rule->n_args,
						   cmp);
			if (r)
				snprintf(msg, len, "seccomp: rule for %s: %s", rule->names[n],
					 strerror(-r));
		}
	}
	if (!r) {
		r = seccomp_load(ctx);
		if (r)
			snprintf(msg, len, "seccomp: loading the filter: %s", strerror(-r));
	} else if (!msg[0]) {
		snprintf(msg, len, "seccomp: %s", strerror(-r));
	}
	seccomp_release(ctx);
	return r;
}

static const char *env_get(const char **env, const char *key)
{
	size_t kl = strlen(key);
	for (; env && *env; env++)
		if (strncmp(*env, key, kl) == 0 && (*env)[kl] == '=')
			return *env + kl + 1;
	return NULL;
}

/* Needs CAP_SETPCAP: called before the uid changes. */
static int drop_bounding(const struct oci_process *p, char *msg, size_t len)
{
	for (int c = 0; c <= CAP_LAST_CAP; c++) {
		if (!(p->caps[OCI_CAP_BOUNDING] & (1ULL << c)) &&
		    prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) {
			snprintf(msg, len, "capabilities: dropping %d from the bounding set: %s", c,
				 strerror(errno));
			return -errno;
		}
	}
	return 0;
}

static int set_caps(const struct oci_process *p, char *msg, size_t len)
{
	int last = CAP_LAST_CAP;
	cap_t caps = cap_init();
	if (!caps)
		return -ENOMEM;
	static const cap_flag_t flags[3] = {CAP_EFFECTIVE, CAP_INHERITABLE, CAP_PERMITTED};
	static const int sets[3] = {OCI_CAP_EFFECTIVE, OCI_CAP_INHERITABLE, OCI_CAP_PERMITTED};
	for (int s = 0; s < 3; s++) {
		for (int c = 0; c <= last; c++) {
			cap_value_t v = c;
			if (p->caps[sets[s]] & (1ULL << c))
				cap_set_flag(caps, flags[s], 1, &v, CAP_SET);
		}
	}
	int r = cap_set_proc(caps);
	cap_free(caps);
	if (r < 0) {
		snprintf(msg, len, "capabilities: %s", strerror(errno));
		return -errno;
	}
	/* An ambient cap needs to be permitted and inheritable; like runc, skip it if not. */
	for (int c = 0; c <= last; c++)
		if (p->caps[OCI_CAP_AMBIENT] & (1ULL << c))
			prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0);
	return 0;
}

int oci_lookup_exec(const struct oci_process *p, char *found, size_t len)
{
	const char *prog = p->args ? p->args[0] : NULL;
	if (!prog || !*prog)
		return -ENOENT;
	if (strchr(prog, '/')) {
		snprintf(found, len, "%s", prog);
		return access(prog, X_OK) == 0 ? 0 : -errno;
	}
	const char *path = env_get(p->env, "PATH");
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	const char *s = path;
	while (*s) {
		size_t l = strcspn(s, ":");
		if (l && (size_t)snprintf(found, len, "%.*s/%s", (int)l, s, prog) < len) {
			struct stat st;
			if (stat(found, &st) == 0 && S_ISREG(st.st_mode) &&
			    access(found, X_OK) == 0)
				return 0;
		}
		s += l;
		if (*s == ':')
			s++;
	}
	return -ENOENT;
}

_Noreturn void oci_exec_process(const struct oci_config *cfg, const struct oci_process *p,
				int preserve_fds, int sync_fd)
{
	char msg[512] = "";
	for (size_t i = 0; i < p->n_rlimits; i++) {
		struct rlimit rl = {.rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard};
		if (setrlimit(p->rlimits[i].resource, &rl) < 0)
			oci_child_fail(sync_fd, "process.rlimits[%zu]: setrlimit: %s", i,
				       strerror(errno));
	}
	if (p->umask >= 0)
		umask((mode_t)p->umask);
	bool seccomp_late = p->no_new_privileges;
	if (cfg->has_seccomp && !seccomp_late && oci_apply_seccomp(&cfg->seccomp, msg, sizeof(msg)))
		oci_child_fail(sync_fd, "%s", msg);
	/* Keep capabilities across the uid change so the configured sets can be applied. */
	if (p->has_caps && drop_bounding(p, msg, sizeof(msg)))
		oci_child_fail(sync_fd, "process.%s", msg);
	if (p->has_caps && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		oci_child_fail(sync_fd, "prctl(PR_SET_KEEPCAPS): %s", strerror(errno));
	gid_t gids[256];
	size_t ng = p->n_gids < 256 ? p->n_gids : 256;
	for (size_t i = 0; i < ng; i++)
		gids[i] = p->gids[i];
	if (setgroups(ng, gids) < 0 && errno != EPERM)
		oci_child_fail(sync_fd, "process.user.additionalGids: setgroups: %s",
			       strerror(errno));
	if (syscall(SYS_setresgid, p->gid, p->gid, p->gid) < 0)
		oci_child_fail(sync_fd, "process.user.gid: setresgid(%u): %s", p->gid,
			       strerror(errno));
	if (syscall(SYS_setresuid, p->uid, p->uid, p->uid) < 0)
		oci_child_fail(sync_fd, "process.user.uid: setresuid(%u): %s", p->uid,
			       strerror(errno));
	if (p->has_caps && set_caps(p, msg, sizeof(msg)))
		oci_child_fail(sync_fd, "process.%s", msg);
	if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		oci_child_fail(sync_fd, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
	const char *prog = p->args[0];
	char found[PATH_MAX];
	if (!strchr(prog, '/')) {
		if (oci_lookup_exec(p, found, sizeof(found)) < 0)
			oci_child_fail(sync_fd, "exec: \"%s\": executable file not found in $PATH",
				       prog);
		prog = found;
	}
	if (cfg->has_seccomp && seccomp_late && oci_apply_seccomp(&cfg->seccomp, msg, sizeof(msg)))
		oci_child_fail(sync_fd, "%s", msg);
	/* CVE-2024-21626: nothing of ours but the preserved fds crosses into the container. */
	for (int fd = 3; fd < 3 + preserve_fds; fd++)
		fcntl(fd, F_SETFD, 0);
	if (sync_fd >= 0 && sync_fd < 3 + preserve_fds)
		sync_fd = -1;
	syscall(SYS_close_range, 3 + preserve_fds, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
	execve(prog, (char *const *)p->args, (char *const *)p->env);
	int e = errno;
	oci_child_fail(sync_fd, "exec: \"%s\": %s", p->args[0], strerror(e));
}
