/*
 * A VM's console over a WebSocket: the recent output from coved's ring buffer first,
 * then live output; what the client sends goes to the VM's serial input. Without an
 * Upgrade header the route answers the recent output as text (for curl and scripts).
 */
#include "api/http.h"
#include "api/ws.h"
#include "daemon/daemon.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A client has this long to finish a frame it began, or to take output we send. */
#define CONSOLE_FRAME_MS 5000

struct session {
	struct coved *d;
	char name[VMDEF_NAME_MAX];
	char in_path[PATH_MAX + 16];
	int fd;
	void *handle;
};

static size_t final_output(struct coved *d, const char *name, uint64_t pos, char *buf, size_t cap)
{
	char p[PATH_MAX + 128];
	snprintf(p, sizeof(p), "%s/run/%s/console.log", d->state_dir, name);
	int fd = sup_open_log(p);
	if (fd < 0)
		return 0;
	ssize_t n = pread(fd, buf, cap, (off_t)pos);
	close(fd);
	return n > 0 ? (size_t)n : 0;
}

static void *session_main(void *arg)
{
	struct session *s = arg;
	struct coved *d = s->d;
	uint64_t pos = 0;
	char *buf = malloc(COVED_RING_SIZE);
	uint8_t *in = malloc(WS_MAX_PAYLOAD);
	int in_fd = -1;
	bool alive = buf && in;
	while (alive && !d->stopping) {
		/* Output: whatever the ring holds beyond pos. */
		pthread_mutex_lock(&d->lock);
		struct vm_rt *rt = sup_find(d, s->name);
		size_t n = rt ? sup_console_read(rt, &pos, buf, COVED_RING_SIZE) : 0;
		pthread_mutex_unlock(&d->lock);
		if (n && ws_send(s->fd, WS_BINARY, buf, n, false) != 0)
			break;
		if (!rt) {
			/* The VM is gone: its last words are in the log, past pos. */
			size_t k = final_output(d, s->name, pos, buf, COVED_RING_SIZE);
			if (k)
				ws_send(s->fd, WS_BINARY, buf, k, false);
			static const char bye[] = "\r\n[coved: the VM stopped]\r\n";
			ws_send(s->fd, WS_TEXT, bye, sizeof(bye) - 1, false);
			uint8_t code[2] = {0x03, 0xE8}; /* 1000: normal closure */
			ws_send(s->fd, WS_CLOSE, code, 2, false);
			break;
		}
		/* Input, waiting at most 50 ms for it. */
		struct pollfd p = {.fd = s->fd, .events = POLLIN};
		if (poll(&p, 1, 50) <= 0)
			continue;
		enum ws_opcode op;
		size_t len;
		/* A frame that has begun must end soon: a half-sent one ends the session. */
		if (ws_recv_within(s->fd, &op, in, WS_MAX_PAYLOAD, &len, CONSOLE_FRAME_MS) != 0)
			break;
		switch (op) {
		case WS_CLOSE:
			ws_send(s->fd, WS_CLOSE, in, len >= 2 ? 2 : 0, false);
			alive = false;
			break;
		case WS_PING:
			ws_send(s->fd, WS_PONG, in, len, false);
			break;
		case WS_TEXT:
		case WS_BINARY:
		case WS_CONT:
			if (in_fd < 0)
				in_fd = open(s->in_path,
					     O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
			if (in_fd >= 0 && len)
				(void)!write(in_fd, in, len); /* a full FIFO drops input */
			break;
		default:
			break;
		}
	}
	if (in_fd >= 0)
		close(in_fd);
	free(buf);
	free(in);
	api_upgrade_done(s->handle);
	free(s);
	return NULL;
}

static void start_session(void *ctx, int fd, void *handle)
{
	struct session *s = ctx;
	s->fd = fd;
	s->handle = handle;
	/* The upgraded socket may be non-blocking; the session uses poll + blocking I/O. */
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	/* A client that stops reading must not pin the session in send(). */
	struct timeval tv = {CONSOLE_FRAME_MS / 1000, 0};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, session_main, s) != 0) {
		api_upgrade_done(handle);
		free(s);
	}
	pthread_attr_destroy(&a);
}

/* Recent output of a stopped VM: the tail of its last console log. */
static size_t log_tail(struct coved *d, const char *name, char *buf, size_t cap)
{
	char p[PATH_MAX + 128];
	snprintf(p, sizeof(p), "%s/run/%s/console.log", d->state_dir, name);
	int fd = sup_open_log(p);
	if (fd < 0)
		return 0;
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > (off_t)cap ? end - (off_t)cap : 0;
	ssize_t n = pread(fd, buf, cap, from);
	close(fd);
	return n > 0 ? (size_t)n : 0;
}

void coved_console(struct api_request *req, struct api_response *resp)
{
	struct coved *d = req->user;
	const char *name = req->params[0];
	if (!vmdef_name_valid(name)) {
		api_resp_error(resp, 400, "invalid VM name '%.64s'", name);
		return;
	}
	char *json = NULL;
	pthread_mutex_lock(&d->lock);
	int rc = store_vm_get(d->store, name, &json, NULL);
	struct vm_rt *rt = rc ? NULL : sup_find(d, name);
	free(json);
	const char *upgrade = api_request_header(req, "Upgrade");
	const char *key = api_request_header(req, "Sec-WebSocket-Key");
	if (rc) {
		pthread_mutex_unlock(&d->lock);
		api_resp_error(resp, 404, "no VM named '%s'", name);
		return;
	}
	if (!upgrade || strcasecmp(upgrade, "websocket") != 0) {
		char *buf = malloc(COVED_RING_SIZE + 1);
		size_t n = 0;
		if (buf && rt) {
			uint64_t pos = 0;
			n = sup_console_read(rt, &pos, buf, COVED_RING_SIZE);
		}
		pthread_mutex_unlock(&d->lock);
		if (buf && !rt)
			n = log_tail(d, name, buf, COVED_RING_SIZE);
		if (!buf) {
			api_resp_error(resp, 500, "out of memory");
			return;
		}
		resp->status = 200;
		resp->body = buf;
		resp->body_len = n;
		resp->content_type = "text/plain";
		return;
	}
	/* A VM that is not running still shows its last output, then the session ends. */
	struct session *s = calloc(1, sizeof(*s));
	if (s) {
		s->d = d;
		snprintf(s->name, sizeof(s->name), "%.63s", name);
		snprintf(s->in_path, sizeof(s->in_path), "%s/run/%.63s/console.in", d->state_dir,
			 name);
	}
	pthread_mutex_unlock(&d->lock);
	if (!s) {
		api_resp_error(resp, 500, "out of memory");
		return;
	}
	if (!key || strlen(key) < 16 || strlen(key) > 64) {
		free(s);
		api_resp_error(resp, 400, "missing or bad Sec-WebSocket-Key");
		return;
	}
	char accept[29];
	ws_accept_key(key, accept);
	api_resp_header(resp, "Upgrade", "websocket");
	api_resp_header(resp, "Connection", "Upgrade");
	api_resp_header(resp, "Sec-WebSocket-Accept", accept);
	resp->upgrade = start_session;
	resp->upgrade_ctx = s;
}
