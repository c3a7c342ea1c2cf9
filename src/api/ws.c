/* WebSocket framing and handshake (RFC 6455), with the SHA-1 and base64 it needs. */
#include "api/ws.h"
#include "util/clock.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint32_t rol(uint32_t v, int n)
{
	return (v << n) | (v >> (32 - n));
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
	uint32_t w[80];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 80; i++)
		w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
	for (int i = 0; i < 80; i++) {
		uint32_t f, k;
		if (i < 20) {
			f = (b & c) | (~b & d);
			k = 0x5A827999;
		} else if (i < 40) {
			f = b ^ c ^ d;
			k = 0x6ED9EBA1;
		} else if (i < 60) {
			f = (b & c) | (b & d) | (c & d);
			k = 0x8F1BBCDC;
		} else {
			f = b ^ c ^ d;
			k = 0xCA62C1D6;
		}
		uint32_t t = rol(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = rol(b, 30);
		b = a;
		a = t;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
}

void ws_sha1(const void *data, size_t len, uint8_t out[20])
{
	uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
	const uint8_t *p = data;
	size_t n = len;
	while (n >= 64) {
		sha1_block(h, p);
		p += 64;
		n -= 64;
	}
	uint8_t tail[128] = {0};
	memcpy(tail, p, n);
	tail[n] = 0x80;
	size_t tl = n + 1 + 8 <= 64 ? 64 : 128;
	uint64_t bits = (uint64_t)len * 8;
	for (int i = 0; i < 8; i++)
		tail[tl - 1 - i] = (uint8_t)(bits >> (8 * i));
	sha1_block(h, tail);
	if (tl == 128)
		sha1_block(h, tail + 64);
	for (int i = 0; i < 5; i++) {
		out[4 * i] = (uint8_t)(h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(h[i] >> 8);
		out[4 * i + 3] = (uint8_t)h[i];
	}
}

void ws_base64(const uint8_t *in, size_t n, char *out)
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = tbl[(v >> 18) & 63];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? tbl[v & 63] : '=';
	}
	out[o] = '\0';
}

void ws_accept_key(const char *client_key, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	char buf[128 + sizeof(guid)];
	size_t kl = strnlen(client_key, 128);
	memcpy(buf, client_key, kl);
	memcpy(buf + kl, guid, sizeof(guid) - 1);
	uint8_t d[20];
	ws_sha1(buf, kl + sizeof(guid) - 1, d);
	ws_base64(d, 20, out);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads len bytes; with a deadline (monotonic ms, 0: none), -ETIMEDOUT once it passes. */
static int read_all(int fd, void *buf, size_t len, int64_t deadline)
{
	uint8_t *p = buf;
	while (len) {
		if (deadline) {
			int64_t left = deadline - clock_mono_ms();
			struct pollfd pf = {.fd = fd, .events = POLLIN};
			int r = left > 0 ? poll(&pf, 1, (int)left) : 0;
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return -errno;
			if (r == 0)
				return -ETIMEDOUT;
		}
		ssize_t n = recv(fd, p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ws_send(int fd, enum ws_opcode op, const void *data, size_t len, bool mask)
{
	if (len > WS_MAX_PAYLOAD)
		return -EMSGSIZE;
	uint8_t hdr[14];
	size_t hl = 0;
	hdr[hl++] = (uint8_t)(0x80 | op);
	uint8_t m = mask ? 0x80 : 0;
	if (len < 126) {
		hdr[hl++] = (uint8_t)(m | len);
	} else {
		hdr[hl++] = m | 126;
		hdr[hl++] = (uint8_t)(len >> 8);
		hdr[hl++] = (uint8_t)len;
	}
	uint8_t key[4] = {0};
	if (mask) {
		if (getrandom(key, sizeof(key), 0) != sizeof(key))
			return -EIO;
		memcpy(hdr + hl, key, 4);
		hl += 4;
	}
	uint8_t *frame = malloc(hl + len);
	if (!frame)
		return -ENOMEM;
	memcpy(frame, hdr, hl);
	const uint8_t *d = data;
	for (size_t i = 0; i < len; i++)
		frame[hl + i] = mask ? d[i] ^ key[i & 3] : d[i];
	int rc = write_all(fd, frame, hl + len);
	free(frame);
	return rc;
}

int ws_recv(int fd, enum ws_opcode *op, uint8_t *buf, size_t cap, size_t *len)
{
	return ws_recv_within(fd, op, buf, cap, len, 0);
}

int ws_recv_within(int fd, enum ws_opcode *op, uint8_t *buf, size_t cap, size_t *len,
		   int timeout_ms)
{
	int64_t dl = timeout_ms > 0 ? clock_mono_ms() + timeout_ms : 0;
	uint8_t h[2];
	int rc = read_all(fd, h, 2, dl);
	if (rc)
		return rc;
	*op = (enum ws_opcode)(h[0] & 0x0F);
	bool masked = h[1] & 0x80;
	uint64_t n = h[1] & 0x7F;
	if (n == 126) {
		uint8_t e[2];
		if ((rc = read_all(fd, e, 2, dl)))
			return rc;
		n = (uint64_t)e[0] << 8 | e[1];
	} else if (n == 127) {
		uint8_t e[8];
		if ((rc = read_all(fd, e, 8, dl)))
			return rc;
		n = 0;
		for (int i = 0; i < 8; i++)
			n = n << 8 | e[i];
	}
	if (n > cap || n > WS_MAX_PAYLOAD)
		return -EMSGSIZE;
	uint8_t key[4] = {0};
	if (masked && (rc = read_all(fd, key, 4, dl)))
		return rc;
	if ((rc = read_all(fd, buf, (size_t)n, dl)))
		return rc;
	if (masked)
		for (size_t i = 0; i < n; i++)
			buf[i] ^= key[i & 3];
	*len = (size_t)n;
	return 0;
}
