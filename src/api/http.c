/* HTTP server over libmicrohttpd: listeners, body limits, routing, responses, upgrades. */
#include "api/http.h"
#include "api/json.h"
#include "api/mhd_load.h"
#include "util/clock.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_BODY  (64 * 1024)
#define DEFAULT_TIMEOUT	  30
#define DEFAULT_DEADLINE  10
#define DEFAULT_MAX_CONNS 1024

/* One accepted connection, from libmicrohttpd's connect notification to its close. */
struct conn_track {
	struct conn_track *prev, *next;
	int fd;
	uid_t uid;	     /* the peer's user on a Unix socket, else (uid_t)-1 */
	pid_t pid;	     /* ... and its process, else -1 (SO_PEERCRED, once per connection) */
	bool capped;	     /* counts against max_conns_per_peer */
	int64_t deadline_ms; /* the request must be in by then; 0: not receiving */
	bool upgraded;	     /* the socket belongs to an upgrade handler now */
	bool served;	     /* a response went out on it already (keep-alive) */
};

struct api_server {
	struct MHD_Daemon *mhd;
	struct api_server_opts opts;
	bool read_only;
	bool tls;
	char *path; /* Unix socket path to unlink, or NULL */
	int fd;
	/* Connection tracking and the deadline watchdog. */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct conn_track *conns;
	pthread_t watchdog;
	bool watchdog_running, stopping;
	int64_t watch_until; /* the watchdog sleeps until then; 0: until a deadline is armed */
};

/* Per-request state kept across libmicrohttpd's calls of the access handler. */
struct conn_state {
	char *body;
	size_t len, cap;
	bool too_large;
	bool answered;	/* a response is queued already (refused early) */
	size_t dropped; /* bytes of an oversized body read and dropped */
};

int api_route_match(const struct api_route *routes, size_t n, const char *method, const char *path,
		    struct api_request *req)
{
	bool path_matched = false;
	for (size_t i = 0; i < n; i++) {
		const char *p = routes[i].pattern, *u = path;
		int np = 0;
		bool ok = true;
		while (*p && ok) {
			if (*p == '{') {
				const char *close = strchr(p, '}');
				const char *end = strchr(u, '/');
				size_t len = end ? (size_t)(end - u) : strlen(u);
				if (!close || len == 0 || len >= API_MAX_PARAM_LEN ||
				    np >= API_MAX_PARAMS) {
					ok = false;
					break;
				}
				memcpy(req->params[np], u, len);
				req->params[np][len] = '\0';
				np++;
				u += len;
				p = close + 1;
			} else if (*p == *u) {
				p++;
				u++;
			} else {
				ok = false;
			}
		}
		if (!ok || *u != '\0')
			continue;
		path_matched = true;
		if (strcmp(routes[i].method, method) == 0) {
			req->nparams = np;
			return (int)i;
		}
	}
	return path_matched ? -EOPNOTSUPP : -ENOENT;
}

unsigned api_status_from_errno(int code)
{
	switch (code) {
	case -EINVAL:
	case -ERANGE:
	case -E2BIG:
	case -ENAMETOOLONG:
		return 400;
	case -EACCES:
	case -EPERM:
		return 403;
	case -ENOENT:
		return 404;
	case -EEXIST:
	case -EBUSY:
	case -EALREADY:
	case -ESRCH:
		return 409;
	case -ENOTSUP:
		return 501;
	case -ETIMEDOUT:
		return 504;
	default:
		return 500;
	}
}

void api_resp_json(struct api_response *resp, unsigned status, json_object *obj)
{
	size_t len = 0;
	const char *text = api_json_text(obj, &len);
	free(resp->body);
	resp->body = malloc(len + 2);
	if (resp->body) {
		memcpy(resp->body, text, len);
		resp->body[len] = '\n';
		resp->body[len + 1] = '\0';
		resp->body_len = len + 1;
	} else {
		resp->body_len = 0;
		status = 500;
	}
	resp->status = status;
	resp->content_type = "application/json";
	json_object_put(obj);
}

void api_resp_text(struct api_response *resp, unsigned status, const char *text)
{
	free(resp->body);
	resp->body = strdup(text);
	resp->body_len = resp->body ? strlen(text) : 0;
	resp->status = resp->body ? status : 500;
	resp->content_type = "text/plain";
}

void api_resp_error(struct api_response *resp, unsigned status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object *o = json_object_new_object();
	json_object_object_add(o, resp->error_key ? resp->error_key : "fault_message",
			       json_object_new_string(msg));
	api_resp_json(resp, status, o);
}

void api_resp_no_content(struct api_response *resp)
{
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
	resp->status = 204;
}

void api_resp_header(struct api_response *resp, const char *name, const char *value)
{
	for (int i = 0; i < 4; i++) {
		if (!resp->headers[i][0]) {
			resp->headers[i][0] = strdup(name);
			resp->headers[i][1] = strdup(value);
			return;
		}
	}
}

const char *api_request_query(const struct api_request *req, const char *key)
{
	return mhd.lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *api_request_header(const struct api_request *req, const char *key)
{
	return mhd.lookup_connection_value(req->conn, MHD_HEADER_KIND, key);
}

static void free_response_fields(struct api_response *r)
{
	free(r->body);
	for (int i = 0; i < 4; i++) {
		free(r->headers[i][0]);
		free(r->headers[i][1]);
	}
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct api_response *r = cls;
	(void)pos;
	ssize_t n = r->stream(r->stream_ctx, buf, max);
	if (n < 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	return n;
}

static void stream_free(void *cls)
{
	struct api_response *r = cls;
	if (r->stream_free)
		r->stream_free(r->stream_ctx);
	free_response_fields(r);
	free(r);
}

struct upgrade_ctx {
	api_upgrade_fn fn;
	void *ctx;
};

static void upgrade_cb(void *cls, struct MHD_Connection *c, void *req_cls, const char *extra_in,
		       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct upgrade_ctx u = *(struct upgrade_ctx *)cls;
	free(cls);
	(void)c;
	(void)req_cls;
	(void)extra_in;
	(void)extra_in_size; /* clients wait for 101 before sending frames */
	u.fn(u.ctx, sock, urh);
}

void api_upgrade_done(void *handle)
{
	mhd.upgrade_action(handle, MHD_UPGRADE_ACTION_CLOSE);
}

static enum MHD_Result queue(struct MHD_Connection *c, struct api_response *r)
{
	struct MHD_Response *mr;
	struct api_response *heap = NULL;
	struct upgrade_ctx *up = NULL;
	if (r->upgrade) {
		up = malloc(sizeof(*up));
		if (!up)
			return MHD_NO;
		up->fn = r->upgrade;
		up->ctx = r->upgrade_ctx;
		/* upgrade_cb frees up; if the connection dies before the 101 is sent it
		 * leaks (16 bytes), which MHD gives no hook to avoid. */
		mr = mhd.create_response_for_upgrade(upgrade_cb, up);
		r->status = MHD_HTTP_SWITCHING_PROTOCOLS;
	} else if (r->stream) {
		heap = malloc(sizeof(*heap));
		if (!heap)
			return MHD_NO;
		*heap = *r;
		memset(r, 0, sizeof(*r));
		mr = mhd.create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, heap,
						       stream_free);
		r = heap;
	} else {
		mr = mhd.create_response_from_buffer(r->body_len, r->body ? r->body : (char *)"",
						     MHD_RESPMEM_MUST_COPY);
	}
	if (!mr) {
		free(up);
		return MHD_NO;
	}
	if (r->content_type)
		mhd.add_response_header(mr, "Content-Type", r->content_type);
	for (int i = 0; i < 4; i++)
		if (r->headers[i][0] && r->headers[i][1])
			mhd.add_response_header(mr, r->headers[i][0], r->headers[i][1]);
	enum MHD_Result ret = mhd.queue_response(c, r->status ? r->status : 500, mr);
	mhd.destroy_response(mr);
	return ret;
}

static struct conn_track *track_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    mhd.get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* The peer's credentials, as on_connection read them when it connected. */
static void peer_creds(struct MHD_Connection *c, struct api_request *req)
{
	struct conn_track *t = track_of(c);
	req->peer_pid = t ? t->pid : -1;
	req->peer_uid = t ? t->uid : (uid_t)-1;
}

/* Sets t's deadline (0: none), with s->lock held; wakes the watchdog when it sleeps past
 * the new deadline (it sleeps until the earliest one, or until one is armed). */
static void set_deadline(struct api_server *s, struct conn_track *t, int64_t deadline_ms)
{
	t->deadline_ms = deadline_ms;
	if (deadline_ms && (!s->watch_until || deadline_ms < s->watch_until)) {
		s->watch_until = deadline_ms;
		pthread_cond_signal(&s->wake);
	}
}

/* Starts (arm) or stops the clock for t's next request to arrive; s->lock held. */
static void arm_locked(struct api_server *s, struct conn_track *t, bool arm)
{
	set_deadline(
	    s, t,
	    arm && !t->upgraded ? clock_mono_ms() + (int64_t)s->opts.request_deadline_s * 1000 : 0);
}

/* The same for a connection. */
static void track_deadline(struct api_server *s, struct MHD_Connection *c, bool arm)
{
	struct conn_track *t = track_of(c);
	if (!t)
		return;
	pthread_mutex_lock(&s->lock);
	arm_locked(s, t, arm);
	pthread_mutex_unlock(&s->lock);
}

static void track_upgraded(struct api_server *s, struct MHD_Connection *c)
{
	struct conn_track *t = track_of(c);
	if (!t)
		return;
	pthread_mutex_lock(&s->lock);
	t->upgraded = true;
	t->deadline_ms = 0;
	pthread_mutex_unlock(&s->lock);
}

/*
 * Answers on a connection libmicrohttpd has not written to (refused at accept, or cut
 * off before its request was in), then ends it: the shutdown wakes the connection's
 * thread, which sees the end of the stream and closes. Plain sockets only (not TLS).
 */
static void cut_off(struct api_server *s, int fd, unsigned status, const char *reason,
		    const char *msg)
{
	if (!s->tls && status) {
		char out[512];
		int bl = (int)strlen(s->opts.error_key) + (int)strlen(msg) + 8;
		int n = snprintf(out, sizeof(out),
				 "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\n"
				 "Content-Length: %d\r\nConnection: close\r\n\r\n{\"%s\":\"%s\"}\n",
				 status, reason, bl, s->opts.error_key, msg);
		if (n > 0 && (size_t)n < sizeof(out))
			(void)!send(fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	shutdown(fd, SHUT_RDWR);
}

/* libmicrohttpd's connect and close notifications: tracking, and the per-peer cap. */
static void on_connection(void *cls, struct MHD_Connection *c, void **ctx,
			  enum MHD_ConnectionNotificationCode code)
{
	struct api_server *s = cls;
	struct conn_track *t = *ctx;
	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (!t)
			return;
		pthread_mutex_lock(&s->lock);
		if (t->prev)
			t->prev->next = t->next;
		else
			s->conns = t->next;
		if (t->next)
			t->next->prev = t->prev;
		pthread_mutex_unlock(&s->lock);
		free(t);
		*ctx = NULL;
		return;
	}
	const union MHD_ConnectionInfo *ci =
	    mhd.get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return;
	t = calloc(1, sizeof(*t));
	if (!t) { /* untracked means unwatched: refuse rather than serve it */
		shutdown(ci->connect_fd, SHUT_RDWR);
		return;
	}
	t->fd = ci->connect_fd;
	t->uid = (uid_t)-1;
	t->pid = -1;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (!s->tls && getsockopt(t->fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0) {
		t->uid = cr.uid;
		t->pid = cr.pid;
	}
	t->capped =
	    s->opts.max_conns_per_peer && t->uid != (uid_t)-1 && t->uid != 0 && t->uid != geteuid();
	pthread_mutex_lock(&s->lock);
	unsigned same = 0;
	for (struct conn_track *p = s->conns; t->capped && p; p = p->next)
		same += p->capped && p->uid == t->uid;
	bool refuse = t->capped && same >= s->opts.max_conns_per_peer;
	if (!refuse) {
		t->next = s->conns;
		if (s->conns)
			s->conns->prev = t;
		s->conns = t;
		set_deadline(s, t, clock_mono_ms() + (int64_t)s->opts.request_deadline_s * 1000);
	}
	pthread_mutex_unlock(&s->lock);
	if (refuse) {
		log_debug("http: uid %u has %u connections open already: refused", (unsigned)t->uid,
			  same);
		cut_off(s, t->fd, 429, "Too Many Requests",
			"too many connections from this user at once");
		free(t);
		return;
	}
	*ctx = t;
}

/* Cuts off connections whose request has not come in whole by its deadline. Sleeps until
 * the earliest deadline, or (none armed) until set_deadline or the stop wakes it. */
static void *watchdog_main(void *arg)
{
	struct api_server *s = arg;
	pthread_setname_np(pthread_self(), "api-watchdog");
	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		int64_t now = clock_mono_ms(), next = 0;
		for (struct conn_track *t = s->conns; t; t = t->next) {
			if (!t->deadline_ms || t->upgraded)
				continue;
			if (now < t->deadline_ms) {
				if (!next || t->deadline_ms < next)
					next = t->deadline_ms;
				continue;
			}
			log_debug("http: a request did not arrive within %u s: cut off",
				  s->opts.request_deadline_s);
			/* After a response, the client may be about to reuse the connection:
			 * an unasked-for 408 could pass for the answer to its next request,
			 * so such a connection is only closed (clients retry on that). */
			cut_off(s, t->fd, t->served ? 0 : 408, "Request Timeout",
				"the request did not arrive in time");
			t->deadline_ms = 0;
		}
		s->watch_until = next;
		if (!next) {
			pthread_cond_wait(&s->wake, &s->lock);
			continue;
		}
		/* The condition variable runs on CLOCK_MONOTONIC, as clock_mono_ms does. */
		struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000};
		pthread_cond_timedwait(&s->wake, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static bool token_ok(struct api_server *s, struct MHD_Connection *c)
{
	if (!s->opts.bearer_token)
		return true;
	const char *h = mhd.lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if (!h || strncmp(h, "Bearer ", 7) != 0)
		return false;
	const char *t = h + 7, *want = s->opts.bearer_token;
	size_t tl = strlen(t), wl = strlen(want);
	unsigned char diff = (unsigned char)(tl != wl);
	for (size_t i = 0; i < wl; i++)
		diff |= (unsigned char)(want[i] ^ (i < tl ? t[i] : 0));
	return diff == 0;
}

static enum MHD_Result dispatch(struct api_server *s, struct MHD_Connection *c, const char *url,
				const char *method, struct conn_state *st)
{
	struct api_response resp = {.error_key = s->opts.error_key};
	struct api_request req = {.method = method,
				  .path = url,
				  .conn = c,
				  .user = s->opts.user,
				  .read_only = s->read_only};
	req.body = st->body ? st->body : "";
	req.body_len = st->len;
	peer_creds(c, &req);
	track_deadline(s, c, false); /* the request is in: the rest is ours */

	int idx = -1;
	if (!token_ok(s, c)) {
		api_resp_error(&resp, 401, "missing or wrong bearer token");
		api_resp_header(&resp, "WWW-Authenticate", "Bearer");
	} else if (st->too_large) {
		api_resp_error(&resp, 413, "request body larger than %zu bytes", s->opts.max_body);
	} else {
		idx = api_route_match(s->opts.routes, s->opts.nroutes, method, url, &req);
		if (idx < 0 && s->opts.invalid_route_400) {
			/* Firecracker's words: the path without its leading slash. */
			api_resp_error(&resp, 400, "Invalid request method and/or path: %s %.200s.",
				       method, url[0] == '/' ? url + 1 : url);
		} else if (idx == -ENOENT) {
			api_resp_error(&resp, 404, "no such resource: %.200s", url);
		} else if (idx == -EOPNOTSUPP) {
			api_resp_error(&resp, 405, "method %s not allowed on %.200s", method, url);
		} else if ((s->opts.routes[idx].flags & API_ROUTE_MUTATES) && s->read_only) {
			api_resp_error(&resp, 403, "this socket is read-only");
		} else {
			s->opts.routes[idx].handler(&req, &resp);
			if (!resp.status)
				api_resp_error(&resp, 500, "internal error: no response");
		}
	}
	if (idx >= 0 && (s->opts.routes[idx].flags & API_ROUTE_MUTATES) && s->opts.audit)
		s->opts.audit(s->opts.user, &req, resp.status);
	if (resp.upgrade)
		track_upgraded(s, c);
	enum MHD_Result ret = queue(c, &resp);
	free_response_fields(&resp);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct api_server *s = cls;
	(void)version;
	struct conn_state *st = *con_cls;
	if (!st) {
		st = calloc(1, sizeof(*st));
		if (!st)
			return MHD_NO;
		*con_cls = st;
		/* Refuse an announced oversized body before reading any of it. */
		const char *cl = mhd.lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		if (cl) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(cl, &end, 10);
			if (errno || *end || v > s->opts.max_body) {
				st->too_large = true;
				/* Answering before the client has sent its body races with its
				 * sending (it may see only a reset): read and drop a moderately
				 * oversized body first, as below, and answer an absurd one now. */
				if (errno || *end || v > 16ULL * s->opts.max_body) {
					st->answered = true;
					return dispatch(s, c, url, method, st);
				}
			}
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (st->answered)
			return MHD_YES;
		if (st->too_large || n > s->opts.max_body - st->len) {
			/* Read and drop a moderately oversized body so the client can read our
			 * 413; cut off one that goes on and on (the client may see only a
			 * closed connection then). */
			st->too_large = true;
			st->dropped += n;
			if (st->dropped > 16 * s->opts.max_body) {
				st->answered = true;
				return dispatch(s, c, url, method, st);
			}
			return MHD_YES;
		}
		if (st->len + n + 1 > st->cap) {
			size_t cap = st->cap ? st->cap : 1024;
			while (cap < st->len + n + 1)
				cap *= 2;
			char *nb = realloc(st->body, cap);
			if (!nb)
				return MHD_NO;
			st->body = nb;
			st->cap = cap;
		}
		memcpy(st->body + st->len, upload_data, n);
		st->len += n;
		st->body[st->len] = '\0';
		return MHD_YES;
	}
	if (st->answered)
		return MHD_YES;
	return dispatch(s, c, url, method, st);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct api_server *s = cls;
	(void)toe;
	/* The next request on this connection has its own deadline from now. */
	struct conn_track *t = track_of(c);
	if (t) {
		pthread_mutex_lock(&s->lock);
		t->served = true;
		arm_locked(s, t, true);
		pthread_mutex_unlock(&s->lock);
	}
	struct conn_state *st = *con_cls;
	if (st) {
		free(st->body);
		free(st);
		*con_cls = NULL;
	}
}

static void fill_defaults(struct api_server *s, const struct api_server_opts *opts)
{
	s->opts = *opts;
	if (!s->opts.max_body)
		s->opts.max_body = DEFAULT_MAX_BODY;
	if (!s->opts.timeout_s)
		s->opts.timeout_s = DEFAULT_TIMEOUT;
	if (!s->opts.error_key)
		s->opts.error_key = "fault_message";
	if (!s->opts.request_deadline_s)
		s->opts.request_deadline_s = DEFAULT_DEADLINE;
	if (!s->opts.max_conns)
		s->opts.max_conns = DEFAULT_MAX_CONNS;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wake, &ca);
	pthread_condattr_destroy(&ca);
}

static void free_server(struct api_server *s)
{
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	free(s);
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	size_t n = strlen(buf);
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	log_debug("http: %s", buf);
}

static int start_mhd(struct api_server *s, unsigned extra_flags, struct MHD_OptionItem *extra,
		     uint16_t port, struct cove_err *err)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_POLL | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG | extra_flags;
	struct MHD_OptionItem none[] = {{MHD_OPTION_END, 0, NULL}};
	int r = mhd_load(err);
	if (r)
		return r;
	s->mhd =
	    mhd.start_daemon(flags, port, NULL, NULL, on_request, s, MHD_OPTION_NOTIFY_COMPLETED,
			     on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)s->opts.timeout_s,
			     MHD_OPTION_CONNECTION_LIMIT, (unsigned int)s->opts.max_conns,
			     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET,
			     s->fd, MHD_OPTION_ARRAY, extra ? extra : none, MHD_OPTION_END);
	if (!s->mhd)
		return cove_err_set(err, -EIO, "cannot start the HTTP server (libmicrohttpd)");
	if (pthread_create(&s->watchdog, NULL, watchdog_main, s) != 0) {
		mhd.stop_daemon(s->mhd);
		s->mhd = NULL;
		return cove_err_set(err, -EAGAIN, "cannot start the HTTP server's watchdog thread");
	}
	s->watchdog_running = true;
	return 0;
}

/* Removes path if it is a socket nobody listens on; refuses to take over a live one. */
static int clear_stale_socket(const char *path, struct cove_err *err)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return 0;
	if (!S_ISSOCK(st.st_mode))
		return cove_err_set(err, -EEXIST, "%s exists and is not a socket", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cove_err_set(err, -errno, "socket: %s", strerror(errno));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	if (live)
		return cove_err_set(err, -EADDRINUSE, "%s: another server is listening there",
				    path);
	unlink(path);
	return 0;
}

int api_server_start_unix(const char *path, mode_t mode, gid_t gid, bool read_only,
			  const struct api_server_opts *opts, struct api_server **out,
			  struct cove_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return cove_err_set(err, -ENAMETOOLONG, "socket path too long: %s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int rc = clear_stale_socket(path, err);
	if (rc)
		return rc;
	struct api_server *s = calloc(1, sizeof(*s));
	if (!s)
		return cove_err_set(err, -ENOMEM, "out of memory");
	fill_defaults(s, opts);
	s->read_only = read_only;
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		rc = cove_err_set(err, -errno, "socket: %s", strerror(errno));
		goto err_free;
	}
	/* Bind under a restrictive umask so the socket is never briefly open to all. */
	mode_t old = umask(0177);
	int b = bind(s->fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	umask(old);
	if (b != 0) {
		rc = cove_err_set(err, -e, "bind %s: %s", path, strerror(e));
		goto err_close;
	}
	s->path = strdup(path);
	if (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) != 0) {
		rc = cove_err_set(err, -errno, "chown %s: %s", path, strerror(errno));
		goto err_unlink;
	}
	if (chmod(path, mode) != 0) {
		rc = cove_err_set(err, -errno, "chmod %s: %s", path, strerror(errno));
		goto err_unlink;
	}
	if (listen(s->fd, 512) != 0) {
		rc = cove_err_set(err, -errno, "listen %s: %s", path, strerror(errno));
		goto err_unlink;
	}
	rc = start_mhd(s, 0, NULL, 0, err);
	if (rc)
		goto err_unlink;
	*out = s;
	return 0;
err_unlink:
	unlink(path);
	free(s->path);
err_close:
	close(s->fd);
err_free:
	free_server(s);
	return rc;
}

int api_server_start_tls(const char *addr, uint16_t port, const char *cert_pem, const char *key_pem,
			 const struct api_server_opts *opts, struct api_server **out,
			 struct cove_err *err)
{
	int r = mhd_load(err);
	if (r)
		return r;
	if (mhd.is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		return cove_err_set(err, -ENOTSUP, "libmicrohttpd was built without TLS");
	if (!opts->bearer_token || !*opts->bearer_token)
		return cove_err_set(err, -EINVAL, "a TCP listener needs a bearer token");
	struct api_server *s = calloc(1, sizeof(*s));
	if (!s)
		return cove_err_set(err, -ENOMEM, "out of memory");
	fill_defaults(s, opts);
	s->tls = true;
	int rc;
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		rc = cove_err_set(err, -errno, "socket: %s", strerror(errno));
		goto err_free;
	}
	int one = 1;
	setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		rc = cove_err_set(err, -EINVAL, "bad IPv4 address '%s'", addr);
		goto err_close;
	}
	if (bind(s->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(s->fd, 512) != 0) {
		rc = cove_err_set(err, -errno, "listen on %s:%u: %s", addr, port, strerror(errno));
		goto err_close;
	}
	struct MHD_OptionItem tls[] = {
	    {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cert_pem},
	    {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key_pem},
	    {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)s->opts.max_conns_per_peer, NULL},
	    {MHD_OPTION_END, 0, NULL},
	};
	rc = start_mhd(s, MHD_USE_TLS, tls, port, err);
	if (rc)
		goto err_close;
	*out = s;
	return 0;
err_close:
	close(s->fd);
err_free:
	free_server(s);
	return rc;
}

void api_server_stop(struct api_server *s)
{
	if (!s)
		return;
	if (s->watchdog_running) {
		pthread_mutex_lock(&s->lock);
		s->stopping = true;
		pthread_cond_signal(&s->wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->watchdog, NULL);
	}
	mhd.stop_daemon(s->mhd); /* closes the listening socket */
	if (s->path) {
		unlink(s->path);
		free(s->path);
	}
	free_server(s);
}
