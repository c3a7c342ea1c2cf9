/* Probe-guest tests of virtio-net: a UDP datagram out through the host's tap to a listener in
 * the test's network namespace, and its answer back, with checksum offload when offered; and
 * the same through each of several queue pairs, switched on through the control queue. */
#include "probe.h"
#include "virtio.h"

#define NET_F_CSUM	(1ULL << 0)
#define NET_F_MAC	(1ULL << 5)
#define NET_F_MRG_RXBUF (1ULL << 15)
#define NET_F_STATUS	(1ULL << 16)
#define NET_F_CTRL_VQ	(1ULL << 17)
#define NET_F_MQ	(1ULL << 22)
#define F_EVENT_IDX	(1ULL << 29)
#define HDR		12
#define RXBUF		2048
#define NRX		16

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int parse_mac(const char *s, size_t n, uint8_t mac[6])
{
	if (n != 17)
		return -1;
	for (int i = 0; i < 6; i++) {
		int h = hexval(s[3 * i]), l = hexval(s[3 * i + 1]);
		if (h < 0 || l < 0 || (i < 5 && s[3 * i + 2] != ':'))
			return -1;
		mac[i] = (uint8_t)(h << 4 | l);
	}
	return 0;
}

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xFFFF) + (s >> 16);
	return (uint16_t)s;
}

static void put16be(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint8_t *buf_of[VQ_MAX][VQ_SIZE]; /* receive buffer by queue and descriptor head */

static void post_rx(struct vdev *v, unsigned q, uint8_t *buf)
{
	uint64_t a = (uint64_t)(uintptr_t)buf;
	uint32_t l = RXBUF;
	int w = 1;
	int head = vq_add(v, q, &a, &l, &w, 1, 0);
	if (head >= 0)
		buf_of[q][head % VQ_SIZE] = buf;
}

/* The buffer of the used entry vq_wait just returned on queue q (NULL: never posted). */
static uint8_t *rx_last(struct vdev *v, unsigned q)
{
	struct vq *vq = &v->q[q];
	volatile uint32_t *e =
	    (volatile uint32_t *)(vq->used + 2) + 2 * ((vq->last_used - 1) % vq->size);
	return buf_of[q][e[0] % VQ_SIZE];
}

/* Writes vnet header + Ethernet + IPv4 + UDP sport -> 10.77.0.1:7777 carrying payload into f;
 * the host (tap) completes the UDP checksum when offload. Returns the Ethernet frame's length
 * (without the header). */
static size_t udp_frame(uint8_t *f, const uint8_t mac[6], const uint8_t peer[6], uint16_t sport,
			const char *payload, int offload)
{
	uint8_t *eth = f + HDR, *ip = eth + 14, *udp = ip + 20, *pl = udp + 8;
	size_t plen = strlen(payload);
	memset(f, 0, HDR + 14 + 20 + 8);
	memcpy(pl, payload, plen);
	memcpy(eth, peer, 6);
	memcpy(eth + 6, mac, 6);
	put16be(eth + 12, 0x0800);
	ip[0] = 0x45;
	put16be(ip + 2, (uint16_t)(20 + 8 + plen));
	ip[8] = 64;
	ip[9] = 17;
	static const uint8_t src[4] = {10, 77, 0, 2}, dst[4] = {10, 77, 0, 1};
	memcpy(ip + 12, src, 4);
	memcpy(ip + 16, dst, 4);
	put16be(ip + 10, (uint16_t)~fold(sum16(ip, 20, 0)));
	put16be(udp, sport);
	put16be(udp + 2, 7777);
	put16be(udp + 4, (uint16_t)(8 + plen));
	uint32_t pseudo = sum16(ip + 12, 8, 0) + 17 + 8 + (uint32_t)plen;
	if (offload) {
		/* The host (tap) completes the checksum from csum_start, at csum_offset. */
		f[0] = 1; /* VIRTIO_NET_HDR_F_NEEDS_CSUM */
		*(uint16_t *)(f + 6) = 14 + 20;
		*(uint16_t *)(f + 8) = 6;
		put16be(udp + 6, fold(pseudo));
	} else {
		uint16_t c = (uint16_t)~fold(sum16(udp, 8 + plen, pseudo));
		put16be(udp + 6, c ? c : 0xFFFF);
	}
	return 14 + 20 + 8 + plen;
}

/* A UDP answer from 10.77.0.1:7777 to port dport whose payload starts with prefix? Returns
 * the payload (or NULL). */
static const uint8_t *udp_answer(const uint8_t *b, uint32_t len, uint16_t dport, const char *prefix)
{
	size_t pn = strlen(prefix);
	const uint8_t *re = b + HDR, *rip = re + 14, *rudp = rip + 20;
	if (len < HDR + 14 + 20 + 8 + pn || re[12] != 8 || re[13] != 0 || rip[9] != 17 ||
	    rudp[0] != 0x1E || rudp[1] != 0x61 || rudp[2] != (uint8_t)(dport >> 8) ||
	    rudp[3] != (uint8_t)dport || memcmp(rudp + 8, prefix, pn))
		return NULL;
	return rudp + 8;
}

/* The MAC the device offers (checked against probe.net_mac) and the tap's (probe.net_peer). */
static int macs(struct vdev *v, uint8_t mac[6], uint8_t peer[6], char *d, size_t n)
{
	for (int i = 0; i < 6; i++)
		mac[i] = rd8(v->devcfg + i);
	size_t len;
	const char *s = cmdline_get("probe.net_mac", &len);
	uint8_t want[6];
	if (s && (parse_mac(s, len, want) || memcmp(want, mac, 6))) {
		ksnprintf(d, n, "MAC %02x:%02x:%02x:%02x:%02x:%02x is not the host's", mac[0],
			  mac[1], mac[2], mac[3], mac[4], mac[5]);
		return -1;
	}
	s = cmdline_get("probe.net_peer", &len);
	if (!s || parse_mac(s, len, peer)) {
		ksnprintf(d, n, "no probe.net_peer=MAC (the tap's address)");
		return -1;
	}
	if ((v->features & NET_F_STATUS) && !(rd16(v->devcfg + 6) & 1)) {
		ksnprintf(d, n, "link is down");
		return -1;
	}
	return 0;
}

int test_vnet(char *d, size_t n)
{
	struct vdev v;
	dma_reset();
	if (vdev_find(1, 0, &v, d, n) ||
	    vdev_init(&v, NET_F_CSUM | NET_F_MAC | NET_F_MRG_RXBUF | NET_F_STATUS | F_EVENT_IDX, 2,
		      d, n))
		return FAIL;
	uint8_t mac[6], peer[6];
	if (macs(&v, mac, peer, d, n))
		goto fail;
	uint8_t *rxb[NRX];
	for (int i = 0; i < NRX; i++) {
		rxb[i] = dma_alloc(RXBUF);
		post_rx(&v, 0, rxb[i]);
	}
	/* "cove-ping-<tsc>" from port 4444. */
	uint8_t *f = dma_alloc(HDR + 14 + 20 + 8 + 32);
	char payload[32];
	uint32_t nonce = (uint32_t)rdtsc();
	ksnprintf(payload, sizeof(payload), "cove-ping-%08x", nonce);
	int offload = (v.features & NET_F_CSUM) != 0;
	size_t flen = udp_frame(f, mac, peer, 4444, payload, offload);
	/* Header and frame in separate descriptors (Linux puts them together: both work). */
	uint64_t a[2] = {(uint64_t)(uintptr_t)f, (uint64_t)(uintptr_t)(f + HDR)};
	uint32_t l[2] = {HDR, (uint32_t)flen};
	int w[2] = {0, 0};
	uint32_t used;
	if (vq_add(&v, 1, a, l, w, 2, 0) < 0 || vq_wait(&v, 1, &used, 2000)) {
		ksnprintf(d, n, "transmit did not complete");
		goto fail;
	}
	/* Wait for the answer; other frames (if any) are skipped and their buffers reposted. */
	int seen = 0;
	for (int tries = 0; tries < 32; tries++) {
		if (vq_wait(&v, 0, &used, 5000)) {
			ksnprintf(d, n, "no answer from the host (%d other frames)", seen);
			goto fail;
		}
		uint8_t *b = rx_last(&v, 0);
		if (!b) {
			ksnprintf(d, n, "a used id was never posted");
			goto fail;
		}
		uint16_t nbuf = (uint16_t)(b[10] | b[11] << 8);
		const uint8_t *ans = udp_answer(b, used, 4444, "cove-pong-");
		if (ans) {
			if (memcmp(ans + 10, payload + 10, 8)) {
				ksnprintf(d, n, "answer carries another nonce");
				goto fail;
			}
			if (nbuf != 1) {
				ksnprintf(d, n, "num_buffers %u for a small frame", nbuf);
				goto fail;
			}
			ksnprintf(d, n,
				  "UDP out and back through the tap; %s checksum; %d other frames",
				  offload ? "offloaded" : "guest", seen);
			vdev_reset(&v);
			return PASS;
		}
		seen++;
		post_rx(&v, 0, b);
	}
	ksnprintf(d, n, "no answer among %d frames", seen);
fail:
	vdev_reset(&v);
	return FAIL;
}

/* One control command: class, command and le16 data (ndata bytes, 1 or 2) in readable
 * descriptors the way Linux splits them, the ack in a writable one. Returns the ack, or -1
 * when the device did not use the chain. */
static int ctrl_cmd(struct vdev *v, unsigned cq, uint8_t cls, uint8_t cmd, uint16_t data,
		    uint32_t ndata)
{
	uint8_t *m = dma_alloc(8);
	if (!m)
		return -1;
	m[0] = cls, m[1] = cmd, m[2] = (uint8_t)data, m[3] = (uint8_t)(data >> 8), m[4] = 0xEE;
	uint64_t a[3] = {(uint64_t)(uintptr_t)m, (uint64_t)(uintptr_t)(m + 2),
			 (uint64_t)(uintptr_t)(m + 4)};
	uint32_t l[3] = {2, ndata, 1}, used;
	int w[3] = {0, 0, 1};
	if (vq_add(v, cq, a, l, w, 3, 0) < 0 || vq_wait(v, cq, &used, 2000))
		return -1;
	return m[4];
}

#define MQ_NRX 4 /* receive buffers per pair */

/*
 * Several queue pairs (VIRTIO_NET_F_MQ): the driver asks for all max_virtqueue_pairs through
 * the control queue (after refused requests for 0 and max + 1 pairs, and a receive-mode
 * command of a feature it did not negotiate, which must get an answer), then sends one datagram
 * from port 5000 + p on each pair p's transmit queue. The host answers each; the tap steers an
 * answer to the queue its flow left from, so each must come back on the same pair's receive queue,
 * each receive queue raising its own MSI-X vector.
 */
int test_vnet_mq(char *d, size_t n)
{
	struct vdev v;
	dma_reset();
	uint64_t want = NET_F_CSUM | NET_F_MAC | NET_F_MRG_RXBUF | NET_F_STATUS | NET_F_CTRL_VQ |
			NET_F_MQ | F_EVENT_IDX;
	if (vdev_find(1, 0, &v, d, n) || vdev_init(&v, want, 1, d, n))
		return FAIL;
	if (!(v.features & NET_F_MQ) || !(v.features & NET_F_CTRL_VQ)) {
		vdev_reset(&v);
		ksnprintf(d, n, "the NIC has one queue pair (start it with queues=N)");
		return SKIP;
	}
	unsigned np = rd16(v.devcfg + 8);
	if (np < 2 || 2 * np + 1 > VQ_MAX) {
		vdev_reset(&v);
		ksnprintf(d, n, "max_virtqueue_pairs %u: the probe drives 2 to %u", np,
			  (VQ_MAX - 1) / 2);
		return FAIL;
	}
	dma_reset();
	unsigned cq = 2 * np;
	if (vdev_init(&v, want, cq + 1, d, n))
		return FAIL;
	uint8_t mac[6], peer[6];
	if (macs(&v, mac, peer, d, n))
		goto fail;
	int r0 = ctrl_cmd(&v, cq, 4, 0, 0, 2), r1 = ctrl_cmd(&v, cq, 4, 0, (uint16_t)(np + 1), 2);
	/* CTRL_RX promisc without CTRL_RX negotiated: the spec leaves the answer to the device
	 * (Cove says ERR, QEMU OK); it must answer and go on. */
	int r2 = ctrl_cmd(&v, cq, 0, 0, 1, 1);
	if (r0 != 1 || r1 != 1 || (r2 != 0 && r2 != 1)) {
		ksnprintf(d, n,
			  "control acks %d %d for 0 and %u pairs (want ERR, 1), %d for promisc", r0,
			  r1, np + 1, r2);
		goto fail;
	}
	int r = ctrl_cmd(&v, cq, 4, 0, (uint16_t)np, 2);
	if (r != 0) {
		ksnprintf(d, n, "VQ_PAIRS_SET %u: ack %d", np, r);
		goto fail;
	}
	for (unsigned p = 0; p < np; p++)
		for (int i = 0; i < MQ_NRX; i++)
			post_rx(&v, 2 * p, dma_alloc(RXBUF));
	uint64_t irq0[VQ_MAX];
	for (unsigned q = 0; q < VQ_MAX; q++)
		irq0[q] = virtio_irqs[q];
	__asm__ volatile("sti");
	uint32_t nonce = (uint32_t)rdtsc();
	int offload = (v.features & NET_F_CSUM) != 0;
	char payload[40];
	for (unsigned p = 0; p < np; p++) {
		uint8_t *f = dma_alloc(HDR + 14 + 20 + 8 + sizeof(payload));
		ksnprintf(payload, sizeof(payload), "cove-mq-%u-%08x", p, nonce);
		size_t flen = udp_frame(f, mac, peer, (uint16_t)(5000 + p), payload, offload);
		uint64_t a = (uint64_t)(uintptr_t)f;
		uint32_t l = (uint32_t)(HDR + flen), used;
		int w = 0;
		if (vq_add(&v, 2 * p + 1, &a, &l, &w, 1, 0) < 0 ||
		    vq_wait(&v, 2 * p + 1, &used, 2000)) {
			ksnprintf(d, n, "transmit on pair %u did not complete", p);
			goto fail_irq;
		}
	}
	/* Every receive queue in turn until each pair's answer is in, or 10 s. */
	int got[VQ_MAX], other = 0;
	unsigned missing = np;
	for (unsigned p = 0; p < np; p++)
		got[p] = -1;
	uint64_t end = rdtsc() + tsc_hz * 10;
	while (missing && rdtsc() < end) {
		for (unsigned p = 0; p < np; p++) {
			uint32_t used;
			if (vq_wait(&v, 2 * p, &used, 0))
				continue;
			uint8_t *b = rx_last(&v, 2 * p);
			if (!b) {
				ksnprintf(d, n, "pair %u: a used id was never posted", p);
				goto fail_irq;
			}
			for (unsigned s = 0; s < np; s++) {
				char pre[24];
				ksnprintf(pre, sizeof(pre), "cove-mqpong-%u-", s);
				const uint8_t *ans = udp_answer(b, used, (uint16_t)(5000 + s), pre);
				if (!ans)
					continue;
				char tail[12];
				ksnprintf(tail, sizeof(tail), "%08x", nonce);
				if (!memcmp(ans + strlen(pre), tail, 8) && got[s] < 0) {
					got[s] = (int)p;
					missing--;
				}
				goto repost;
			}
			other++;
		repost:
			post_rx(&v, 2 * p, b);
		}
	}
	__asm__ volatile("cli");
	for (unsigned p = 0; p < np; p++) {
		if (got[p] < 0) {
			ksnprintf(d, n, "no answer to pair %u (%d other frames)", p, other);
			goto fail;
		}
		if (got[p] != (int)p) {
			ksnprintf(d, n, "the answer to pair %u came on pair %d's receive queue", p,
				  got[p]);
			goto fail;
		}
		if (virtio_irqs[2 * p] == irq0[2 * p]) {
			ksnprintf(d, n, "receive queue %u: no MSI-X interrupt on its vector",
				  2 * p);
			goto fail;
		}
	}
	ksnprintf(d, n,
		  "%u pairs: each datagram back on its own pair's receive queue, each with its "
		  "own MSI-X vector; VQ_PAIRS_SET acked, bad requests refused; %d other frames",
		  np, other);
	vdev_reset(&v);
	return PASS;
fail_irq:
	__asm__ volatile("cli");
fail:
	vdev_reset(&v);
	return FAIL;
}
