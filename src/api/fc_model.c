/* Firecracker API bodies: strict parsing into struct fc_vm_config, and back to JSON. */
#include "api/fc_api.h"
#include "api/json.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

void fc_config_init(struct fc_vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->machine.vcpu_count = 1;
	cfg->machine.mem_size_mib = 128;
	strcpy(cfg->machine.huge_pages, "None");
	strcpy(cfg->machine.cpu_template, "None");
}

const char *fc_state_name(enum fc_state s)
{
	switch (s) {
	case FC_STATE_NOT_STARTED:
		return "Not started";
	case FC_STATE_RUNNING:
		return "Running";
	case FC_STATE_PAUSED:
		return "Paused";
	case FC_STATE_STOPPED:
		return "Stopped";
	}
	return "Unknown";
}

/* Copies an optional/required string field into a fixed buffer. */
static int get_str_into(json_object *o, const char *key, bool required, char *dst, size_t cap,
			struct cove_err *err)
{
	const char *s;
	int rc = api_json_get_str(o, key, required, cap - 1, &s, err);
	if (rc)
		return rc;
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

static bool valid_id(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= FC_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

static int one_of(const char *field, const char *val, const char *const *allowed,
		  struct cove_err *err)
{
	for (const char *const *a = allowed; *a; a++)
		if (strcmp(*a, val) == 0)
			return 0;
	char list[256] = "";
	for (const char *const *a = allowed; *a; a++) {
		strncat(list, *a, sizeof(list) - strlen(list) - 1);
		if (a[1])
			strncat(list, ", ", sizeof(list) - strlen(list) - 1);
	}
	return cove_err_set(err, -EINVAL, "field '%s': '%.64s' is not one of %s", field, val, list);
}

static int need_path(const char *field, const char *p, struct cove_err *err)
{
	if (!*p)
		return cove_err_set(err, -EINVAL, "field '%s' must not be empty", field);
	return 0;
}

static int parse_bucket(json_object *parent, const char *key, struct fc_token_bucket *b,
			struct cove_err *err)
{
	static const char *const fields[] = {"size", "one_time_burst", "refill_time", NULL};
	json_object *o;
	if (!json_object_object_get_ex(parent, key, &o) || !o)
		return 0;
	int rc = api_json_check_fields(o, key, fields, err);
	if (!rc)
		rc = api_json_get_u64(o, "size", true, 0, UINT64_MAX, &b->size, err);
	if (!rc)
		rc = api_json_opt(api_json_get_u64(o, "one_time_burst", false, 0, UINT64_MAX,
						   &b->one_time_burst, err));
	if (!rc)
		rc = api_json_get_u64(o, "refill_time", true, 0, UINT64_MAX, &b->refill_time, err);
	if (rc)
		return cove_err_prefix(err, "%s", key);
	b->set = true;
	return 0;
}

static int parse_limiter(json_object *parent, const char *key, struct fc_rate_limiter *r,
			 struct cove_err *err)
{
	static const char *const fields[] = {"bandwidth", "ops", NULL};
	json_object *o;
	memset(r, 0, sizeof(*r));
	if (!json_object_object_get_ex(parent, key, &o) || !o)
		return 0;
	int rc = api_json_check_fields(o, key, fields, err);
	if (!rc)
		rc = parse_bucket(o, "bandwidth", &r->bandwidth, err);
	if (!rc)
		rc = parse_bucket(o, "ops", &r->ops, err);
	if (rc)
		return rc;
	r->set = true;
	return 0;
}

static int boot_from(json_object *o, struct fc_boot_source *out, struct cove_err *err)
{
	static const char *const fields[] = {"kernel_image_path", "initrd_path", "boot_args", NULL};
	struct fc_boot_source b = {0};
	int rc = api_json_check_fields(o, "boot-source", fields, err);
	if (!rc)
		rc = get_str_into(o, "kernel_image_path", true, b.kernel_image_path,
				  sizeof(b.kernel_image_path), err);
	if (!rc)
		rc = need_path("kernel_image_path", b.kernel_image_path, err);
	if (!rc)
		rc = api_json_opt(get_str_into(o, "initrd_path", false, b.initrd_path,
					       sizeof(b.initrd_path), err));
	if (!rc)
		rc = api_json_opt(
		    get_str_into(o, "boot_args", false, b.boot_args, sizeof(b.boot_args), err));
	if (rc)
		return rc;
	b.set = true;
	*out = b;
	return 0;
}

static int machine_from(json_object *o, bool partial, const struct fc_machine_config *cur,
			struct fc_machine_config *out, struct cove_err *err)
{
	static const char *const fields[] = {
	    "vcpu_count",	 "mem_size_mib", "smt", "cpu_template",
	    "track_dirty_pages", "huge_pages",	 NULL};
	static const char *const hp[] = {"None", "Transparent", "2M", NULL};
	static const char *const tmpl[] = {"None", NULL};
	struct fc_machine_config m;
	if (partial && cur) {
		m = *cur;
	} else {
		struct fc_vm_config d;
		fc_config_init(&d);
		m = d.machine;
	}
	uint64_t v;
	int rc = api_json_check_fields(o, "machine-config", fields, err);
	if (rc)
		return rc;
	rc = api_json_get_u64(o, "vcpu_count", !partial, 1, FC_MAX_VCPUS, &v, err);
	if (rc == 0)
		m.vcpu_count = (uint32_t)v;
	else if (rc != -ENOENT || !partial)
		return rc;
	rc = api_json_get_u64(o, "mem_size_mib", !partial, 1, 1024 * 1024, &v, err);
	if (rc == 0)
		m.mem_size_mib = (uint32_t)v;
	else if (rc != -ENOENT || !partial)
		return rc;
	if ((rc = api_json_opt(api_json_get_bool(o, "smt", false, &m.smt, err))))
		return rc;
	if ((rc = api_json_opt(
		 api_json_get_bool(o, "track_dirty_pages", false, &m.track_dirty_pages, err))))
		return rc;
	rc = get_str_into(o, "huge_pages", false, m.huge_pages, sizeof(m.huge_pages), err);
	if (rc == 0)
		rc = one_of("huge_pages", m.huge_pages, hp, err);
	if (api_json_opt(rc))
		return rc;
	rc = get_str_into(o, "cpu_template", false, m.cpu_template, sizeof(m.cpu_template), err);
	if (rc == 0)
		rc = one_of("cpu_template", m.cpu_template, tmpl, err);
	if (api_json_opt(rc))
		return rc;
	if (m.smt && m.vcpu_count > 1 && m.vcpu_count % 2)
		return cove_err_set(err, -EINVAL,
				    "with smt the vcpu_count must be 1 or even (got %u)",
				    m.vcpu_count);
	if (strcmp(m.huge_pages, "2M") == 0 && m.mem_size_mib % 2)
		return cove_err_set(err, -EINVAL, "with 2M huge pages mem_size_mib must be even");
	*out = m;
	return 0;
}

/* The id field key (drive_id, iface_id): given, valid, and the same as the {id} from the
 * path (when there is one). */
static int id_from(const char *key, const char *id, json_object *o, char dst[FC_ID_MAX],
		   struct cove_err *err)
{
	int rc = get_str_into(o, key, true, dst, FC_ID_MAX, err);
	if (!rc && !valid_id(dst))
		rc = cove_err_set(err, -EINVAL,
				  "invalid %s '%s' (letters, digits, '_' and '-' only)", key, dst);
	if (!rc && id && strcmp(id, dst) != 0)
		rc = cove_err_set(err, -EINVAL,
				  "the id from the path does not match the id from the body");
	return rc;
}

static int drive_from(const char *id, json_object *o, struct fc_drive *out, struct cove_err *err)
{
	static const char *const fields[] = {"drive_id",     "path_on_host", "is_root_device",
					     "is_read_only", "partuuid",     "cache_type",
					     "io_engine",    "rate_limiter", NULL};
	static const char *const cache[] = {"Unsafe", "Writeback", NULL};
	static const char *const engine[] = {"Sync", "Async", NULL};
	struct fc_drive d = {0};
	strcpy(d.cache_type, "Unsafe");
	strcpy(d.io_engine, "Sync");
	int rc = api_json_check_fields(o, "drive", fields, err);
	if (!rc)
		rc = id_from("drive_id", id, o, d.drive_id, err);
	if (!rc)
		rc = get_str_into(o, "path_on_host", true, d.path_on_host, sizeof(d.path_on_host),
				  err);
	if (!rc)
		rc = need_path("path_on_host", d.path_on_host, err);
	if (!rc)
		rc = api_json_get_bool(o, "is_root_device", true, &d.is_root_device, err);
	if (!rc)
		rc =
		    api_json_opt(api_json_get_bool(o, "is_read_only", false, &d.is_read_only, err));
	if (!rc)
		rc = api_json_opt(
		    get_str_into(o, "partuuid", false, d.partuuid, sizeof(d.partuuid), err));
	if (!rc) {
		rc = get_str_into(o, "cache_type", false, d.cache_type, sizeof(d.cache_type), err);
		if (!rc)
			rc = one_of("cache_type", d.cache_type, cache, err);
		rc = api_json_opt(rc);
	}
	if (!rc) {
		rc = get_str_into(o, "io_engine", false, d.io_engine, sizeof(d.io_engine), err);
		if (!rc)
			rc = one_of("io_engine", d.io_engine, engine, err);
		rc = api_json_opt(rc);
	}
	if (!rc)
		rc = parse_limiter(o, "rate_limiter", &d.rate_limiter, err);
	if (rc)
		return rc;
	*out = d;
	return 0;
}

static int drive_update_from(const char *id, json_object *o, struct fc_drive_update *out,
			     struct cove_err *err)
{
	static const char *const fields[] = {"drive_id", "path_on_host", "rate_limiter", NULL};
	struct fc_drive_update u = {0};
	int rc = api_json_check_fields(o, "drive", fields, err);
	if (!rc)
		rc = id_from("drive_id", id, o, u.drive_id, err);
	if (!rc) {
		rc = get_str_into(o, "path_on_host", false, u.path_on_host, sizeof(u.path_on_host),
				  err);
		u.has_path = rc == 0;
		rc = api_json_opt(rc);
	}
	if (!rc)
		rc = parse_limiter(o, "rate_limiter", &u.rate_limiter, err);
	if (rc)
		return rc;
	*out = u;
	return 0;
}

static bool valid_mac(const char *s)
{
	if (strlen(s) != 17)
		return false;
	for (int i = 0; i < 17; i++) {
		if (i % 3 == 2) {
			if (s[i] != ':')
				return false;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

static int net_from(const char *id, json_object *o, struct fc_net *out, struct cove_err *err)
{
	static const char *const fields[] = {"iface_id", "host_dev_name",   "guest_mac",
					     "mtu",	 "rx_rate_limiter", "tx_rate_limiter",
					     NULL};
	struct fc_net n = {0};
	uint64_t mtu = 0;
	int rc = api_json_check_fields(o, "network-interface", fields, err);
	if (!rc)
		rc = id_from("iface_id", id, o, n.iface_id, err);
	if (!rc)
		rc = get_str_into(o, "host_dev_name", true, n.host_dev_name,
				  sizeof(n.host_dev_name), err);
	if (!rc && (!n.host_dev_name[0] || strchr(n.host_dev_name, '/')))
		rc = cove_err_set(err, -EINVAL, "invalid host_dev_name '%s'", n.host_dev_name);
	if (!rc)
		rc = api_json_opt(
		    get_str_into(o, "guest_mac", false, n.guest_mac, sizeof(n.guest_mac), err));
	if (!rc && n.guest_mac[0] && !valid_mac(n.guest_mac))
		rc = cove_err_set(err, -EINVAL, "invalid guest_mac '%s' (want aa:bb:cc:dd:ee:ff)",
				  n.guest_mac);
	if (!rc)
		rc = api_json_opt(api_json_get_u64(o, "mtu", false, 68, 65535, &mtu, err));
	if (!rc)
		rc = parse_limiter(o, "rx_rate_limiter", &n.rx_rate_limiter, err);
	if (!rc)
		rc = parse_limiter(o, "tx_rate_limiter", &n.tx_rate_limiter, err);
	if (rc)
		return rc;
	n.mtu = (uint32_t)mtu;
	*out = n;
	return 0;
}

static int vsock_from(json_object *o, struct fc_vsock *out, struct cove_err *err)
{
	static const char *const fields[] = {"guest_cid", "uds_path", "vsock_id", NULL};
	struct fc_vsock v = {0};
	uint64_t cid;
	const char *unused;
	int rc = api_json_check_fields(o, "vsock", fields, err);
	if (!rc)
		rc = api_json_get_u64(o, "guest_cid", true, 3, UINT32_MAX, &cid, err);
	if (!rc)
		rc = get_str_into(o, "uds_path", true, v.uds_path, sizeof(v.uds_path), err);
	if (!rc)
		rc = need_path("uds_path", v.uds_path, err);
	if (!rc) /* deprecated in Firecracker, accepted and ignored */
		rc = api_json_opt(api_json_get_str(o, "vsock_id", false, FC_ID_MAX, &unused, err));
	if (rc)
		return rc;
	v.guest_cid = (uint32_t)cid;
	v.set = true;
	*out = v;
	return 0;
}

static int balloon_from(json_object *o, struct fc_balloon *out, struct cove_err *err)
{
	static const char *const fields[] = {"amount_mib", "deflate_on_oom",
					     "stats_polling_interval_s", NULL};
	struct fc_balloon b = {0};
	uint64_t amount, interval = 0;
	int rc = api_json_check_fields(o, "balloon", fields, err);
	if (!rc)
		rc = api_json_get_u64(o, "amount_mib", true, 0, 1024 * 1024, &amount, err);
	if (!rc)
		rc = api_json_get_bool(o, "deflate_on_oom", true, &b.deflate_on_oom, err);
	if (!rc)
		rc = api_json_opt(api_json_get_u64(o, "stats_polling_interval_s", false, 0,
						   UINT32_MAX, &interval, err));
	if (rc)
		return rc;
	b.amount_mib = (uint32_t)amount;
	b.stats_polling_interval_s = (uint32_t)interval;
	b.set = true;
	*out = b;
	return 0;
}

static int logger_from(json_object *o, struct fc_logger *out, struct cove_err *err)
{
	static const char *const fields[] = {"log_path",	"level",  "show_level",
					     "show_log_origin", "module", NULL};
	static const char *const levels[] = {"Error", "Warning", "Info", "Debug",
					     "Trace", "Off",	 NULL};
	struct fc_logger l = {0};
	strcpy(l.level, "Info");
	int rc = api_json_check_fields(o, "logger", fields, err);
	if (!rc)
		rc = api_json_opt(
		    get_str_into(o, "log_path", false, l.log_path, sizeof(l.log_path), err));
	if (!rc) {
		rc = get_str_into(o, "level", false, l.level, sizeof(l.level), err);
		if (!rc) { /* case-insensitive, stored capitalized */
			for (char *p = l.level; *p; p++)
				*p = (char)(p == l.level ? toupper((unsigned char)*p)
							 : tolower((unsigned char)*p));
			rc = one_of("level", l.level, levels, err);
		}
		rc = api_json_opt(rc);
	}
	if (!rc)
		rc = api_json_opt(api_json_get_bool(o, "show_level", false, &l.show_level, err));
	if (!rc)
		rc = api_json_opt(
		    api_json_get_bool(o, "show_log_origin", false, &l.show_log_origin, err));
	if (!rc)
		rc =
		    api_json_opt(get_str_into(o, "module", false, l.module, sizeof(l.module), err));
	if (rc)
		return rc;
	l.set = true;
	*out = l;
	return 0;
}

static int metrics_from(json_object *o, struct fc_metrics *out, struct cove_err *err)
{
	static const char *const fields[] = {"metrics_path", NULL};
	struct fc_metrics m = {0};
	int rc = api_json_check_fields(o, "metrics", fields, err);
	if (!rc)
		rc = get_str_into(o, "metrics_path", true, m.metrics_path, sizeof(m.metrics_path),
				  err);
	if (!rc)
		rc = need_path("metrics_path", m.metrics_path, err);
	if (rc)
		return rc;
	m.set = true;
	*out = m;
	return 0;
}

/* Parses body as an object, runs fn over it and drops the object. */
#define WITH_OBJECT(body, len, err, expr)                            \
	do {                                                         \
		json_object *o = NULL;                               \
		int rc_ = api_json_parse_object(body, len, &o, err); \
		if (rc_)                                             \
			return rc_;                                  \
		rc_ = (expr);                                        \
		json_object_put(o);                                  \
		return rc_;                                          \
	} while (0)

int fc_parse_boot_source(const char *body, size_t len, struct fc_boot_source *out,
			 struct cove_err *err)
{
	WITH_OBJECT(body, len, err, boot_from(o, out, err));
}

int fc_parse_machine_config(const char *body, size_t len, bool partial,
			    const struct fc_machine_config *cur, struct fc_machine_config *out,
			    struct cove_err *err)
{
	WITH_OBJECT(body, len, err, machine_from(o, partial, cur, out, err));
}

int fc_parse_drive(const char *id, const char *body, size_t len, struct fc_drive *out,
		   struct cove_err *err)
{
	WITH_OBJECT(body, len, err, drive_from(id, o, out, err));
}

int fc_parse_drive_update(const char *id, const char *body, size_t len, struct fc_drive_update *out,
			  struct cove_err *err)
{
	WITH_OBJECT(body, len, err, drive_update_from(id, o, out, err));
}

int fc_parse_net(const char *id, const char *body, size_t len, struct fc_net *out,
		 struct cove_err *err)
{
	WITH_OBJECT(body, len, err, net_from(id, o, out, err));
}

int fc_parse_vsock(const char *body, size_t len, struct fc_vsock *out, struct cove_err *err)
{
	WITH_OBJECT(body, len, err, vsock_from(o, out, err));
}

int fc_parse_balloon(const char *body, size_t len, struct fc_balloon *out, struct cove_err *err)
{
	WITH_OBJECT(body, len, err, balloon_from(o, out, err));
}

static int balloon_update_from(json_object *o, uint32_t *amount, struct cove_err *err)
{
	static const char *const fields[] = {"amount_mib", NULL};
	uint64_t v;
	int rc = api_json_check_fields(o, "balloon update", fields, err);
	if (!rc)
		rc = api_json_get_u64(o, "amount_mib", true, 0, 1024 * 1024, &v, err);
	if (!rc)
		*amount = (uint32_t)v;
	return rc;
}

int fc_parse_balloon_update(const char *body, size_t len, uint32_t *amount_mib,
			    struct cove_err *err)
{
	WITH_OBJECT(body, len, err, balloon_update_from(o, amount_mib, err));
}

static int balloon_stats_update_from(json_object *o, uint32_t *interval, struct cove_err *err)
{
	static const char *const fields[] = {"stats_polling_interval_s", NULL};
	uint64_t v;
	int rc = api_json_check_fields(o, "balloon statistics update", fields, err);
	if (!rc)
		rc = api_json_get_u64(o, "stats_polling_interval_s", true, 0, UINT32_MAX, &v, err);
	if (!rc)
		*interval = (uint32_t)v;
	return rc;
}

int fc_parse_balloon_stats_update(const char *body, size_t len, uint32_t *interval_s,
				  struct cove_err *err)
{
	WITH_OBJECT(body, len, err, balloon_stats_update_from(o, interval_s, err));
}

static int net_update_from(const char *id, json_object *o, struct fc_net_update *out,
			   struct cove_err *err)
{
	static const char *const fields[] = {"iface_id", "rx_rate_limiter", "tx_rate_limiter",
					     NULL};
	struct fc_net_update u = {0};
	int rc = api_json_check_fields(o, "network-interface update", fields, err);
	if (!rc)
		rc = id_from("iface_id", id, o, u.iface_id, err);
	if (!rc)
		rc = parse_limiter(o, "rx_rate_limiter", &u.rx_rate_limiter, err);
	if (!rc)
		rc = parse_limiter(o, "tx_rate_limiter", &u.tx_rate_limiter, err);
	if (rc)
		return rc;
	*out = u;
	return 0;
}

int fc_parse_net_update(const char *id, const char *body, size_t len, struct fc_net_update *out,
			struct cove_err *err)
{
	WITH_OBJECT(body, len, err, net_update_from(id, o, out, err));
}

uint64_t fc_bucket_rate(const struct fc_token_bucket *b)
{
	if (!b->set || !b->refill_time || !b->size || b->size > UINT64_MAX / 1000)
		return 0;
	uint64_t r = b->size * 1000 / b->refill_time;
	return r ? r : 1; /* a slow bucket is at least one token a second: 0 means no limit */
}

int fc_parse_logger(const char *body, size_t len, struct fc_logger *out, struct cove_err *err)
{
	WITH_OBJECT(body, len, err, logger_from(o, out, err));
}

int fc_parse_metrics(const char *body, size_t len, struct fc_metrics *out, struct cove_err *err)
{
	WITH_OBJECT(body, len, err, metrics_from(o, out, err));
}

static int action_from(json_object *o, enum fc_action *out, struct cove_err *err)
{
	static const char *const fields[] = {"action_type", NULL};
	const char *t;
	int rc = api_json_check_fields(o, "action", fields, err);
	if (!rc)
		rc = api_json_get_str(o, "action_type", true, 64, &t, err);
	if (rc)
		return rc;
	if (strcmp(t, "InstanceStart") == 0)
		*out = FC_ACTION_INSTANCE_START;
	else if (strcmp(t, "SendCtrlAltDel") == 0)
		*out = FC_ACTION_SEND_CTRL_ALT_DEL;
	else if (strcmp(t, "FlushMetrics") == 0)
		*out = FC_ACTION_FLUSH_METRICS;
	else
		return cove_err_set(err, -EINVAL,
				    "unknown action_type '%s' (InstanceStart, SendCtrlAltDel, "
				    "FlushMetrics)",
				    t);
	return 0;
}

int fc_parse_action(const char *body, size_t len, enum fc_action *out, struct cove_err *err)
{
	WITH_OBJECT(body, len, err, action_from(o, out, err));
}

static int vm_state_from(json_object *o, bool *pause, struct cove_err *err)
{
	static const char *const fields[] = {"state", NULL};
	const char *t;
	int rc = api_json_check_fields(o, "vm", fields, err);
	if (!rc)
		rc = api_json_get_str(o, "state", true, 64, &t, err);
	if (rc)
		return rc;
	if (strcmp(t, "Paused") == 0)
		*pause = true;
	else if (strcmp(t, "Resumed") == 0)
		*pause = false;
	else
		return cove_err_set(err, -EINVAL, "unknown state '%s' (Paused, Resumed)", t);
	return 0;
}

int fc_parse_vm_state(const char *body, size_t len, bool *pause, struct cove_err *err)
{
	WITH_OBJECT(body, len, err, vm_state_from(o, pause, err));
}

int fc_config_put_drive(struct fc_vm_config *cfg, const struct fc_drive *d, struct cove_err *err)
{
	unsigned slot = cfg->ndrives;
	for (unsigned i = 0; i < cfg->ndrives; i++) {
		if (strcmp(cfg->drives[i].drive_id, d->drive_id) == 0)
			slot = i;
		else if (d->is_root_device && cfg->drives[i].is_root_device)
			return cove_err_set(err, -EEXIST, "A root block device already exists!");
	}
	if (slot == FC_MAX_DRIVES)
		return cove_err_set(err, -E2BIG, "too many drives (at most %d)", FC_MAX_DRIVES);
	cfg->drives[slot] = *d;
	if (slot == cfg->ndrives)
		cfg->ndrives++;
	return 0;
}

int fc_config_put_net(struct fc_vm_config *cfg, const struct fc_net *n, struct cove_err *err)
{
	unsigned slot = cfg->nnets;
	for (unsigned i = 0; i < cfg->nnets; i++) {
		if (strcmp(cfg->nets[i].iface_id, n->iface_id) == 0)
			slot = i;
		else if (strcmp(cfg->nets[i].host_dev_name, n->host_dev_name) == 0)
			return cove_err_set(err, -EEXIST, "host_dev_name '%s' is used by '%s'",
					    n->host_dev_name, cfg->nets[i].iface_id);
		else if (n->guest_mac[0] && strcasecmp(cfg->nets[i].guest_mac, n->guest_mac) == 0)
			return cove_err_set(err, -EEXIST, "guest_mac %s is used by '%s'",
					    n->guest_mac, cfg->nets[i].iface_id);
	}
	if (slot == FC_MAX_NICS)
		return cove_err_set(err, -E2BIG, "too many network interfaces (at most %d)",
				    FC_MAX_NICS);
	cfg->nets[slot] = *n;
	if (slot == cfg->nnets)
		cfg->nnets++;
	return 0;
}

static int full_from(json_object *o, struct fc_vm_config *cfg, struct cove_err *err)
{
	static const char *const fields[] = {
	    "boot-source", "machine-config", "drives", "network-interfaces", "vsock", "balloon",
	    "logger",	   "metrics",	     NULL};
	fc_config_init(cfg);
	int rc = api_json_check_fields(o, "config", fields, err);
	json_object *v;
	if (!rc && json_object_object_get_ex(o, "boot-source", &v) && v)
		rc = boot_from(v, &cfg->boot, err);
	if (!rc && json_object_object_get_ex(o, "machine-config", &v) && v)
		rc = machine_from(v, false, NULL, &cfg->machine, err);
	if (!rc && json_object_object_get_ex(o, "drives", &v) && v) {
		if (!json_object_is_type(v, json_type_array))
			return cove_err_set(err, -EINVAL, "'drives' must be an array");
		for (size_t i = 0; !rc && i < json_object_array_length(v); i++) {
			struct fc_drive d;
			rc = drive_from(NULL, json_object_array_get_idx(v, i), &d, err);
			if (!rc)
				rc = fc_config_put_drive(cfg, &d, err);
		}
	}
	if (!rc && json_object_object_get_ex(o, "network-interfaces", &v) && v) {
		if (!json_object_is_type(v, json_type_array))
			return cove_err_set(err, -EINVAL, "'network-interfaces' must be an array");
		for (size_t i = 0; !rc && i < json_object_array_length(v); i++) {
			struct fc_net n;
			rc = net_from(NULL, json_object_array_get_idx(v, i), &n, err);
			if (!rc)
				rc = fc_config_put_net(cfg, &n, err);
		}
	}
	if (!rc && json_object_object_get_ex(o, "vsock", &v) && v)
		rc = vsock_from(v, &cfg->vsock, err);
	if (!rc && json_object_object_get_ex(o, "balloon", &v) && v)
		rc = balloon_from(v, &cfg->balloon, err);
	if (!rc && json_object_object_get_ex(o, "logger", &v) && v)
		rc = logger_from(v, &cfg->logger, err);
	if (!rc && json_object_object_get_ex(o, "metrics", &v) && v)
		rc = metrics_from(v, &cfg->metrics, err);
	return rc;
}

int fc_parse_full_config(const char *body, size_t len, struct fc_vm_config *out,
			 struct cove_err *err)
{
	WITH_OBJECT(body, len, err, full_from(o, out, err));
}

static void add_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

static json_object *bucket_json(const struct fc_token_bucket *b)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "size", json_object_new_uint64(b->size));
	json_object_object_add(o, "one_time_burst", json_object_new_uint64(b->one_time_burst));
	json_object_object_add(o, "refill_time", json_object_new_uint64(b->refill_time));
	return o;
}

static void add_limiter(json_object *o, const char *key, const struct fc_rate_limiter *r)
{
	if (!r->set)
		return;
	json_object *l = json_object_new_object();
	if (r->bandwidth.set)
		json_object_object_add(l, "bandwidth", bucket_json(&r->bandwidth));
	if (r->ops.set)
		json_object_object_add(l, "ops", bucket_json(&r->ops));
	json_object_object_add(o, key, l);
}

json_object *fc_config_to_json(const struct fc_vm_config *cfg)
{
	json_object *o = json_object_new_object();
	if (cfg->boot.set) {
		json_object *b = json_object_new_object();
		add_str(b, "kernel_image_path", cfg->boot.kernel_image_path);
		if (cfg->boot.initrd_path[0])
			add_str(b, "initrd_path", cfg->boot.initrd_path);
		add_str(b, "boot_args", cfg->boot.boot_args);
		json_object_object_add(o, "boot-source", b);
	}
	json_object *m = json_object_new_object();
	json_object_object_add(m, "vcpu_count", json_object_new_int(cfg->machine.vcpu_count));
	json_object_object_add(m, "mem_size_mib", json_object_new_int(cfg->machine.mem_size_mib));
	json_object_object_add(m, "smt", json_object_new_boolean(cfg->machine.smt));
	json_object_object_add(m, "track_dirty_pages",
			       json_object_new_boolean(cfg->machine.track_dirty_pages));
	add_str(m, "huge_pages", cfg->machine.huge_pages);
	json_object_object_add(o, "machine-config", m);
	json_object *drives = json_object_new_array();
	for (unsigned i = 0; i < cfg->ndrives; i++) {
		const struct fc_drive *d = &cfg->drives[i];
		json_object *j = json_object_new_object();
		add_str(j, "drive_id", d->drive_id);
		add_str(j, "path_on_host", d->path_on_host);
		json_object_object_add(j, "is_root_device",
				       json_object_new_boolean(d->is_root_device));
		json_object_object_add(j, "is_read_only", json_object_new_boolean(d->is_read_only));
		if (d->partuuid[0])
			add_str(j, "partuuid", d->partuuid);
		add_str(j, "cache_type", d->cache_type);
		add_str(j, "io_engine", d->io_engine);
		add_limiter(j, "rate_limiter", &d->rate_limiter);
		json_object_array_add(drives, j);
	}
	json_object_object_add(o, "drives", drives);
	json_object *nets = json_object_new_array();
	for (unsigned i = 0; i < cfg->nnets; i++) {
		const struct fc_net *n = &cfg->nets[i];
		json_object *j = json_object_new_object();
		add_str(j, "iface_id", n->iface_id);
		add_str(j, "host_dev_name", n->host_dev_name);
		if (n->guest_mac[0])
			add_str(j, "guest_mac", n->guest_mac);
		if (n->mtu)
			json_object_object_add(j, "mtu", json_object_new_int(n->mtu));
		add_limiter(j, "rx_rate_limiter", &n->rx_rate_limiter);
		add_limiter(j, "tx_rate_limiter", &n->tx_rate_limiter);
		json_object_array_add(nets, j);
	}
	json_object_object_add(o, "network-interfaces", nets);
	if (cfg->vsock.set) {
		json_object *v = json_object_new_object();
		json_object_object_add(v, "guest_cid", json_object_new_int64(cfg->vsock.guest_cid));
		add_str(v, "uds_path", cfg->vsock.uds_path);
		json_object_object_add(o, "vsock", v);
	}
	if (cfg->balloon.set) {
		json_object *b = json_object_new_object();
		json_object_object_add(b, "amount_mib",
				       json_object_new_int64(cfg->balloon.amount_mib));
		json_object_object_add(b, "deflate_on_oom",
				       json_object_new_boolean(cfg->balloon.deflate_on_oom));
		json_object_object_add(
		    b, "stats_polling_interval_s",
		    json_object_new_int64(cfg->balloon.stats_polling_interval_s));
		json_object_object_add(o, "balloon", b);
	}
	if (cfg->logger.set) {
		json_object *l = json_object_new_object();
		if (cfg->logger.log_path[0])
			add_str(l, "log_path", cfg->logger.log_path);
		add_str(l, "level", cfg->logger.level);
		json_object_object_add(l, "show_level",
				       json_object_new_boolean(cfg->logger.show_level));
		json_object_object_add(l, "show_log_origin",
				       json_object_new_boolean(cfg->logger.show_log_origin));
		if (cfg->logger.module[0])
			add_str(l, "module", cfg->logger.module);
		json_object_object_add(o, "logger", l);
	}
	if (cfg->metrics.set) {
		json_object *mt = json_object_new_object();
		add_str(mt, "metrics_path", cfg->metrics.metrics_path);
		json_object_object_add(o, "metrics", mt);
	}
	return o;
}
