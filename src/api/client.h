/* A small HTTP/1.1 client over Unix sockets, for covectl, coved and the tests. */
#ifndef COVE_API_CLIENT_H
#define COVE_API_CLIENT_H

#include <cove/error.h>

#include <stddef.h>

struct api_client_resp {
	int status;
	char *body; /* malloc'd, NUL-terminated; the caller frees */
	size_t len;
};

/* Receives body bytes as they arrive; a nonzero return stops the transfer. */
typedef int (*api_client_data_fn)(void *ctx, const char *buf, size_t len);

/* Connects to a Unix socket. Returns the fd or -errno (err says "is coved running?"-style
 * context is the caller's job). */
int api_client_connect(const char *sock_path, struct cove_err *err);

/*
 * Sends one request (body may be NULL) and reads the whole response into out, up to
 * 64 MiB. timeout_ms bounds each wait for data (0: none). Returns 0 or -errno.
 */
int api_client_request(const char *sock_path, const char *method, const char *path,
		       const char *body, size_t body_len, int timeout_ms,
		       struct api_client_resp *out, struct cove_err *err);

/*
 * Like api_client_request but hands the body to on_data as it arrives (for streams);
 * *status gets the HTTP status. Handles Content-Length, chunked and close-delimited bodies.
 */
int api_client_stream(const char *sock_path, const char *method, const char *path, const char *body,
		      size_t body_len, int timeout_ms, int *status, api_client_data_fn on_data,
		      void *ctx, struct cove_err *err);

void api_client_resp_free(struct api_client_resp *r);

#endif
