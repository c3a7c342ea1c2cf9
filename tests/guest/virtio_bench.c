/* Probe-guest virtio-blk benchmark: a request loop at CPL3 (native speed here), polling the
 * used ring with interrupts off; sequential 1 MiB reads and writes, random 4 KiB reads. */
#include "probe.h"
#include "virtio.h"

#define F_EVENT_IDX (1ULL << 29)
#define DEPTH	    16
#define BUF_BASE    0x4000000ULL /* 64 MiB: DEPTH buffers of up to 1 MiB (needs 96 MiB RAM) */

static uint8_t bench_stack[16384] __attribute__((aligned(16)));

struct bench {
	struct vq *q;
	uint64_t notify;       /* the queue's notify register */
	uint8_t *hdr, *status; /* DEPTH headers (16 bytes) and status bytes */
	uint32_t reqlen;
	uint32_t type; /* 0 read, 1 write */
	int random;
	uint64_t nreq, sectors;
	uint64_t kicks, cycles, errors;
};

static void fill(struct bench *b, unsigned slot, uint64_t n, uint64_t *rng)
{
	uint64_t per = b->reqlen / 512, sector;
	if (b->random) {
		*rng ^= *rng << 13;
		*rng ^= *rng >> 7;
		*rng ^= *rng << 17;
		sector = (*rng % (b->sectors / per)) * per;
	} else {
		sector = (n * per) % (b->sectors - b->sectors % per);
	}
	uint32_t *h = (uint32_t *)(b->hdr + 16 * slot);
	h[0] = b->type;
	h[1] = 0;
	*(uint64_t *)(h + 2) = sector;
	b->status[slot] = 0xEE;
}

/* Runs at CPL3. Returns 0, or -1 when a request timed out. */
static long user_bench(long arg, long unused)
{
	struct bench *b = (struct bench *)arg;
	struct vq *q = b->q;
	uint16_t size = q->size, idx = q->idx, last = q->last_used;
	uint64_t rng = 0x9E3779B97F4A7C15ULL, sub = 0, done = 0;
	volatile uint16_t *avail = q->avail, *used = q->used;
	avail[2 + size] = (uint16_t)(last + 0x7FFF); /* used_event far away: no interrupts */
	uint64_t t0 = rdtsc();
	uint16_t old = idx;
	for (unsigned s = 0; s < DEPTH && sub < b->nreq; s++, sub++) {
		fill(b, s, sub, &rng);
		avail[2 + idx % size] = (uint16_t)(3 * s);
		idx++;
	}
	for (;;) {
		if (idx != old) {
			__asm__ volatile("mfence" ::: "memory");
			avail[1] = idx;
			__asm__ volatile("mfence" ::: "memory");
			uint16_t ev = used[2 + 4 * size];
			if ((uint16_t)(idx - ev - 1) < (uint16_t)(idx - old)) {
				*(volatile uint16_t *)(uintptr_t)b->notify = 0;
				b->kicks++;
			}
			old = idx;
		}
		if (done == b->nreq)
			break;
		uint64_t spin = 0;
		while (used[1] == last) {
			if (++spin > 4000000000ULL)
				return -1;
			__asm__ volatile("pause");
		}
		__asm__ volatile("" ::: "memory");
		while (used[1] != last) {
			volatile uint32_t *e = (volatile uint32_t *)(used + 2) + 2 * (last % size);
			unsigned slot = e[0] / 3;
			last++;
			done++;
			if (slot >= DEPTH || b->status[slot] != 0)
				b->errors++;
			else if (sub < b->nreq) {
				fill(b, slot, sub++, &rng);
				avail[2 + idx % size] = (uint16_t)(3 * slot);
				idx++;
			}
		}
		avail[2 + size] = (uint16_t)(last + 0x7FFF);
	}
	b->cycles = rdtsc() - t0;
	q->idx = idx;
	q->last_used = last;
	return 0;
}

static int run(struct vdev *v, struct bench *b, uint32_t type, uint32_t reqlen, int random,
	       uint64_t nreq)
{
	struct vq *q = &v->q[0];
	b->type = type;
	b->reqlen = reqlen;
	b->random = random;
	b->nreq = nreq;
	b->kicks = b->errors = 0;
	for (unsigned s = 0; s < DEPTH; s++) {
		volatile uint8_t *dsc = q->desc + 16 * 3 * s;
		uint64_t addr[3] = {(uint64_t)(uintptr_t)(b->hdr + 16 * s),
				    BUF_BASE + (1ULL << 20) * s,
				    (uint64_t)(uintptr_t)(b->status + s)};
		uint32_t len[3] = {16, reqlen, 1};
		uint16_t flags[3] = {1, (uint16_t)(1 | (type == 0 ? 2 : 0)), 2};
		for (int k = 0; k < 3; k++) {
			*(volatile uint64_t *)(dsc + 16 * k) = addr[k];
			*(volatile uint32_t *)(dsc + 16 * k + 8) = len[k];
			*(volatile uint16_t *)(dsc + 16 * k + 12) = flags[k];
			*(volatile uint16_t *)(dsc + 16 * k + 14) = (uint16_t)(3 * s + k + 1);
		}
	}
	return (int)enter_user((void *)user_bench, bench_stack + sizeof(bench_stack), (long)b, 0);
}

static uint64_t rate(uint64_t count, uint64_t cycles)
{
	return cycles ? count * tsc_hz / cycles : 0;
}

int test_vblkbench(char *d, size_t n)
{
	struct vdev v;
	uint64_t mb = 256, nrand = 20000;
	size_t len;
	const char *s = cmdline_get("probe.bench_mb", &len);
	if (s)
		parse_u64(s, len, 10, &mb);
	s = cmdline_get("probe.bench_rand", &len);
	if (s)
		parse_u64(s, len, 10, &nrand);
	if (boot_ram_total() < BUF_BASE + (DEPTH << 20)) {
		ksnprintf(d, n, "needs at least %llu MiB of RAM", (BUF_BASE + (DEPTH << 20)) >> 20);
		return SKIP;
	}
	dma_reset();
	if (vdev_find(2, 0, &v, d, n) || vdev_init(&v, F_EVENT_IDX, 1, d, n))
		return FAIL;
	if (!v.event_idx || v.q[0].size < 3 * DEPTH) {
		ksnprintf(d, n, "needs EVENT_IDX and a queue of %d", 3 * DEPTH);
		goto fail;
	}
	struct bench b = {
	    .q = &v.q[0],
	    .notify = v.notify + (uint64_t)v.q[0].notify_off * v.notify_mult,
	    .hdr = dma_alloc(16 * DEPTH),
	    .status = dma_alloc(DEPTH),
	    .sectors = rd64(v.devcfg),
	};
	if (b.sectors < (16ULL << 11)) {
		ksnprintf(d, n, "disk too small (%lu sectors)", b.sectors);
		goto fail;
	}
	uint64_t res[3], kicks = 0, reqs = 0;
	struct {
		uint32_t type, len;
		int random;
		uint64_t nreq;
	} runs[3] = {{0, 1 << 20, 0, mb}, {1, 1 << 20, 0, mb}, {0, 4096, 1, nrand}};
	for (int i = 0; i < 3; i++) {
		if (run(&v, &b, runs[i].type, runs[i].len, runs[i].random, runs[i].nreq) ||
		    b.errors) {
			ksnprintf(d, n, "run %d: %s (%lu errors)", i,
				  b.errors ? "I/O errors" : "timeout", b.errors);
			goto fail;
		}
		res[i] = i < 2 ? rate(runs[i].nreq, b.cycles) : rate(runs[i].nreq, b.cycles);
		kicks += b.kicks;
		reqs += runs[i].nreq;
	}
	ksnprintf(
	    d, n,
	    "seqread %lu MB/s, seqwrite %lu MB/s, randread %lu IOPS, %lu kicks for %lu requests",
	    res[0] * 1048576 / 1000000, res[1] * 1048576 / 1000000, res[2], kicks, reqs);
	vdev_reset(&v);
	return PASS;
fail:
	vdev_reset(&v);
	return FAIL;
}

/* ---- virtio-net transmit throughput ------------------------------------------ */

struct nbench {
	struct vq *q;
	uint64_t notify;
	uint64_t nframes;
	uint64_t kicks, cycles;
};

/* Runs at CPL3: keeps the transmit ring full of the same frame until nframes are sent. */
static long user_nbench(long arg, long unused)
{
	struct nbench *b = (struct nbench *)arg;
	struct vq *q = b->q;
	uint16_t size = q->size, idx = q->idx, last = q->last_used, old = idx;
	volatile uint16_t *avail = q->avail, *used = q->used;
	uint64_t sub = 0, done = 0;
	avail[2 + size] = (uint16_t)(last + 0x7FFF);
	uint64_t t0 = rdtsc();
	for (uint16_t s = 0; s < size && sub < b->nframes; s++, sub++)
		avail[2 + idx++ % size] = s;
	for (;;) {
		if (idx != old) {
			__asm__ volatile("mfence" ::: "memory");
			avail[1] = idx;
			__asm__ volatile("mfence" ::: "memory");
			uint16_t ev = used[2 + 4 * size];
			if ((uint16_t)(idx - ev - 1) < (uint16_t)(idx - old)) {
				*(volatile uint16_t *)(uintptr_t)b->notify = 1;
				b->kicks++;
			}
			old = idx;
		}
		if (done == b->nframes)
			break;
		uint64_t spin = 0;
		while (used[1] == last)
			if (++spin > 4000000000ULL)
				return -1;
		while (used[1] != last) {
			volatile uint32_t *e = (volatile uint32_t *)(used + 2) + 2 * (last % size);
			uint16_t head = (uint16_t)e[0];
			last++;
			done++;
			if (sub < b->nframes) {
				avail[2 + idx++ % size] = head;
				sub++;
			}
		}
		avail[2 + size] = (uint16_t)(last + 0x7FFF);
	}
	b->cycles = rdtsc() - t0;
	q->idx = idx;
	q->last_used = last;
	return 0;
}

int test_vnetbench(char *d, size_t n)
{
	struct vdev v;
	uint64_t nframes = 100000;
	size_t len;
	const char *s = cmdline_get("probe.bench_frames", &len);
	if (s)
		parse_u64(s, len, 10, &nframes);
	dma_reset();
	if (vdev_find(1, 0, &v, d, n) ||
	    vdev_init(&v, (1ULL << 5) | (1ULL << 29) | (1ULL << 15), 2, d, n))
		return FAIL;
	/* One UDP/IPv4 broadcast frame of 1400 bytes after a 12-byte vnet header, reused. */
	uint8_t *f = dma_alloc(12 + 1400);
	uint8_t *eth = f + 12, *ip = eth + 14;
	memset(eth, 0xFF, 6);
	for (int i = 0; i < 6; i++)
		eth[6 + i] = rd8(v.devcfg + i);
	eth[12] = 8;
	ip[0] = 0x45;
	ip[2] = (1400 - 14) >> 8;
	ip[3] = (1400 - 14) & 0xFF;
	ip[8] = 64;
	ip[9] = 17;
	struct vq *q = &v.q[1];
	for (unsigned i = 0; i < q->size; i++) {
		volatile uint8_t *dsc = q->desc + 16 * i;
		*(volatile uint64_t *)dsc = (uint64_t)(uintptr_t)f;
		*(volatile uint32_t *)(dsc + 8) = 12 + 1400;
		*(volatile uint16_t *)(dsc + 12) = 0;
	}
	/* probe.bench_wait_ms: a pause first, for a host that changes the NIC meanwhile. */
	uint64_t wait_ms = 0;
	if ((s = cmdline_get("probe.bench_wait_ms", &len)))
		parse_u64(s, len, 10, &wait_ms);
	for (uint64_t end = rdtsc() + tsc_hz / 1000 * wait_ms; rdtsc() < end;)
		__asm__ volatile("pause");
	struct nbench b = {
	    .q = q,
	    .notify = v.notify + (uint64_t)q->notify_off * v.notify_mult,
	    .nframes = nframes,
	};
	if (enter_user((void *)user_nbench, bench_stack + sizeof(bench_stack), (long)&b, 0)) {
		ksnprintf(d, n, "transmit stalled");
		vdev_reset(&v);
		return FAIL;
	}
	uint64_t fps = b.cycles ? nframes * tsc_hz / b.cycles : 0;
	ksnprintf(d, n, "%lu frames of 1400 bytes: %lu frames/s, %lu Mbit/s, %lu kicks", nframes,
		  fps, fps * 1400 * 8 / 1000000, b.kicks);
	vdev_reset(&v);
	return PASS;
}
