/* Probe-guest test of virtio-vsock both ways: the guest connects to host port 1234, then the
 * host connects to the guest's port 5000 (Firecracker's Unix-socket host side in Cove). */
#include "probe.h"
#include "virtio.h"

#define HDR  44
#define RXSZ 4096
#define NRX  8

struct vs_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

static uint8_t *rxbuf_of[VQ_SIZE];
static uint64_t my_cid;
static struct vs_hdr stash; /* a connection request that came while waiting for another port */
static int stashed;
static uint32_t fwd; /* bytes received on the current connection */

static void vs_post(struct vdev *v, uint8_t *b)
{
	uint64_t a = (uint64_t)(uintptr_t)b;
	uint32_t l = RXSZ;
	int w = 1;
	int h = vq_add(v, 0, &a, &l, &w, 1, 0);
	if (h >= 0)
		rxbuf_of[h % VQ_SIZE] = b;
}

static int vs_send(struct vdev *v, uint32_t sp, uint32_t dp, uint16_t op, const char *data)
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
	h->flags = op == 4 ? 3 : 0;
	h->buf_alloc = 65536;
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
		uint8_t *b = rxbuf_of[e[0] % VQ_SIZE];
		if (!b || used < HDR)
			return -1;
		memcpy(h, b, HDR);
		size_t n = h->len < max - 1 ? h->len : max - 1;
		memcpy(data, b + HDR, n);
		data[n] = 0;
		vs_post(v, b);
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

int test_vvsock(char *d, size_t n)
{
	struct vdev v;
	dma_reset();
	fwd = 0;
	stashed = 0;
	if (vdev_find(19, 0, &v, d, n) || vdev_init(&v, 0, 3, d, n))
		return FAIL;
	my_cid = rd64(v.devcfg);
	for (int i = 0; i < NRX; i++)
		vs_post(&v, dma_alloc(RXSZ));
	uint8_t *ev = dma_alloc(8);
	uint64_t a = (uint64_t)(uintptr_t)ev;
	uint32_t l = 8;
	int w = 1;
	vq_add(&v, 2, &a, &l, &w, 1, 0);
	struct vs_hdr h;
	char data[128];
	/* Guest → host port 1234 (the host listens on PATH_1234). */
	if (vs_send(&v, 1025, 1234, 1, 0) || vs_recv(&v, 1025, 2, &h, data, sizeof(data), 5000)) {
		ksnprintf(d, n, "no answer to the connection request");
		goto fail;
	}
	if (h.op != 2) {
		ksnprintf(d, n, "host refused port 1234 (op %u)", h.op);
		goto fail;
	}
	if (vs_send(&v, 1025, 1234, 5, "hello-from-guest") ||
	    vs_recv(&v, 1025, 5, &h, data, sizeof(data), 5000) ||
	    strncmp(data, "host-echo:hello-from-guest", 26)) {
		ksnprintf(d, n, "guest-initiated stream: got '%s'", data);
		goto fail;
	}
	vs_send(&v, 1025, 1234, 4, 0);
	/* Host → guest port 5000: "CONNECT 5000" on the Unix socket becomes a request. */
	if (vs_recv(&v, 5000, 1, &h, data, sizeof(data), 20000) || h.dst_port != 5000) {
		ksnprintf(d, n, "no connection request from the host for port 5000");
		goto fail;
	}
	uint32_t hp = h.src_port;
	fwd = 0; /* fwd_cnt is per connection */
	if (vs_send(&v, 5000, hp, 2, 0) || vs_recv(&v, 5000, 5, &h, data, sizeof(data), 5000) ||
	    strncmp(data, "ping-from-host", 14)) {
		ksnprintf(d, n, "host-initiated stream: got '%s'", data);
		goto fail;
	}
	if (vs_send(&v, 5000, hp, 5, "guest-echo:ping-from-host")) {
		ksnprintf(d, n, "cannot answer the host");
		goto fail;
	}
	/* Give the host time to read before the reset closes its end. */
	vs_recv(&v, 5000, 4, &h, data, sizeof(data), 3000);
	ksnprintf(d, n,
		  "cid %lu; guest to host port 1234 and host to guest port 5000 (host port %u)",
		  my_cid, hp);
	vdev_reset(&v);
	return PASS;
fail:
	vdev_reset(&v);
	return FAIL;
}
