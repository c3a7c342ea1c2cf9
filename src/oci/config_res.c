/* config.json: linux.resources (cgroup limits) and linux.seccomp. */
#include "oci/jparse.h"

#include <errno.h>
#include <seccomp.h>
#include <string.h>

static int parse_dev_rule(struct pctx *p, struct json_object *e, void *slot, void *ctx)
{
	struct oci_dev_rule *d = slot;
	const char *type = "a", *access = "rwm";
	(void)ctx;
	d->major = d->minor = -1;
	int rc = 0;
	if (!json_object_object_get_ex(e, "allow", NULL))
		rc = jp_fail(p, "allow", "required field is missing (a boolean)");
	if (!rc)
		rc = jp_bool(p, e, "allow", &d->allow);
	if (!rc)
		rc = jp_str(p, e, "type", false, &type);
	if (!rc && (strlen(type) != 1 || !strchr("acb", type[0])))
		rc = jp_fail(p, "type", "must be \"a\", \"c\" or \"b\"");
	if (!rc)
		d->type = type[0];
	if (!rc)
		rc = jp_i64(p, e, "major", false, &d->major, NULL);
	if (!rc)
		rc = jp_i64(p, e, "minor", false, &d->minor, NULL);
	if (!rc && (d->major < -1 || d->major > 4095))
		rc = jp_fail(p, "major", "must be -1 (any) or at most 4095");
	if (!rc && (d->minor < -1 || d->minor > 1048575))
		rc = jp_fail(p, "minor", "must be -1 (any) or at most 1048575");
	if (!rc)
		rc = jp_str(p, e, "access", false, &access);
	if (!rc && (!access[0] || strlen(access) > 3 || strspn(access, "rwm") != strlen(access)))
		rc = jp_fail(p, "access", "must be a combination of r, w and m");
	if (!rc)
		memcpy(d->access, access, strlen(access) + 1);
	return rc;
}

static int parse_dev_rules(struct pctx *p, struct json_object *arr, struct oci_resources *r)
{
	static const char *const known[] = {"allow", "type", "major", "minor", "access", NULL};
	void *slots = NULL;
	int rc = jp_objects(p, arr, "devices", known, sizeof(*r->devices), parse_dev_rule, NULL,
			    &slots, &r->n_devices);
	r->devices = slots;
	return rc;
}

static int parse_memory(struct pctx *p, struct json_object *o, struct oci_resources *r)
{
	static const char *const known[] = {"limit",
					    "reservation",
					    "swap",
					    "kernel",
					    "kernelTCP",
					    "swappiness",
					    "disableOOMKiller",
					    "useHierarchy",
					    "checkBeforeUpdate",
					    NULL};
	size_t old = jp_push(p, "memory");
	int rc = jp_check_keys(p, o, known);
	if (!rc)
		rc = jp_i64(p, o, "limit", false, &r->mem_limit, &r->has_mem_limit);
	if (!rc && r->has_mem_limit && r->mem_limit < -1)
		rc = jp_fail(p, "limit", "must be -1 (unlimited) or a byte count");
	if (!rc && r->has_mem_limit && r->mem_limit >= 0 && r->mem_limit < 4096)
		rc = jp_fail(p, "limit", "is below the minimum of 4096 bytes");
	if (!rc)
		rc = jp_i64(p, o, "reservation", false, &r->mem_reservation,
			    &r->has_mem_reservation);
	if (!rc && r->has_mem_reservation && r->mem_reservation < -1)
		rc = jp_fail(p, "reservation", "must be -1 (unlimited) or a byte count");
	if (!rc)
		rc = jp_i64(p, o, "swap", false, &r->mem_swap, &r->has_mem_swap);
	if (!rc && r->has_mem_swap && r->mem_swap < -1)
		rc = jp_fail(p, "swap", "must be -1 (unlimited) or a byte count");
	if (!rc && r->has_mem_swap && r->mem_swap >= 0 && r->has_mem_limit && r->mem_limit >= 0 &&
	    r->mem_swap < r->mem_limit)
		rc = jp_fail(p, "swap", "(memory+swap) must not be below limit");
	if (!rc)
		rc = jp_u64(p, o, "swappiness", false, &r->mem_swappiness, &r->has_mem_swappiness);
	if (!rc && r->has_mem_swappiness && r->mem_swappiness > 100)
		rc = jp_fail(p, "swappiness", "must be between 0 and 100");
	if (!rc)
		rc = jp_bool(p, o, "disableOOMKiller", &r->mem_disable_oom_killer);
	jp_pop(p, old);
	return rc;
}

static int parse_cpu(struct pctx *p, struct json_object *o, struct oci_resources *r)
{
	static const char *const known[] = {"shares",	      "quota", "period", "realtimeRuntime",
					    "realtimePeriod", "cpus",  "mems",	 "idle",
					    "burst",	      NULL};
	size_t old = jp_push(p, "cpu");
	int rc = jp_check_keys(p, o, known);
	if (!rc)
		rc = jp_u64(p, o, "shares", false, &r->cpu_shares, &r->has_cpu_shares);
	if (!rc && r->has_cpu_shares && r->cpu_shares != 0 &&
	    (r->cpu_shares < 2 || r->cpu_shares > 262144))
		rc = jp_fail(p, "shares", "must be between 2 and 262144");
	if (!rc)
		rc = jp_i64(p, o, "quota", false, &r->cpu_quota, &r->has_cpu_quota);
	if (!rc && r->has_cpu_quota && r->cpu_quota != -1 && r->cpu_quota != 0 &&
	    r->cpu_quota < 1000)
		rc = jp_fail(p, "quota", "must be -1 or at least 1000 microseconds");
	if (!rc)
		rc = jp_u64(p, o, "period", false, &r->cpu_period, &r->has_cpu_period);
	if (!rc && r->has_cpu_period && r->cpu_period != 0 &&
	    (r->cpu_period < 1000 || r->cpu_period > 1000000))
		rc = jp_fail(p, "period", "must be between 1000 and 1000000 microseconds");
	if (!rc)
		rc = jp_i64(p, o, "realtimeRuntime", false, &r->cpu_rt_runtime,
			    &r->has_cpu_rt_runtime);
	if (!rc)
		rc =
		    jp_u64(p, o, "realtimePeriod", false, &r->cpu_rt_period, &r->has_cpu_rt_period);
	if (!rc)
		rc = jp_i64(p, o, "idle", false, &r->cpu_idle, &r->has_cpu_idle);
	if (!rc && r->has_cpu_idle && r->cpu_idle != 0 && r->cpu_idle != 1)
		rc = jp_fail(p, "idle", "must be 0 or 1");
	if (!rc)
		rc = jp_u64(p, o, "burst", false, &r->cpu_burst, &r->has_cpu_burst);
	if (!rc)
		rc = jp_str(p, o, "cpus", false, &r->cpuset_cpus);
	if (!rc)
		rc = jp_str(p, o, "mems", false, &r->cpuset_mems);
	for (int k = 0; k < 2 && !rc; k++) {
		const char *s = k ? r->cpuset_mems : r->cpuset_cpus;
		if (s && strspn(s, "0123456789,-") != strlen(s))
			rc = jp_fail(p, k ? "mems" : "cpus", "must be a list such as \"0-2,4\"");
	}
	jp_pop(p, old);
	return rc;
}

static int parse_weight_dev(struct pctx *p, struct json_object *e, void *slot, void *ctx)
{
	struct oci_weight_dev *w = slot;
	uint64_t wt = 0;
	(void)ctx;
	int rc = jp_i64(p, e, "major", true, &w->major, NULL);
	if (!rc)
		rc = jp_i64(p, e, "minor", true, &w->minor, NULL);
	if (!rc)
		rc = jp_u64(p, e, "weight", false, &wt, &w->has_weight);
	if (!rc && w->has_weight && (wt < 10 || wt > 1000))
		rc = jp_fail(p, "weight", "must be between 10 and 1000");
	w->weight = (uint16_t)wt;
	return rc;
}

static int parse_weight_devs(struct pctx *p, struct json_object *o, struct oci_resources *r)
{
	static const char *const known[] = {"major", "minor", "weight", "leafWeight", NULL};
	struct json_object *arr = NULL;
	int rc = jp_array(p, o, "weightDevice", false, &arr);
	if (rc || !arr)
		return rc;
	void *slots = NULL;
	rc = jp_objects(p, arr, "weightDevice", known, sizeof(*r->blkio_weight_dev),
			parse_weight_dev, NULL, &slots, &r->n_blkio_weight_dev);
	r->blkio_weight_dev = slots;
	return rc;
}

static int parse_throttle(struct pctx *p, struct json_object *e, void *slot, void *ctx)
{
	struct oci_throttle *t = slot;
	(void)ctx;
	int rc = jp_i64(p, e, "major", true, &t->major, NULL);
	if (!rc)
		rc = jp_i64(p, e, "minor", true, &t->minor, NULL);
	if (!rc)
		rc = jp_u64(p, e, "rate", true, &t->rate, NULL);
	return rc;
}

static int parse_blkio(struct pctx *p, struct json_object *o, struct oci_resources *r)
{
	static const char *const throttles[4] = {"throttleReadBpsDevice", "throttleWriteBpsDevice",
						 "throttleReadIOPSDevice",
						 "throttleWriteIOPSDevice"};
	static const char *const known[] = {"weight",
					    "leafWeight",
					    "weightDevice",
					    "throttleReadBpsDevice",
					    "throttleWriteBpsDevice",
					    "throttleReadIOPSDevice",
					    "throttleWriteIOPSDevice",
					    NULL};
	static const char *const tknown[] = {"major", "minor", "rate", NULL};
	size_t old = jp_push(p, "blockIO");
	uint64_t w = 0;
	int rc = jp_check_keys(p, o, known);
	if (!rc)
		rc = jp_u64(p, o, "weight", false, &w, &r->has_blkio_weight);
	if (!rc && r->has_blkio_weight && w != 0 && (w < 10 || w > 1000))
		rc = jp_fail(p, "weight", "must be between 10 and 1000");
	r->blkio_weight = (uint16_t)w;
	if (!rc)
		rc = parse_weight_devs(p, o, r);
	for (int k = 0; k < 4 && !rc; k++) {
		struct json_object *arr = NULL;
		rc = jp_array(p, o, throttles[k], false, &arr);
		if (rc || !arr)
			continue;
		void *slots = NULL;
		rc = jp_objects(p, arr, throttles[k], tknown, sizeof(struct oci_throttle),
				parse_throttle, NULL, &slots, &r->n_throttle[k]);
		r->throttle[k] = slots;
	}
	jp_pop(p, old);
	return rc;
}

int oci_parse_resources_obj(struct pctx *p, struct json_object *obj, struct oci_resources *r)
{
	static const char *const known[] = {
	    "devices",	      "memory",	 "cpu",	 "pids",    "blockIO",
	    "hugepageLimits", "network", "rdma", "unified", NULL};
	static const char *const pids_known[] = {"limit", NULL};
	struct json_object *o = NULL;
	int rc = jp_check_keys(p, obj, known);
	if (!rc)
		rc = jp_array(p, obj, "devices", false, &o);
	if (!rc && o)
		rc = parse_dev_rules(p, o, r);
	if (!rc)
		rc = jp_obj(p, obj, "memory", false, &o);
	if (!rc && o)
		rc = parse_memory(p, o, r);
	if (!rc)
		rc = jp_obj(p, obj, "cpu", false, &o);
	if (!rc && o)
		rc = parse_cpu(p, o, r);
	if (!rc)
		rc = jp_obj(p, obj, "pids", false, &o);
	if (!rc && o) {
		size_t old = jp_push(p, "pids");
		rc = jp_check_keys(p, o, pids_known);
		if (!rc)
			rc = jp_i64(p, o, "limit", true, &r->pids_limit, &r->has_pids_limit);
		if (!rc && r->pids_limit < -1)
			rc = jp_fail(p, "limit", "must be -1 (unlimited) or a count");
		jp_pop(p, old);
	}
	if (!rc)
		rc = jp_obj(p, obj, "blockIO", false, &o);
	if (!rc && o)
		rc = parse_blkio(p, o, r);
	if (!rc)
		rc = jp_kv(p, obj, "unified", &r->unified, &r->n_unified);
	for (size_t i = 0; i < r->n_unified && !rc; i++) {
		const char *k = r->unified[i].key;
		if (!k[0] || strchr(k, '/') || k[0] == '.') {
			size_t old = jp_push(p, "unified");
			rc = jp_fail(p, k, "is not a cgroup file name");
			jp_pop(p, old);
		}
	}
	return rc;
}

static int parse_action(struct pctx *p, struct json_object *obj, const char *key,
			const char *errno_key, uint32_t default_errno, uint32_t *out)
{
	const char *a = NULL;
	int rc = jp_str(p, obj, key, true, &a);
	if (rc)
		return rc;
	uint32_t eno = default_errno;
	rc = jp_u32(p, obj, errno_key, false, &eno, NULL);
	if (rc)
		return rc;
	if (eno > 4095)
		return jp_fail(p, errno_key, "must be an errno value");
	if (strcmp(a, "SCMP_ACT_KILL") == 0 || strcmp(a, "SCMP_ACT_KILL_THREAD") == 0)
		*out = SCMP_ACT_KILL_THREAD;
	else if (strcmp(a, "SCMP_ACT_KILL_PROCESS") == 0)
		*out = SCMP_ACT_KILL_PROCESS;
	else if (strcmp(a, "SCMP_ACT_TRAP") == 0)
		*out = SCMP_ACT_TRAP;
	else if (strcmp(a, "SCMP_ACT_ERRNO") == 0)
		*out = SCMP_ACT_ERRNO(eno);
	else if (strcmp(a, "SCMP_ACT_TRACE") == 0)
		*out = SCMP_ACT_TRACE(eno);
	else if (strcmp(a, "SCMP_ACT_ALLOW") == 0)
		*out = SCMP_ACT_ALLOW;
	else if (strcmp(a, "SCMP_ACT_LOG") == 0)
		*out = SCMP_ACT_LOG;
	else if (strcmp(a, "SCMP_ACT_NOTIFY") == 0)
		return jp_fail(p, key, "SCMP_ACT_NOTIFY is not supported");
	else
		return jp_fail(p, key, "unknown action \"%s\"", a);
	return 0;
}

static int parse_arch(const char *name, uint32_t *out)
{
	if (strncmp(name, "SCMP_ARCH_", 10) != 0)
		return -EINVAL;
	char lower[32];
	size_t n = strlen(name + 10);
	if (n == 0 || n >= sizeof(lower))
		return -EINVAL;
	for (size_t i = 0; i <= n; i++) {
		char ch = name[10 + i];
		lower[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
	}
	if (strcmp(lower, "x86_64") == 0)
		strcpy(lower, "x86_64");
	uint32_t a = seccomp_arch_resolve_name(lower);
	if (!a)
		return -EINVAL;
	*out = a;
	return 0;
}

static int parse_syscall_arg(struct pctx *p, struct json_object *e, void *slot, void *ctx)
{
	static const struct {
		const char *name;
		int op;
	} ops[] = {{"SCMP_CMP_NE", SCMP_CMP_NE},
		   {"SCMP_CMP_LT", SCMP_CMP_LT},
		   {"SCMP_CMP_LE", SCMP_CMP_LE},
		   {"SCMP_CMP_EQ", SCMP_CMP_EQ},
		   {"SCMP_CMP_GE", SCMP_CMP_GE},
		   {"SCMP_CMP_GT", SCMP_CMP_GT},
		   {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
	struct oci_seccomp_arg *a = slot;
	uint32_t idx = 0;
	const char *op = NULL;
	(void)ctx;
	int rc = jp_u32(p, e, "index", true, &idx, NULL);
	if (!rc && idx > 5)
		rc = jp_fail(p, "index", "must be between 0 and 5");
	a->index = idx;
	if (!rc)
		rc = jp_u64(p, e, "value", true, &a->value, NULL);
	if (!rc)
		rc = jp_u64(p, e, "valueTwo", false, &a->value_two, NULL);
	if (!rc)
		rc = jp_str(p, e, "op", true, &op);
	a->op = 0;
	for (size_t k = 0; !rc && k < sizeof(ops) / sizeof(ops[0]); k++)
		if (strcmp(ops[k].name, op) == 0)
			a->op = ops[k].op;
	if (!rc && !a->op)
		rc = jp_fail(p, "op", "unknown operator \"%s\"", op);
	return rc;
}

static int parse_syscall_args(struct pctx *p, struct json_object *arr,
			      struct oci_seccomp_rule *rule)
{
	static const char *const known[] = {"index", "value", "valueTwo", "op", NULL};
	if (json_object_array_length(arr) > 6)
		return jp_fail(p, "args", "a syscall has at most 6 arguments");
	void *slots = NULL;
	int rc = jp_objects(p, arr, "args", known, sizeof(*rule->args), parse_syscall_arg, NULL,
			    &slots, &rule->n_args);
	rule->args = slots;
	return rc;
}

static int parse_syscall(struct pctx *p, struct json_object *e, void *slot, void *ctx)
{
	struct oci_seccomp_rule *rule = slot;
	struct json_object *args = NULL;
	(void)ctx;
	int rc = jp_strv(p, e, "names", true, true, &rule->names, &rule->n_names);
	if (!rc)
		rc = parse_action(p, e, "action", "errnoRet", EPERM, &rule->action);
	if (!rc)
		rc = jp_array(p, e, "args", false, &args);
	if (!rc && args)
		rc = parse_syscall_args(p, args, rule);
	return rc;
}

int oci_parse_seccomp_obj(struct pctx *p, struct json_object *obj, struct oci_seccomp *s)
{
	static const char *const known[] = {
	    "defaultAction", "defaultErrnoRet",	 "architectures", "flags",
	    "listenerPath",  "listenerMetadata", "syscalls",	  NULL};
	static const char *const sknown[] = {"names",	"action",   "errnoRet", "args",
					     "comment", "includes", "excludes", NULL};
	const char **arches = NULL, **flags = NULL;
	size_t n_arches = 0, n_flags = 0;
	struct json_object *arr = NULL;
	int rc = jp_check_keys(p, obj, known);
	if (!rc)
		rc = parse_action(p, obj, "defaultAction", "defaultErrnoRet", EPERM,
				  &s->default_action);
	if (!rc)
		rc = jp_strv(p, obj, "architectures", false, false, &arches, &n_arches);
	if (!rc && n_arches) {
		s->arches = jp_alloc(p, n_arches, sizeof(uint32_t));
		if (!s->arches)
			return -ENOMEM;
		for (size_t i = 0; i < n_arches && !rc; i++)
			if (parse_arch(arches[i], &s->arches[i]) < 0)
				rc = jp_fail(p, "architectures", "unknown architecture \"%s\"",
					     arches[i]);
		s->n_arches = n_arches;
	}
	if (!rc)
		rc = jp_strv(p, obj, "flags", false, false, &flags, &n_flags);
	for (size_t i = 0; i < n_flags && !rc; i++) {
		if (strcmp(flags[i], "SECCOMP_FILTER_FLAG_LOG") == 0)
			s->flag_log = true;
		else if (strcmp(flags[i], "SECCOMP_FILTER_FLAG_SPEC_ALLOW") == 0)
			s->flag_spec_allow = true;
		else if (strcmp(flags[i], "SECCOMP_FILTER_FLAG_TSYNC") != 0)
			rc = jp_fail(p, "flags", "unknown flag \"%s\"", flags[i]);
	}
	if (!rc)
		rc = jp_array(p, obj, "syscalls", false, &arr);
	if (rc || !arr)
		return rc;
	void *slots = NULL;
	rc = jp_objects(p, arr, "syscalls", sknown, sizeof(*s->rules), parse_syscall, NULL, &slots,
			&s->n_rules);
	s->rules = slots;
	return rc;
}
