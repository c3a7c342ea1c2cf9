/* Value conversions: cgroup v1 to v2 values, signal, rlimit, capability and mount option names. */
#include "oci/oci.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/resource.h>

uint64_t oci_cpu_shares_to_weight(uint64_t shares)
{
	/* Linear map of [2, 262144] onto [1, 10000], as runc and crun do. */
	if (shares == 0)
		return 0;
	if (shares < 2)
		shares = 2;
	if (shares > 262144)
		shares = 262144;
	return 1 + ((shares - 2) * 9999) / 262142;
}

uint64_t oci_blkio_weight_to_io_weight(uint64_t weight)
{
	if (weight == 0)
		return 0;
	if (weight < 10)
		weight = 10;
	if (weight > 1000)
		weight = 1000;
	return 1 + ((weight - 10) * 9999) / 990;
}

int64_t oci_swap_to_v2(int64_t mem_swap, int64_t mem_limit)
{
	/* v1 counts memory+swap; v2's swap.max counts swap alone. */
	if (mem_swap == -1)
		return -1;
	if (mem_swap == 0)
		return 0;
	if (mem_limit == -1 || mem_limit == 0)
		return -2; /* a swap limit needs a memory limit to convert */
	if (mem_swap < mem_limit)
		return -2;
	return mem_swap - mem_limit;
}

static const struct {
	const char *name;
	int sig;
} signals[] = {
    {"HUP", SIGHUP},	   {"INT", SIGINT},   {"QUIT", SIGQUIT},     {"ILL", SIGILL},
    {"TRAP", SIGTRAP},	   {"ABRT", SIGABRT}, {"IOT", SIGIOT},	     {"BUS", SIGBUS},
    {"FPE", SIGFPE},	   {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},	   {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP},	   {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
    {"XCPU", SIGXCPU},	   {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
    {"WINCH", SIGWINCH},   {"IO", SIGIO},     {"POLL", SIGPOLL},     {"PWR", SIGPWR},
    {"SYS", SIGSYS},
};

static int parse_uint(const char *s, long max)
{
	if (!*s || strlen(s) > 6)
		return -EINVAL;
	long v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (*s - '0');
	}
	return v <= max ? (int)v : -EINVAL;
}

int oci_signal_parse(const char *name)
{
	if (!name || !*name)
		return -EINVAL;
	if (name[0] >= '0' && name[0] <= '9') {
		int v = parse_uint(name, SIGRTMAX);
		return v > 0 ? v : -EINVAL;
	}
	if (strncasecmp(name, "SIG", 3) == 0)
		name += 3;
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		if (strcasecmp(signals[i].name, name) == 0)
			return signals[i].sig;
	if (strncasecmp(name, "RTMIN", 5) == 0 || strncasecmp(name, "RTMAX", 5) == 0) {
		bool min = strncasecmp(name, "RTMIN", 5) == 0;
		const char *rest = name + 5;
		int base = min ? SIGRTMIN : SIGRTMAX;
		if (!*rest)
			return base;
		int off = parse_uint(rest + 1, 64);
		if (off < 0 || (min && rest[0] != '+') || (!min && rest[0] != '-'))
			return -EINVAL;
		int sig = min ? base + off : base - off;
		return sig >= SIGRTMIN && sig <= SIGRTMAX ? sig : -EINVAL;
	}
	return -EINVAL;
}

int oci_rlimit_parse(const char *name)
{
	static const struct {
		const char *name;
		int res;
	} t[] = {{"CPU", RLIMIT_CPU},		{"FSIZE", RLIMIT_FSIZE},
		 {"DATA", RLIMIT_DATA},		{"STACK", RLIMIT_STACK},
		 {"CORE", RLIMIT_CORE},		{"RSS", RLIMIT_RSS},
		 {"NPROC", RLIMIT_NPROC},	{"NOFILE", RLIMIT_NOFILE},
		 {"MEMLOCK", RLIMIT_MEMLOCK},	{"AS", RLIMIT_AS},
		 {"LOCKS", RLIMIT_LOCKS},	{"SIGPENDING", RLIMIT_SIGPENDING},
		 {"MSGQUEUE", RLIMIT_MSGQUEUE}, {"NICE", RLIMIT_NICE},
		 {"RTPRIO", RLIMIT_RTPRIO},	{"RTTIME", RLIMIT_RTTIME}};
	if (!name || strncmp(name, "RLIMIT_", 7) != 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].name, name + 7) == 0)
			return t[i].res;
	return -EINVAL;
}

int oci_cap_parse(const char *name)
{
	cap_value_t v;
	if (!name || strncasecmp(name, "CAP_", 4) != 0)
		return -EINVAL;
	if (cap_from_name(name, &v) < 0)
		return -EINVAL;
	return (int)v;
}

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The flag options, as mount(8) names them. */
static const struct {
	const char *name;
	bool clear;
	unsigned long flag;
} plain_opts[] = {
    {"defaults", false, 0},
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"suid", true, MS_NOSUID},
    {"nosuid", false, MS_NOSUID},
    {"dev", true, MS_NODEV},
    {"nodev", false, MS_NODEV},
    {"exec", true, MS_NOEXEC},
    {"noexec", false, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},
    {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},
    {"remount", false, MS_REMOUNT},
    {"mand", false, MS_MANDLOCK},
    {"nomand", true, MS_MANDLOCK},
    {"atime", true, MS_NOATIME},
    {"noatime", false, MS_NOATIME},
    {"diratime", true, MS_NODIRATIME},
    {"nodiratime", false, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME},
    {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME},
    {"nostrictatime", true, MS_STRICTATIME},
    {"silent", false, MS_SILENT},
    {"loud", true, MS_SILENT},
    {"nosymfollow", false, MS_NOSYMFOLLOW},
    {"symfollow", true, MS_NOSYMFOLLOW},
};
/*
 * The recursive forms (runtime spec, config.md "mounts"). The atime settings are one
 * field in mount_setattr, not bits: each replaces the whole field (MOUNT_ATTR__ATIME
 * cleared), and the clearing forms fall back to the kernel's default, relatime, except
 * "rnorelatime", which asks for strict atime as mount(8)'s "norelatime" does.
 */
static const struct {
	const char *name;
	bool clear;
	uint64_t attr;
} rec_opts[] = {
    {"rro", false, MOUNT_ATTR_RDONLY},
    {"rrw", true, MOUNT_ATTR_RDONLY},
    {"rnosuid", false, MOUNT_ATTR_NOSUID},
    {"rsuid", true, MOUNT_ATTR_NOSUID},
    {"rnodev", false, MOUNT_ATTR_NODEV},
    {"rdev", true, MOUNT_ATTR_NODEV},
    {"rnoexec", false, MOUNT_ATTR_NOEXEC},
    {"rexec", true, MOUNT_ATTR_NOEXEC},
    {"rnodiratime", false, MOUNT_ATTR_NODIRATIME},
    {"rdiratime", true, MOUNT_ATTR_NODIRATIME},
    {"rnosymfollow", false, MOUNT_ATTR_NOSYMFOLLOW},
    {"rsymfollow", true, MOUNT_ATTR_NOSYMFOLLOW},
};
static const struct {
	const char *name;
	uint64_t atime;
} rec_atime_opts[] = {
    {"rnoatime", MOUNT_ATTR_NOATIME},	      {"ratime", MOUNT_ATTR_RELATIME},
    {"rrelatime", MOUNT_ATTR_RELATIME},	      {"rnorelatime", MOUNT_ATTR_STRICTATIME},
    {"rstrictatime", MOUNT_ATTR_STRICTATIME}, {"rnostrictatime", MOUNT_ATTR_RELATIME},
};
static const struct {
	const char *name;
	unsigned long flag;
} prop_opts[] = {{"shared", MS_SHARED},		{"rshared", MS_SHARED | MS_REC},
		 {"slave", MS_SLAVE},		{"rslave", MS_SLAVE | MS_REC},
		 {"private", MS_PRIVATE},	{"rprivate", MS_PRIVATE | MS_REC},
		 {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC}};

/* The options oci_mount_option handles by name rather than through a table. */
static const char *const named_opts[] = {"bind", "rbind", "tmpcopyup"};

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t oci_mount_option_names(const char **out, size_t cap)
{
	size_t n = 0;
#define TAKE(tab, field)                            \
	for (size_t i = 0; i < ARRAY_LEN(tab); i++) \
		if (n < cap)                        \
			out[n++] = tab[i] field;
	TAKE(named_opts, )
	TAKE(plain_opts, .name)
	TAKE(rec_opts, .name)
	TAKE(rec_atime_opts, .name)
	TAKE(prop_opts, .name)
#undef TAKE
	qsort(out, n, sizeof(*out), cmp_name);
	return n;
}

int oci_mount_option(const char *opt, struct oci_mount *m)
{
	if (strcmp(opt, "bind") == 0) {
		m->bind = true;
		return 0;
	}
	if (strcmp(opt, "rbind") == 0) {
		m->bind = true;
		m->flags |= MS_REC;
		return 0;
	}
	if (strcmp(opt, "tmpcopyup") == 0) {
		m->tmpcopyup = true;
		return 0;
	}
	if (strcmp(opt, "idmap") == 0 || strcmp(opt, "ridmap") == 0)
		return -ENOTSUP;
	for (size_t i = 0; i < ARRAY_LEN(rec_opts); i++) {
		if (strcmp(rec_opts[i].name, opt) == 0) {
			/* The last word on a bit wins, as with the plain options. */
			if (rec_opts[i].clear) {
				m->rec_clr |= rec_opts[i].attr;
				m->rec_set &= ~rec_opts[i].attr;
			} else {
				m->rec_set |= rec_opts[i].attr;
				m->rec_clr &= ~rec_opts[i].attr;
			}
			return 0;
		}
	}
	for (size_t i = 0; i < ARRAY_LEN(rec_atime_opts); i++) {
		if (strcmp(rec_atime_opts[i].name, opt) == 0) {
			m->rec_clr |= MOUNT_ATTR__ATIME;
			m->rec_set =
			    (m->rec_set & ~(uint64_t)MOUNT_ATTR__ATIME) | rec_atime_opts[i].atime;
			return 0;
		}
	}
	for (size_t i = 0; i < ARRAY_LEN(plain_opts); i++) {
		if (strcmp(plain_opts[i].name, opt) == 0) {
			if (plain_opts[i].clear)
				m->flags &= ~plain_opts[i].flag;
			else
				m->flags |= plain_opts[i].flag;
			return 0;
		}
	}
	for (size_t i = 0; i < ARRAY_LEN(prop_opts); i++) {
		if (strcmp(prop_opts[i].name, opt) == 0) {
			m->propagation = prop_opts[i].flag;
			return 0;
		}
	}
	return 1;
}

bool oci_fail_at(const char *step)
{
	const char *want = getenv("COVE_OCI_FAIL_AT");
	return want && strcmp(want, step) == 0;
}
