/* The OCI runtime: config.json model, container lifecycle and cgroup helpers. */
#ifndef COVE_OCI_H
#define COVE_OCI_H

#include <cove/error.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- config.json (OCI runtime spec 1.x) ---- */

struct oci_kv {
	const char *key;
	const char *value;
};

struct oci_mount {
	const char *destination;
	const char *type;
	const char *source;
	unsigned long flags;	   /* MS_* for mount(2) */
	unsigned long propagation; /* MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE (| MS_REC) */
	bool bind;
	bool tmpcopyup; /* "tmpcopyup": the image's files under the mountpoint go into the tmpfs */
	/* Recursive options ("rro", "rnosuid", ...): MOUNT_ATTR_* bits that
	 * mount_setattr(AT_RECURSIVE) sets and clears on the mount and everything below it. */
	uint64_t rec_set, rec_clr;
	const char *data; /* filesystem options joined by commas, or NULL */
};

enum oci_ns_type {
	OCI_NS_PID,
	OCI_NS_NET,
	OCI_NS_MNT,
	OCI_NS_IPC,
	OCI_NS_UTS,
	OCI_NS_USER,
	OCI_NS_CGROUP,
	OCI_NS_TIME,
	OCI_NS_COUNT,
};

struct oci_ns {
	bool present;
	const char *path; /* join this namespace instead of creating one */
};

struct oci_idmap {
	uint32_t container_id, host_id, size;
};

struct oci_rlimit {
	int resource;
	uint64_t soft, hard;
};

struct oci_device {
	const char *path;
	char type; /* 'c', 'b', 'u' or 'p' */
	int64_t major, minor;
	uint32_t mode;
	bool has_mode;
	uint32_t uid, gid;
	bool has_uid, has_gid;
};

struct oci_dev_rule {
	bool allow;
	char type;	      /* 'a', 'c' or 'b' */
	int64_t major, minor; /* -1: any */
	char access[4];
};

struct oci_hook {
	const char *path;
	const char **args; /* NULL-terminated; NULL when absent */
	const char **env;  /* NULL-terminated; NULL when absent */
	int timeout;	   /* seconds, 0: none */
};

enum oci_hook_kind {
	OCI_HOOK_PRESTART,
	OCI_HOOK_CREATE_RUNTIME,
	OCI_HOOK_CREATE_CONTAINER,
	OCI_HOOK_START_CONTAINER,
	OCI_HOOK_POSTSTART,
	OCI_HOOK_POSTSTOP,
	OCI_HOOK_COUNT,
};

struct oci_hooks {
	struct oci_hook *list[OCI_HOOK_COUNT];
	size_t count[OCI_HOOK_COUNT];
};

struct oci_throttle {
	int64_t major, minor;
	uint64_t rate;
};

struct oci_weight_dev {
	int64_t major, minor;
	uint16_t weight;
	bool has_weight;
};

/* Values are "unset" unless their has_ flag is true. */
struct oci_resources {
	bool has_mem_limit, has_mem_reservation, has_mem_swap, has_mem_swappiness;
	int64_t mem_limit, mem_reservation, mem_swap; /* -1: unlimited */
	uint64_t mem_swappiness;
	bool mem_disable_oom_killer;
	bool has_cpu_shares, has_cpu_quota, has_cpu_period;
	uint64_t cpu_shares, cpu_period;
	int64_t cpu_quota;
	bool has_cpu_rt_runtime, has_cpu_rt_period;
	int64_t cpu_rt_runtime;
	uint64_t cpu_rt_period;
	bool has_cpu_idle, has_cpu_burst;
	int64_t cpu_idle;   /* 1: the group runs as SCHED_IDLE (cpu.idle) */
	uint64_t cpu_burst; /* microseconds (cpu.cfs_burst_us, cpu.max.burst) */
	const char *cpuset_cpus, *cpuset_mems;
	bool has_pids_limit;
	int64_t pids_limit; /* -1 or 0: unlimited */
	bool has_blkio_weight;
	uint16_t blkio_weight;
	struct oci_weight_dev *blkio_weight_dev;
	size_t n_blkio_weight_dev;
	struct oci_throttle *throttle[4]; /* read bps, write bps, read iops, write iops */
	size_t n_throttle[4];
	struct oci_dev_rule *devices;
	size_t n_devices;
	struct oci_kv *unified;
	size_t n_unified;
};

struct oci_seccomp_arg {
	unsigned index;
	uint64_t value, value_two;
	int op; /* enum scmp_compare */
};

struct oci_seccomp_rule {
	const char **names;
	size_t n_names;
	uint32_t action; /* SCMP_ACT_* */
	struct oci_seccomp_arg *args;
	size_t n_args;
};

struct oci_seccomp {
	uint32_t default_action;
	uint32_t *arches;
	size_t n_arches;
	struct oci_seccomp_rule *rules;
	size_t n_rules;
	bool flag_log, flag_spec_allow;
};

struct oci_process {
	bool terminal;
	uint32_t uid, gid;
	uint32_t *gids;
	size_t n_gids;
	int umask; /* -1: leave alone */
	const char **args;
	size_t n_args;
	const char **env; /* NULL-terminated */
	size_t n_env;
	const char *cwd;
	bool has_caps;
	uint64_t caps[5]; /* bounding, effective, inheritable, permitted, ambient */
	struct oci_rlimit *rlimits;
	size_t n_rlimits;
	bool no_new_privileges;
	bool has_oom_score_adj;
	int oom_score_adj;
};

enum {
	OCI_CAP_BOUNDING,
	OCI_CAP_EFFECTIVE,
	OCI_CAP_INHERITABLE,
	OCI_CAP_PERMITTED,
	OCI_CAP_AMBIENT
};

struct oci_arena;

struct oci_config {
	struct oci_arena *arena;
	void *json; /* the parsed json_object; strings point into it */
	const char *oci_version;
	const char *root_path;
	bool root_readonly;
	const char *hostname, *domainname;
	struct oci_mount *mounts;
	size_t n_mounts;
	bool has_process;
	struct oci_process process;
	struct oci_hooks hooks;
	struct oci_kv *annotations;
	size_t n_annotations;
	/* linux */
	struct oci_ns ns[OCI_NS_COUNT];
	struct oci_idmap *uid_maps, *gid_maps;
	size_t n_uid_maps, n_gid_maps;
	struct oci_device *devices;
	size_t n_devices;
	const char *cgroups_path;
	bool has_resources;
	struct oci_resources resources;
	struct oci_kv *sysctl;
	size_t n_sysctl;
	bool has_seccomp;
	struct oci_seccomp seccomp;
	unsigned long rootfs_propagation; /* 0: default (MS_SLAVE | MS_REC) */
	const char **masked_paths, **readonly_paths;
	size_t n_masked, n_readonly;
	int64_t time_offset_mono_sec, time_offset_boot_sec;
	int64_t time_offset_mono_nsec, time_offset_boot_nsec;
	bool has_time_offsets;
	/* Fields the parser skipped because it does not know them: the first 8 paths, and how
	 * many there were in all. `create` and `run` log a warning for them. */
	const char *unknown[8];
	size_t n_unknown;
};

enum {
	OCI_PARSE_STRICT = 1, /* unknown fields are errors (the spec says to ignore them) */
};

/* Parses config.json text (len bytes). On error fills err with the field path. */
int oci_config_parse(const char *text, size_t len, int flags, struct oci_config *cfg,
		     struct cove_err *err);
int oci_config_load(const char *path, int flags, struct oci_config *cfg, struct cove_err *err);
void oci_config_free(struct oci_config *cfg);

/* A "process" object alone (exec --process FILE); allocations go into cfg's arena. */
int oci_process_parse(const char *text, size_t len, int flags, struct oci_config *cfg,
		      struct oci_process *out, struct cove_err *err);
/* A LinuxResources object alone (update --resources). */
int oci_resources_parse(const char *text, size_t len, struct oci_config *cfg,
			struct oci_resources *out, struct cove_err *err);

/* ---- value conversions (convert.c) ---- */

/* cgroup v1 cpu.shares [2, 262144] to v2 cpu.weight [1, 10000]; 0 stays 0 (unset). */
uint64_t oci_cpu_shares_to_weight(uint64_t shares);
/* blkio.weight [10, 1000] to io.weight [1, 10000]; 0 stays 0. */
uint64_t oci_blkio_weight_to_io_weight(uint64_t weight);
/* v1 memory+swap limit to v2 memory.swap.max; returns -1 for "max", -2 if invalid. */
int64_t oci_swap_to_v2(int64_t mem_swap, int64_t mem_limit);
/* Parses a signal: "9", "KILL", "SIGKILL", "SIGRTMIN+3". Returns the number or -EINVAL. */
int oci_signal_parse(const char *name);
/* Maps "RLIMIT_NOFILE" to its resource number, or -EINVAL. */
int oci_rlimit_parse(const char *name);
/* Maps "CAP_SYS_ADMIN" to its number, or -EINVAL. */
int oci_cap_parse(const char *name);
/* Applies one mount option: 0 if it was a flag (or a recursive or propagation option), 1 if
 * it is filesystem data, -ENOTSUP for options the runtime refuses ("idmap", "ridmap"). */
int oci_mount_option(const char *opt, struct oci_mount *m);
/* The names oci_mount_option takes, from its own tables, sorted (for `features`): fills out
 * with up to cap of them (OCI_MOUNT_OPTIONS_MAX holds all) and returns how many it wrote. */
#define OCI_MOUNT_OPTIONS_MAX 64
size_t oci_mount_option_names(const char **out, size_t cap);

/* ---- fault injection for tests: COVE_OCI_FAIL_AT=step ---- */
bool oci_fail_at(const char *step);

#endif
