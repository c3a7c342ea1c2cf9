/* Probe-guest test of virtio-vsock both ways: the guest connects to host port 1234 and
 * half-closes (the host reads end of file and still answers), then the host connects to the
 * guest's port 5000 (Firecracker's Unix-socket host side in Cove), sends 64 KiB through 4 KiB
 * receive buffers as Linux posts them, and closes: the guest must see a SHUTDOWN saying so.
 * Last the guest sends 512 KiB to host port 1235, whose reader sleeps first and then reads
 * slowly: within the device's credit, without a RST, then a full SHUTDOWN. */
#include "probe.h"
#include "virtio.h"

#define HDR    44
#define RXSZ   4096 /* payload of a split buffer; a one-piece buffer holds header and payload */
#define NRX    8
#define BULK   (64u << 10)  /* what the host sends on port 5000 after the ping */
#define UPLOAD (512u << 10) /* what the guest sends to host port 1235 */
#define CHUNK  4096u	    /* UPLOAD is chunks of this size: their number, then a pattern */
#define ALLOC  65536u	    /* our buf_alloc */
#define F_RCV  1	    /* VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE */
#define F_SEND 2	    /* VIRTIO_VSOCK_SHUTDOWN_F_SEND */

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

/* Byte j (4 and on) of each CHUNK of UPLOAD; bytes 0-3 are the chunk's number (vsock_host.py
 * makes the same). */
static uint8_t chunk_byte(uint32_t j)
{
	return (uint8_t)((j * 7) ^ (j >> 5));
}

/* Takes the next packet from the receive queue (waiting up to ms) into h; its buffer goes back
 * to the device. Returns 0, or -1 when none came. */
static int vs_take(struct vdev *v, struct vs_hdr *h, unsigned ms)
{
	uint32_t used;
	if (vq_wait(v, 0, &used, ms))
		return -1;
	struct vq *q = &v->q[0];
	volatile uint32_t *e =
	    (volatile uint32_t *)(q->used + 2) + 2 * ((q->last_used - 1) % q->size);
	unsigned bi = rxbuf_of[e[0] % VQ_SIZE];
	if (!bi || used < HDR)
		return -1;
	memcpy(h, rxbuf[bi - 1], HDR);
	vs_post(v, bi - 1);
	return 0;
}

/* An RW packet of len bytes at data from guest port sp to host port dp (header in hb). */
static int vs_send_data(struct vdev *v, uint8_t *hb, uint32_t sp, uint32_t dp, uint8_t *data,
			uint32_t len)
{
	struct vs_hdr *h = (struct vs_hdr *)hb;
	*h = (struct vs_hdr){my_cid, 2, sp, dp, len, 1, 5, 0, ALLOC, 0};
	uint64_t a[2] = {(uint64_t)(uintptr_t)hb, (uint64_t)(uintptr_t)data};
	uint32_t l[2] = {HDR, len};
	int w[2] = {0, 0};
	uint32_t used;
	if (vq_add(v, 1, a, l, w, 2, 0) < 0 || vq_wait(v, 1, &used, 2000))
		return -1;
	return 0;
}

/* Guest → host port 1235: UPLOAD bytes to a host that reads nothing for a second, then slowly.
 * Sends only within the device's credit (buf_alloc - (sent - fwd_cnt), from every packet it
 * sends us) and waits for its credit updates; a RST before the end fails. Then a full SHUTDOWN,
 * which the device answers with a RST once the host has everything (its fwd_cnt says so).
 * *waits: how often the guest ran out of credit. */
static int vs_upload(struct vdev *v, unsigned *waits, char *d, size_t n)
{
	uint8_t *hb = dma_alloc(HDR), *chunk = dma_alloc(CHUNK);
	if (!hb || !chunk) {
		ksnprintf(d, n, "out of DMA memory");
		return -1;
	}
	for (uint32_t j = 4; j < CHUNK; j++)
		chunk[j] = chunk_byte(j);
	struct vs_hdr h;
	char data[16];
	fwd = 0;
	if (vs_send(v, 1026, 1235, 1, 0, 0) || vs_recv(v, 1026, 2, &h, data, sizeof(data), 5000) ||
	    h.op != 2) {
		ksnprintf(d, n, "no RESPONSE from host port 1235");
		return -1;
	}
	uint32_t ba = h.buf_alloc, peer_fwd = h.fwd_cnt, sent = 0;
	*waits = 0;
	while (sent < UPLOAD) {
		/* The device's packets: credit updates (or a RST, which fails); without credit,
		 * the guest waits for them. */
		*waits += ba - (sent - peer_fwd) == 0;
		while (!vs_take(v, &h, ba - (sent - peer_fwd) ? 0 : 5000)) {
			if (h.dst_port != 1026 || h.src_port != 1235)
				continue;
			if (h.op == 3) {
				ksnprintf(d, n,
					  "guest to host: RST after %u of %u bytes (fwd_cnt %u)",
					  sent, UPLOAD, peer_fwd);
				return -1;
			}
			ba = h.buf_alloc;
			peer_fwd = h.fwd_cnt;
		}
		uint32_t credit = ba - (sent - peer_fwd);
		if (!credit) {
			ksnprintf(d, n,
				  "guest to host: no credit after %u of %u bytes (fwd_cnt %u)",
				  sent, UPLOAD, peer_fwd);
			return -1;
		}
		uint32_t off = sent % CHUNK, len = CHUNK - off;
		if (len > credit)
			len = credit;
		if (!off) {
			uint32_t k = sent / CHUNK;
			memcpy(chunk, &k, 4);
		}
		if (vs_send_data(v, hb, 1026, 1235, chunk + off, len)) {
			ksnprintf(d, n, "guest to host: cannot send after %u bytes", sent);
			return -1;
		}
		sent += len;
	}
	if (vs_send(v, 1026, 1235, 4, F_RCV | F_SEND, 0)) {
		ksnprintf(d, n, "guest to host: cannot send the SHUTDOWN");
		return -1;
	}
	for (;;) {
		if (vs_take(v, &h, 10000)) {
			ksnprintf(d, n, "guest to host: no RST after our SHUTDOWN");
			return -1;
		}
		if (h.dst_port == 1026 && h.src_port == 1235 && h.op == 3)
			break;
	}
	if (h.fwd_cnt != UPLOAD) {
		ksnprintf(d, n, "guest to host: RST with fwd_cnt %u of %u", h.fwd_cnt, UPLOAD);
		return -1;
	}
	return 0;
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
	unsigned waits;
	if (vs_upload(&v, &waits, d, n))
		goto fail;
	ksnprintf(d, n,
		  "cid %lu; to host 1234, half-closed; from host 5000 (port %u): 64 KiB in %u "
		  "packets of <= %u bytes, SHUTDOWN %u; 512 KiB to host 1235, %u credit waits",
		  my_cid, hp, packets, largest, flags, waits);
	vdev_reset(&v);
	return PASS;
fail:
	vdev_reset(&v);
	return FAIL;
}
