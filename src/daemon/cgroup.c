/* A cgroup per confined VMM (v2, or v1 memory + pids): limits, joining, removal. */
#include "daemon/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CG_ROOT "/sys/fs/cgroup"

uint64_t cg_memory_limit(uint64_t mem_mib)
{
	/* The VMM's own heap, stacks, io_uring rings and device buffers, with room to
	 * spare: a VMM that grows past this is stopped by the kernel, not the host. */
	return (mem_mib + 128 + mem_mib / 8) << 20;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, text, strlen(text));
	int rc = n == (ssize_t)strlen(text) ? 0 : n < 0 ? -errno : -EIO;
	close(fd);
	return rc;
}

/* coved's own group in the hierarchy of controller ctl ("" for v2's unified one). */
static bool own_path(const char *ctl, char *out, size_t cap)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return false;
	char line[1024];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
		if (!b)
			continue;
		*b = '\0';
		const char *ctls = a + 1;
		bool match = false;
		if (!*ctl) {
			match = !*ctls && strncmp(line, "0", 1) == 0;
		} else {
			for (char *t = strtok((char *)ctls, ","); t && !match;
			     t = strtok(NULL, ","))
				match = strcmp(t, ctl) == 0;
		}
		if (match) {
			b[1 + strcspn(b + 1, "\n")] = '\0';
			snprintf(out, cap, "%s", strcmp(b + 1, "/") == 0 ? "" : b + 1);
			found = true;
		}
	}
	fclose(f);
	return found;
}

/* mkdir of dir/cove and dir/cove/id; fills cg's next slot. */
static int make_group(const char *mount, const char *own, const char *id, struct vm_cgroup *cg)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s%s/cove", mount, own);
	if (mkdir(p, 0755) != 0 && errno != EEXIST)
		return -errno;
	int i = cg->n;
	char dir[PATH_MAX];
	if (snprintf(dir, sizeof(dir), "%s/%s", p, id) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return -errno;
	memcpy(cg->dir[i], dir, sizeof(dir));
	snprintf(cg->procs[i], sizeof(cg->procs[i]), "%s/cgroup.procs", dir);
	cg->n++;
	return 0;
}

static int set_in(const struct vm_cgroup *cg, int i, const char *file, const char *value)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/%s", cg->dir[i], file);
	return write_file(p, value);
}

int cg_create(const char *id, uint64_t mem_bytes, unsigned pids_max, const char *record_path,
	      struct vm_cgroup *cg, struct cove_err *err)
{
	memset(cg, 0, sizeof(*cg));
	char own[PATH_MAX], mem[32], pids[32];
	snprintf(mem, sizeof(mem), "%llu", (unsigned long long)mem_bytes);
	snprintf(pids, sizeof(pids), "%u", pids_max);
	int rc;
	char ctl[512] = "";
	int fd = open(CG_ROOT "/cgroup.controllers", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) { /* v2 */
		ssize_t n = read(fd, ctl, sizeof(ctl) - 1);
		close(fd);
		ctl[n > 0 ? n : 0] = '\0';
		if (!strstr(ctl, "memory"))
			return cove_err_set(err, -ENOTSUP,
					    "cgroup v2 has no memory controller here");
		if (!own_path("", own, sizeof(own)))
			return cove_err_set(err, -ENOTSUP, "cannot find coved's own cgroup");
		/* Controllers reach a group through each parent's subtree_control; coved's
		 * own group holds coved, so the VMs' parent "cove" is made beside it. */
		char *slash = strrchr(own, '/');
		if (slash)
			*slash = '\0';
		char p[PATH_MAX + 64];
		snprintf(p, sizeof(p), CG_ROOT "%s/cgroup.subtree_control", own);
		write_file(p, "+memory +pids");
		rc = make_group(CG_ROOT, own, id, cg);
		if (!rc) {
			snprintf(p, sizeof(p), CG_ROOT "%s/cove/cgroup.subtree_control", own);
			write_file(p, "+memory +pids");
			rc = set_in(cg, 0, "memory.max", mem);
		}
		if (!rc && strstr(ctl, "pids"))
			set_in(cg, 0, "pids.max", pids);
	} else { /* v1: the memory hierarchy, and pids when mounted */
		if (!own_path("memory", own, sizeof(own)) ||
		    access(CG_ROOT "/memory/cgroup.procs", F_OK) != 0)
			return cove_err_set(err, -ENOTSUP, "no cgroup memory hierarchy here");
		rc = make_group(CG_ROOT "/memory", own, id, cg);
		if (!rc)
			rc = set_in(cg, 0, "memory.limit_in_bytes", mem);
		if (!rc && own_path("pids", own, sizeof(own)) &&
		    access(CG_ROOT "/pids/cgroup.procs", F_OK) == 0 &&
		    make_group(CG_ROOT "/pids", own, id, cg) == 0)
			rc = set_in(cg, 1, "pids.max", pids);
	}
	FILE *f = cg->n ? fopen(record_path, "we") : NULL;
	if (f) {
		for (int i = 0; i < cg->n; i++)
			fprintf(f, "%s\n", cg->dir[i]);
		if (fflush(f) != 0 || fsync(fileno(f)) != 0)
			rc = rc ? rc : -EIO;
		fclose(f);
	} else if (cg->n && !rc) {
		rc = -errno;
	}
	if (rc) {
		int e = rc;
		cg_remove(record_path);
		for (int i = cg->n - 1; i >= 0; i--)
			rmdir(cg->dir[i]);
		cg->n = 0;
		return cove_err_set(err, e, "making the VM's cgroup: %s", strerror(-e));
	}
	return 0;
}

int cg_join(const struct vm_cgroup *cg)
{
	for (int i = 0; i < cg->n; i++) {
		int fd = open(cg->procs[i], O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		ssize_t n = write(fd, "0", 1); /* 0: the writing process */
		close(fd);
		if (n != 1)
			return -EIO;
	}
	return 0;
}

void cg_remove(const char *record_path)
{
	FILE *f = fopen(record_path, "re");
	if (!f)
		return;
	char dir[PATH_MAX + 2];
	while (fgets(dir, sizeof(dir), f)) {
		dir[strcspn(dir, "\n")] = '\0';
		/* Only groups coved makes: .../cove/ID */
		if (strncmp(dir, CG_ROOT "/", sizeof(CG_ROOT)) == 0 && strstr(dir, "/cove/"))
			rmdir(dir);
	}
	fclose(f);
	unlink(record_path);
}
