/* cgroups v1, hybrid and v2: create, limit, attach, freeze, list and remove a container's group. */
#include "oci/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#define CG_ROOT "/sys/fs/cgroup"

/* The v1 hierarchies a container joins (symlinked aliases such as cpu,cpuacct are skipped). */
static const char *const v1_ctrls[] = {
    "cpu",     "cpuacct",  "cpuset",	 "memory",  "devices", "freezer", "blkio",   "pids",
    "net_cls", "net_prio", "perf_event", "hugetlb", "rdma",    "misc",	  "systemd", NULL};

static bool is_cgroup_dir(const char *path, long magic)
{
	struct statfs sf;
	struct stat st;
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return false;
	return statfs(path, &sf) == 0 && sf.f_type == magic;
}

static int systemd_path(const char *in, char *out, size_t len)
{
	/* "slice:prefix:name" → "/<slice hierarchy>/prefix-name.scope" */
	const char *c1 = strchr(in, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c1 || !c2 || strchr(c2 + 1, ':') || strchr(in, '/'))
		return -EINVAL;
	char slice[256] = "", acc[1024] = "";
	size_t sl = (size_t)(c1 - in);
	if (sl >= sizeof(slice))
		return -EINVAL;
	memcpy(slice, in, sl);
	if (!sl)
		strcpy(slice, "system.slice");
	/* a-b.slice lives in /a.slice/a-b.slice */
	size_t pos = 0;
	const char *end = strstr(slice, ".slice");
	size_t base = end ? (size_t)(end - slice) : strlen(slice);
	for (size_t i = 0; i <= base; i++) {
		if (i == base || slice[i] == '-') {
			int n =
			    snprintf(acc + pos, sizeof(acc) - pos, "/%.*s.slice", (int)i, slice);
			if (n < 0 || (size_t)n >= sizeof(acc) - pos)
				return -EINVAL;
			pos += (size_t)n;
		}
	}
	int n = snprintf(out, len, "%s/%.*s-%s.scope", acc, (int)(c2 - c1 - 1), c1 + 1, c2 + 1);
	return n < 0 || (size_t)n >= len ? -EINVAL : 0;
}

int oci_cgroup_init(struct oci_cgroup *cg, const char *cgroups_path, const char *id, bool systemd,
		    struct cove_err *err)
{
	memset(cg, 0, sizeof(*cg));
	struct statfs sf;
	if (statfs(CG_ROOT, &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC)
		cg->mode = OCI_CG_V2;
	else if (is_cgroup_dir(CG_ROOT "/unified", CGROUP2_SUPER_MAGIC))
		cg->mode = OCI_CG_HYBRID;
	else
		cg->mode = OCI_CG_V1;
	int n;
	if (!cgroups_path || !*cgroups_path)
		n = snprintf(cg->path, sizeof(cg->path), "/cove-runc/%s", id);
	else if (systemd && strchr(cgroups_path, ':'))
		n = systemd_path(cgroups_path, cg->path, sizeof(cg->path)) ? -1 : 0;
	else
		n = snprintf(cg->path, sizeof(cg->path), "%s%s", cgroups_path[0] == '/' ? "" : "/",
			     cgroups_path);
	if (n < 0 || (size_t)n >= sizeof(cg->path) || strstr(cg->path, "/..") ||
	    strstr(cg->path, "//"))
		return cove_err_set(err, -EINVAL, "linux.cgroupsPath: invalid path \"%s\"",
				    cgroups_path ? cgroups_path : "");
	size_t l = strlen(cg->path);
	while (l > 1 && cg->path[l - 1] == '/')
		cg->path[--l] = '\0';
	if (strcmp(cg->path, "/") == 0)
		return cove_err_set(err, -EINVAL, "linux.cgroupsPath: must not be the root cgroup");
	return 0;
}

int oci_cgroup_dir(const struct oci_cgroup *cg, const char *ctrl, char *buf, size_t len)
{
	int n;
	if (cg->mode == OCI_CG_V2 && !ctrl)
		n = snprintf(buf, len, CG_ROOT "%s", cg->path);
	else if (!ctrl)
		n = snprintf(buf, len, CG_ROOT "/unified%s", cg->path);
	else
		n = snprintf(buf, len, CG_ROOT "/%s%s", ctrl, cg->path);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Calls fn on every directory the container's group has (v1 controllers, unified). */
static int for_each_dir(const struct oci_cgroup *cg,
			int (*fn)(const char *dir, const char *ctrl, void *arg), void *arg)
{
	char dir[PATH_MAX];
	if (cg->mode == OCI_CG_V2) {
		oci_cgroup_dir(cg, NULL, dir, sizeof(dir));
		return fn(dir, NULL, arg);
	}
	for (const char *const *c = v1_ctrls; *c; c++) {
		char mnt[64];
		snprintf(mnt, sizeof(mnt), CG_ROOT "/%s", *c);
		struct stat st;
		if (lstat(mnt, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		oci_cgroup_dir(cg, *c, dir, sizeof(dir));
		int r = fn(dir, *c, arg);
		if (r)
			return r;
	}
	if (cg->mode == OCI_CG_HYBRID) {
		oci_cgroup_dir(cg, NULL, dir, sizeof(dir));
		return fn(dir, "", arg);
	}
	return 0;
}

static int mkdir_p(char *path, mode_t mode, const char *ctrl)
{
	size_t len = strlen(path);
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		char save = path[i];
		path[i] = '\0';
		int r = mkdir(path, mode);
		if (r == 0 && ctrl && strcmp(ctrl, "cpuset") == 0) {
			/* A new cpuset group starts empty: inherit the parent's cpus and mems. */
			char parent[PATH_MAX], val[4096], f[PATH_MAX + 32];
			snprintf(parent, sizeof(parent), "%s", path);
			char *slash = strrchr(parent, '/');
			if (slash)
				*slash = '\0';
			const char *files[] = {"cpuset.cpus", "cpuset.mems"};
			for (int k = 0; k < 2; k++) {
				snprintf(f, sizeof(f), "%s/%s", parent, files[k]);
				if (oci_read_file(f, val, sizeof(val)) >= 0) {
					snprintf(f, sizeof(f), "%s/%s", path, files[k]);
					oci_write_file(f, val, strlen(val));
				}
			}
		}
		path[i] = save;
		if (r < 0 && errno != EEXIST)
			return -errno;
	}
	return 0;
}

static int write_cg(const char *dir, const char *file, const char *val, struct cove_err *err)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int r = oci_write_file(path, val, strlen(val));
	if (r < 0)
		return cove_err_set(err, r, "cgroup: writing \"%s\" to %s: %s", val, path,
				    strerror(-r));
	return 0;
}

static int write_num(const char *dir, const char *file, int64_t v, struct cove_err *err)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return write_cg(dir, file, buf, err);
}

/* For settings only some kernels have: a missing file is an error naming the config field. */
static int write_feature_str(const char *dir, const char *file, const char *val, const char *field,
			     struct cove_err *err)
{
	int rc = write_cg(dir, file, val, err);
	if (rc == -ENOENT) {
		cove_err_clear(err);
		return cove_err_set(
		    err, -ENOTSUP, "linux.resources.%s: not supported by this kernel (no %s in %s)",
		    field, file, dir);
	}
	return rc ? cove_err_prefix(err, "linux.resources.%s", field) : 0;
}

static int write_feature(const char *dir, const char *file, int64_t v, const char *field,
			 struct cove_err *err)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return write_feature_str(dir, file, buf, field, err);
}

/* Whether the config sets a block I/O weight (for the whole group or a device): only then
 * does the scheduler's weight file (CFQ's or BFQ's) matter. */
static bool sets_blkio_weight(const struct oci_resources *r)
{
	return (r->has_blkio_weight && r->blkio_weight) || r->n_blkio_weight_dev;
}

static const char *mode_name(enum oci_cg_mode m)
{
	return m == OCI_CG_V2 ? "v2" : m == OCI_CG_HYBRID ? "hybrid" : "v1";
}

int oci_cgroup_check(const struct oci_cgroup *cg, const struct oci_resources *r,
		     struct cove_err *err)
{
	if (!r)
		return 0;
	/* runc refuses these too rather than dropping them. */
	if (r->n_unified && cg->mode != OCI_CG_V2)
		return cove_err_set(err, -EINVAL,
				    "linux.resources.unified: needs a cgroup v2 host (this host's "
				    "layout is %s)",
				    mode_name(cg->mode));
	if (cg->mode == OCI_CG_V2 && ((r->has_cpu_rt_runtime && r->cpu_rt_runtime) ||
				      (r->has_cpu_rt_period && r->cpu_rt_period)))
		return cove_err_set(err, -EINVAL,
				    "linux.resources.cpu.realtimeRuntime/realtimePeriod: cgroup v2 "
				    "has no realtime group scheduling");
	return 0;
}

int oci_cgroup_write_v1(const char *dir, const char *ctrl, const struct oci_resources *r,
			struct cove_err *err)
{
	int rc = 0;
	char buf[128];
	if (strcmp(ctrl, "memory") == 0) {
		/* memsw must stay >= limit: raise memsw first when growing. */
		char cur[64];
		char f[PATH_MAX + 64];
		snprintf(f, sizeof(f), "%s/memory.memsw.limit_in_bytes", dir);
		bool has_memsw = access(f, F_OK) == 0;
		int64_t cur_sw =
		    oci_read_file(f, cur, sizeof(cur)) > 0 ? strtoll(cur, NULL, 10) : 0;
		bool swap_first =
		    r->has_mem_swap && has_memsw && (r->mem_swap == -1 || r->mem_swap > cur_sw);
		if (swap_first)
			rc = write_num(dir, "memory.memsw.limit_in_bytes", r->mem_swap, err);
		if (!rc && r->has_mem_limit)
			rc = write_num(dir, "memory.limit_in_bytes", r->mem_limit, err);
		if (!rc && r->has_mem_swap && has_memsw && !swap_first)
			rc = write_num(dir, "memory.memsw.limit_in_bytes", r->mem_swap, err);
		if (!rc && r->has_mem_reservation)
			rc = write_num(dir, "memory.soft_limit_in_bytes", r->mem_reservation, err);
		if (!rc && r->has_mem_swappiness)
			rc = write_num(dir, "memory.swappiness", (int64_t)r->mem_swappiness, err);
		if (!rc && r->mem_disable_oom_killer)
			rc = write_cg(dir, "memory.oom_control", "1", err);
	} else if (strcmp(ctrl, "cpu") == 0) {
		if (r->has_cpu_shares && r->cpu_shares)
			rc = write_num(dir, "cpu.shares", (int64_t)r->cpu_shares, err);
		if (!rc && r->has_cpu_period && r->cpu_period)
			rc = write_num(dir, "cpu.cfs_period_us", (int64_t)r->cpu_period, err);
		if (!rc && r->has_cpu_quota && r->cpu_quota)
			rc = write_num(dir, "cpu.cfs_quota_us", r->cpu_quota, err);
		if (!rc && r->has_cpu_rt_period && r->cpu_rt_period)
			rc = write_feature(dir, "cpu.rt_period_us", (int64_t)r->cpu_rt_period,
					   "cpu.realtimePeriod", err);
		if (!rc && r->has_cpu_rt_runtime && r->cpu_rt_runtime)
			rc = write_feature(dir, "cpu.rt_runtime_us", r->cpu_rt_runtime,
					   "cpu.realtimeRuntime", err);
		if (!rc && r->has_cpu_burst)
			rc = write_feature(dir, "cpu.cfs_burst_us", (int64_t)r->cpu_burst,
					   "cpu.burst", err);
		if (!rc && r->has_cpu_idle)
			rc = write_feature(dir, "cpu.idle", r->cpu_idle, "cpu.idle", err);
	} else if (strcmp(ctrl, "cpuset") == 0) {
		if (r->cpuset_cpus && *r->cpuset_cpus)
			rc = write_cg(dir, "cpuset.cpus", r->cpuset_cpus, err);
		if (!rc && r->cpuset_mems && *r->cpuset_mems)
			rc = write_cg(dir, "cpuset.mems", r->cpuset_mems, err);
	} else if (strcmp(ctrl, "pids") == 0) {
		if (r->has_pids_limit)
			rc = r->pids_limit > 0 ? write_num(dir, "pids.max", r->pids_limit, err)
					       : write_cg(dir, "pids.max", "max", err);
	} else if (strcmp(ctrl, "blkio") == 0) {
		static const char *const tf[4] = {
		    "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
		    "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"};
		/* CFQ's files, or BFQ's after CFQ left the kernel; neither without BFQ. Looked
		 * for only when a weight is set. */
		char f[PATH_MAX + 64];
		snprintf(f, sizeof(f), "%s/blkio.weight", dir);
		bool cfq = sets_blkio_weight(r) && access(f, F_OK) == 0;
		if (r->has_blkio_weight && r->blkio_weight)
			rc = write_feature(dir, cfq ? "blkio.weight" : "blkio.bfq.weight",
					   r->blkio_weight, "blockIO.weight", err);
		const char *wdf = cfq ? "blkio.weight_device" : "blkio.bfq.weight_device";
		for (size_t i = 0; !rc && i < r->n_blkio_weight_dev; i++) {
			const struct oci_weight_dev *w = &r->blkio_weight_dev[i];
			if (!w->has_weight)
				continue;
			snprintf(buf, sizeof(buf), "%" PRId64 ":%" PRId64 " %u", w->major, w->minor,
				 w->weight);
			rc = write_feature_str(dir, wdf, buf, "blockIO.weightDevice", err);
		}
		for (int k = 0; k < 4 && !rc; k++) {
			for (size_t i = 0; !rc && i < r->n_throttle[k]; i++) {
				const struct oci_throttle *t = &r->throttle[k][i];
				snprintf(buf, sizeof(buf), "%" PRId64 ":%" PRId64 " %" PRIu64,
					 t->major, t->minor, t->rate);
				rc = write_cg(dir, tf[k], buf, err);
			}
		}
	} else if (strcmp(ctrl, "devices") == 0 && r->n_devices) {
		for (size_t i = 0; !rc && i < r->n_devices; i++) {
			const struct oci_dev_rule *d = &r->devices[i];
			if (d->type == 'a' && d->major < 0 && d->minor < 0)
				snprintf(buf, sizeof(buf), "a");
			else {
				char maj[24] = "*", min[24] = "*";
				if (d->major >= 0)
					snprintf(maj, sizeof(maj), "%" PRId64, d->major);
				if (d->minor >= 0)
					snprintf(min, sizeof(min), "%" PRId64, d->minor);
				snprintf(buf, sizeof(buf), "%c %s:%s %s", d->type, maj, min,
					 d->access);
			}
			rc = write_cg(dir, d->allow ? "devices.allow" : "devices.deny", buf, err);
		}
		/* The default devices every container gets, as runc allows them. */
		static const char *const dflt[] = {"c 1:3 rwm",	   "c 1:5 rwm", "c 1:7 rwm",
						   "c 1:8 rwm",	   "c 1:9 rwm", "c 5:0 rwm",
						   "c 5:1 rwm",	   "c 5:2 rwm", "c 136:* rwm",
						   "c 10:200 rwm", NULL};
		for (int i = 0; !rc && dflt[i]; i++)
			rc = write_cg(dir, "devices.allow", dflt[i], err);
	}
	return rc;
}

int oci_cgroup_write_v2(const char *dir, const struct oci_resources *r, struct cove_err *err)
{
	int rc = 0;
	char buf[160];
	if (r->has_mem_limit)
		rc = r->mem_limit > 0 ? write_num(dir, "memory.max", r->mem_limit, err)
				      : write_cg(dir, "memory.max", "max", err);
	if (!rc && r->has_mem_swap) {
		int64_t sw = oci_swap_to_v2(r->mem_swap, r->has_mem_limit ? r->mem_limit : -1);
		if (sw == -2)
			return cove_err_set(err, -EINVAL,
					    "linux.resources.memory.swap: cannot convert to "
					    "cgroup v2 without a memory limit at most the swap");
		rc = sw == -1 ? write_cg(dir, "memory.swap.max", "max", err)
			      : write_num(dir, "memory.swap.max", sw, err);
	}
	if (!rc && r->has_mem_reservation)
		rc = r->mem_reservation > 0 ? write_num(dir, "memory.low", r->mem_reservation, err)
					    : write_cg(dir, "memory.low", "0", err);
	if (!rc && r->has_cpu_shares && r->cpu_shares)
		rc = write_num(dir, "cpu.weight", (int64_t)oci_cpu_shares_to_weight(r->cpu_shares),
			       err);
	if (!rc && (r->has_cpu_quota || r->has_cpu_period) && (r->cpu_quota || r->cpu_period)) {
		uint64_t period = r->has_cpu_period && r->cpu_period ? r->cpu_period : 100000;
		if (r->has_cpu_quota && r->cpu_quota > 0)
			snprintf(buf, sizeof(buf), "%" PRId64 " %" PRIu64, r->cpu_quota, period);
		else
			snprintf(buf, sizeof(buf), "max %" PRIu64, period);
		rc = write_cg(dir, "cpu.max", buf, err);
	}
	if (!rc && r->has_cpu_burst)
		rc = write_feature(dir, "cpu.max.burst", (int64_t)r->cpu_burst, "cpu.burst", err);
	if (!rc && r->has_cpu_idle)
		rc = write_feature(dir, "cpu.idle", r->cpu_idle, "cpu.idle", err);
	if (!rc && r->cpuset_cpus && *r->cpuset_cpus)
		rc = write_cg(dir, "cpuset.cpus", r->cpuset_cpus, err);
	if (!rc && r->cpuset_mems && *r->cpuset_mems)
		rc = write_cg(dir, "cpuset.mems", r->cpuset_mems, err);
	if (!rc && r->has_pids_limit)
		rc = r->pids_limit > 0 ? write_num(dir, "pids.max", r->pids_limit, err)
				       : write_cg(dir, "pids.max", "max", err);
	/* BFQ takes blkio's own scale (1-1000); io.weight needs the conversion. */
	char bfq[PATH_MAX + 32];
	snprintf(bfq, sizeof(bfq), "%s/io.bfq.weight", dir);
	bool use_bfq = sets_blkio_weight(r) && access(bfq, F_OK) == 0;
	if (!rc && r->has_blkio_weight && r->blkio_weight)
		rc = use_bfq
			 ? write_num(dir, "io.bfq.weight", r->blkio_weight, err)
			 : write_num(dir, "io.weight",
				     (int64_t)oci_blkio_weight_to_io_weight(r->blkio_weight), err);
	for (size_t i = 0; !rc && i < r->n_blkio_weight_dev; i++) {
		const struct oci_weight_dev *w = &r->blkio_weight_dev[i];
		if (!w->has_weight)
			continue;
		snprintf(buf, sizeof(buf), "%" PRId64 ":%" PRId64 " %" PRIu64, w->major, w->minor,
			 use_bfq ? (uint64_t)w->weight : oci_blkio_weight_to_io_weight(w->weight));
		rc = write_cg(dir, use_bfq ? "io.bfq.weight" : "io.weight", buf, err);
	}
	static const char *const key[4] = {"rbps", "wbps", "riops", "wiops"};
	for (int k = 0; k < 4 && !rc; k++) {
		for (size_t i = 0; !rc && i < r->n_throttle[k]; i++) {
			const struct oci_throttle *t = &r->throttle[k][i];
			snprintf(buf, sizeof(buf), "%" PRId64 ":%" PRId64 " %s=%" PRIu64, t->major,
				 t->minor, key[k], t->rate);
			rc = write_cg(dir, "io.max", buf, err);
		}
	}
	for (size_t i = 0; !rc && i < r->n_unified; i++)
		rc = write_cg(dir, r->unified[i].key, r->unified[i].value, err);
	return rc;
}

struct create_ctx {
	const struct oci_resources *r;
	struct cove_err *err;
	enum oci_cg_mode mode;
};

static void enable_v2_controllers(const char *dir)
{
	/* Each ancestor must delegate the controllers to its children. */
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s", dir);
	char *p = path + strlen(CG_ROOT);
	while ((p = strchr(p + 1, '/'))) {
		*p = '\0';
		char f[PATH_MAX + 32];
		snprintf(f, sizeof(f), "%s/cgroup.subtree_control", path);
		static const char *const c[] = {"+cpu", "+memory", "+pids", "+io", "+cpuset"};
		for (int i = 0; i < 5; i++)
			oci_write_file(f, c[i], strlen(c[i]));
		*p = '/';
	}
	char f[PATH_MAX + 32];
	snprintf(f, sizeof(f), CG_ROOT "/cgroup.subtree_control");
	static const char *const c[] = {"+cpu", "+memory", "+pids", "+io", "+cpuset"};
	for (int i = 0; i < 5; i++)
		oci_write_file(f, c[i], strlen(c[i]));
}

static int create_one(const char *dir, const char *ctrl, void *arg)
{
	struct create_ctx *c = arg;
	bool v2dir = !ctrl || !*ctrl;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s", dir);
	if (c->mode == OCI_CG_V2 && !ctrl)
		enable_v2_controllers(dir);
	int r = mkdir_p(path, 0755, ctrl);
	if (r < 0)
		return cove_err_set(c->err, r, "cgroup: mkdir %s: %s", dir, strerror(-r));
	if (!c->r)
		return 0;
	/* Device rules on the v2 group (and on the unified one of a hybrid host, as a
	 * second layer under the v1 devices controller). */
	if (v2dir && c->r->n_devices) {
		int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int rc = fd < 0
			     ? cove_err_set(c->err, -errno, "cgroup: %s: %s", dir, strerror(errno))
			     : oci_devfilter_attach(fd, c->r, c->err);
		if (fd >= 0)
			close(fd);
		if (rc)
			return rc;
	}
	if (!ctrl)
		return oci_cgroup_write_v2(dir, c->r, c->err);
	if (*ctrl)
		return oci_cgroup_write_v1(dir, ctrl, c->r, c->err);
	return 0;
}

int oci_cgroup_create(const struct oci_cgroup *cg, const struct oci_resources *r,
		      const struct oci_config *cfg, struct cove_err *err)
{
	struct create_ctx c = {.r = r, .err = err, .mode = cg->mode};
	(void)cfg;
	int rc = oci_cgroup_check(cg, r, err);
	if (rc)
		return rc;
	rc = for_each_dir(cg, create_one, &c);
	if (rc) {
		oci_cgroup_destroy(cg);
		return cove_err_prefix(err, "cgroup %s", cg->path);
	}
	return 0;
}

static int apply_one(const char *dir, const char *ctrl, void *arg)
{
	struct create_ctx *c = arg;
	if (!ctrl)
		return oci_cgroup_write_v2(dir, c->r, c->err);
	if (*ctrl)
		return oci_cgroup_write_v1(dir, ctrl, c->r, c->err);
	return 0;
}

int oci_cgroup_apply(const struct oci_cgroup *cg, const struct oci_resources *r,
		     struct cove_err *err)
{
	struct create_ctx c = {.r = r, .err = err, .mode = cg->mode};
	int rc = oci_cgroup_check(cg, r, err);
	return rc ? rc : for_each_dir(cg, apply_one, &c);
}

struct attach_ctx {
	char pid[16];
	struct cove_err *err;
};

static int attach_one(const char *dir, const char *ctrl, void *arg)
{
	struct attach_ctx *a = arg;
	(void)ctrl;
	return write_cg(dir, "cgroup.procs", a->pid, a->err);
}

int oci_cgroup_attach(const struct oci_cgroup *cg, pid_t pid, struct cove_err *err)
{
	struct attach_ctx a = {.err = err};
	snprintf(a.pid, sizeof(a.pid), "%d", (int)pid);
	return for_each_dir(cg, attach_one, &a);
}

static int attach_self_one(const char *dir, const char *ctrl, void *arg)
{
	/* v1 only: the v2 (unified) group was entered through CLONE_INTO_CGROUP. */
	if (!ctrl || !*ctrl)
		return 0;
	return write_cg(dir, "tasks", "0", arg);
}

int oci_cgroup_attach_self_v1(const struct oci_cgroup *cg, struct cove_err *err)
{
	if (cg->mode == OCI_CG_V2)
		return 0;
	return for_each_dir(cg, attach_self_one, err);
}

int oci_cgroup_open_v2(const struct oci_cgroup *cg)
{
	char dir[PATH_MAX];
	if (cg->mode == OCI_CG_V1 || oci_cgroup_dir(cg, NULL, dir, sizeof(dir)) < 0)
		return -1;
	return open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static int exists_one(const char *dir, const char *ctrl, void *arg)
{
	(void)ctrl;
	(void)arg;
	return access(dir, F_OK) == 0 ? 1 : 0;
}

bool oci_cgroup_exists(const struct oci_cgroup *cg)
{
	return for_each_dir(cg, exists_one, NULL) == 1;
}

static int destroy_one(const char *dir, const char *ctrl, void *arg)
{
	(void)ctrl;
	int *failed = arg;
	/* Tasks that are exiting can keep a group busy for a moment. */
	for (int i = 0; i < 200; i++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			break;
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	*failed = -errno;
	return 0;
}

int oci_cgroup_destroy(const struct oci_cgroup *cg)
{
	int failed = 0;
	if (!cg->path[0])
		return 0;
	for_each_dir(cg, destroy_one, &failed);
	return failed;
}

int oci_cgroup_freeze(const struct oci_cgroup *cg, bool freeze, struct cove_err *err)
{
	char dir[PATH_MAX], val[64], f[PATH_MAX + 32];
	bool v2 = cg->mode == OCI_CG_V2;
	oci_cgroup_dir(cg, v2 ? NULL : "freezer", dir, sizeof(dir));
	int rc = v2 ? write_cg(dir, "cgroup.freeze", freeze ? "1" : "0", err)
		    : write_cg(dir, "freezer.state", freeze ? "FROZEN" : "THAWED", err);
	if (rc)
		return rc;
	for (int i = 0; i < 1000; i++) {
		if (oci_cgroup_frozen(cg) == freeze)
			return 0;
		if (!v2) {
			snprintf(f, sizeof(f), "%s/freezer.state", dir);
			if (oci_read_file(f, val, sizeof(val)) > 0 && !freeze &&
			    strcmp(val, "THAWED") == 0)
				return 0;
			/* FREEZING can stall: write again, as runc does. */
			if (freeze && i % 10 == 9)
				write_cg(dir, "freezer.state", "FROZEN", NULL);
		}
		struct timespec ts = {0, 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return cove_err_set(err, -ETIMEDOUT, "cgroup: %s did not %s in time", dir,
			    freeze ? "freeze" : "thaw");
}

bool oci_cgroup_frozen(const struct oci_cgroup *cg)
{
	char dir[PATH_MAX], f[PATH_MAX + 32], val[256];
	if (!cg->path[0])
		return false;
	if (cg->mode == OCI_CG_V2) {
		oci_cgroup_dir(cg, NULL, dir, sizeof(dir));
		snprintf(f, sizeof(f), "%s/cgroup.events", dir);
		if (oci_read_file(f, val, sizeof(val)) <= 0)
			return false;
		return strstr(val, "frozen 1") != NULL;
	}
	oci_cgroup_dir(cg, "freezer", dir, sizeof(dir));
	snprintf(f, sizeof(f), "%s/freezer.state", dir);
	if (oci_read_file(f, val, sizeof(val)) <= 0)
		return false;
	return strcmp(val, "FROZEN") == 0;
}

int oci_cgroup_pids(const struct oci_cgroup *cg, pid_t **pids, size_t *n)
{
	char dir[PATH_MAX], f[PATH_MAX + 32];
	*pids = NULL;
	*n = 0;
	if (cg->mode == OCI_CG_V2)
		oci_cgroup_dir(cg, NULL, dir, sizeof(dir));
	else
		oci_cgroup_dir(cg, access(CG_ROOT "/pids", F_OK) == 0 ? "pids" : "memory", dir,
			       sizeof(dir));
	snprintf(f, sizeof(f), "%s/cgroup.procs", dir);
	FILE *fp = fopen(f, "re");
	if (!fp)
		return -errno;
	size_t cap = 0;
	long v;
	while (fscanf(fp, "%ld", &v) == 1) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			pid_t *np = realloc(*pids, cap * sizeof(pid_t));
			if (!np) {
				fclose(fp);
				return -ENOMEM;
			}
			*pids = np;
		}
		(*pids)[(*n)++] = (pid_t)v;
	}
	fclose(fp);
	return 0;
}
