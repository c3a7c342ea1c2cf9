/*
 * coved's state in SQLite (WAL, one transaction per change): VM definitions, the
 * runtime record of running VMs (pids and start times, for re-attaching after a
 * restart) and the event history. Not thread-safe: the caller serializes calls.
 */
#ifndef COVE_DAEMON_STORE_H
#define COVE_DAEMON_STORE_H

#include <cove/error.h>

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define STORE_SCHEMA_VERSION 2
#define STORE_EVENTS_KEPT    20000 /* older events are pruned */

struct store;

struct store_runtime {
	char name[64];
	pid_t shim_pid, vmm_pid;
	uint64_t shim_start; /* start time in clock ticks since boot (/proc/PID/stat field 22) */
	/* "starting" (recorded before the VMM is forked; pids 0), "running", "paused",
	 * "rebooting" (the VMM ended for a reboot; it is to be started again) */
	char state[16];
	int64_t started_at;	/* unix seconds */
	bool stop_requested;	/* a shutdown/stop was asked for: an exit is not a crash */
	bool destroy_requested; /* the VMM was killed on purpose ("destroyed") */
	bool reboot_requested;	/* the VMM is to be started again when it ends */
};

struct store_event {
	int64_t id;
	int64_t time_ms;
	char vm[64];
	char type[16];
	char reason[256];
	char *detail; /* malloc'd or NULL (a crash's log tail) */
};

/* Opens (creating, or migrating an older schema) path. */
int store_open(const char *path, struct store **out, struct cove_err *err);
void store_close(struct store *s);

/* Definitions are kept as their JSON text. */
int store_vm_insert(struct store *s, const char *name, const char *json, struct cove_err *err);
int store_vm_update(struct store *s, const char *name, const char *json, struct cove_err *err);
int store_vm_delete(struct store *s, const char *name, struct cove_err *err);
/* *json is malloc'd. -ENOENT when there is no such VM. */
int store_vm_get(struct store *s, const char *name, char **json, struct cove_err *err);
/* Calls fn for each VM in name order; stops early when fn returns nonzero. */
int store_vm_foreach(struct store *s, int (*fn)(void *ctx, const char *name, const char *json),
		     void *ctx, struct cove_err *err);
int store_vm_count(struct store *s);

int store_runtime_set(struct store *s, const struct store_runtime *rt, struct cove_err *err);
int store_runtime_get(struct store *s, const char *name, struct store_runtime *rt);
int store_runtime_clear(struct store *s, const char *name, struct cove_err *err);
int store_runtime_foreach(struct store *s, int (*fn)(void *ctx, const struct store_runtime *rt),
			  void *ctx);

/* One transaction around several calls (e.g. an exit's events and its runtime record),
 * so that a kill between them cannot leave half of them. */
int store_begin(struct store *s);
int store_commit(struct store *s);

/*
 * The uid of a confined VM: the one it has, or the lowest free one in
 * [base, base + count), recorded until the VM's definition is deleted. -ENOSPC when all
 * are taken.
 */
int store_vm_uid(struct store *s, const char *name, uid_t base, unsigned count, uid_t *uid,
		 struct cove_err *err);

/* Appends an event; *id gets its id (may be NULL). detail may be NULL. */
int store_event_add(struct store *s, const char *vm, const char *type, const char *reason,
		    const char *detail, int64_t *id);
/* Calls fn for events with id > after (and of vm, when vm is not NULL), oldest first, at
 * most limit of them. */
int store_event_foreach(struct store *s, int64_t after, const char *vm, int limit,
			int (*fn)(void *ctx, const struct store_event *ev), void *ctx);
int64_t store_event_last_id(struct store *s);

#endif
