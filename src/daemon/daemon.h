/* coved's shared state: the store, the running VMs and their consoles, the event feed. */
#ifndef COVE_DAEMON_DAEMON_H
#define COVE_DAEMON_DAEMON_H

#include "api/http.h"
#include "daemon/store.h"
#include "daemon/vmdef.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define COVED_MAX_RUNNING 512
#define COVED_RING_SIZE	  (64 * 1024) /* console bytes kept for late attachers */
/* run/NAME/vmm: the VMM's own directory (its user's when confined), for its API socket.
 * Nothing coved opens as root lives there. */
#define SUP_VMM_DIR "vmm"

/* A VM that has a `cove run` process. */
struct vm_rt {
	char name[VMDEF_NAME_MAX];
	/* state_dir/run/NAME, root's: console.log, console.in, vmm.log, and SUP_VMM_DIR, the
	 * only part a confined VMM may write (its api.sock) */
	char dir[PATH_MAX];
	pid_t shim_pid, vmm_pid;
	uint64_t shim_start;
	int64_t started_at;
	char state[16]; /* "running", "paused" */
	bool stop_requested, destroy_requested, reboot_requested;
	bool has_api;
	uid_t uid; /* a confined VM's own user, else (uid_t)-1 */
	int console_fd;
	uint64_t console_total; /* bytes of output ever seen: the ring's write position */
	char ring[COVED_RING_SIZE];
};

struct coved {
	pthread_mutex_t lock; /* guards everything below, and the store */
	pthread_cond_t cond;  /* broadcast on new events and console output */
	struct store *store;
	char state_dir[2048];
	char pool_dir[2100];
	char vmm[PATH_MAX];	/* the `cove` binary (or a stand-in) run as `VMM run ...` */
	bool vmm_api_sock;	/* the VMM understands --api-sock */
	bool vmm_disk, vmm_net; /* ... --disk path=P[,readonly=on], --net tap=NAME[,mac=MAC] */
	bool vmm_seccomp;	/* ... --seccomp (the allow-list alone) */
	bool confine; /* run VMMs confined (--confine BASE[:COUNT]), each as its own user */
	uid_t confine_uid_base;
	unsigned confine_uid_count;
	struct vm_rt *running[COVED_MAX_RUNNING];
	FILE *audit;
	unsigned heartbeat_ms; /* idle streams send a blank line this often */
	volatile bool stopping;
	pthread_t monitor;
};

/* Supervisor (supervisor.c). All take d->lock held unless said otherwise. */
/* Starts def's VM; the "started" event gets reason ("start requested", "autostart"...). */
int sup_start(struct coved *d, const struct vmdef *def, const char *reason, struct cove_err *err);
/* Writes rt's runtime record (state, pids, requests) to the store. */
int sup_persist(struct coved *d, const struct vm_rt *rt);
/* Gives back what a VM's run took on the host (its taps...), once its VMM is gone. */
void sup_release(struct coved *d, const char *name);
/* The test hook COVED_TEST_CRASH_AT=POINT: coved kills itself with SIGKILL there, as an
 * operator's kill -9 could (for the crash-safety test; harmless otherwise). */
void sup_crash_point(const char *point);
struct vm_rt *sup_find(struct coved *d, const char *name);
/* Re-attaches to VMs recorded as running, reports those that ended while coved was away. */
void sup_reattach(struct coved *d);
/* The monitor thread: console output, exits. Call without the lock. */
int sup_monitor_start(struct coved *d);
void sup_monitor_stop(struct coved *d);
/* Copies console output from *pos on (advancing it) into buf; returns bytes copied. */
size_t sup_console_read(const struct vm_rt *rt, uint64_t *pos, char *buf, size_t cap);
/* Records and broadcasts an event. */
void coved_event(struct coved *d, const char *vm, const char *type, const char *reason,
		 const char *detail);
/* Opens a log or record file coved reads as root: O_NOFOLLOW, non-blocking, and only a
 * regular file (never a FIFO, device or symlink someone planted). Returns an fd or -errno. */
int sup_open_log(const char *path);
/* Reads /proc/PID/stat: start time and whether it is alive (not a zombie). */
bool sup_proc_alive(pid_t pid, uint64_t start);
uint64_t sup_proc_start(pid_t pid);

/* Routes (routes.c, console.c). */
extern const struct api_route coved_routes[];
extern const size_t coved_nroutes;
struct api_request;
struct api_response;
void coved_console(struct api_request *req, struct api_response *resp);

#endif
