/*
 * A cgroup per confined VMM: its memory limited to the guest's RAM plus an overhead,
 * its task count bounded. cgroup v2 when the host mounts it with the memory controller,
 * else the v1 memory and pids hierarchies. Each VM's group is cove/ID: in v1 under coved's
 * own group; in v2 beside it, under its parent (a group that holds processes, as coved's
 * does, cannot give controllers to groups below it).
 */
#ifndef COVE_DAEMON_CGROUP_H
#define COVE_DAEMON_CGROUP_H

#include <cove/error.h>

#include <limits.h>
#include <stdint.h>

#define CG_MAX_DIRS 2

struct vm_cgroup {
	int n; /* groups made (0: none) */
	char dir[CG_MAX_DIRS][PATH_MAX];
	char procs[CG_MAX_DIRS][PATH_MAX + 16]; /* their cgroup.procs, for cg_join */
};

/* The memory limit coved gives a VMM whose guest has mem_mib of RAM, in bytes. */
uint64_t cg_memory_limit(uint64_t mem_mib);

/*
 * Makes the groups named id (unique per coved and VM) with the limits, and records
 * their paths in record_path (for cg_remove, also after a coved restart). -ENOTSUP when
 * the host offers no usable hierarchy (err says why).
 */
int cg_create(const char *id, uint64_t mem_bytes, unsigned pids_max, const char *record_path,
	      struct vm_cgroup *cg, struct cove_err *err);

/* In the VMM's process before exec: moves it into the groups. Async-signal-safe. */
int cg_join(const struct vm_cgroup *cg);

/* Removes the groups recorded in record_path (once their tasks are gone), and the record. */
void cg_remove(const char *record_path);

#endif
