/* coved's /v1 routes: VMs and their actions, stats, events, host, storage, networks. */
#include "api/client.h"
#include "api/http.h"
#include "api/json.h"
#include "daemon/daemon.h"
#include "daemon/network.h"
#ifdef COVED_HAVE_BLOCK
#include <cove/block.h>
#endif
#include "util/clock.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef COVE_VERSION
#define COVE_VERSION "0.1.0"
#endif

static struct coved *D(struct api_request *req)
{
	return req->user;
}

static void fail(struct api_response *resp, int rc, const struct cove_err *err)
{
	api_resp_error(resp, api_status_from_errno(rc), "%s",
		       err->msg[0] ? err->msg : strerror(-rc));
}

static bool check_name(const char *name, struct api_response *resp)
{
	if (vmdef_name_valid(name))
		return true;
	api_resp_error(resp, 400, "invalid VM name '%.64s'", name);
	return false;
}

static const char *vm_state(struct coved *d, const char *name)
{
	struct vm_rt *rt = sup_find(d, name);
	return rt ? rt->state : "shut off";
}

static void get_host(struct api_request *req, struct api_response *resp)
{
	struct coved *d = D(req);
	struct utsname u;
	struct sysinfo si;
	uname(&u);
	sysinfo(&si);
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "hostname", json_object_new_string(host));
	json_object_object_add(o, "kernel", json_object_new_string(u.release));
	json_object_object_add(o, "arch", json_object_new_string(u.machine));
	json_object_object_add(o, "cpus", json_object_new_int((int)sysconf(_SC_NPROCESSORS_ONLN)));
	json_object_object_add(o, "memory_total",
			       json_object_new_uint64((uint64_t)si.totalram * si.mem_unit));
	json_object_object_add(o, "memory_free",
			       json_object_new_uint64((uint64_t)si.freeram * si.mem_unit));
	json_object_object_add(o, "uptime", json_object_new_int64(si.uptime));
	json_object_object_add(o, "kvm",
			       json_object_new_boolean(access("/dev/kvm", R_OK | W_OK) == 0));
	json_object_object_add(o, "version", json_object_new_string(COVE_VERSION));
	pthread_mutex_lock(&d->lock);
	int running = 0;
	for (int i = 0; i < COVED_MAX_RUNNING; i++)
		running += d->running[i] != NULL;
	json_object_object_add(o, "vms_defined", json_object_new_int(store_vm_count(d->store)));
	pthread_mutex_unlock(&d->lock);
	json_object_object_add(o, "vms_running", json_object_new_int(running));
	api_resp_json(resp, 200, o);
}

struct list_ctx {
	struct coved *d;
	json_object *arr;
};

static int list_one(void *ctx, const char *name, const char *json)
{
	struct list_ctx *c = ctx;
	json_object *def = json_tokener_parse(json);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "state", json_object_new_string(vm_state(c->d, name)));
	json_object *v;
	if (def && json_object_object_get_ex(def, "cpus", &v))
		json_object_object_add(o, "cpus", json_object_get(v));
	if (def && json_object_object_get_ex(def, "memory", &v))
		json_object_object_add(o, "memory", json_object_get(v));
	if (def && json_object_object_get_ex(def, "autostart", &v))
		json_object_object_add(o, "autostart", json_object_get(v));
	json_object_put(def);
	json_object_array_add(c->arr, o);
	return 0;
}

static void list_vms(struct api_request *req, struct api_response *resp)
{
	struct coved *d = D(req);
	struct list_ctx c = {d, json_object_new_array()};
	struct cove_err err = {0};
	pthread_mutex_lock(&d->lock);
	int rc = store_vm_foreach(d->store, list_one, &c, &err);
	pthread_mutex_unlock(&d->lock);
	if (rc) {
		json_object_put(c.arr);
		fail(resp, rc, &err);
		return;
	}
	api_resp_json(resp, 200, c.arr);
}

static void create_vm(struct api_request *req, struct api_response *resp)
{
	struct coved *d = D(req);
	struct cove_err err = {0};
	struct vmdef *def = NULL;
	int rc = vmdef_parse(req->body, req->body_len, &def, &err);
	if (rc) {
		api_resp_error(resp, 400, "%s", err.msg);
		return;
	}
	json_object *j = vmdef_to_json(def);
	pthread_mutex_lock(&d->lock);
	rc = store_vm_insert(d->store, def->name, json_object_to_json_string(j), &err);
	if (!rc)
		coved_event(d, def->name, "defined", "created", NULL);
	pthread_mutex_unlock(&d->lock);
	vmdef_free(def);
	if (rc) {
		json_object_put(j);
		fail(resp, rc, &err);
		return;
	}
	api_resp_json(resp, 201, j);
}

static void get_vm(struct api_request *req, struct api_response *resp)
{
	struct coved *d = D(req);
	const char *name = req->params[0];
	if (!check_name(name, resp))
		return;
	struct cove_err err = {0};
	char *json = NULL;
	pthread_mutex_lock(&d->lock);
	int rc = store_vm_get(d->store, name, &json, &err);
	json_object *o = json_object_new_object();
	struct vm_rt *rt = sup_find(d, name);
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "state", json_object_new_string(rt ? rt->state : "shut off"));
	if (rt) {
		json_object_object_add(o, "pid", json_object_new_int(rt->vmm_pid));
		json_object_object_add(o, "started_at", json_object_new_int64(rt->started_at));
		json_object_object_add(o, "api_socket", json_object_new_boolean(rt->has_api));
		if (rt->uid != (uid_t)-1) /* confined: the VMM's own user */
			json_object_object_add(o, "uid", json_object_new_int64(rt->uid));
	}
	pthread_mutex_unlock(&d->lock);
	if (rc) {
		json_object_put(o);
		fail(resp, rc, &err);
		return;
	}
	json_object_object_add(o, "definition", json_tokener_parse(json));
	free(json);
	api_resp_json(resp, 200, o);
}

static void update_vm(struct api_request *req, struct api_response *resp)
{
	struct coved *d = D(req);
	const char *name = req->params[0];
	if (!check_name(name, resp))
		return;
	struct cove_err err = {0};
	struct vmdef *def = NULL;
	int rc = vmdef_parse(req->body, req->body_len, &def, &err);
	if (rc) {
		api_resp_error(resp, 400, "%s", err.msg);
		return;
	}
	if (strcmp(def->name, name) != 0) {
		api_resp_error(resp, 400,
			       "the name in the body ('%s') differs from the URL ('%s'); "
			       "renaming is not supported",
			       def->name, name);
		vmdef_free(def);
		return;
	}
	json_object *j = vmdef_to_json(def);
	vmdef_free(def);
	pthread_mutex_lock(&d->lock);
	if (sup_find(d, name))
		rc = cove_err_set(&err, -EBUSY,
				  "VM '%s' is running; stop it to change its definition", name);
	else
		rc = store_vm_update(d->store, name, json_object_to_json_string(j), &err);
	if (!rc)
		coved_event(d, name, "defined", "updated", NULL);
	pthread_mutex_unlock(&d->lock);
	if (rc) {
		json_object_put(j);
		fail(resp, rc, &err);
		return;
	}
	api_resp_json(resp, 200, j);
}

static void delete_vm(struct api_request *req, struct api_response *resp)
{
	struct coved *d = D(req);
	const char *name = req->params[0];
	if (!check_name(name, resp))
		return;
	struct cove_err err = {0};
	pthread_mutex_lock(&d->lock);
	int rc;
	if (sup_find(d, name))
		rc = cove_err_set(&err, -EBUSY, "VM '%s' is running; stop it first", name);
	else
		rc = store_vm_delete(d->store, name, &err);
	if (!rc) {
		coved_event(d, name, "undefined", "deleted", NULL);
		/* Its last run's files go with it. */
		static const char *const files[] = {"console.log",
						    "console.in",
						    "vmm.log",
						    "exit",
						    "exit.tmp",
						    "api.sock",
						    "ops.log",
						    "config.json",
						    SUP_VMM_DIR "/api.sock",
						    SUP_VMM_DIR "/ops.log",
						    SUP_VMM_DIR "/config.json",
						    SUP_VMM_DIR};
		char p[PATH_MAX + 256];
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			snprintf(p, sizeof(p), "%s/run/%s/%s", d->state_dir, name, files[i]);
			if (unlink(p) != 0 && errno == EISDIR)
				rmdir(p);
		}
		snprintf(p, sizeof(p), "%s/run/%s", d->state_dir, name);
		rmdir(p);
		static const char *const own[] = {"pid", "pid.tmp", "start.lock", "exit",
						  "exit.tmp"};
		for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
			snprintf(p, sizeof(p), "%s/sup/%s/%s", d->state_dir, name, own[i]);
			unlink(p);
		}
		snprintf(p, sizeof(p), "%s/sup/%s", d->state_dir, name);
		rmdir(p);
		snprintf(p, sizeof(p), "%s/jail/%s", d->state_dir, name);
		rmdir(p);
	}
	pthread_mutex_unlock(&d->lock);
	if (rc)
		fail(resp, rc, &err);
	else
		api_resp_no_content(resp);
}

/*
 * Talks to a VM's own API socket (outside d->lock). The VMM (owner, its user) made it in
 * a directory it may write: coved connects only to a socket of that owner, through a
 * descriptor of what it checked, never to a link the VMM planted to another socket.
 */
static int vm_api(const char *dir, uid_t owner, const char *method, const char *path,
		  const char *body, struct api_client_resp *out, struct cove_err *err)
{
	char sock[PATH_MAX + 32];
	snprintf(sock, sizeof(sock), "%s/" SUP_VMM_DIR "/api.sock", dir);
	int sfd = open(sock, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (sfd < 0)
		return cove_err_set(err, -errno, "%s: %s", sock, strerror(errno));
	struct stat st;
	if (fstat(sfd, &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_uid != owner) {
		close(sfd);
		return cove_err_set(err, -EPERM, "%s is not a socket of the VMM's user %u", sock,
				    (unsigned)owner);
	}
	snprintf(sock, sizeof(sock), "/proc/self/fd/%d", sfd);
	struct api_client_resp r = {0};
	int rc =
	    api_client_request(sock, method, path, body, body ? strlen(body) : 0, 5000, &r, err);
	close(sfd);
	if (rc)
		return rc;
	if (r.status >= 300) {
		json_object *o = json_tokener_parse(r.body);
		json_object *m = NULL;
		rc = cove_err_set(err, -EIO, "the VMM refused: %s",
				  o && json_object_object_get_ex(o, "fault_message", &m)
				      ? json_object_get_string(m)
				      : r.body);
		json_object_put(o);
		api_client_resp_free(&r);
		return rc;
	}
	if (out)
		*out = r;
	else
		api_client_resp_free(&r);
	return 0;
}

/* Waits (dropping the lock) until the VM has no process, up to ms. */
static bool wait_gone(struct coved *d, const char *name, int ms)
{
	for (int t = 0; t < ms; t += 50) {
		if (!sup_find(d, name))
			return true;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&d->cond, &d->lock, &ts);
	}
	return !sup_find(d, name);
}

static void vm_action(struct api_request *req, struct api_response *resp)
{
	struct coved *d = D(req);
	const char *name = req->params[0], *action = req->params[1];
	if (!check_name(name, resp))
		return;
	static const char *const known[] = {"start", "shutdown", "stop", "reboot",
					    "pause", "resume",	 NULL};
	bool ok = false;
	for (const char *const *k = known; *k; k++)
		ok |= strcmp(*k, action) == 0;
	if (!ok) {
		api_resp_error(
		    resp, 404,
		    "unknown action '%.32s' (start, shutdown, stop, reboot, pause, resume)",
		    action);
		return;
	}
	if (req->body_len && strspn(req->body, " \t\r\n{}") != req->body_len) {
		api_resp_error(resp, 400, "actions take no body (or {})");
		return;
	}
	struct cove_err err = {0};
	int rc = 0;
	char *json = NULL;
	pthread_mutex_lock(&d->lock);
	if (store_vm_get(d->store, name, &json, &err) != 0) {
		pthread_mutex_unlock(&d->lock);
		api_resp_error(resp, 404, "no VM named '%s'", name);
		return;
	}
	struct vm_rt *rt = sup_find(d, name);
	if (strcmp(action, "start") == 0) {
		struct vmdef *def = NULL;
		if (rt)
			rc = cove_err_set(&err, -EBUSY, "VM '%s' is already running", name);
		if (!rc)
			rc = vmdef_parse(json, strlen(json), &def, &err);
		if (!rc)
			rc = sup_start(d, def, "start requested", &err);
		vmdef_free(def);
		pthread_mutex_unlock(&d->lock);
		free(json);
		if (rc)
			fail(resp, rc, &err);
		else
			api_resp_no_content(resp);
		return;
	}
	free(json);
	if (!rt) {
		pthread_mutex_unlock(&d->lock);
		api_resp_error(resp, 409, "VM '%s' is not running", name);
		return;
	}
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", rt->dir);
	uid_t owner = rt->uid == (uid_t)-1 ? geteuid() : rt->uid;
	bool has_api = rt->has_api;
	pid_t vmm = rt->vmm_pid;
	if (strcmp(action, "stop") == 0) {
		/* Recorded first: a coved killed here reports "destroyed" when it is back. */
		rt->destroy_requested = true;
		sup_persist(d, rt);
		kill(vmm, SIGKILL);
		sup_crash_point("destroy");
		bool gone = wait_gone(d, name, 5000);
		pthread_mutex_unlock(&d->lock);
		if (gone)
			api_resp_no_content(resp);
		else
			api_resp_error(resp, 504, "VM '%s' did not stop within 5 s", name);
		return;
	}
	if (strcmp(action, "shutdown") == 0 || strcmp(action, "reboot") == 0) {
		bool reboot = action[0] == 'r';
		bool paused = strcmp(rt->state, "paused") == 0;
		rt->stop_requested = true;
		rt->reboot_requested = reboot;
		sup_persist(d, rt);
		pthread_mutex_unlock(&d->lock);
		/* The ACPI power button through the VM's socket; without one, SIGTERM asks
		 * the VMM to do the same. */
		if (has_api && reboot)
			rc = vm_api(dir, owner, "PUT", "/actions",
				    "{\"action_type\":\"SendCtrlAltDel\"}", NULL, &err);
		else if (has_api)
			rc = vm_api(dir, owner, "PUT", "/shutdown", NULL, NULL, &err);
		else if (kill(vmm, SIGTERM) != 0)
			rc = -errno;
		else if (paused)
			kill(vmm,
			     SIGCONT); /* a stopped process acts on SIGTERM only once resumed */
		if (rc)
			fail(resp, rc, &err);
		else
			api_resp_text(resp, 202, "");
		return;
	}
	bool pause = strcmp(action, "pause") == 0;
	if (strcmp(rt->state, pause ? "paused" : "running") == 0) {
		pthread_mutex_unlock(&d->lock);
		api_resp_error(resp, 409, "VM '%s' is already %s", name, rt->state);
		return;
	}
	pthread_mutex_unlock(&d->lock);
	if (has_api)
		rc = vm_api(dir, owner, "PATCH", "/vm",
			    pause ? "{\"state\":\"Paused\"}" : "{\"state\":\"Resumed\"}", NULL,
			    &err);
	else
		rc = kill(vmm, pause ? SIGSTOP : SIGCONT) == 0 ? 0 : -errno;
	if (rc) {
		fail(resp, rc, &err);
		return;
	}
	pthread_mutex_lock(&d->lock);
	rt = sup_find(d, name);
	if (rt) {
		snprintf(rt->state, sizeof(rt->state), "%s", pause ? "paused" : "running");
		sup_persist(d, rt);
		coved_event(d, name, pause ? "paused" : "resumed", "requested", NULL);
	}
	pthread_mutex_unlock(&d->lock);
	api_resp_no_content(resp);
}

/* utime+stime of a process in ns, and its resident set in KiB. */
static void proc_usage(pid_t pid, uint64_t *cpu_ns, uint64_t *rss_kib)
{
	char path[64], buf[1024];
	*cpu_ns = *rss_kib = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (f) {
		if (fgets(buf, sizeof(buf), f)) {
			char *p = strrchr(buf, ')');
			unsigned long ut = 0, st = 0;
			if (p &&
			    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
				   &ut, &st) == 2)
				*cpu_ns = (uint64_t)(ut + st) *
					  (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
		}
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (f) {
		while (fgets(buf, sizeof(buf), f))
			if (sscanf(buf, "VmRSS: %lu", (unsigned long *)rss_kib) == 1)
				break;
		fclose(f);
	}
}

/* A counter from /sys/class/net/DEV/statistics, 0 when unreadable. */
static uint64_t tap_counter(const char *dev, const char *stat)
{
	char p[128], buf[32] = "";
	snprintf(p, sizeof(p), "/sys/class/net/%s/statistics/%s", dev, stat);
	FILE *f = fopen(p, "re");
	if (!f)
		return 0;
	uint64_t v = fgets(buf, sizeof(buf), f) ? strtoull(buf, NULL, 10) : 0;
	fclose(f);
	return v;
}

static void add_u64(json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static void vm_stats(struct api_request *req, struct api_response *resp)
{
	struct coved *d = D(req);
	const char *name = req->params[0];
	if (!check_name(name, resp))
		return;
	struct cove_err err = {0};
	char *json = NULL;
	pthread_mutex_lock(&d->lock);
	int rc = store_vm_get(d->store, name, &json, &err);
	struct vm_rt *rt = rc ? NULL : sup_find(d, name);
	char dir[PATH_MAX] = "", state[16] = "shut off";
	pid_t vmm = 0;
	uid_t owner = geteuid();
	bool has_api = false;
	if (rt) {
		snprintf(dir, sizeof(dir), "%s", rt->dir);
		if (rt->uid != (uid_t)-1)
			owner = rt->uid;
		snprintf(state, sizeof(state), "%s", rt->state);
		vmm = rt->vmm_pid;
		has_api = rt->has_api;
	}
	pthread_mutex_unlock(&d->lock);
	if (rc) {
		fail(resp, rc, &err);
		return;
	}
	struct vmdef *def = NULL;
	if (vmdef_parse(json, strlen(json), &def, &err) != 0) {
		free(json);
		fail(resp, -EIO, &err);
		return;
	}
	free(json);
	/* libvirt's virDomainGetStats names. */
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	/* VIR_DOMAIN_RUNNING 1, PAUSED 3, SHUTOFF 5 */
	int st = strcmp(state, "running") == 0 ? 1 : strcmp(state, "paused") == 0 ? 3 : 5;
	json_object_object_add(o, "state.state", json_object_new_int(st));
	uint64_t cpu_ns = 0, rss = 0;
	if (vmm)
		proc_usage(vmm, &cpu_ns, &rss);
	add_u64(o, "cpu.time", cpu_ns);
	/* Until the VMM says otherwise (below): the defined memory, as libvirt reports a
	 * domain that is not running. */
	add_u64(o, "balloon.current", def->memory_mib * 1024);
	add_u64(o, "balloon.maximum", def->memory_mib * 1024);
	add_u64(o, "balloon.rss", rss);
	add_u64(o, "vcpu.current", def->cpus);
	add_u64(o, "vcpu.maximum", def->cpus);
	struct api_client_resp r = {0};
	json_object *vs = NULL;
	if (has_api && vm_api(dir, owner, "GET", "/stats", NULL, &r, &err) == 0) {
		vs = json_tokener_parse(r.body);
		api_client_resp_free(&r);
	}
	json_object *blk = NULL, *net = NULL, *v;
	if (vs) {
		json_object_object_get_ex(vs, "block", &blk);
		json_object_object_get_ex(vs, "net", &net);
		/* The VMM's figures: the guest's memory less what its balloon holds. */
		if (json_object_object_get_ex(vs, "balloon_current_kib", &v) &&
		    json_object_get_int64(v) > 0)
			add_u64(o, "balloon.current", (uint64_t)json_object_get_int64(v));
		if (json_object_object_get_ex(vs, "balloon_maximum_kib", &v) &&
		    json_object_get_int64(v) > 0)
			add_u64(o, "balloon.maximum", (uint64_t)json_object_get_int64(v));
	}
	add_u64(o, "block.count", def->ndisks);
	for (unsigned i = 0; i < def->ndisks; i++) {
		char k[64];
		json_object *b = blk ? json_object_array_get_idx(blk, i) : NULL;
		static const char *const f[][2] = {{"rd.reqs", "rd_reqs"},
						   {"rd.bytes", "rd_bytes"},
						   {"wr.reqs", "wr_reqs"},
						   {"wr.bytes", "wr_bytes"},
						   {"fl.reqs", "fl_reqs"}};
		snprintf(k, sizeof(k), "block.%u.name", i);
		char dev[16];
		snprintf(dev, sizeof(dev), "vd%c", 'a' + i);
		json_object_object_add(o, k, json_object_new_string(dev));
		snprintf(k, sizeof(k), "block.%u.path", i);
		json_object_object_add(o, k, json_object_new_string(def->disks[i].path));
		for (size_t j = 0; j < 5; j++) {
			snprintf(k, sizeof(k), "block.%u.%s", i, f[j][0]);
			uint64_t val = 0;
			if (b && json_object_object_get_ex(b, f[j][1], &v))
				val = (uint64_t)json_object_get_int64(v);
			add_u64(o, k, val);
		}
	}
	add_u64(o, "net.count", def->nnics);
	for (unsigned i = 0; i < def->nnics; i++) {
		char k[64];
		json_object *n = net ? json_object_array_get_idx(net, i) : NULL;
		static const char *const f[][2] = {
		    {"rx.bytes", "rx_bytes"}, {"rx.pkts", "rx_pkts"}, {"rx.drop", "rx_drop"},
		    {"tx.bytes", "tx_bytes"}, {"tx.pkts", "tx_pkts"}, {"tx.drop", "tx_drop"}};
		/* The host's name for the NIC: its tap (made by coved for network NICs). */
		char tap[16];
		if (def->nics[i].tap[0])
			snprintf(tap, sizeof(tap), "%s", def->nics[i].tap);
		else
			net_tap_name(name, i, tap);
		snprintf(k, sizeof(k), "net.%u.name", i);
		json_object_object_add(o, k, json_object_new_string(tap));
		/* Without the VMM's counters, the tap's own, seen from the guest (the tap's
		 * tx is the guest's rx), as libvirt reports them. */
		static const char *const tapstat[] = {"tx_bytes", "tx_packets", "tx_dropped",
						      "rx_bytes", "rx_packets", "rx_dropped"};
		for (size_t j = 0; j < 6; j++) {
			snprintf(k, sizeof(k), "net.%u.%s", i, f[j][0]);
			uint64_t val = 0;
			if (n && json_object_object_get_ex(n, f[j][1], &v))
				val = (uint64_t)json_object_get_int64(v);
			else if (vmm)
				val = tap_counter(tap, tapstat[j]);
			add_u64(o, k, val);
		}
	}
	json_object_put(vs);
	vmdef_free(def);
	api_resp_json(resp, 200, o);
}

/* ---- events ---- */

static json_object *event_json(const struct store_event *ev)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(ev->id));
	json_object_object_add(o, "time_ms", json_object_new_int64(ev->time_ms));
	json_object_object_add(o, "vm", json_object_new_string(ev->vm));
	json_object_object_add(o, "type", json_object_new_string(ev->type));
	json_object_object_add(o, "reason", json_object_new_string(ev->reason));
	if (ev->detail)
		json_object_object_add(o, "detail", json_object_new_string(ev->detail));
	return o;
}

static int collect_event(void *ctx, const struct store_event *ev)
{
	json_object_array_add(ctx, event_json(ev));
	return 0;
}

struct event_stream {
	struct coved *d;
	int64_t after;
	char vm[VMDEF_NAME_MAX];
	bool has_vm;
	int64_t deadline_ms; /* 0: none */
	char *pending;
	size_t plen, poff;
};

static int stream_event(void *ctx, const struct store_event *ev)
{
	struct event_stream *s = ctx;
	json_object *o = event_json(ev);
	size_t len;
	const char *t = api_json_text(o, &len);
	char *nb = realloc(s->pending, s->plen + len + 2);
	if (nb) {
		s->pending = nb;
		memcpy(s->pending + s->plen, t, len);
		s->plen += len;
		s->pending[s->plen++] = '\n';
	}
	s->after = ev->id;
	json_object_put(o);
	return 0;
}

/* Blocks until there are events to send, a heartbeat is due, or the stream ends. */
static ssize_t events_read(void *ctx, char *buf, size_t cap)
{
	struct event_stream *s = ctx;
	struct coved *d = s->d;
	int64_t idle_until = clock_mono_ms() + (d->heartbeat_ms ? d->heartbeat_ms : 10000);
	while (s->poff == s->plen) {
		s->plen = s->poff = 0;
		if (d->stopping || (s->deadline_ms && clock_mono_ms() >= s->deadline_ms))
			return -1;
		pthread_mutex_lock(&d->lock);
		store_event_foreach(d->store, s->after, s->has_vm ? s->vm : NULL, 100, stream_event,
				    s);
		if (s->plen == 0) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 250 * 1000 * 1000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&d->cond, &d->lock, &ts);
		}
		pthread_mutex_unlock(&d->lock);
		if (s->plen == 0 && clock_mono_ms() >= idle_until) {
			buf[0] = '\n'; /* heartbeat: finds clients that went away */
			return 1;
		}
	}
	size_t n = s->plen - s->poff < cap ? s->plen - s->poff : cap;
	memcpy(buf, s->pending + s->poff, n);
	s->poff += n;
	return (ssize_t)n;
}

static void events_free(void *ctx)
{
	struct event_stream *s = ctx;
	free(s->pending);
	free(s);
}

static bool parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (!s || !*s)
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static void get_events(struct api_request *req, struct api_response *resp)
{
	struct coved *d = D(req);
	const char *since = api_request_query(req, "since");
	const char *vm = api_request_query(req, "vm");
	const char *follow = api_request_query(req, "follow");
	const char *timeout = api_request_query(req, "timeout");
	int64_t after = 0, tmo = 0;
	if (since && !parse_i64(since, 0, INT64_MAX, &after)) {
		api_resp_error(resp, 400, "'since' must be an event id (a whole number >= 0)");
		return;
	}
	if (timeout && !parse_i64(timeout, 1, 86400, &tmo)) {
		api_resp_error(resp, 400, "'timeout' must be 1..86400 seconds");
		return;
	}
	if (vm && !check_name(vm, resp))
		return;
	bool fol = follow && (strcmp(follow, "1") == 0 || strcmp(follow, "true") == 0);
	if (follow && !fol && strcmp(follow, "0") && strcmp(follow, "false")) {
		api_resp_error(resp, 400, "'follow' must be 0 or 1");
		return;
	}
	if (!fol) {
		json_object *arr = json_object_new_array();
		pthread_mutex_lock(&d->lock);
		store_event_foreach(d->store, after, vm, 1000, collect_event, arr);
		pthread_mutex_unlock(&d->lock);
		api_resp_json(resp, 200, arr);
		return;
	}
	struct event_stream *s = calloc(1, sizeof(*s));
	if (!s) {
		api_resp_error(resp, 500, "out of memory");
		return;
	}
	s->d = d;
	s->after = after;
	if (!since) { /* only new events */
		pthread_mutex_lock(&d->lock);
		s->after = store_event_last_id(d->store);
		pthread_mutex_unlock(&d->lock);
	}
	if (vm) {
		s->has_vm = true;
		snprintf(s->vm, sizeof(s->vm), "%s", vm);
	}
	s->deadline_ms = tmo ? clock_mono_ms() + tmo * 1000 : 0;
	resp->status = 200;
	resp->content_type = "application/x-ndjson";
	resp->stream = events_read;
	resp->stream_free = events_free;
	resp->stream_ctx = s;
}

/* ---- storage: a directory pool ---- */

static bool vol_name_ok(const char *n)
{
	return vmdef_name_valid(n);
}

static void list_volumes(struct api_request *req, struct api_response *resp)
{
	struct coved *d = D(req);
	json_object *arr = json_object_new_array();
	DIR *dir = opendir(d->pool_dir);
	if (dir) {
		struct dirent *e;
		while ((e = readdir(dir))) {
			if (e->d_name[0] == '.')
				continue;
			char p[PATH_MAX + 300];
			struct stat st;
			snprintf(p, sizeof(p), "%s/%s", d->pool_dir, e->d_name);
			if (stat(p, &st) != 0 || !S_ISREG(st.st_mode))
				continue;
			json_object *o = json_object_new_object();
			json_object_object_add(o, "name", json_object_new_string(e->d_name));
			json_object_object_add(o, "path", json_object_new_string(p));
			add_u64(o, "capacity", (uint64_t)st.st_size);
			add_u64(o, "allocation", (uint64_t)st.st_blocks * 512);
			char magic[4] = {0};
			int fd = open(p, O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				(void)!read(fd, magic, 4);
				close(fd);
			}
			json_object_object_add(
			    o, "format",
			    json_object_new_string(memcmp(magic, "QFI\xfb", 4) == 0 ? "qcow2"
										    : "raw"));
			json_object_array_add(arr, o);
		}
		closedir(dir);
	}
	api_resp_json(resp, 200, arr);
}

static void create_volume(struct api_request *req, struct api_response *resp)
{
	struct coved *d = D(req);
	static const char *const fields[] = {"name", "size", "format", NULL};
	json_object *o = NULL;
	struct cove_err err = {0};
	const char *name, *format = "raw";
	uint64_t size = 0;
	int rc = api_json_parse_object(req->body, req->body_len, &o, &err);
	if (!rc)
		rc = api_json_check_fields(o, "volume", fields, &err);
	if (!rc)
		rc = api_json_get_str(o, "name", true, VMDEF_NAME_MAX - 1, &name, &err);
	if (!rc && !vol_name_ok(name))
		rc = cove_err_set(&err, -EINVAL, "invalid volume name '%s'", name);
	if (!rc)
		rc = api_json_get_u64(o, "size", true, 512, 1ull << 50, &size, &err);
	if (!rc && size % 512)
		rc = cove_err_set(&err, -EINVAL, "field 'size' must be a multiple of 512");
	if (!rc)
		rc = api_json_opt(api_json_get_str(o, "format", false, 16, &format, &err));
	if (!rc && strcmp(format, "raw") && strcmp(format, "qcow2"))
		rc = cove_err_set(&err, -EINVAL, "field 'format' must be \"raw\" or \"qcow2\"");
	if (rc) {
		json_object_put(o);
		api_resp_error(resp, 400, "%s", err.msg);
		return;
	}
	char p[PATH_MAX + 256];
	snprintf(p, sizeof(p), "%s/%s", d->pool_dir, name);
#ifdef COVED_HAVE_BLOCK
	/* Images are made by the block layer (qcow2 metadata, atomic rename into place). */
	struct blk_create_opts bo = {.size = size};
	blk_format_parse(format, &bo.format);
	rc = blk_create(p, &bo, false, &err);
	/* A VM's disk is its own: private to root, given to a confined VM's user while
	 * it runs. (The block layer makes images 0644, as qemu-img does.) */
	if (!rc && chmod(p, 0600) != 0)
		rc = cove_err_set(&err, -errno, "chmod %s: %s", p, strerror(errno));
	if (rc) {
		json_object_put(o);
		if (rc == -EEXIST)
			api_resp_error(resp, 409, "a volume named '%s' already exists", name);
		else
			api_resp_error(resp, api_status_from_errno(rc), "%s", err.msg);
		return;
	}
#else
	if (strcmp(format, "qcow2") == 0) {
		json_object_put(o);
		api_resp_error(resp, 501,
			       "qcow2 volumes need the block layer, which this coved "
			       "was built without; use format \"raw\"");
		return;
	}
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		json_object_put(o);
		if (rc == -EEXIST)
			api_resp_error(resp, 409, "a volume named '%s' already exists", name);
		else
			api_resp_error(resp, 500, "creating %s: %s", p, strerror(-rc));
		return;
	}
	rc = ftruncate(fd, (off_t)size) == 0 ? 0 : -errno;
	close(fd);
	if (rc) {
		unlink(p);
		json_object_put(o);
		api_resp_error(resp, 500, "sizing %s: %s", p, strerror(-rc));
		return;
	}
#endif
	json_object *r = json_object_new_object();
	json_object_object_add(r, "name", json_object_new_string(name));
	json_object_object_add(r, "path", json_object_new_string(p));
	json_object_object_add(r, "format", json_object_new_string(format));
	add_u64(r, "capacity", size);
	json_object_put(o);
	api_resp_json(resp, 201, r);
}

static void delete_volume(struct api_request *req, struct api_response *resp)
{
	struct coved *d = D(req);
	const char *name = req->params[0];
	if (!vol_name_ok(name)) {
		api_resp_error(resp, 400, "invalid volume name '%.64s'", name);
		return;
	}
	char p[PATH_MAX + 256];
	snprintf(p, sizeof(p), "%s/%s", d->pool_dir, name);
	if (unlink(p) != 0) {
		if (errno == ENOENT)
			api_resp_error(resp, 404, "no volume named '%s'", name);
		else
			api_resp_error(resp, 500, "deleting %s: %s", p, strerror(errno));
		return;
	}
	api_resp_no_content(resp);
}

/* ---- networks ---- */

static void list_networks(struct api_request *req, struct api_response *resp)
{
	json_object *arr = json_object_new_array();
	json_object_array_add(arr, net_describe(D(req)->state_dir, "default"));
	api_resp_json(resp, 200, arr);
}

static void get_network(struct api_request *req, struct api_response *resp)
{
	json_object *o = net_describe(D(req)->state_dir, req->params[0]);
	if (!o) {
		api_resp_error(resp, 404, "no network named '%.64s'", req->params[0]);
		return;
	}
	api_resp_json(resp, 200, o);
}

static void get_version(struct api_request *req, struct api_response *resp)
{
	(void)req;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_string(COVE_VERSION));
	json_object_object_add(o, "api", json_object_new_string("v1"));
	api_resp_json(resp, 200, o);
}

const struct api_route coved_routes[] = {
    {"GET", "/v1/version", get_version, 0},
    {"GET", "/v1/host", get_host, 0},
    {"GET", "/v1/vms", list_vms, 0},
    {"POST", "/v1/vms", create_vm, API_ROUTE_MUTATES},
    {"GET", "/v1/vms/{name}", get_vm, 0},
    {"PUT", "/v1/vms/{name}", update_vm, API_ROUTE_MUTATES},
    {"DELETE", "/v1/vms/{name}", delete_vm, API_ROUTE_MUTATES},
    {"POST", "/v1/vms/{name}/actions/{action}", vm_action, API_ROUTE_MUTATES},
    {"GET", "/v1/vms/{name}/stats", vm_stats, 0},
    {"GET", "/v1/vms/{name}/console", coved_console, API_ROUTE_MUTATES},
    {"GET", "/v1/events", get_events, 0},
    {"GET", "/v1/storage/volumes", list_volumes, 0},
    {"POST", "/v1/storage/volumes", create_volume, API_ROUTE_MUTATES},
    {"DELETE", "/v1/storage/volumes/{name}", delete_volume, API_ROUTE_MUTATES},
    {"GET", "/v1/networks", list_networks, 0},
    {"GET", "/v1/networks/{name}", get_network, 0},
};
const size_t coved_nroutes = sizeof(coved_routes) / sizeof(coved_routes[0]);
