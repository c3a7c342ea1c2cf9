/* Probe-guest tests of a virtio-blk reset with large reads in flight: once the status reads 0
 * the device writes no more guest memory (virtio 1.2 §2.4.1: no interaction with the queues
 * after it has shown the reset complete; the driver waits for that read, §4.1.4.3.2, before
 * it reuses what it gave the device), and the device works again afterwards. */
#include "probe.h"
#include "virtio.h"

#define RST_BASE   0x4000000UL /* 64 MiB: the requests' buffers */
#define RST_NREQ   21	       /* three descriptors each, in a queue of 64 */
#define PAGE	   4096u
#define BEFORE	   0x1111111111111111ULL /* never 8 bytes of the disk's pattern */
#define AFTER	   0xA5A5A5A5A5A5A5A5ULL
#define AFTER_BYTE 0xA5
#define QUIET_MS   300 /* how long nothing may change after the status read 0 */

/* One round: RST_NREQ reads of req_bytes each into RST_BASE.., a reset once the first data
 * has arrived, then the pattern over every page and the used ring. Filled at CPL3. */
struct round {
	struct vq *q;
	uint64_t notify, status_reg;
	uint8_t *hdr, *st; /* RST_NREQ headers of 16 bytes, status bytes */
	uint32_t req_bytes;
	uint64_t sector; /* the first request's; the others follow */
	uint64_t pages;	 /* in all the buffers */
	int hasty;	 /* the driver writes ACK right after the 0, then 0 again, then waits */
	/* What happened. */
	int started; /* data arrived before the reset (else: nothing was caught in flight) */
	int timeout; /* the status never read 0 */
	uint16_t used_before;
	uint64_t pages_before, pages_after; /* pages with data before the reset, after status 0 */
	uint64_t reads, cycles;		    /* status reads until 0, and how long */
	uint64_t late_pages, late_ring, late_status;
};

static volatile uint64_t *page_at(uint64_t p)
{
	return (volatile uint64_t *)(uintptr_t)(RST_BASE + (uint64_t)PAGE * p);
}

/* A page counts as written once its first or last 8 bytes are not what we put there. */
static uint64_t pages_changed(const struct round *r, uint64_t want)
{
	uint64_t n = 0;
	for (uint64_t p = 0; p < r->pages; p++) {
		volatile uint64_t *q = page_at(p);
		n += q[0] != want || q[PAGE / 8 - 1] != want;
	}
	return n;
}

static uint64_t ring_bytes(const struct round *r)
{
	return 6 + 8ULL * r->q->size;
}

static uint8_t rd_status(const struct round *r)
{
	return *(volatile uint8_t *)(uintptr_t)r->status_reg;
}

/* CPL3: every qword of the buffers gets BEFORE (this also touches every page once). */
static long user_prefill(long arg, long unused)
{
	struct round *r = (struct round *)arg;
	volatile uint64_t *p = page_at(0);
	for (uint64_t i = 0; i < r->pages * (PAGE / 8); i++)
		p[i] = BEFORE;
	return 0;
}

/* CPL3, timed: post the reads with one notification, wait for the first data, reset, wait for
 * the status to read 0, then put AFTER over every page, the used ring and the status bytes. */
static long user_round(long arg, long unused)
{
	struct round *r = (struct round *)arg;
	struct vq *q = r->q;
	volatile uint16_t *avail = q->avail, *used = q->used;
	uint16_t idx = q->idx, used0 = used[1];
	for (unsigned i = 0; i < RST_NREQ; i++) {
		uint64_t a[3] = {(uint64_t)(uintptr_t)(r->hdr + 16 * i),
				 RST_BASE + (uint64_t)r->req_bytes * i,
				 (uint64_t)(uintptr_t)(r->st + i)};
		uint32_t l[3] = {16, r->req_bytes, 1};
		uint16_t f[3] = {1, 1 | 2, 2}; /* NEXT; NEXT | WRITE; WRITE */
		for (unsigned k = 0; k < 3; k++) {
			volatile uint8_t *dsc = q->desc + 16 * (3 * i + k);
			*(volatile uint64_t *)dsc = a[k];
			*(volatile uint32_t *)(dsc + 8) = l[k];
			*(volatile uint16_t *)(dsc + 12) = f[k];
			*(volatile uint16_t *)(dsc + 14) = (uint16_t)(3 * i + k + 1);
		}
		uint32_t *h = (uint32_t *)(r->hdr + 16 * i);
		h[0] = 0; /* read */
		h[1] = 0;
		*(uint64_t *)(h + 2) = r->sector + (uint64_t)i * (r->req_bytes / 512);
		r->st[i] = 0xEE;
		avail[2 + idx++ % q->size] = (uint16_t)(3 * i);
	}
	__asm__ volatile("mfence" ::: "memory");
	avail[1] = idx;
	__asm__ volatile("mfence" ::: "memory");
	*(volatile uint16_t *)(uintptr_t)r->notify = 0;
	/* The first data in any buffer (or a used entry): the device has started. */
	uint64_t end = rdtsc() + 2 * tsc_hz;
	while (!r->started && rdtsc() < end) {
		if (used[1] != used0)
			r->started = 1;
		for (unsigned i = 0; i < RST_NREQ && !r->started; i++)
			if (*page_at((uint64_t)i * (r->req_bytes / PAGE)) != BEFORE)
				r->started = 1;
	}
	r->used_before = (uint16_t)(used[1] - used0);
	r->pages_before = pages_changed(r, BEFORE);
	uint64_t t0 = rdtsc(); /* the write itself may take the time (QEMU drains in it) */
	*(volatile uint8_t *)(uintptr_t)r->status_reg = 0;
	if (r->hasty) {
		*(volatile uint8_t *)(uintptr_t)r->status_reg = 1;
		*(volatile uint8_t *)(uintptr_t)r->status_reg = 0;
	}
	end = t0 + 10 * tsc_hz;
	for (;;) {
		r->reads++;
		if (!rd_status(r))
			break;
		if (rdtsc() > end) {
			r->timeout = 1;
			return 0;
		}
	}
	r->cycles = rdtsc() - t0;
	/* From here on the memory is ours again. */
	r->pages_after = pages_changed(r, BEFORE);
	for (uint64_t p = 0; p < r->pages; p++) {
		volatile uint64_t *pg = page_at(p);
		pg[0] = pg[PAGE / 8 - 1] = AFTER;
	}
	volatile uint8_t *u = (volatile uint8_t *)used;
	for (uint64_t i = 0; i < ring_bytes(r); i++)
		u[i] = AFTER_BYTE;
	for (unsigned i = 0; i < RST_NREQ; i++)
		r->st[i] = AFTER_BYTE;
	return 0;
}

/* CPL3: what changed since user_round put the pattern there. */
static long user_check(long arg, long unused)
{
	struct round *r = (struct round *)arg;
	r->late_pages = pages_changed(r, AFTER);
	volatile uint8_t *u = (volatile uint8_t *)r->q->used;
	for (uint64_t i = 0; i < ring_bytes(r); i++)
		r->late_ring += u[i] != AFTER_BYTE;
	for (unsigned i = 0; i < RST_NREQ; i++)
		r->late_status += r->st[i] != AFTER_BYTE;
	return 0;
}

static uint64_t opt(const char *key, uint64_t dflt)
{
	size_t len;
	uint64_t v = dflt;
	const char *s = cmdline_get(key, &len);
	if (s && parse_u64(s, len, 10, &v))
		return dflt;
	return v;
}

/* Sets up r for the first disk (reset and initialised, one queue, no EVENT_IDX) and region
 * `region` of the disk. Returns 0, or -1 / SKIP with d filled. */
static int round_setup(struct vdev *v, struct round *r, unsigned region, char *d, size_t n)
{
	uint32_t mb = (uint32_t)opt("probe.reset_mb", 4);
	if (mb < 1 || mb > 64)
		mb = 4;
	*r = (struct round){.req_bytes = mb << 20};
	r->pages = (uint64_t)RST_NREQ * r->req_bytes / PAGE;
	if (boot_ram_total() < RST_BASE + (uint64_t)RST_NREQ * r->req_bytes + (16ULL << 20)) {
		ksnprintf(d, n, "needs %lu MiB of RAM",
			  (RST_BASE + (uint64_t)RST_NREQ * r->req_bytes) / 1048576 + 16);
		return SKIP;
	}
	if (blk_open(v, 0, 0, d, n))
		return -1;
	if (v->q[0].size < 3 * RST_NREQ) {
		ksnprintf(d, n, "queue of %u, want %u", v->q[0].size, 3 * RST_NREQ);
		return -1;
	}
	uint64_t cap = rd64(v->devcfg), per = (uint64_t)RST_NREQ * (r->req_bytes / 512);
	if (cap < per) {
		ksnprintf(d, n, "disk of %lu sectors, want at least %lu", cap, per);
		return -1;
	}
	/* Each round reads a part of the disk no earlier round read (the host's cache is cold
	 * there), wrapping around on a small disk. */
	r->sector = (region * per) % (cap - cap % per);
	r->q = &v->q[0];
	r->notify = v->notify + (uint64_t)v->q[0].notify_off * v->notify_mult;
	r->status_reg = v->common + 0x14;
	r->hdr = dma_alloc(16 * RST_NREQ);
	r->st = dma_alloc(RST_NREQ);
	if (!r->hdr || !r->st) {
		ksnprintf(d, n, "out of DMA memory");
		return -1;
	}
	user_call(user_prefill, (long)r, 0);
	return 0;
}

/* Posts the reads, resets the device once they are under way, checks that nothing changes
 * after the status read 0. Returns 0 (r says what happened) or -1 with d filled. */
static int round_run(struct round *r, char *d, size_t n)
{
	if (user_call(user_round, (long)r, 0)) {
		ksnprintf(d, n, "fault at CPL3");
		return -1;
	}
	if (r->timeout) {
		ksnprintf(d, n, "the status did not read 0 within 10 s of the reset");
		return -1;
	}
	delay_us(QUIET_MS * 1000);
	user_call(user_check, (long)r, 0);
	return 0;
}

int test_vblk_reset(char *d, size_t n)
{
	unsigned rounds = (unsigned)opt("probe.reset_rounds", 3);
	struct vdev v;
	struct round r;
	unsigned caught = 0;
	uint64_t drained = 0, max_us = 0, max_reads = 0;
	if (rounds < 1 || rounds > 16)
		rounds = 3;
	for (unsigned i = 0; i < rounds; i++) {
		int s = round_setup(&v, &r, i, d, n);
		if (s)
			return s == SKIP ? SKIP : FAIL;
		if (round_run(&r, d, n))
			goto fail;
		if (r.late_pages || r.late_ring || r.late_status) {
			ksnprintf(d, n,
				  "round %u: after status 0 (%lu us after the reset) the device "
				  "wrote %lu "
				  "of %lu pages, %lu used-ring bytes, %lu status bytes",
				  i, r.cycles * 1000000 / tsc_hz, r.late_pages, r.pages,
				  r.late_ring, r.late_status);
			goto fail;
		}
		/* Data that arrived between the reset and the status read 0: requests in flight
		 * that the device finished before its reset did. */
		if (r.started && r.pages_after > r.pages_before) {
			caught++;
			drained += r.pages_after - r.pages_before;
		}
		if (r.cycles * 1000000 / tsc_hz > max_us)
			max_us = r.cycles * 1000000 / tsc_hz;
		if (r.reads > max_reads)
			max_reads = r.reads;
	}
	vdev_reset(&v);
	if (!caught) {
		ksnprintf(d, n, "no round caught reads in flight at the reset (nothing to check)");
		return SKIP;
	}
	ksnprintf(d, n,
		  "%u/%u resets caught %lu MiB of reads in flight; status 0 within %lu us (%lu "
		  "reads); nothing written in %d ms after",
		  caught, rounds, drained * PAGE >> 20, max_us, max_reads, QUIET_MS);
	return PASS;
fail:
	vdev_reset(&v);
	return FAIL;
}

/* A reset with reads in flight from a driver that does not wait for it (it writes ACK and 0
 * again at once), then the device is set up again at once: it works as before (reads, a write,
 * a flush and a large read all give the right data). */
int test_vblk_reset_again(char *d, size_t n)
{
	struct vdev v;
	struct round r;
	int s = round_setup(&v, &r, (unsigned)opt("probe.reset_rounds", 3), d, n);
	if (s)
		return s == SKIP ? SKIP : FAIL;
	r.hasty = 1;
	if (round_run(&r, d, n))
		goto fail;
	if (r.late_pages || r.late_ring || r.late_status) {
		ksnprintf(d, n,
			  "after status 0 the device wrote %lu pages, %lu used-ring bytes, %lu "
			  "status bytes",
			  r.late_pages, r.late_ring, r.late_status);
		goto fail;
	}
	char why[96];
	dma_reset();
	if (vdev_init(&v, 0, 1, why, sizeof(why))) {
		ksnprintf(d, n, "not usable after the reset: %s", why);
		goto fail;
	}
	uint8_t *buf = dma_alloc(8192);
	int st = blk_req(&v, 0, 8, buf, 8192, 2, 0);
	for (unsigned i = 0; !st && i < 8192; i++)
		if (buf[i] != disk_pat(8 + i / 512, i % 512))
			st = 0x200;
	if (st) {
		ksnprintf(d, n, "read after the reset: status %d", st);
		goto fail;
	}
	for (unsigned i = 0; i < 4096; i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	int w = blk_req(&v, 1, 40, buf, 4096, 1, 0), f = blk_req(&v, 4, 0, 0, 0, 0, 0);
	memset(buf, 0, 4096);
	int rb = blk_req(&v, 0, 40, buf, 4096, 1, 0);
	for (unsigned i = 0; !rb && i < 4096; i++)
		if (buf[i] != (uint8_t)(i * 7 + 3))
			rb = 0x200;
	if (w || f || rb) {
		ksnprintf(d, n, "write %d, flush %d, read-back %d after the reset", w, f, rb);
		goto fail;
	}
	/* One large read into the buffers the reset left: the disk's pattern everywhere. */
	uint8_t *big = (uint8_t *)(uintptr_t)RST_BASE;
	int lr = blk_req(&v, 0, r.sector, big, r.req_bytes, 1, 0);
	for (uint32_t off = 0; !lr && off < r.req_bytes; off += PAGE + 8)
		if (big[off] != disk_pat(r.sector + off / 512, off % 512))
			lr = 0x200;
	if (lr) {
		ksnprintf(d, n, "large read after the reset: status %d", lr);
		goto fail;
	}
	vdev_reset(&v);
	ksnprintf(d, n,
		  "hasty reset with reads in flight (status 0 after %lu us), then reads, a write, "
		  "a flush, a %u MiB read work",
		  r.cycles * 1000000 / tsc_hz, r.req_bytes >> 20);
	return PASS;
fail:
	vdev_reset(&v);
	return FAIL;
}
