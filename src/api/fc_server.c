/* A VM's API socket: Firecracker's routes over the HTTP plumbing, calling the VMM's ops. */
#include "api/fc_api.h"
#include "api/http.h"
#include "api/json.h"
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifndef COVE_VERSION
#define COVE_VERSION "0.1.0"
#endif

#define AFTER_START  "The requested operation is not supported after starting the microVM."
#define BEFORE_START "The requested operation is not supported before starting the microVM."

struct fc_api_server {
	pthread_mutex_t lock;
	const struct vmm_api_ops *ops;
	void *opaque;
	struct fc_vm_config cfg;
	enum fc_state state;
	struct api_server *http;
};

static struct fc_api_server *srv(struct api_request *req)
{
	return req->user;
}

/* Answers 400 with the parser's or op's message, or 204. */
static void reply(struct api_response *resp, int rc, const struct cove_err *err)
{
	if (rc)
		api_resp_error(resp, 400, "%s", err->msg[0] ? err->msg : strerror(-rc));
	else
		api_resp_no_content(resp);
}

static bool pre_boot(struct fc_api_server *s, struct api_response *resp)
{
	if (s->state == FC_STATE_NOT_STARTED)
		return true;
	api_resp_error(resp, 400, AFTER_START);
	return false;
}

static void get_root(struct api_request *req, struct api_response *resp)
{
	struct fc_api_server *s = srv(req);
	json_object *o = json_object_new_object();
	pthread_mutex_lock(&s->lock);
	json_object_object_add(o, "id", json_object_new_string("anonymous-instance"));
	json_object_object_add(o, "state", json_object_new_string(fc_state_name(s->state)));
	pthread_mutex_unlock(&s->lock);
	json_object_object_add(o, "vmm_version", json_object_new_string(COVE_VERSION));
	json_object_object_add(o, "app_name", json_object_new_string("cove"));
	api_resp_json(resp, 200, o);
}

static void get_version(struct api_request *req, struct api_response *resp)
{
	(void)req;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "firecracker_version", json_object_new_string(COVE_VERSION));
	api_resp_json(resp, 200, o);
}

static void put_boot_source(struct api_request *req, struct api_response *resp)
{
	struct fc_api_server *s = srv(req);
	struct cove_err err = {0};
	struct fc_boot_source b;
	int rc = fc_parse_boot_source(req->body, req->body_len, &b, &err);
	pthread_mutex_lock(&s->lock);
	if (pre_boot(s, resp)) {
		if (!rc)
			s->cfg.boot = b;
		reply(resp, rc, &err);
	}
	pthread_mutex_unlock(&s->lock);
}

static void get_machine(struct api_request *req, struct api_response *resp)
{
	struct fc_api_server *s = srv(req);
	pthread_mutex_lock(&s->lock);
	json_object *full = fc_config_to_json(&s->cfg);
	pthread_mutex_unlock(&s->lock);
	json_object *m = NULL;
	json_object_object_get_ex(full, "machine-config", &m);
	json_object_get(m);
	json_object_put(full);
	api_resp_json(resp, 200, m);
}

static void machine(struct api_request *req, struct api_response *resp, bool partial)
{
	struct fc_api_server *s = srv(req);
	struct cove_err err = {0};
	struct fc_machine_config m;
	pthread_mutex_lock(&s->lock);
	if (pre_boot(s, resp)) {
		int rc = fc_parse_machine_config(req->body, req->body_len, partial, &s->cfg.machine,
						 &m, &err);
		if (!rc)
			s->cfg.machine = m;
		reply(resp, rc, &err);
	}
	pthread_mutex_unlock(&s->lock);
}

static void put_machine(struct api_request *req, struct api_response *resp)
{
	machine(req, resp, false);
}

static void patch_machine(struct api_request *req, struct api_response *resp)
{
	machine(req, resp, true);
}

static void put_drive(struct api_request *req, struct api_response *resp)
{
	struct fc_api_server *s = srv(req);
	struct cove_err err = {0};
	struct fc_drive d;
	int rc = fc_parse_drive(req->params[0], req->body, req->body_len, &d, &err);
	pthread_mutex_lock(&s->lock);
	if (pre_boot(s, resp)) {
		if (!rc)
			rc = fc_config_put_drive(&s->cfg, &d, &err);
		reply(resp, rc, &err);
	}
	pthread_mutex_unlock(&s->lock);
}

/* A bucket's new setting: absent keeps the old one; one that limits nothing (no size or
 * refill time) clears it. */
static void merge_bucket(struct fc_token_bucket *cur, const struct fc_token_bucket *u)
{
	if (u->set)
		*cur = fc_bucket_rate(u) ? *u : (struct fc_token_bucket){0};
}

/* Keeps what GET /vm/config reports in step with a drive's or NIC's new limiter. */
static void merge_limiter(struct fc_rate_limiter *cur, const struct fc_rate_limiter *u)
{
	if (!u->set)
		return;
	merge_bucket(&cur->bandwidth, &u->bandwidth);
	merge_bucket(&cur->ops, &u->ops);
	cur->set = cur->bandwidth.set || cur->ops.set;
}

/* Firecracker's post-boot PATCH of a drive: its rate limits change at once. */
static void patch_drive(struct api_request *req, struct api_response *resp)
{
	struct fc_api_server *s = srv(req);
	struct cove_err err = {0};
	struct fc_drive_update u;
	int rc = fc_parse_drive_update(req->params[0], req->body, req->body_len, &u, &err);
	if (rc) {
		reply(resp, rc, &err);
		return;
	}
	pthread_mutex_lock(&s->lock);
	if (s->state == FC_STATE_NOT_STARTED) {
		api_resp_error(resp, 400, BEFORE_START);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	int index = -1;
	for (unsigned i = 0; i < s->cfg.ndrives; i++)
		if (!strcmp(s->cfg.drives[i].drive_id, u.drive_id))
			index = (int)i;
	if (u.has_path && (index < 0 || strcmp(u.path_on_host, s->cfg.drives[index].path_on_host)))
		rc = cove_err_set(&err, -ENOTSUP,
				  "drive '%s': changing path_on_host of a running drive is not "
				  "supported by Cove",
				  u.drive_id);
	else if (!s->ops->drive_update)
		rc = cove_err_set(&err, -ENOTSUP, "updating a drive is not supported by this VMM");
	else
		rc = s->ops->drive_update(s->opaque, index, &u, &err);
	if (!rc && index >= 0)
		merge_limiter(&s->cfg.drives[index].rate_limiter, &u.rate_limiter);
	reply(resp, rc, &err);
	pthread_mutex_unlock(&s->lock);
}

static void put_net(struct api_request *req, struct api_response *resp)
{
	struct fc_api_server *s = srv(req);
	struct cove_err err = {0};
	struct fc_net n;
	int rc = fc_parse_net(req->params[0], req->body, req->body_len, &n, &err);
	pthread_mutex_lock(&s->lock);
	if (pre_boot(s, resp)) {
		if (!rc)
			rc = fc_config_put_net(&s->cfg, &n, &err);
		reply(resp, rc, &err);
	}
	pthread_mutex_unlock(&s->lock);
}

/* PUT of a singleton device section: parse with fn into a temporary, store under lock. */
#define PUT_SECTION(name, type, field, parser)                               \
	static void name(struct api_request *req, struct api_response *resp) \
	{                                                                    \
		struct fc_api_server *s = srv(req);                          \
		struct cove_err err = {0};                                   \
		type v;                                                      \
		int rc = parser(req->body, req->body_len, &v, &err);         \
		pthread_mutex_lock(&s->lock);                                \
		if (pre_boot(s, resp)) {                                     \
			if (!rc)                                             \
				s->cfg.field = v;                            \
			reply(resp, rc, &err);                               \
		}                                                            \
		pthread_mutex_unlock(&s->lock);                              \
	}

PUT_SECTION(put_vsock, struct fc_vsock, vsock, fc_parse_vsock)
PUT_SECTION(put_balloon, struct fc_balloon, balloon, fc_parse_balloon)

/* Firecracker lets the logger and metrics be set once, before boot. */
PUT_SECTION(put_logger, struct fc_logger, logger, fc_parse_logger)
PUT_SECTION(put_metrics, struct fc_metrics, metrics, fc_parse_metrics)

static void get_balloon(struct api_request *req, struct api_response *resp)
{
	struct fc_api_server *s = srv(req);
	pthread_mutex_lock(&s->lock);
	if (!s->cfg.balloon.set) {
		pthread_mutex_unlock(&s->lock);
		api_resp_error(resp, 400, "No balloon device configured.");
		return;
	}
	json_object *full = fc_config_to_json(&s->cfg);
	pthread_mutex_unlock(&s->lock);
	json_object *b = NULL;
	json_object_object_get_ex(full, "balloon", &b);
	json_object_get(b);
	json_object_put(full);
	api_resp_json(resp, 200, b);
}

/* Firecracker changes the balloon only after boot (PUT /balloon configures it before). */
static bool balloon_live(struct fc_api_server *s, struct api_response *resp)
{
	if (s->state == FC_STATE_NOT_STARTED) {
		api_resp_error(resp, 400, BEFORE_START);
		return false;
	}
	if (!s->cfg.balloon.set) {
		api_resp_error(resp, 400, "No balloon device configured.");
		return false;
	}
	return true;
}

static void patch_balloon(struct api_request *req, struct api_response *resp)
{
	struct fc_api_server *s = srv(req);
	struct cove_err err = {0};
	uint32_t amount;
	int rc = fc_parse_balloon_update(req->body, req->body_len, &amount, &err);
	pthread_mutex_lock(&s->lock);
	if (rc) {
		reply(resp, rc, &err);
	} else if (balloon_live(s, resp)) {
		if (amount > s->cfg.machine.mem_size_mib)
			rc = cove_err_set(
			    &err, -EINVAL,
			    "Amount of pages requested is too large: %u MiB, the guest "
			    "has %u MiB.",
			    amount, s->cfg.machine.mem_size_mib);
		else if (s->ops->balloon_set)
			rc = s->ops->balloon_set(s->opaque, amount, &err);
		else
			rc = cove_err_set(&err, -ENOTSUP, "balloon is not supported by this VMM");
		if (!rc)
			s->cfg.balloon.amount_mib = amount;
		reply(resp, rc, &err);
	}
	pthread_mutex_unlock(&s->lock);
}

static void get_balloon_stats(struct api_request *req, struct api_response *resp)
{
	static const char *const names[FC_BALLOON_NSTATS] = {
	    "swap_in",		"swap_out",    "major_faults",
	    "minor_faults",	"free_memory", "total_memory",
	    "available_memory", "disk_caches", "hugetlb_allocations",
	    "hugetlb_failures"};
	struct fc_api_server *s = srv(req);
	struct cove_err err = {0};
	struct fc_balloon_stats st = {0};
	pthread_mutex_lock(&s->lock);
	if (!balloon_live(s, resp)) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	int rc;
	if (!s->cfg.balloon.stats_polling_interval_s)
		rc = cove_err_set(&err, -EINVAL, "Statistics are not enabled.");
	else if (s->ops->balloon_stats)
		rc = s->ops->balloon_stats(s->opaque, &st, &err);
	else
		rc = cove_err_set(&err, -ENOTSUP, "balloon is not supported by this VMM");
	pthread_mutex_unlock(&s->lock);
	if (rc) {
		reply(resp, rc, &err);
		return;
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "target_pages", json_object_new_int64(st.target_pages));
	json_object_object_add(o, "actual_pages", json_object_new_int64(st.actual_pages));
	json_object_object_add(o, "target_mib", json_object_new_int64(st.target_pages / 256));
	json_object_object_add(o, "actual_mib", json_object_new_int64(st.actual_pages / 256));
	for (unsigned i = 0; i < FC_BALLOON_NSTATS; i++)
		if (st.seen & (1u << i))
			json_object_object_add(o, names[i], json_object_new_uint64(st.value[i]));
	api_resp_json(resp, 200, o);
}

static void patch_balloon_stats(struct api_request *req, struct api_response *resp)
{
	struct fc_api_server *s = srv(req);
	struct cove_err err = {0};
	uint32_t interval;
	int rc = fc_parse_balloon_stats_update(req->body, req->body_len, &interval, &err);
	pthread_mutex_lock(&s->lock);
	if (rc) {
		reply(resp, rc, &err);
	} else if (balloon_live(s, resp)) {
		if (!s->cfg.balloon.stats_polling_interval_s != !interval)
			rc = cove_err_set(&err, -EINVAL,
					  "Cannot enable or disable statistics after boot.");
		else if (s->ops->balloon_set_interval)
			rc = s->ops->balloon_set_interval(s->opaque, interval, &err);
		else
			rc = cove_err_set(&err, -ENOTSUP, "balloon is not supported by this VMM");
		if (!rc)
			s->cfg.balloon.stats_polling_interval_s = interval;
		reply(resp, rc, &err);
	}
	pthread_mutex_unlock(&s->lock);
}

static void patch_net(struct api_request *req, struct api_response *resp)
{
	struct fc_api_server *s = srv(req);
	struct cove_err err = {0};
	struct fc_net_update u = {0};
	int rc = fc_parse_net_update(req->params[0], req->body, req->body_len, &u, &err);
	if (rc) { /* u may be half filled: nothing of it is read */
		reply(resp, rc, &err);
		return;
	}
	pthread_mutex_lock(&s->lock);
	unsigned i = 0;
	while (i < s->cfg.nnets && strcmp(s->cfg.nets[i].iface_id, u.iface_id))
		i++;
	if (s->state == FC_STATE_NOT_STARTED) {
		api_resp_error(resp, 400, BEFORE_START);
	} else if (i == s->cfg.nnets) {
		api_resp_error(resp, 400, "No network interface with id '%s'.", u.iface_id);
	} else {
		if (s->ops->net_update)
			rc = s->ops->net_update(s->opaque, i, &u, &err);
		else
			rc = cove_err_set(
			    &err, -ENOTSUP,
			    "updating a network interface is not supported by this VMM");
		if (!rc) {
			merge_limiter(&s->cfg.nets[i].rx_rate_limiter, &u.rx_rate_limiter);
			merge_limiter(&s->cfg.nets[i].tx_rate_limiter, &u.tx_rate_limiter);
		}
		reply(resp, rc, &err);
	}
	pthread_mutex_unlock(&s->lock);
}

/* Calls an optional op; a missing one is a 400 like Firecracker's unsupported actions. */
static int call(struct fc_api_server *s, int (*op)(void *, struct cove_err *), const char *what,
		struct cove_err *err)
{
	if (!op)
		return cove_err_set(err, -ENOTSUP, "%s is not supported by this VMM", what);
	return op(s->opaque, err);
}

static void put_actions(struct api_request *req, struct api_response *resp)
{
	struct fc_api_server *s = srv(req);
	struct cove_err err = {0};
	enum fc_action a;
	int rc = fc_parse_action(req->body, req->body_len, &a, &err);
	if (rc) {
		reply(resp, rc, &err);
		return;
	}
	pthread_mutex_lock(&s->lock);
	switch (a) {
	case FC_ACTION_INSTANCE_START:
		if (!pre_boot(s, resp))
			break;
		if (!s->cfg.boot.set) {
			api_resp_error(resp, 400,
				       "Cannot start microvm without kernel configuration.");
			break;
		}
		if (!s->ops->start)
			rc = cove_err_set(&err, -ENOTSUP, "InstanceStart is not supported");
		else
			rc = s->ops->start(s->opaque, &s->cfg, &err);
		if (!rc)
			s->state = FC_STATE_RUNNING;
		reply(resp, rc, &err);
		break;
	case FC_ACTION_SEND_CTRL_ALT_DEL:
		if (s->state == FC_STATE_NOT_STARTED) {
			api_resp_error(resp, 400, BEFORE_START);
			break;
		}
		reply(resp, call(s, s->ops->send_ctrl_alt_del, "SendCtrlAltDel", &err), &err);
		break;
	case FC_ACTION_FLUSH_METRICS:
		if (!s->cfg.metrics.set) {
			api_resp_error(resp, 400, "The metrics system is not initialized.");
			break;
		}
		rc = s->ops->flush_metrics ? s->ops->flush_metrics(s->opaque, &err) : 0;
		reply(resp, rc, &err);
		break;
	}
	pthread_mutex_unlock(&s->lock);
}

static void patch_vm(struct api_request *req, struct api_response *resp)
{
	struct fc_api_server *s = srv(req);
	struct cove_err err = {0};
	bool pause;
	int rc = fc_parse_vm_state(req->body, req->body_len, &pause, &err);
	if (rc) {
		reply(resp, rc, &err);
		return;
	}
	pthread_mutex_lock(&s->lock);
	if (s->state == FC_STATE_NOT_STARTED || s->state == FC_STATE_STOPPED) {
		api_resp_error(resp, 400, BEFORE_START);
	} else {
		rc = call(s, pause ? s->ops->pause : s->ops->resume, pause ? "pause" : "resume",
			  &err);
		if (!rc)
			s->state = pause ? FC_STATE_PAUSED : FC_STATE_RUNNING;
		reply(resp, rc, &err);
	}
	pthread_mutex_unlock(&s->lock);
}

static void get_vm_config(struct api_request *req, struct api_response *resp)
{
	struct fc_api_server *s = srv(req);
	pthread_mutex_lock(&s->lock);
	json_object *o = fc_config_to_json(&s->cfg);
	pthread_mutex_unlock(&s->lock);
	api_resp_json(resp, 200, o);
}

static void get_stats(struct api_request *req, struct api_response *resp)
{
	struct fc_api_server *s = srv(req);
	struct cove_err err = {0};
	struct fc_vm_stats *st = calloc(1, sizeof(*st));
	if (!st) {
		api_resp_error(resp, 500, "out of memory");
		return;
	}
	pthread_mutex_lock(&s->lock);
	int rc = s->ops->stats ? s->ops->stats(s->opaque, st, &err)
			       : cove_err_set(&err, -ENOTSUP, "stats are not supported");
	enum fc_state state = s->state;
	pthread_mutex_unlock(&s->lock);
	if (rc) {
		free(st);
		reply(resp, rc, &err);
		return;
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "state", json_object_new_string(fc_state_name(state)));
	json_object_object_add(o, "cpu_time_ns", json_object_new_uint64(st->cpu_time_ns));
	json_object_object_add(o, "balloon_current_kib",
			       json_object_new_uint64(st->balloon_current_kib));
	json_object_object_add(o, "balloon_maximum_kib",
			       json_object_new_uint64(st->balloon_maximum_kib));
	json_object *blk = json_object_new_array();
	for (unsigned i = 0; i < st->nblock && i < FC_MAX_DRIVES; i++) {
		json_object *b = json_object_new_object();
		st->block[i].name[FC_ID_MAX - 1] = '\0';
		json_object_object_add(b, "name", json_object_new_string(st->block[i].name));
		json_object_object_add(b, "rd_reqs", json_object_new_uint64(st->block[i].rd_reqs));
		json_object_object_add(b, "rd_bytes",
				       json_object_new_uint64(st->block[i].rd_bytes));
		json_object_object_add(b, "wr_reqs", json_object_new_uint64(st->block[i].wr_reqs));
		json_object_object_add(b, "wr_bytes",
				       json_object_new_uint64(st->block[i].wr_bytes));
		json_object_object_add(b, "fl_reqs", json_object_new_uint64(st->block[i].fl_reqs));
		json_object_object_add(b, "errors", json_object_new_uint64(st->block[i].errors));
		json_object_array_add(blk, b);
	}
	json_object_object_add(o, "block", blk);
	json_object *net = json_object_new_array();
	for (unsigned i = 0; i < st->nnet && i < FC_MAX_NICS; i++) {
		json_object *n = json_object_new_object();
		st->net[i].name[FC_ID_MAX - 1] = '\0';
		json_object_object_add(n, "name", json_object_new_string(st->net[i].name));
		json_object_object_add(n, "rx_bytes", json_object_new_uint64(st->net[i].rx_bytes));
		json_object_object_add(n, "rx_pkts", json_object_new_uint64(st->net[i].rx_pkts));
		json_object_object_add(n, "rx_drop", json_object_new_uint64(st->net[i].rx_drop));
		json_object_object_add(n, "tx_bytes", json_object_new_uint64(st->net[i].tx_bytes));
		json_object_object_add(n, "tx_pkts", json_object_new_uint64(st->net[i].tx_pkts));
		json_object_object_add(n, "tx_drop", json_object_new_uint64(st->net[i].tx_drop));
		json_object_array_add(net, n);
	}
	json_object_object_add(o, "net", net);
	free(st);
	api_resp_json(resp, 200, o);
}

static void put_shutdown(struct api_request *req, struct api_response *resp)
{
	struct fc_api_server *s = srv(req);
	struct cove_err err = {0};
	pthread_mutex_lock(&s->lock);
	if (s->state == FC_STATE_NOT_STARTED)
		api_resp_error(resp, 400, BEFORE_START);
	else
		reply(resp, call(s, s->ops->shutdown, "shutdown", &err), &err);
	pthread_mutex_unlock(&s->lock);
}

static const struct api_route routes[] = {
    {"GET", "/", get_root, 0},
    {"GET", "/version", get_version, 0},
    {"PUT", "/boot-source", put_boot_source, API_ROUTE_MUTATES},
    {"GET", "/machine-config", get_machine, 0},
    {"PUT", "/machine-config", put_machine, API_ROUTE_MUTATES},
    {"PATCH", "/machine-config", patch_machine, API_ROUTE_MUTATES},
    {"PUT", "/drives/{id}", put_drive, API_ROUTE_MUTATES},
    {"PATCH", "/drives/{id}", patch_drive, API_ROUTE_MUTATES},
    {"PUT", "/network-interfaces/{id}", put_net, API_ROUTE_MUTATES},
    {"PATCH", "/network-interfaces/{id}", patch_net, API_ROUTE_MUTATES},
    {"PUT", "/vsock", put_vsock, API_ROUTE_MUTATES},
    {"GET", "/balloon", get_balloon, 0},
    {"PUT", "/balloon", put_balloon, API_ROUTE_MUTATES},
    {"PATCH", "/balloon", patch_balloon, API_ROUTE_MUTATES},
    {"GET", "/balloon/statistics", get_balloon_stats, 0},
    {"PATCH", "/balloon/statistics", patch_balloon_stats, API_ROUTE_MUTATES},
    {"PUT", "/logger", put_logger, API_ROUTE_MUTATES},
    {"PUT", "/metrics", put_metrics, API_ROUTE_MUTATES},
    {"PUT", "/actions", put_actions, API_ROUTE_MUTATES},
    {"PATCH", "/vm", patch_vm, API_ROUTE_MUTATES},
    {"GET", "/vm/config", get_vm_config, 0},
    {"GET", "/stats", get_stats, 0},
    {"PUT", "/shutdown", put_shutdown, API_ROUTE_MUTATES},
};

int fc_api_serve(const char *sock_path, const struct vmm_api_ops *ops, void *opaque,
		 struct fc_api_server **out)
{
	struct fc_api_server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	/* Recursive: an op may call fc_api_set_state() from inside the server's lock. */
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&s->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	s->ops = ops;
	s->opaque = opaque;
	fc_config_init(&s->cfg);
	struct api_server_opts opts = {
	    .routes = routes,
	    .nroutes = sizeof(routes) / sizeof(routes[0]),
	    .user = s,
	    .max_body = 64 * 1024,
	    .timeout_s = 30,
	    .error_key = "fault_message",
	    .invalid_route_400 = true,
	};
	struct cove_err err = {0};
	int rc = api_server_start_unix(sock_path, 0600, (gid_t)-1, false, &opts, &s->http, &err);
	if (rc) {
		log_error("api socket: %s", err.msg);
		pthread_mutex_destroy(&s->lock);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void fc_api_set_started(struct fc_api_server *s, const struct fc_vm_config *cfg)
{
	pthread_mutex_lock(&s->lock);
	if (cfg)
		s->cfg = *cfg;
	s->state = FC_STATE_RUNNING;
	pthread_mutex_unlock(&s->lock);
}

void fc_api_set_state(struct fc_api_server *s, enum fc_state state)
{
	pthread_mutex_lock(&s->lock);
	s->state = state;
	pthread_mutex_unlock(&s->lock);
}

enum fc_state fc_api_get_state(struct fc_api_server *s)
{
	pthread_mutex_lock(&s->lock);
	enum fc_state st = s->state;
	pthread_mutex_unlock(&s->lock);
	return st;
}

void fc_api_stop(struct fc_api_server *s)
{
	if (!s)
		return;
	api_server_stop(s->http);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
