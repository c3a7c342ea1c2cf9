/* VM definitions: strict JSON parsing with bounds, defaults, and printing. */
#include "daemon/vmdef.h"
#include "api/json.h"
#include "util/size.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool vmdef_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n >= VMDEF_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("_.-", name[i]))
			return false;
	return true;
}

static int str_into(json_object *o, const char *key, bool required, char *dst, size_t cap,
		    struct cove_err *err)
{
	const char *s;
	int rc = api_json_get_str(o, key, required, cap - 1, &s, err);
	if (rc)
		return rc;
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

static int abs_path(const char *field, const char *p, struct cove_err *err)
{
	if (p[0] && p[0] != '/')
		return cove_err_set(err, -EINVAL, "field '%s' must be an absolute path", field);
	return 0;
}

static int parse_memory(json_object *o, uint64_t *mib, struct cove_err *err)
{
	json_object *v;
	if (!json_object_object_get_ex(o, "memory", &v) || !v)
		return 0;
	uint64_t bytes;
	if (json_object_is_type(v, json_type_int)) {
		uint64_t m;
		int rc = api_json_get_u64(o, "memory", true, 16, 1024 * 1024, &m, err);
		if (rc)
			return rc;
		*mib = m;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return cove_err_set(err, -EINVAL,
				    "field 'memory' must be MiB (a number) or a size (\"512M\")");
	if (size_parse(json_object_get_string(v), 1024 * 1024, &bytes) != 0)
		return cove_err_set(err, -EINVAL, "field 'memory': cannot parse '%.32s' as a size",
				    json_object_get_string(v));
	if (bytes % (1024 * 1024) || bytes < 16ull << 20 || bytes > 1ull << 40)
		return cove_err_set(err, -EINVAL,
				    "field 'memory' must be whole MiB between 16 MiB and 1 TiB");
	*mib = bytes >> 20;
	return 0;
}

static int parse_disks(json_object *o, struct vmdef *d, struct cove_err *err)
{
	static const char *const fields[] = {"path", "readonly", "format", NULL};
	json_object *arr;
	if (!json_object_object_get_ex(o, "disks", &arr) || !arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return cove_err_set(err, -EINVAL, "field 'disks' must be an array");
	size_t n = json_object_array_length(arr);
	if (n > VMDEF_MAX_DISKS)
		return cove_err_set(err, -EINVAL, "at most %d disks", VMDEF_MAX_DISKS);
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		struct vmdef_disk *k = &d->disks[i];
		int rc = api_json_check_fields(e, "disks[]", fields, err);
		if (!rc)
			rc = str_into(e, "path", true, k->path, sizeof(k->path), err);
		if (!rc && !k->path[0])
			rc = cove_err_set(err, -EINVAL, "field 'path' must not be empty");
		if (!rc)
			rc = abs_path("path", k->path, err);
		if (!rc)
			rc = api_json_opt(
			    api_json_get_bool(e, "readonly", false, &k->readonly, err));
		if (!rc)
			rc = api_json_opt(
			    str_into(e, "format", false, k->format, sizeof(k->format), err));
		if (!rc && k->format[0] && strcmp(k->format, "raw") && strcmp(k->format, "qcow2"))
			rc = cove_err_set(err, -EINVAL, "field 'format': '%s' is not raw or qcow2",
					  k->format);
		if (rc)
			return cove_err_prefix(err, "disks[%zu]", i);
	}
	d->ndisks = (unsigned)n;
	return 0;
}

static bool mac_valid(const char *s)
{
	if (strlen(s) != 17)
		return false;
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

static int parse_nics(json_object *o, struct vmdef *d, struct cove_err *err)
{
	static const char *const fields[] = {"network", "tap", "mac", NULL};
	json_object *arr;
	if (!json_object_object_get_ex(o, "nics", &arr) || !arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return cove_err_set(err, -EINVAL, "field 'nics' must be an array");
	size_t n = json_object_array_length(arr);
	if (n > VMDEF_MAX_NICS)
		return cove_err_set(err, -EINVAL, "at most %d nics", VMDEF_MAX_NICS);
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		struct vmdef_nic *k = &d->nics[i];
		int rc = api_json_check_fields(e, "nics[]", fields, err);
		if (!rc)
			rc = api_json_opt(
			    str_into(e, "network", false, k->network, sizeof(k->network), err));
		if (!rc)
			rc = api_json_opt(str_into(e, "tap", false, k->tap, sizeof(k->tap), err));
		if (!rc && !k->network[0] == !k->tap[0])
			rc = cove_err_set(err, -EINVAL, "give exactly one of 'network' and 'tap'");
		if (!rc && k->network[0] && !vmdef_name_valid(k->network))
			rc = cove_err_set(err, -EINVAL, "invalid network name '%s'", k->network);
		if (!rc && k->tap[0] && (strchr(k->tap, '/') || strchr(k->tap, ' ')))
			rc = cove_err_set(err, -EINVAL, "invalid tap name '%s'", k->tap);
		if (!rc)
			rc = api_json_opt(str_into(e, "mac", false, k->mac, sizeof(k->mac), err));
		if (!rc && k->mac[0] && !mac_valid(k->mac))
			rc = cove_err_set(err, -EINVAL, "invalid mac '%s' (want aa:bb:cc:dd:ee:ff)",
					  k->mac);
		if (rc)
			return cove_err_prefix(err, "nics[%zu]", i);
	}
	d->nnics = (unsigned)n;
	return 0;
}

int vmdef_from_json(json_object *o, struct vmdef **out, struct cove_err *err)
{
	static const char *const fields[] = {"name",	"kernel",    "initrd", "cmdline",
					     "cpus",	"memory",    "disks",  "nics",
					     "console", "autostart", NULL};
	struct vmdef *d = calloc(1, sizeof(*d));
	if (!d)
		return cove_err_set(err, -ENOMEM, "out of memory");
	d->cpus = 1;
	d->memory_mib = 128;
	strcpy(d->console, "log");
	uint64_t cpus = 1;
	int rc = api_json_check_fields(o, "definition", fields, err);
	if (!rc)
		rc = str_into(o, "name", true, d->name, sizeof(d->name), err);
	if (!rc && !vmdef_name_valid(d->name))
		rc = cove_err_set(err, -EINVAL,
				  "invalid name '%s' (1-63 of letters, digits, '_', '.', '-')",
				  d->name);
	if (!rc)
		rc = api_json_opt(str_into(o, "kernel", false, d->kernel, sizeof(d->kernel), err));
	if (!rc)
		rc = abs_path("kernel", d->kernel, err);
	if (!rc)
		rc = api_json_opt(str_into(o, "initrd", false, d->initrd, sizeof(d->initrd), err));
	if (!rc)
		rc = abs_path("initrd", d->initrd, err);
	if (!rc && d->initrd[0] && !d->kernel[0])
		rc = cove_err_set(err, -EINVAL, "an initrd needs a kernel");
	if (!rc)
		rc = api_json_opt(
		    str_into(o, "cmdline", false, d->cmdline, sizeof(d->cmdline), err));
	if (!rc)
		rc = api_json_opt(api_json_get_u64(o, "cpus", false, 1, 32, &cpus, err));
	if (!rc)
		rc = parse_memory(o, &d->memory_mib, err);
	if (!rc)
		rc = parse_disks(o, d, err);
	if (!rc)
		rc = parse_nics(o, d, err);
	if (!rc) {
		rc = api_json_opt(
		    str_into(o, "console", false, d->console, sizeof(d->console), err));
		if (!rc && strcmp(d->console, "log") && strcmp(d->console, "none"))
			rc = cove_err_set(err, -EINVAL,
					  "field 'console' must be \"log\" or \"none\"");
	}
	if (!rc)
		rc = api_json_opt(api_json_get_bool(o, "autostart", false, &d->autostart, err));
	if (rc) {
		free(d);
		return rc;
	}
	d->cpus = (uint32_t)cpus;
	*out = d;
	return 0;
}

int vmdef_parse(const char *body, size_t len, struct vmdef **out, struct cove_err *err)
{
	json_object *o = NULL;
	int rc = api_json_parse_object(body, len, &o, err);
	if (rc)
		return rc;
	rc = vmdef_from_json(o, out, err);
	json_object_put(o);
	return rc;
}

json_object *vmdef_to_json(const struct vmdef *d)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(d->name));
	if (d->kernel[0])
		json_object_object_add(o, "kernel", json_object_new_string(d->kernel));
	if (d->initrd[0])
		json_object_object_add(o, "initrd", json_object_new_string(d->initrd));
	if (d->cmdline[0])
		json_object_object_add(o, "cmdline", json_object_new_string(d->cmdline));
	json_object_object_add(o, "cpus", json_object_new_int((int32_t)d->cpus));
	json_object_object_add(o, "memory", json_object_new_int64((int64_t)d->memory_mib));
	json_object *disks = json_object_new_array();
	for (unsigned i = 0; i < d->ndisks; i++) {
		json_object *k = json_object_new_object();
		json_object_object_add(k, "path", json_object_new_string(d->disks[i].path));
		json_object_object_add(k, "readonly",
				       json_object_new_boolean(d->disks[i].readonly));
		if (d->disks[i].format[0])
			json_object_object_add(k, "format",
					       json_object_new_string(d->disks[i].format));
		json_object_array_add(disks, k);
	}
	json_object_object_add(o, "disks", disks);
	json_object *nics = json_object_new_array();
	for (unsigned i = 0; i < d->nnics; i++) {
		json_object *k = json_object_new_object();
		if (d->nics[i].network[0])
			json_object_object_add(k, "network",
					       json_object_new_string(d->nics[i].network));
		if (d->nics[i].tap[0])
			json_object_object_add(k, "tap", json_object_new_string(d->nics[i].tap));
		if (d->nics[i].mac[0])
			json_object_object_add(k, "mac", json_object_new_string(d->nics[i].mac));
		json_object_array_add(nics, k);
	}
	json_object_object_add(o, "nics", nics);
	json_object_object_add(o, "console", json_object_new_string(d->console));
	json_object_object_add(o, "autostart", json_object_new_boolean(d->autostart));
	return o;
}

void vmdef_free(struct vmdef *d)
{
	free(d);
}
