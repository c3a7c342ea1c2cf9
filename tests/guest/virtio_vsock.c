/* Probe-guest test of virtio-vsock both ways: the guest connects to host port 1234 and
 * half-closes (the host reads end of file and still answers), then the host connects to the
 * guest's port 5000 (Firecracker's Unix-socket host side in Cove), sends 64 KiB through 4 KiB
 * receive buffers as Linux posts them, and closes: the guest must see a SHUTDOWN saying so. */
#include "probe.h"
#include "virtio.h"

#define HDR    44
#define RXSZ   4096 /* payload of a split buffer; a one-piece buffer holds header and payload */
#define NRX    8
#define BULK   (64u << 10) /* what the host sends on port 5000 after the ping */
#define ALLOC  65536u	   /* our buf_alloc */
#define F_RCV  1	   /* VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE */
#define F_SEND 2	   /* VIRTIO_VSOCK_SHUTDOWN_F_SEND */

struct vs_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

static uint8_t *rxbuf[NRX];
static uint8_t rxbuf_of[VQ_SIZE]; /* chain head -> receive buffer index + 1 */
static uint64_t my_cid;
static struct vs_hdr stash; /* a connection request that came while waiting for another port */
static int stashed;
static uint32_t fwd; /* bytes received on the current connection */

/* Receive buffer i: even ones are header and payload in two descriptors (Linux 6.1), odd ones
 * one 4 KiB buffer (Linux 6.3 on); both in one HDR + RXSZ block, so parsing is the same. */
static void vs_post(struct vdev *v, unsigned i)
{
	uint64_t a[2] = {(uint64_t)(uintptr_t)rxbuf[i], (uint64_t)(uintptr_t)(rxbuf[i] + HDR)};
	uint32_t l[2] = {HDR, RXSZ};
	int w[2] = {1, 1};
	if (i % 2)
		l[0] = 4096;
	int h = vq_add(v, 0, a, l, w, i % 2 ? 1 : 2, 0);
	if (h >= 0)
		rxbuf_of[h % VQ_SIZE] = (uint8_t)(i + 1);
}

static int vs_send(struct vdev *v, uint32_t sp, uint32_t dp, uint16_t op, uint32_t flags,
		   const char *data)
{
	uint8_t *p = dma_alloc(HDR + 64);
	struct vs_hdr *h = (struct vs_hdr *)p;
	size_t len = data ? strlen(data) : 0;
	h->src_cid = my_cid;
	h->dst_cid = 2;
	h->src_port = sp;
	h->dst_port = dp;
	h->len = (uint32_t)len;
	h->type = 1;
	h->op = op;
	h->flags = flags;
	h->buf_alloc = ALLOC;
	h->fwd_cnt = fwd;
	memcpy(p + HDR, data, len);
	/* Header and payload in separate descriptors: the device must not assume a layout. */
	uint64_t a[2] = {(uint64_t)(uintptr_t)p, (uint64_t)(uintptr_t)(p + HDR)};
	uint32_t l[2] = {HDR, (uint32_t)len};
	int w[2] = {0, 0};
	uint32_t used;
	if (vq_add(v, 1, a, l, w, len ? 2 : 1, 0) < 0 || vq_wait(v, 1, &used, 2000))
		return -1;
	return 0;
}

/* Waits for a packet to guest port gport with op (or a reset); copies it out. */
static int vs_recv(struct vdev *v, uint32_t gport, uint16_t op, struct vs_hdr *h, char *data,
		   size_t max, unsigned ms)
{
	if (stashed && stash.dst_port == gport && stash.op == op) {
		*h = stash;
		data[0] = 0;
		stashed = 0;
		return 0;
	}
	for (int i = 0; i < 16; i++) {
		uint32_t used;
		if (vq_wait(v, 0, &used, ms))
			return -1;
		struct vq *q = &v->q[0];
		volatile uint32_t *e =
		    (volatile uint32_t *)(q->used + 2) + 2 * ((q->last_used - 1) % q->size);
		unsigned bi = rxbuf_of[e[0] % VQ_SIZE];
		if (!bi || used < HDR)
			return -1;
		uint8_t *b = rxbuf[bi - 1];
		memcpy(h, b, HDR);
		size_t n = h->len < max - 1 ? h->len : max - 1;
		memcpy(data, b + HDR, n);
		data[n] = 0;
		vs_post(v, bi - 1);
		if (h->op == 5)
			fwd += h->len;
		if (h->dst_port != gport && h->op == 1 && !stashed) {
			stash = *h; /* control packets may overtake data: keep it for later */
			stashed = 1;
			continue;
		}
		if (h->dst_port != gport || h->op == 6 || (h->op != op && h->op != 3))
			continue;
		return 0;
	}
	return -1;
}

/* The byte at offset i of what the host sends after the ping (vsock_host.py makes the same). */
static uint8_t bulk_byte(uint32_t i)
{
	return (uint8_t)((i * 7) ^ (i >> 9));
}

/* Receives the host's BULK bytes on guest port 5000 and checks each one, giving credit back
 * every 16 KiB as Linux does, up to the SHUTDOWN that must follow them. Returns 0 with that
 * SHUTDOWN's flags, the packet count and the largest payload, or -1 with the reason in d. */
static int vs_bulk(struct vdev *v, uint32_t hp, uint32_t *flags, unsigned *packets,
		   uint32_t *largest, char *d, size_t n)
{
	uint32_t got = 0, told = fwd;
	*packets = 0;
	*largest = 0;
	for (;;) {
		uint32_t used;
		if (vq_wait(v, 0, &used, 5000)) {
			ksnprintf(d, n, "host to guest: %u of %u bytes, then nothing", got, BULK);
			return -1;
		}
		struct vq *q = &v->q[0];
		volatile uint32_t *e =
		    (volatile uint32_t *)(q->used + 2) + 2 * ((q->last_used - 1) % q->size);
		unsigned bi = rxbuf_of[e[0] % VQ_SIZE];
		if (!bi || used < HDR) {
			ksnprintf(d, n, "host to guest: used entry %u of %u bytes", e[0], used);
			return -1;
		}
		uint8_t *b = rxbuf[bi - 1];
		struct vs_hdr h;
		memcpy(&h, b, HDR);
		uint32_t room = (bi - 1) % 2 ? 4096 - HDR : RXSZ;
		if (h.dst_port != 5000 || h.src_port != hp) {
			vs_post(v, bi - 1); /* another connection's packet: not ours */
			continue;
		}
		if (h.op == 4) {
			vs_post(v, bi - 1);
			if (got != BULK) {
				ksnprintf(d, n, "host to guest: SHUTDOWN after %u of %u bytes", got,
					  BULK);
				return -1;
			}
			*flags = h.flags;
			return 0;
		}
		if (h.op != 5 || h.len != used - HDR || h.len > room || got + h.len > BULK) {
			ksnprintf(d, n,
				  "host to guest after %u bytes: op %u len %u (used %u, room %u)",
				  got, h.op, h.len, used, room);
			return -1;
		}
		for (uint32_t i = 0; i < h.len; i++)
			if (b[HDR + i] != bulk_byte(got + i)) {
				ksnprintf(d, n, "host to guest: byte %u is %#x, want %#x", got + i,
					  b[HDR + i], bulk_byte(got + i));
				return -1;
			}
		got += h.len;
		fwd += h.len;
		(*packets)++;
		if (h.len > *largest)
			*largest = h.len;
		vs_post(v, bi - 1);
		if (fwd - told >= 16384) { /* our buffer is free again: tell the host */
			if (vs_send(v, 5000, hp, 6, 0, 0)) {
				ksnprintf(d, n, "cannot send a credit update");
				return -1;
			}
			told = fwd;
		}
	}
}

int test_vvsock(char *d, size_t n)
{
	struct vdev v;
	dma_reset();
	fwd = 0;
	stashed = 0;
	if (vdev_find(19, 0, &v, d, n) || vdev_init(&v, 0, 3, d, n))
		return FAIL;
	my_cid = rd64(v.devcfg);
	for (int i = 0; i < NRX; i++) {
		rxbuf[i] = dma_alloc(HDR + RXSZ);
		vs_post(&v, (unsigned)i);
	}
	uint8_t *ev = dma_alloc(8);
	uint64_t a = (uint64_t)(uintptr_t)ev;
	uint32_t l = 8;
	int w = 1;
	vq_add(&v, 2, &a, &l, &w, 1, 0);
	struct vs_hdr h;
	char data[128];
	/* Guest → host port 1234 (the host listens on PATH_1234). */
	if (vs_send(&v, 1025, 1234, 1, 0, 0) ||
	    vs_recv(&v, 1025, 2, &h, data, sizeof(data), 5000)) {
		ksnprintf(d, n, "no answer to the connection request");
		goto fail;
	}
	if (h.op != 2) {
		ksnprintf(d, n, "host refused port 1234 (op %u)", h.op);
		goto fail;
	}
	if (vs_send(&v, 1025, 1234, 5, 0, "hello-from-guest") ||
	    vs_recv(&v, 1025, 5, &h, data, sizeof(data), 5000) ||
	    strncmp(data, "host-echo:hello-from-guest", 26)) {
		ksnprintf(d, n, "guest-initiated stream: got '%s'", data);
		goto fail;
	}
	/* A half-close: we send no more, the host reads end of file and still answers. */
	if (vs_send(&v, 1025, 1234, 4, F_SEND, 0) ||
	    vs_recv(&v, 1025, 5, &h, data, sizeof(data), 5000) || h.op != 5 ||
	    strncmp(data, "after-eof", 9)) {
		ksnprintf(d, n, "after our SHUTDOWN(SEND): op %u '%s', want the host's 'after-eof'",
			  h.op, data);
		goto fail;
	}
	if (vs_send(&v, 1025, 1234, 4, F_RCV | F_SEND, 0) ||
	    vs_recv(&v, 1025, 3, &h, data, sizeof(data), 5000)) {
		ksnprintf(d, n, "no RST for our full SHUTDOWN");
		goto fail;
	}
	/* Host → guest port 5000: "CONNECT 5000" on the Unix socket becomes a request. */
	if (vs_recv(&v, 5000, 1, &h, data, sizeof(data), 20000) || h.dst_port != 5000) {
		ksnprintf(d, n, "no connection request from the host for port 5000");
		goto fail;
	}
	uint32_t hp = h.src_port;
	fwd = 0; /* fwd_cnt is per connection */
	if (vs_send(&v, 5000, hp, 2, 0, 0) || vs_recv(&v, 5000, 5, &h, data, sizeof(data), 5000) ||
	    strncmp(data, "ping-from-host", 14)) {
		ksnprintf(d, n, "host-initiated stream: got '%s'", data);
		goto fail;
	}
	if (vs_send(&v, 5000, hp, 5, 0, "guest-echo:ping-from-host")) {
		ksnprintf(d, n, "cannot answer the host");
		goto fail;
	}
	/* 64 KiB through 4 KiB buffers, then the host closes: SHUTDOWN, both directions. */
	uint32_t flags, largest;
	unsigned packets;
	if (vs_bulk(&v, hp, &flags, &packets, &largest, d, n))
		goto fail;
	if (flags != (F_RCV | F_SEND)) {
		ksnprintf(d, n, "SHUTDOWN flags %u after the host closed, want 3 (RCV|SEND)",
			  flags);
		goto fail;
	}
	vs_send(&v, 5000, hp, 3, 0, 0);
	ksnprintf(d, n,
		  "cid %lu; guest to host port 1234 (half-closed), host to guest port 5000 (host "
		  "port %u): 64 KiB in %u packets of up to %u bytes, SHUTDOWN flags %u",
		  my_cid, hp, packets, largest, flags);
	vdev_reset(&v);
	return PASS;
fail:
	vdev_reset(&v);
	return FAIL;
}
