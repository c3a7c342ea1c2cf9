/* HTTP/1.1 client over a Unix socket: one request per connection, any body framing. */
#include "api/client.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_HEADER (16 * 1024)
#define MAX_BODY   (64u * 1024 * 1024)

int api_client_connect(const char *sock_path, struct cove_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(sock_path);
	if (n >= sizeof(sa.sun_path))
		return cove_err_set(err, -ENAMETOOLONG, "socket path too long: %s", sock_path);
	memcpy(sa.sun_path, sock_path, n + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cove_err_set(err, -errno, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(fd);
		return cove_err_set(err, -e, "cannot connect to %s: %s", sock_path, strerror(e));
	}
	return fd;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Buffered reader over the socket with a per-wait timeout. */
struct reader {
	int fd;
	int timeout_ms;
	char buf[8192];
	size_t pos, len;
};

static int fill(struct reader *r)
{
	if (r->timeout_ms > 0) {
		struct pollfd p = {.fd = r->fd, .events = POLLIN};
		int n;
		do {
			n = poll(&p, 1, r->timeout_ms);
		} while (n < 0 && errno == EINTR);
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
	}
	ssize_t n;
	do {
		n = recv(r->fd, r->buf, sizeof(r->buf), 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	r->pos = 0;
	r->len = (size_t)n;
	return (int)n; /* 0 at EOF */
}

/* Reads one CRLF-terminated line (without CRLF) into line[max]. */
static int read_line(struct reader *r, char *line, size_t max)
{
	size_t n = 0;
	for (;;) {
		if (r->pos == r->len) {
			int rc = fill(r);
			if (rc < 0)
				return rc;
			if (rc == 0)
				return -ECONNRESET;
		}
		char c = r->buf[r->pos++];
		if (c == '\n') {
			if (n && line[n - 1] == '\r')
				n--;
			line[n] = '\0';
			return 0;
		}
		if (n + 1 >= max)
			return -E2BIG;
		line[n++] = c;
	}
}

/* Passes exactly len body bytes (or to EOF when len is SIZE_MAX) to on_data. */
static int read_body(struct reader *r, size_t len, api_client_data_fn on_data, void *ctx)
{
	while (len) {
		if (r->pos == r->len) {
			int rc = fill(r);
			if (rc < 0)
				return rc;
			if (rc == 0)
				return len == SIZE_MAX ? 0 : -ECONNRESET;
		}
		size_t n = r->len - r->pos;
		if (len != SIZE_MAX && n > len)
			n = len;
		if (on_data(ctx, r->buf + r->pos, n))
			return 1;
		r->pos += n;
		if (len != SIZE_MAX)
			len -= n;
	}
	return 0;
}

int api_client_stream(const char *sock_path, const char *method, const char *path, const char *body,
		      size_t body_len, int timeout_ms, int *status, api_client_data_fn on_data,
		      void *ctx, struct cove_err *err)
{
	int fd = api_client_connect(sock_path, err);
	if (fd < 0)
		return fd;
	char head[1024];
	int hl = snprintf(head, sizeof(head),
			  "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
			  "Accept: application/json\r\n%s"
			  "Content-Length: %zu\r\n\r\n",
			  method, path, body ? "Content-Type: application/json\r\n" : "",
			  body ? body_len : 0);
	int rc;
	if (hl < 0 || (size_t)hl >= sizeof(head)) {
		rc = cove_err_set(err, -E2BIG, "request path too long");
		goto out;
	}
	rc = write_all(fd, head, (size_t)hl);
	if (!rc && body && body_len)
		rc = write_all(fd, body, body_len);
	/* A server may answer before reading the whole body (413) and close: read its
	 * answer before reporting the broken send. */
	int send_rc = rc;
	if (rc && rc != -EPIPE && rc != -ECONNRESET) {
		cove_err_set(err, rc, "sending the request: %s", strerror(-rc));
		goto out;
	}
	struct reader *r = calloc(1, sizeof(*r));
	if (!r) {
		rc = cove_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	r->fd = fd;
	r->timeout_ms = timeout_ms;
	char line[MAX_HEADER];
	rc = read_line(r, line, sizeof(line));
	int st = 0;
	if (!rc && sscanf(line, "HTTP/1.%*d %d", &st) != 1)
		rc = -EPROTO;
	while (!rc && st == 100) { /* skip interim responses */
		while (!(rc = read_line(r, line, sizeof(line))) && line[0])
			;
		if (!rc)
			rc = read_line(r, line, sizeof(line));
		if (!rc && sscanf(line, "HTTP/1.%*d %d", &st) != 1)
			rc = -EPROTO;
	}
	size_t clen = SIZE_MAX;
	bool chunked = false;
	while (!rc) {
		rc = read_line(r, line, sizeof(line));
		if (rc || !line[0])
			break;
		if (strncasecmp(line, "Content-Length:", 15) == 0)
			clen = strtoull(line + 15, NULL, 10);
		else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 &&
			 strstr(line + 18, "chunked"))
			chunked = true;
	}
	if (rc && send_rc) {
		rc = send_rc;
		cove_err_set(err, rc, "sending the request: %s", strerror(-rc));
		goto out_r;
	}
	if (rc) {
		cove_err_set(err, rc, "reading the response from %s: %s", sock_path,
			     rc == -EPROTO ? "not HTTP" : strerror(-rc));
		goto out_r;
	}
	*status = st;
	if (strcmp(method, "HEAD") == 0 || st == 204 || st == 304) {
		rc = 0;
	} else if (chunked) {
		for (;;) {
			rc = read_line(r, line, sizeof(line));
			if (rc)
				break;
			char *end;
			unsigned long long n = strtoull(line, &end, 16);
			if (end == line || n > MAX_BODY) {
				rc = -EPROTO;
				break;
			}
			if (n == 0)
				break;
			rc = read_body(r, (size_t)n, on_data, ctx);
			if (rc)
				break;
			rc = read_line(r, line, sizeof(line));
			if (rc)
				break;
		}
	} else {
		rc = read_body(r, clen, on_data, ctx);
	}
	if (rc == 1)
		rc = 0; /* the callback stopped the transfer */
	else if (rc)
		cove_err_set(err, rc, "reading the response body: %s", strerror(-rc));
out_r:
	free(r);
out:
	close(fd);
	return rc;
}

struct accum {
	char *buf;
	size_t len, cap;
	bool overflow;
};

static int accum_data(void *ctx, const char *buf, size_t len)
{
	struct accum *a = ctx;
	if (len > MAX_BODY - a->len) {
		a->overflow = true;
		return 1;
	}
	if (a->len + len + 1 > a->cap) {
		size_t cap = a->cap ? a->cap : 4096;
		while (cap < a->len + len + 1)
			cap *= 2;
		char *nb = realloc(a->buf, cap);
		if (!nb) {
			a->overflow = true;
			return 1;
		}
		a->buf = nb;
		a->cap = cap;
	}
	memcpy(a->buf + a->len, buf, len);
	a->len += len;
	a->buf[a->len] = '\0';
	return 0;
}

int api_client_request(const char *sock_path, const char *method, const char *path,
		       const char *body, size_t body_len, int timeout_ms,
		       struct api_client_resp *out, struct cove_err *err)
{
	struct accum a = {0};
	int st = 0;
	int rc = api_client_stream(sock_path, method, path, body, body_len, timeout_ms, &st,
				   accum_data, &a, err);
	if (!rc && a.overflow)
		rc = cove_err_set(err, -E2BIG, "response too large");
	if (rc) {
		free(a.buf);
		return rc;
	}
	if (!a.buf)
		a.buf = calloc(1, 1);
	out->status = st;
	out->body = a.buf;
	out->len = a.len;
	return 0;
}

void api_client_resp_free(struct api_client_resp *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}
