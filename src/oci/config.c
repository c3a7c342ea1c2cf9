/* config.json: parsing and validation of the top level, process, mounts, hooks and namespaces. */
#include "oci/jparse.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const ns_names[OCI_NS_COUNT] = {
    [OCI_NS_PID] = "pid",	[OCI_NS_NET] = "network", [OCI_NS_MNT] = "mount",
    [OCI_NS_IPC] = "ipc",	[OCI_NS_UTS] = "uts",	  [OCI_NS_USER] = "user",
    [OCI_NS_CGROUP] = "cgroup", [OCI_NS_TIME] = "time",
};

static int parse_caps(struct pctx *p, struct json_object *obj, struct oci_process *pr)
{
	static const char *const sets[5] = {"bounding", "effective", "inheritable", "permitted",
					    "ambient"};
	static const char *const known[] = {"bounding",	 "effective", "inheritable",
					    "permitted", "ambient",   NULL};
	size_t old = jp_push(p, "capabilities");
	int r = jp_check_keys(p, obj, known);
	for (int s = 0; s < 5 && !r; s++) {
		const char **names = NULL;
		size_t n = 0;
		r = jp_strv(p, obj, sets[s], false, false, &names, &n);
		for (size_t i = 0; i < n && !r; i++) {
			int cap = oci_cap_parse(names[i]);
			if (cap < 0 || cap > 63)
				r = jp_fail(p, sets[s], "unknown capability \"%s\"", names[i]);
			else
				pr->caps[s] |= 1ULL << cap;
		}
	}
	pr->has_caps = true;
	jp_pop(p, old);
	return r;
}

static int parse_rlimit(struct pctx *p, struct json_object *e, void *slot, void *ctx)
{
	struct oci_rlimit *rl = slot;
	const char *type = NULL;
	(void)ctx;
	int r = jp_str(p, e, "type", true, &type);
	if (!r && (rl->resource = oci_rlimit_parse(type)) < 0)
		r = jp_fail(p, "type", "unknown rlimit \"%s\"", type);
	if (!r)
		r = jp_u64(p, e, "soft", true, &rl->soft, NULL);
	if (!r)
		r = jp_u64(p, e, "hard", true, &rl->hard, NULL);
	if (!r && rl->soft > rl->hard)
		r = jp_fail(p, "soft", "must not exceed hard");
	return r;
}

static int parse_rlimits(struct pctx *p, struct json_object *arr, struct oci_process *pr)
{
	static const char *const known[] = {"type", "soft", "hard", NULL};
	void *slots = NULL;
	int r = jp_objects(p, arr, "rlimits", known, sizeof(*pr->rlimits), parse_rlimit, NULL,
			   &slots, &pr->n_rlimits);
	pr->rlimits = slots;
	return r;
}

int oci_parse_process_obj(struct pctx *p, struct json_object *obj, struct oci_process *pr)
{
	static const char *const known[] = {"terminal",
					    "consoleSize",
					    "user",
					    "args",
					    "commandLine",
					    "env",
					    "cwd",
					    "capabilities",
					    "rlimits",
					    "noNewPrivileges",
					    "apparmorProfile",
					    "oomScoreAdj",
					    "selinuxLabel",
					    "ioPriority",
					    "scheduler",
					    "execCPUAffinity",
					    NULL};
	static const char *const user_known[] = {"uid",	     "gid", "umask", "additionalGids",
						 "username", NULL};
	struct json_object *user = NULL, *caps = NULL, *rl = NULL, *gids = NULL;
	int r = jp_check_keys(p, obj, known);
	pr->umask = -1;
	if (!r)
		r = jp_bool(p, obj, "terminal", &pr->terminal);
	if (!r)
		r = jp_strv(p, obj, "args", true, true, &pr->args, &pr->n_args);
	if (!r)
		r = jp_strv(p, obj, "env", false, false, &pr->env, &pr->n_env);
	if (!r && !pr->env) {
		pr->env = jp_alloc(p, 1, sizeof(char *));
		if (!pr->env)
			r = -ENOMEM;
	}
	if (!r)
		r = jp_str(p, obj, "cwd", true, &pr->cwd);
	if (!r && pr->cwd[0] != '/')
		r = jp_fail(p, "cwd", "must be an absolute path");
	if (!r)
		r = jp_obj(p, obj, "user", true, &user);
	if (!r) {
		size_t old = jp_push(p, "user");
		uint32_t um = 0;
		bool has_um = false;
		r = jp_check_keys(p, user, user_known);
		if (!r)
			r = jp_u32(p, user, "uid", true, &pr->uid, NULL);
		if (!r)
			r = jp_u32(p, user, "gid", true, &pr->gid, NULL);
		if (!r)
			r = jp_u32(p, user, "umask", false, &um, &has_um);
		if (!r && has_um) {
			if (um > 0777)
				r = jp_fail(p, "umask", "must be at most 0777");
			pr->umask = (int)um;
		}
		if (!r)
			r = jp_array(p, user, "additionalGids", false, &gids);
		if (!r && gids) {
			size_t n = json_object_array_length(gids);
			pr->gids = jp_alloc(p, n, sizeof(uint32_t));
			if (!pr->gids)
				r = -ENOMEM;
			for (size_t i = 0; i < n && !r; i++) {
				struct json_object *g = json_object_array_get_idx(gids, i);
				int64_t v = json_object_get_int64(g);
				if (!json_object_is_type(g, json_type_int) || v < 0 ||
				    v > UINT32_MAX)
					r = jp_fail(p, "additionalGids",
						    "must be an array of 32-bit ids");
				else
					pr->gids[i] = (uint32_t)v;
			}
			pr->n_gids = n;
		}
		jp_pop(p, old);
	}
	if (!r)
		r = jp_obj(p, obj, "capabilities", false, &caps);
	if (!r && caps)
		r = parse_caps(p, caps, pr);
	if (!r)
		r = jp_array(p, obj, "rlimits", false, &rl);
	if (!r && rl)
		r = parse_rlimits(p, rl, pr);
	if (!r)
		r = jp_bool(p, obj, "noNewPrivileges", &pr->no_new_privileges);
	if (!r) {
		int64_t v = 0;
		r = jp_i64(p, obj, "oomScoreAdj", false, &v, &pr->has_oom_score_adj);
		if (!r && (v < -1000 || v > 1000))
			r = jp_fail(p, "oomScoreAdj", "must be between -1000 and 1000");
		pr->oom_score_adj = (int)v;
	}
	return r;
}

static int parse_mount(struct pctx *p, struct json_object *e, void *slot, void *ctx)
{
	struct oci_mount *m = slot;
	const char **opts = NULL;
	size_t nopts = 0;
	(void)ctx;
	int r = jp_str(p, e, "destination", true, &m->destination);
	if (!r && m->destination[0] != '/')
		r = jp_fail(p, "destination", "must be an absolute path");
	if (!r)
		r = jp_str(p, e, "type", false, &m->type);
	if (!r)
		r = jp_str(p, e, "source", false, &m->source);
	if (!r)
		r = jp_strv(p, e, "options", false, false, &opts, &nopts);
	char *data = NULL;
	size_t dlen = 0;
	for (size_t k = 0; k < nopts && !r; k++) {
		int kind = oci_mount_option(opts[k], m);
		if (kind == 0)
			continue;
		if (kind < 0) {
			r = jp_fail(p, "options", "\"%s\": idmapped mounts are not supported",
				    opts[k]);
			break;
		}
		size_t l = strlen(opts[k]);
		char *nd = jp_alloc(p, dlen + l + 2, 1);
		if (!nd) {
			r = -ENOMEM;
			break;
		}
		if (dlen) {
			memcpy(nd, data, dlen);
			nd[dlen++] = ',';
		}
		memcpy(nd + dlen, opts[k], l + 1);
		dlen += l;
		data = nd;
	}
	m->data = data;
	/* Mappings only mean something on an idmapped mount, which is refused above. */
	if (!r && json_object_object_get_ex(e, "uidMappings", NULL))
		r = jp_fail(p, "uidMappings", "idmapped mounts are not supported");
	if (!r && json_object_object_get_ex(e, "gidMappings", NULL))
		r = jp_fail(p, "gidMappings", "idmapped mounts are not supported");
	if (!r && m->tmpcopyup && (m->bind || !m->type || strcmp(m->type, "tmpfs") != 0))
		r = jp_fail(p, "options", "\"tmpcopyup\" needs a tmpfs mount");
	if (!r && m->bind && !m->source)
		r = jp_fail(p, "source", "a bind mount needs a source");
	if (!r && !m->bind && !m->type)
		m->type = "none";
	if (!r && !m->source)
		m->source = m->type;
	return r;
}

static int parse_mounts(struct pctx *p, struct json_object *arr, struct oci_config *c)
{
	static const char *const known[] = {"destination", "type",	  "source", "options",
					    "uidMappings", "gidMappings", NULL};
	void *slots = NULL;
	int r = jp_objects(p, arr, "mounts", known, sizeof(*c->mounts), parse_mount, NULL, &slots,
			   &c->n_mounts);
	c->mounts = slots;
	return r;
}

static int parse_hook(struct pctx *p, struct json_object *e, void *slot, void *ctx)
{
	struct oci_hook *hk = slot;
	int64_t t = 0;
	bool has_t = false;
	(void)ctx;
	int r = jp_str(p, e, "path", true, &hk->path);
	if (!r && hk->path[0] != '/')
		r = jp_fail(p, "path", "must be an absolute path");
	if (!r)
		r = jp_strv(p, e, "args", false, false, &hk->args, NULL);
	if (!r)
		r = jp_strv(p, e, "env", false, false, &hk->env, NULL);
	if (!r)
		r = jp_i64(p, e, "timeout", false, &t, &has_t);
	if (!r && has_t && (t <= 0 || t > 86400))
		r = jp_fail(p, "timeout", "must be a positive number of seconds");
	hk->timeout = (int)t;
	return r;
}

static int parse_hooks(struct pctx *p, struct json_object *obj, struct oci_hooks *h)
{
	static const char *const kinds[OCI_HOOK_COUNT] = {"prestart",	     "createRuntime",
							  "createContainer", "startContainer",
							  "poststart",	     "poststop"};
	static const char *const known[] = {"prestart",
					    "createRuntime",
					    "createContainer",
					    "startContainer",
					    "poststart",
					    "poststop",
					    NULL};
	static const char *const hook_known[] = {"path", "args", "env", "timeout", NULL};
	size_t old = jp_push(p, "hooks");
	int r = jp_check_keys(p, obj, known);
	for (int k = 0; k < OCI_HOOK_COUNT && !r; k++) {
		struct json_object *arr = NULL;
		r = jp_array(p, obj, kinds[k], false, &arr);
		if (r || !arr)
			continue;
		void *slots = NULL;
		r = jp_objects(p, arr, kinds[k], hook_known, sizeof(struct oci_hook), parse_hook,
			       NULL, &slots, &h->count[k]);
		h->list[k] = slots;
	}
	jp_pop(p, old);
	return r;
}

static int parse_idmap(struct pctx *p, struct json_object *e, void *slot, void *ctx)
{
	struct oci_idmap *m = slot;
	(void)ctx;
	int r = jp_u32(p, e, "containerID", true, &m->container_id, NULL);
	if (!r)
		r = jp_u32(p, e, "hostID", true, &m->host_id, NULL);
	if (!r)
		r = jp_u32(p, e, "size", true, &m->size, NULL);
	if (!r && m->size == 0)
		r = jp_fail(p, "size", "must be positive");
	return r;
}

static int parse_idmaps(struct pctx *p, struct json_object *obj, const char *key,
			struct oci_idmap **out, size_t *nout)
{
	static const char *const known[] = {"containerID", "hostID", "size", NULL};
	struct json_object *arr = NULL;
	int r = jp_array(p, obj, key, false, &arr);
	if (r || !arr)
		return r;
	if (json_object_array_length(arr) > 340)
		return jp_fail(p, key, "has too many entries");
	void *slots = NULL;
	r = jp_objects(p, arr, key, known, sizeof(struct oci_idmap), parse_idmap, NULL, &slots,
		       nout);
	*out = slots;
	return r;
}

static int parse_namespace(struct pctx *p, struct json_object *e, void *slot, void *ctx)
{
	struct oci_config *c = ctx;
	const char *type = NULL, *path = NULL;
	int t = -1;
	(void)slot;
	int r = jp_str(p, e, "type", true, &type);
	if (!r)
		r = jp_str(p, e, "path", false, &path);
	for (int k = 0; k < OCI_NS_COUNT && !r; k++)
		if (strcmp(ns_names[k], type) == 0)
			t = k;
	if (!r && t < 0)
		r = jp_fail(p, "type", "unknown namespace type \"%s\"", type);
	if (!r && c->ns[t].present)
		r = jp_fail(p, "type", "namespace \"%s\" is listed twice", type);
	if (!r && path && path[0] != '/')
		r = jp_fail(p, "path", "must be an absolute path");
	if (!r) {
		c->ns[t].present = true;
		c->ns[t].path = path && *path ? path : NULL;
	}
	return r;
}

static int parse_namespaces(struct pctx *p, struct json_object *arr, struct oci_config *c)
{
	static const char *const known[] = {"type", "path", NULL};
	return jp_objects(p, arr, "namespaces", known, 0, parse_namespace, c, NULL, NULL);
}

static int parse_device(struct pctx *p, struct json_object *e, void *slot, void *ctx)
{
	struct oci_device *d = slot;
	(void)ctx;
	const char *type = NULL;
	int r = jp_str(p, e, "type", true, &type);
	if (!r && (strlen(type) != 1 || !strchr("cbup", type[0])))
		r = jp_fail(p, "type", "must be one of \"c\", \"b\", \"u\", \"p\"");
	if (!r)
		d->type = type[0];
	if (!r)
		r = jp_str(p, e, "path", true, &d->path);
	if (!r && d->path[0] != '/')
		r = jp_fail(p, "path", "must be an absolute path");
	bool need = !r && d->type != 'p';
	if (!r)
		r = jp_i64(p, e, "major", need, &d->major, NULL);
	if (!r)
		r = jp_i64(p, e, "minor", need, &d->minor, NULL);
	if (!r && (d->major < 0 || d->major > 4095 || d->minor < 0 || d->minor > 1048575))
		r = jp_fail(p, "major", "device numbers are out of range");
	if (!r)
		r = jp_u32(p, e, "fileMode", false, &d->mode, &d->has_mode);
	if (!r)
		r = jp_u32(p, e, "uid", false, &d->uid, &d->has_uid);
	if (!r)
		r = jp_u32(p, e, "gid", false, &d->gid, &d->has_gid);
	return r;
}

static int parse_devices(struct pctx *p, struct json_object *arr, struct oci_config *c)
{
	static const char *const known[] = {"type",	"path", "major", "minor",
					    "fileMode", "uid",	"gid",	 NULL};
	void *slots = NULL;
	int r = jp_objects(p, arr, "devices", known, sizeof(*c->devices), parse_device, NULL,
			   &slots, &c->n_devices);
	c->devices = slots;
	return r;
}

static int parse_propagation(struct pctx *p, const char *s, unsigned long *out)
{
	static const struct {
		const char *name;
		unsigned long flags;
	} t[] = {{"shared", MS_SHARED},		{"rshared", MS_SHARED | MS_REC},
		 {"slave", MS_SLAVE},		{"rslave", MS_SLAVE | MS_REC},
		 {"private", MS_PRIVATE},	{"rprivate", MS_PRIVATE | MS_REC},
		 {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC}};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (strcmp(t[i].name, s) == 0) {
			*out = t[i].flags;
			return 0;
		}
	}
	return jp_fail(p, "rootfsPropagation", "unknown propagation \"%s\"", s);
}

static int parse_time_offsets(struct pctx *p, struct json_object *obj, struct oci_config *c)
{
	static const char *const known[] = {"monotonic", "boottime", NULL};
	static const char *const inner[] = {"secs", "nanosecs", NULL};
	size_t old = jp_push(p, "timeOffsets");
	int r = jp_check_keys(p, obj, known);
	for (int k = 0; k < 2 && !r; k++) {
		struct json_object *o = NULL;
		r = jp_obj(p, obj, k ? "boottime" : "monotonic", false, &o);
		if (r || !o)
			continue;
		size_t o2 = jp_push(p, k ? "boottime" : "monotonic");
		int64_t *secs = k ? &c->time_offset_boot_sec : &c->time_offset_mono_sec;
		int64_t *ns = k ? &c->time_offset_boot_nsec : &c->time_offset_mono_nsec;
		r = jp_check_keys(p, o, inner);
		if (!r)
			r = jp_i64(p, o, "secs", false, secs, NULL);
		if (!r)
			r = jp_i64(p, o, "nanosecs", false, ns, NULL);
		if (!r && (*ns < 0 || *ns >= 1000000000))
			r = jp_fail(p, "nanosecs", "must be in [0, 999999999]");
		jp_pop(p, o2);
		c->has_time_offsets = true;
	}
	jp_pop(p, old);
	return r;
}

static int parse_linux(struct pctx *p, struct json_object *obj, struct oci_config *c)
{
	static const char *const known[] = {
	    "namespaces",    "uidMappings", "gidMappings", "devices",		"cgroupsPath",
	    "resources",     "sysctl",	    "seccomp",	   "rootfsPropagation", "maskedPaths",
	    "readonlyPaths", "mountLabel",  "intelRdt",	   "personality",	"timeOffsets",
	    "memoryPolicy",  "netDevices",  NULL};
	struct json_object *o = NULL;
	const char *prop = NULL;
	size_t old = jp_push(p, "linux");
	int r = jp_check_keys(p, obj, known);
	if (!r)
		r = jp_array(p, obj, "namespaces", false, &o);
	if (!r && o)
		r = parse_namespaces(p, o, c);
	if (!r)
		r = parse_idmaps(p, obj, "uidMappings", &c->uid_maps, &c->n_uid_maps);
	if (!r)
		r = parse_idmaps(p, obj, "gidMappings", &c->gid_maps, &c->n_gid_maps);
	if (!r && (c->n_uid_maps || c->n_gid_maps) && !c->ns[OCI_NS_USER].present)
		r = jp_fail(p, "uidMappings", "ID mappings need a user namespace");
	if (!r && c->ns[OCI_NS_USER].present && !c->ns[OCI_NS_USER].path &&
	    (!c->n_uid_maps || !c->n_gid_maps))
		r = jp_fail(p, "uidMappings", "a new user namespace needs uid and gid mappings");
	if (!r)
		r = jp_array(p, obj, "devices", false, &o);
	if (!r && o)
		r = parse_devices(p, o, c);
	if (!r)
		r = jp_str(p, obj, "cgroupsPath", false, &c->cgroups_path);
	if (!r)
		r = jp_obj(p, obj, "resources", false, &o);
	if (!r && o) {
		size_t o2 = jp_push(p, "resources");
		r = oci_parse_resources_obj(p, o, &c->resources);
		c->has_resources = true;
		jp_pop(p, o2);
	}
	if (!r)
		r = jp_kv(p, obj, "sysctl", &c->sysctl, &c->n_sysctl);
	for (size_t i = 0; i < c->n_sysctl && !r; i++) {
		if (strstr(c->sysctl[i].key, "..") || c->sysctl[i].key[0] == '/' ||
		    c->sysctl[i].key[0] == '.' || !c->sysctl[i].key[0]) {
			size_t o2 = jp_push(p, "sysctl");
			r = jp_fail(p, c->sysctl[i].key, "is not a valid sysctl name");
			jp_pop(p, o2);
		}
	}
	if (!r)
		r = jp_obj(p, obj, "seccomp", false, &o);
	if (!r && o) {
		size_t o2 = jp_push(p, "seccomp");
		r = oci_parse_seccomp_obj(p, o, &c->seccomp);
		c->has_seccomp = true;
		jp_pop(p, o2);
	}
	if (!r)
		r = jp_str(p, obj, "rootfsPropagation", false, &prop);
	if (!r && prop)
		r = parse_propagation(p, prop, &c->rootfs_propagation);
	if (!r)
		r = jp_strv(p, obj, "maskedPaths", false, false, &c->masked_paths, &c->n_masked);
	if (!r)
		r = jp_strv(p, obj, "readonlyPaths", false, false, &c->readonly_paths,
			    &c->n_readonly);
	if (!r)
		r = jp_obj(p, obj, "timeOffsets", false, &o);
	if (!r && o)
		r = parse_time_offsets(p, o, c);
	if (!r && c->has_time_offsets && !c->ns[OCI_NS_TIME].present)
		r = jp_fail(p, "timeOffsets", "needs a time namespace");
	jp_pop(p, old);
	return r;
}

static int parse_top(struct pctx *p, struct json_object *top, struct oci_config *c)
{
	static const char *const known[] = {
	    "ociVersion",  "root",  "mounts", "process", "hostname", "domainname", "hooks",
	    "annotations", "linux", "vm",     "solaris", "windows",  "zos",	   NULL};
	static const char *const root_known[] = {"path", "readonly", NULL};
	struct json_object *o = NULL;
	if (!json_object_is_type(top, json_type_object))
		return jp_fail(p, NULL, "must be a JSON object");
	int r = jp_check_keys(p, top, known);
	if (!r)
		r = jp_str(p, top, "ociVersion", true, &c->oci_version);
	if (!r && strncmp(c->oci_version, "1.", 2) != 0)
		r = jp_fail(p, "ociVersion", "unsupported version \"%s\" (want 1.x)",
			    c->oci_version);
	if (!r)
		r = jp_obj(p, top, "root", true, &o);
	if (!r) {
		size_t old = jp_push(p, "root");
		r = jp_check_keys(p, o, root_known);
		if (!r)
			r = jp_str(p, o, "path", true, &c->root_path);
		if (!r && !c->root_path[0])
			r = jp_fail(p, "path", "must not be empty");
		if (!r)
			r = jp_bool(p, o, "readonly", &c->root_readonly);
		jp_pop(p, old);
	}
	if (!r)
		r = jp_array(p, top, "mounts", false, &o);
	if (!r && o)
		r = parse_mounts(p, o, c);
	if (!r)
		r = jp_obj(p, top, "process", false, &o);
	if (!r && o) {
		size_t old = jp_push(p, "process");
		r = oci_parse_process_obj(p, o, &c->process);
		c->has_process = true;
		jp_pop(p, old);
	}
	if (!r)
		r = jp_str(p, top, "hostname", false, &c->hostname);
	if (!r && c->hostname && strlen(c->hostname) > 64)
		r = jp_fail(p, "hostname", "is longer than 64 bytes");
	if (!r)
		r = jp_str(p, top, "domainname", false, &c->domainname);
	if (!r && c->domainname && strlen(c->domainname) > 64)
		r = jp_fail(p, "domainname", "is longer than 64 bytes");
	if (!r)
		r = jp_obj(p, top, "hooks", false, &o);
	if (!r && o)
		r = parse_hooks(p, o, &c->hooks);
	if (!r)
		r = jp_kv(p, top, "annotations", &c->annotations, &c->n_annotations);
	if (!r)
		r = jp_obj(p, top, "linux", false, &o);
	if (!r && o)
		r = parse_linux(p, o, c);
	if (!r && c->hostname && c->hostname[0] && !c->ns[OCI_NS_UTS].present)
		r = jp_fail(p, "hostname", "needs a uts namespace (linux.namespaces)");
	return r;
}

static int parse_text(const char *text, size_t len, struct oci_config *c, struct cove_err *err,
		      struct json_object **out)
{
	if (len > (64u << 20))
		return cove_err_set(err, -EFBIG, "config: larger than 64 MiB");
	struct json_tokener *tok = json_tokener_new_ex(64);
	if (!tok)
		return cove_err_set(err, -ENOMEM, "config: out of memory");
	struct json_object *top = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t off = tok->char_offset;
	json_tokener_free(tok);
	if (!top || jerr != json_tokener_success) {
		json_object_put(top);
		return cove_err_set(err, -EINVAL, "config: invalid JSON at byte %zu: %s", off,
				    jerr == json_tokener_continue ? "unexpected end of input"
								  : json_tokener_error_desc(jerr));
	}
	for (size_t i = off; i < len; i++) {
		if (!strchr(" \t\r\n", text[i])) {
			json_object_put(top);
			return cove_err_set(err, -EINVAL, "config: trailing data at byte %zu", i);
		}
	}
	(void)c;
	*out = top;
	return 0;
}

static int init_cfg(struct oci_config *c, struct cove_err *err)
{
	memset(c, 0, sizeof(*c));
	c->arena = oci_arena_new();
	if (!c->arena)
		return cove_err_set(err, -ENOMEM, "config: out of memory");
	return 0;
}

int oci_config_parse(const char *text, size_t len, int flags, struct oci_config *c,
		     struct cove_err *err)
{
	int r = init_cfg(c, err);
	if (r)
		return r;
	struct json_object *top = NULL;
	r = parse_text(text, len, c, err, &top);
	if (r) {
		oci_config_free(c);
		return r;
	}
	c->json = top;
	struct pctx p = {.cfg = c, .err = err, .flags = flags};
	r = parse_top(&p, top, c);
	if (r)
		oci_config_free(c);
	return r;
}

int oci_process_parse(const char *text, size_t len, int flags, struct oci_config *c,
		      struct oci_process *out, struct cove_err *err)
{
	struct json_object *top = NULL;
	int r = parse_text(text, len, c, err, &top);
	if (r)
		return r;
	struct pctx p = {.cfg = c, .err = err, .flags = flags};
	memset(out, 0, sizeof(*out));
	if (!json_object_is_type(top, json_type_object))
		r = jp_fail(&p, NULL, "process must be a JSON object");
	else
		r = oci_parse_process_obj(&p, top, out);
	/* Chain the extra tree behind the main one; freed with the config. */
	if (c->json) {
		json_object_object_add(c->json, "\x01process-extra", top);
	} else {
		c->json = top;
	}
	return r;
}

int oci_resources_parse(const char *text, size_t len, struct oci_config *c,
			struct oci_resources *out, struct cove_err *err)
{
	struct json_object *top = NULL;
	int r = parse_text(text, len, c, err, &top);
	if (r)
		return r;
	struct pctx p = {.cfg = c, .err = err};
	memset(out, 0, sizeof(*out));
	if (!json_object_is_type(top, json_type_object))
		r = jp_fail(&p, NULL, "resources must be a JSON object");
	else
		r = oci_parse_resources_obj(&p, top, out);
	if (c->json)
		json_object_object_add(c->json, "\x01resources-extra", top);
	else
		c->json = top;
	return r;
}

int oci_config_load(const char *path, int flags, struct oci_config *c, struct cove_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cove_err_set(err, -errno, "%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (64 << 20)) {
		close(fd);
		return cove_err_set(err, -EINVAL, "%s: not a regular file of at most 64 MiB", path);
	}
	size_t cap = (size_t)st.st_size + 1, len = 0;
	char *buf = malloc(cap);
	if (!buf) {
		close(fd);
		return cove_err_set(err, -ENOMEM, "%s: out of memory", path);
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			close(fd);
			return cove_err_set(err, -e, "%s: %s", path, strerror(e));
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap)
			break;
	}
	close(fd);
	int r = oci_config_parse(buf, len, flags, c, err);
	free(buf);
	return r;
}

void oci_config_free(struct oci_config *c)
{
	if (!c)
		return;
	if (c->json)
		json_object_put(c->json);
	oci_arena_free(c->arena);
	memset(c, 0, sizeof(*c));
}
