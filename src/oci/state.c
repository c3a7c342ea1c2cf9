/* Container state on disk (<root>/<id>/state.json) and status as runc reports it. */
#include "oci/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool oci_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 200 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.' || c == '+'))
			return false;
	}
	return true;
}

int oci_read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t got = 0;
	while (got + 1 < len) {
		ssize_t n = read(fd, buf + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = -errno;
			close(fd);
			return e;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	while (got && buf[got - 1] == '\n')
		buf[--got] = '\0';
	return (int)got;
}

int oci_write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_TRUNC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, data, len);
	int e = n < 0 ? -errno : ((size_t)n != len ? -EIO : 0);
	close(fd);
	return e;
}

int oci_write_file_atomic(const char *path, const char *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid()) >= sizeof(tmp))
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? -errno : -EIO;
			close(fd);
			unlink(tmp);
			return e;
		}
		off += (size_t)n;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		int e = -errno;
		unlink(tmp);
		return e;
	}
	return 0;
}

unsigned long long oci_proc_start_time(pid_t pid, bool *zombie)
{
	char path[64], buf[1024];
	if (zombie)
		*zombie = false;
	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (oci_read_file(path, buf, sizeof(buf)) <= 0)
		return 0;
	/* The command name may hold spaces and parentheses: parse after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return 0;
	p += 2;
	if (zombie && (*p == 'Z' || *p == 'X'))
		*zombie = true;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return p ? strtoull(p, NULL, 10) : 0;
}

static void copy_str(char *dst, size_t len, struct json_object *o, const char *key)
{
	struct json_object *v;
	dst[0] = '\0';
	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		snprintf(dst, len, "%s", json_object_get_string(v));
}

static int64_t get_int(struct json_object *o, const char *key)
{
	struct json_object *v;
	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int))
		return json_object_get_int64(v);
	return 0;
}

int oci_state_load(const char *root, const char *id, struct oci_state *st, struct cove_err *err)
{
	memset(st, 0, sizeof(*st));
	if (!oci_id_valid(id))
		return cove_err_set(err, -EINVAL, "invalid container id format: %s", id);
	snprintf(st->id, sizeof(st->id), "%s", id);
	if ((size_t)snprintf(st->dir, sizeof(st->dir), "%s/%s", root, id) >= sizeof(st->dir))
		return cove_err_set(err, -ENAMETOOLONG, "state path too long");
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/state.json", st->dir);
	struct json_object *o = json_object_from_file(path);
	if (!o) {
		struct stat sb;
		if (stat(st->dir, &sb) == 0) {
			st->creating = true;
			return 0;
		}
		return cove_err_set(err, -ENOENT, "container with id %s does not exist", id);
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return cove_err_set(err, -EINVAL, "%s: corrupt state file", path);
	}
	st->pid = (pid_t)get_int(o, "pid");
	copy_str(st->bundle, sizeof(st->bundle), o, "bundle");
	copy_str(st->rootfs, sizeof(st->rootfs), o, "rootfs");
	copy_str(st->created, sizeof(st->created), o, "created");
	st->owner = (uid_t)get_int(o, "cove_owner");
	st->start_time = (unsigned long long)get_int(o, "cove_starttime");
	st->cg.mode = (enum oci_cg_mode)get_int(o, "cove_cgroup_mode");
	st->hooks = (unsigned)get_int(o, "cove_hooks");
	copy_str(st->cg.path, sizeof(st->cg.path), o, "cove_cgroup_path");
	struct json_object *ann;
	if (json_object_object_get_ex(o, "annotations", &ann))
		st->annotations = json_object_get(ann);
	json_object_put(o);
	return 0;
}

void oci_state_free(struct oci_state *st)
{
	if (st && st->annotations) {
		json_object_put(st->annotations);
		st->annotations = NULL;
	}
}

static struct json_object *state_obj(const struct oci_state *st, const char *status, bool priv)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "ociVersion", json_object_new_string("1.0.2"));
	json_object_object_add(o, "id", json_object_new_string(st->id));
	json_object_object_add(
	    o, "pid", json_object_new_int(status && !strcmp(status, "stopped") ? 0 : st->pid));
	if (status)
		json_object_object_add(o, "status", json_object_new_string(status));
	json_object_object_add(o, "bundle", json_object_new_string(st->bundle));
	json_object_object_add(o, "rootfs", json_object_new_string(st->rootfs));
	json_object_object_add(o, "created", json_object_new_string(st->created));
	json_object_object_add(o, "owner", json_object_new_string(""));
	if (st->annotations)
		json_object_object_add(o, "annotations", json_object_get(st->annotations));
	if (priv) {
		json_object_object_add(o, "cove_owner", json_object_new_int64(st->owner));
		json_object_object_add(o, "cove_starttime",
				       json_object_new_int64((int64_t)st->start_time));
		json_object_object_add(o, "cove_cgroup_mode", json_object_new_int(st->cg.mode));
		json_object_object_add(o, "cove_hooks", json_object_new_int((int)st->hooks));
		json_object_object_add(o, "cove_cgroup_path", json_object_new_string(st->cg.path));
	}
	return o;
}

int oci_state_save(const struct oci_state *st, struct cove_err *err)
{
	struct json_object *o = state_obj(st, NULL, true);
	size_t len = 0;
	const char *text = json_object_to_json_string_length(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/state.json", st->dir);
	int r = oci_write_file_atomic(path, text, len, 0600);
	json_object_put(o);
	if (r < 0)
		return cove_err_set(err, r, "%s: %s", path, strerror(-r));
	return 0;
}

char *oci_state_json(const struct oci_state *st, enum oci_status status, bool pretty)
{
	struct json_object *o = state_obj(st, oci_status_name(status), false);
	const char *text = json_object_to_json_string_ext(
	    o, pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
			    JSON_C_TO_STRING_NOSLASHESCAPE
		      : JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *dup = strdup(text ? text : "{}");
	json_object_put(o);
	return dup;
}

const char *oci_status_name(enum oci_status s)
{
	switch (s) {
	case OCI_CREATING:
		return "creating";
	case OCI_CREATED:
		return "created";
	case OCI_RUNNING:
		return "running";
	case OCI_PAUSED:
		return "paused";
	case OCI_STOPPED:
		break;
	}
	return "stopped";
}

enum oci_status oci_state_status(const struct oci_state *st)
{
	if (st->creating)
		return OCI_CREATING;
	bool zombie = false;
	unsigned long long t = oci_proc_start_time(st->pid, &zombie);
	if (t == 0 || zombie || (st->start_time && t != st->start_time))
		return OCI_STOPPED;
	if (oci_cgroup_frozen(&st->cg))
		return OCI_PAUSED;
	char fifo[PATH_MAX + 16];
	snprintf(fifo, sizeof(fifo), "%s/exec.fifo", st->dir);
	if (access(fifo, F_OK) == 0)
		return OCI_CREATED;
	return OCI_RUNNING;
}

void oci_state_remove(const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(dirfd(d), e->d_name, 0);
		}
		closedir(d);
	}
	rmdir(dir);
}
