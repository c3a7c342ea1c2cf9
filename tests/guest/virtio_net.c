/* Probe-guest test of virtio-net: a UDP datagram out through the host's tap to a listener in
 * the test's network namespace, and its answer back, with checksum offload when offered. */
#include "probe.h"
#include "virtio.h"

#define NET_F_CSUM	(1ULL << 0)
#define NET_F_MAC	(1ULL << 5)
#define NET_F_MRG_RXBUF (1ULL << 15)
#define NET_F_STATUS	(1ULL << 16)
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

static uint8_t *buf_of[VQ_SIZE]; /* receive buffer by descriptor head */

static void post_rx(struct vdev *v, uint8_t *buf)
{
	uint64_t a = (uint64_t)(uintptr_t)buf;
	uint32_t l = RXBUF;
	int w = 1;
	int head = vq_add(v, 0, &a, &l, &w, 1, 0);
	if (head >= 0)
		buf_of[head % VQ_SIZE] = buf;
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
	for (int i = 0; i < 6; i++)
		mac[i] = rd8(v.devcfg + i);
	size_t len;
	const char *s = cmdline_get("probe.net_mac", &len);
	uint8_t want[6];
	if (s && (parse_mac(s, len, want) || memcmp(want, mac, 6))) {
		ksnprintf(d, n, "MAC %02x:%02x:%02x:%02x:%02x:%02x is not the host's", mac[0],
			  mac[1], mac[2], mac[3], mac[4], mac[5]);
		goto fail;
	}
	s = cmdline_get("probe.net_peer", &len);
	if (!s || parse_mac(s, len, peer)) {
		ksnprintf(d, n, "no probe.net_peer=MAC (the tap's address)");
		goto fail;
	}
	if ((v.features & NET_F_STATUS) && !(rd16(v.devcfg + 6) & 1)) {
		ksnprintf(d, n, "link is down");
		goto fail;
	}
	uint8_t *rxb[NRX];
	for (int i = 0; i < NRX; i++) {
		rxb[i] = dma_alloc(RXBUF);
		post_rx(&v, rxb[i]);
	}
	/* vnet header + Ethernet + IPv4 + UDP 4444 -> 10.77.0.1:7777, "cove-ping-<tsc>". */
	uint8_t *f = dma_alloc(HDR + 14 + 20 + 8 + 32);
	uint8_t *eth = f + HDR, *ip = eth + 14, *udp = ip + 20, *pl = udp + 8;
	char payload[32];
	uint32_t nonce = (uint32_t)rdtsc();
	ksnprintf(payload, sizeof(payload), "cove-ping-%08x", nonce);
	size_t plen = strlen(payload);
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
	put16be(udp, 4444);
	put16be(udp + 2, 7777);
	put16be(udp + 4, (uint16_t)(8 + plen));
	uint32_t pseudo = sum16(ip + 12, 8, 0) + 17 + 8 + (uint32_t)plen;
	int offload = (v.features & NET_F_CSUM) != 0;
	if (offload) {
		/* The host (tap) completes the checksum from csum_start, at csum_offset. */
		f[0] = 1; /* VIRTIO_NET_HDR_F_NEEDS_CSUM */
		f[4] = 0, f[5] = 0;
		*(uint16_t *)(f + 6) = 14 + 20;
		*(uint16_t *)(f + 8) = 6;
		put16be(udp + 6, fold(pseudo));
	} else {
		uint16_t c = (uint16_t)~fold(sum16(udp, 8 + plen, pseudo));
		put16be(udp + 6, c ? c : 0xFFFF);
	}
	/* Header and frame in separate descriptors (Linux puts them together: both work). */
	uint64_t a[2] = {(uint64_t)(uintptr_t)f, (uint64_t)(uintptr_t)eth};
	uint32_t l[2] = {HDR, (uint32_t)(14 + 20 + 8 + plen)};
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
		struct vq *q = &v.q[0];
		volatile uint32_t *e =
		    (volatile uint32_t *)(q->used + 2) + 2 * ((q->last_used - 1) % q->size);
		uint8_t *b = buf_of[e[0] % VQ_SIZE];
		if (!b) {
			ksnprintf(d, n, "used id %u was never posted", e[0]);
			goto fail;
		}
		uint16_t nbuf = (uint16_t)(b[10] | b[11] << 8);
		const uint8_t *re = b + HDR, *rip = re + 14, *rudp = rip + 20;
		if (used >= HDR + 14 + 20 + 8 + 10 && re[12] == 8 && re[13] == 0 && rip[9] == 17 &&
		    rudp[0] == 0x1E && rudp[1] == 0x61 && !memcmp(rudp + 8, "cove-pong-", 10)) {
			if (memcmp(rudp + 18, payload + 10, 8)) {
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
		post_rx(&v, b);
	}
	ksnprintf(d, n, "no answer among %d frames", seen);
fail:
	vdev_reset(&v);
	return FAIL;
}
