/* WebSocket (RFC 6455) pieces: the handshake key, and frame encoding/decoding on an fd. */
#ifndef COVE_API_WS_H
#define COVE_API_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum ws_opcode {
	WS_CONT = 0x0,
	WS_TEXT = 0x1,
	WS_BINARY = 0x2,
	WS_CLOSE = 0x8,
	WS_PING = 0x9,
	WS_PONG = 0xA,
};

#define WS_MAX_PAYLOAD (64 * 1024)

/* Computes Sec-WebSocket-Accept (28 chars + NUL) for a client's Sec-WebSocket-Key. */
void ws_accept_key(const char *client_key, char out[29]);

/* SHA-1 of data (20 bytes out) and base64 (out must hold 4*ceil(n/3)+1). */
void ws_sha1(const void *data, size_t len, uint8_t out[20]);
void ws_base64(const uint8_t *in, size_t n, char *out);

/* Writes one frame; mask true for client-to-server frames. Returns 0 or -errno. */
int ws_send(int fd, enum ws_opcode op, const void *data, size_t len, bool mask);

/*
 * Reads one frame into buf[cap] (unmasking it); *len gets its size, *op its opcode.
 * Frames larger than cap or WS_MAX_PAYLOAD fail with -EMSGSIZE; fragments are returned
 * as they come (op WS_CONT). Returns 0, -ECONNRESET at EOF, or -errno.
 */
int ws_recv(int fd, enum ws_opcode *op, uint8_t *buf, size_t cap, size_t *len);

/* ws_recv, but the whole frame must arrive within timeout_ms (0: no limit), else
 * -ETIMEDOUT: a peer that sends half a frame cannot hold the reader. */
int ws_recv_within(int fd, enum ws_opcode *op, uint8_t *buf, size_t cap, size_t *len,
		   int timeout_ms);

#endif
