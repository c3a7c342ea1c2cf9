/*
 * HTTP/1.1 server plumbing over libmicrohttpd: Unix-socket (or TCP+TLS) listeners,
 * bounded request bodies, slow-client limits (an idle timeout, and an absolute deadline
 * for a request's headers and body), connection caps (total and per client user), a
 * router with {param} path segments, JSON and error responses, streamed bodies and
 * connection upgrades (WebSocket).
 *
 * Each connection has its own thread: handlers may block (streams, upgrades) and must
 * be thread-safe.
 */
#ifndef COVE_API_HTTP_H
#define COVE_API_HTTP_H

#include <cove/error.h>

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define API_MAX_PARAMS	  4
#define API_MAX_PARAM_LEN 128

struct api_request {
	const char *method;
	const char *path;
	const char *body; /* NUL-terminated copy; body_len excludes the NUL */
	size_t body_len;
	char params[API_MAX_PARAMS][API_MAX_PARAM_LEN];
	int nparams;
	void *conn;	/* the libmicrohttpd connection, for api_request_query/header */
	void *user;	/* the server's user pointer */
	bool read_only; /* the request came on a read-only listener */
	pid_t peer_pid; /* from SO_PEERCRED on Unix sockets, else -1 */
	uid_t peer_uid;
};

/* Fills buf with up to len bytes; returns the count, 0 to poll again, -1 at the end. */
typedef ssize_t (*api_stream_fn)(void *ctx, char *buf, size_t len);
/* Takes over the connected socket fd after a 101 response; must close nothing itself but
 * call api_upgrade_done(handle) when finished. */
typedef void (*api_upgrade_fn)(void *ctx, int fd, void *handle);

struct api_response {
	unsigned status;
	char *body; /* malloc'd; freed by the server */
	size_t body_len;
	const char *content_type;
	char *headers[4][2]; /* extra headers, malloc'd name/value pairs */
	api_stream_fn stream;
	void (*stream_free)(void *ctx);
	void *stream_ctx;
	api_upgrade_fn upgrade;
	void *upgrade_ctx;
	const char *error_key; /* set by the server before the handler runs */
};

typedef void (*api_handler_fn)(struct api_request *req, struct api_response *resp);

#define API_ROUTE_MUTATES (1u << 0) /* refused on read-only listeners; audited */

struct api_route {
	const char *method;
	const char *pattern; /* "/v1/vms/{name}/actions/{action}" */
	api_handler_fn handler;
	unsigned flags;
};

/*
 * Matches method and path against routes[0..n). Returns the index of the route, -ENOENT
 * when no pattern matches the path (HTTP 404), -EOPNOTSUPP when a pattern matches but
 * not with this method (HTTP 405). Path parameters land in req->params.
 */
int api_route_match(const struct api_route *routes, size_t n, const char *method, const char *path,
		    struct api_request *req);

/* Called after each mutating request (for an audit log). */
typedef void (*api_audit_fn)(void *user, const struct api_request *req, unsigned status);

struct api_server_opts {
	const struct api_route *routes;
	size_t nroutes;
	void *user;
	size_t max_body;	  /* default 64 KiB */
	unsigned timeout_s;	  /* idle connection timeout; default 30 */
	const char *error_key;	  /* "fault_message" (default) or "error" */
	api_audit_fn audit;	  /* may be NULL */
	const char *bearer_token; /* required on TCP listeners, NULL on Unix sockets */
	/* A request's headers and body must arrive within this many seconds of the
	 * connection's start or of the previous response (default 10): a client that
	 * drips bytes just faster than the idle timeout is cut off with 408. Streams and
	 * upgraded connections are not limited once their request is in. */
	unsigned request_deadline_s;
	unsigned max_conns; /* connections at once (default 1024) */
	/* Connections at once per client user on a Unix socket (SO_PEERCRED), or per
	 * address on TCP; 0: no cap. root and the server's own user are not capped. */
	unsigned max_conns_per_peer;
	/* Firecracker's answer to an unknown path or method: 400 "Invalid request method
	 * and/or path" instead of 404/405. */
	bool invalid_route_400;
};

struct api_server;

/*
 * Listens on the Unix socket path (replacing a stale socket there) with the given file
 * mode and group (gid (gid_t)-1: unchanged). read_only refuses API_ROUTE_MUTATES routes
 * with 403.
 */
int api_server_start_unix(const char *path, mode_t mode, gid_t gid, bool read_only,
			  const struct api_server_opts *opts, struct api_server **out,
			  struct cove_err *err);

/*
 * Listens on TCP addr:port with TLS (PEM cert and key) and a bearer token required on
 * every request. Returns -ENOTSUP when libmicrohttpd was built without TLS.
 */
int api_server_start_tls(const char *addr, uint16_t port, const char *cert_pem, const char *key_pem,
			 const struct api_server_opts *opts, struct api_server **out,
			 struct cove_err *err);

/* Stops listening, waits for connection threads, removes the socket file. NULL is ok. */
void api_server_stop(struct api_server *s);

/* Query argument or header of the request (NULL when absent). */
const char *api_request_query(const struct api_request *req, const char *key);
const char *api_request_header(const struct api_request *req, const char *key);

/* Response helpers. api_resp_json takes the reference to obj. */
void api_resp_json(struct api_response *resp, unsigned status, json_object *obj);
void api_resp_text(struct api_response *resp, unsigned status, const char *text);
void api_resp_error(struct api_response *resp, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void api_resp_no_content(struct api_response *resp);
/* Adds a header (copied). At most 4. */
void api_resp_header(struct api_response *resp, const char *name, const char *value);

/* Maps -errno from a handler's operation to an HTTP status (400, 404, 409, 500...). */
unsigned api_status_from_errno(int code);

/* Ends an upgraded connection (closes the socket). */
void api_upgrade_done(void *handle);

#endif
