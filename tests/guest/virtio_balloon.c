/* Probe-guest test of virtio-balloon driven by the host: follow num_pages as Linux's driver
 * does (inflate or deflate in batches until actual == num_pages), post the statistics buffer
 * before DRIVER_OK and refill it each time the device hands it back, check DEFLATE_ON_OOM. */
#include "probe.h"
#include "virtio.h"

#include <stdbool.h>

#define F_STATS_VQ	 (1ULL << 1)
#define F_DEFLATE_ON_OOM (1ULL << 2)
#define REGION		 0x5000000ULL /* 80 MiB: the pages the balloon takes */
#define BATCH		 256	      /* pfns per request, as Linux */
#define NSTAT		 4

static uint64_t pa(const void *p)
{
	return (uint64_t)(uintptr_t)p; /* identity-mapped */
}

static uint64_t arg(const char *key, uint64_t dflt)
{
	size_t len;
	const char *s = cmdline_get(key, &len);
	uint64_t v = dflt;
	if (s)
		parse_u64(s, len, 10, &v);
	return v;
}

/* The statistics Linux reports, with minor_faults counting our reports (the host sees
 * from it that the buffer came back and was refilled). */
static void fill_stats(uint8_t *st, uint32_t actual, uint64_t report)
{
	uint16_t tags[NSTAT] = {3, 4, 5, 6};
	uint64_t ram = boot_ram_total(), held = (uint64_t)actual * 4096;
	uint64_t vals[NSTAT] = {report, ram - held - (16ULL << 20), ram, ram - held - (8ULL << 20)};
	for (int i = 0; i < NSTAT; i++) {
		memcpy(st + 10 * i, &tags[i], 2);
		memcpy(st + 10 * i + 2, &vals[i], 8);
	}
}

/* One batch toward target: inflate (queue 0) or deflate (queue 1) up to BATCH pages at the
 * top of what the balloon holds. Returns 0, or -1 when the device did not answer. */
static int move(struct vdev *v, uint32_t *pfns, uint32_t *actual, uint32_t target)
{
	bool inflate = target > *actual;
	uint32_t k = inflate ? target - *actual : *actual - target;
	if (k > BATCH)
		k = BATCH;
	uint32_t first = inflate ? *actual : *actual - k;
	for (uint32_t i = 0; i < k; i++)
		pfns[i] = (uint32_t)(REGION / 4096) + first + i;
	uint64_t a = pa(pfns);
	uint32_t l = 4 * k, used;
	int w = 0;
	unsigned q = inflate ? 0 : 1;
	if (vq_add(v, q, &a, &l, &w, 1, 0) < 0 || vq_wait(v, q, &used, 2000))
		return -1;
	*actual = inflate ? *actual + k : *actual - k;
	*(volatile uint32_t *)(uintptr_t)(v->devcfg + 4) = *actual;
	return 0;
}

int test_vballoon_target(char *d, size_t n)
{
	struct vdev v;
	uint64_t steps = arg("probe.balloon_steps", 1), refreshes = arg("probe.balloon_refresh", 0);
	uint64_t timeout_s = arg("probe.balloon_timeout", 40);
	dma_reset();
	if (vdev_find(5, 0, &v, d, n) ||
	    vdev_init_queues(&v, F_STATS_VQ | F_DEFLATE_ON_OOM, 3, d, n))
		return FAIL;
	if (arg("probe.balloon_oom", 0) && !(v.features & F_DEFLATE_ON_OOM)) {
		ksnprintf(d, n, "DEFLATE_ON_OOM not negotiated");
		goto fail;
	}
	uint64_t room = (boot_ram_total() - REGION) / 4096;
	uint8_t *st = dma_alloc(10 * NSTAT);
	uint32_t *pfns = (uint32_t *)dma_alloc(4 * BATCH);
	uint32_t actual = 0, reached = 0, used;
	uint64_t reports = 1, returned = 0, done = 0;
	uint64_t a = pa(st);
	uint32_t l = 10 * NSTAT;
	int w = 0;
	bool stats = v.features & F_STATS_VQ;
	/* The first report goes out before DRIVER_OK, as Linux's driver sends it (and it never
	 * notifies that buffer again); the pause stands for the rest of Linux's probe. */
	fill_stats(st, actual, reports);
	if (stats && vq_add(&v, 2, &a, &l, &w, 1, 0) < 0) {
		ksnprintf(d, n, "cannot post statistics");
		goto fail;
	}
	delay_us(20000);
	vdev_driver_ok(&v);
	uint64_t end = rdtsc() + tsc_hz * timeout_s;
	while (done < steps || returned < refreshes) {
		if (rdtsc() > end) {
			ksnprintf(d, n,
				  "timed out: %lu of %lu targets reached, actual %u, "
				  "statistics asked for %lu times",
				  done, steps, actual, returned);
			goto fail;
		}
		/* The device handed the statistics back: refill, return them (as Linux's
		 * stats_request work does). */
		if (stats && vq_wait(&v, 2, &used, 0) == 0) {
			returned++;
			fill_stats(st, actual, ++reports);
			if (vq_add(&v, 2, &a, &l, &w, 1, 0) < 0) {
				ksnprintf(d, n, "cannot post statistics again");
				goto fail;
			}
		}
		uint32_t target = rd32(v.devcfg);
		if (target > room) {
			ksnprintf(d, n, "target %u pages: more than the %lu this test can give",
				  target, room);
			goto fail;
		}
		if (target != actual) {
			if (move(&v, pfns, &actual, target)) {
				ksnprintf(d, n, "%s did not complete",
					  target > actual ? "inflate" : "deflate");
				goto fail;
			}
			if (actual == target && target != reached) {
				reached = target;
				done++;
			}
		}
	}
	ksnprintf(d, n, "followed %lu targets (last %u pages), statistics refreshed %lu times%s",
		  done, reached, returned,
		  (v.features & F_DEFLATE_ON_OOM) ? ", DEFLATE_ON_OOM negotiated" : "");
	vdev_reset(&v);
	return PASS;
fail:
	vdev_reset(&v);
	return FAIL;
}

/* One inflate chain naming probe.balloon_big pages (default 16384, 64 MiB) over three
 * descriptors, cut inside a page number, with page numbers outside RAM among them: every page
 * named must come back zeroed (probe.balloon_zero=1, for a host that drops them), and with
 * probe.balloon_fair=1 a virtio-rng request posted just after it must be served before the
 * whole list is (Cove's device takes a budget of pages per turn of its I/O thread, so one
 * long list does not hold up the other devices). Then the same list deflates. */
int test_vballoon_big(char *d, size_t n)
{
	struct vdev v, rng;
	uint64_t pages = arg("probe.balloon_big", 16384);
	bool fair = arg("probe.balloon_fair", 0), zero = arg("probe.balloon_zero", 0);
	dma_reset();
	if (boot_ram_total() < REGION + pages * 4096 + (1 << 20)) {
		ksnprintf(d, n, "needs %lu MiB of RAM",
			  (uint64_t)((REGION + pages * 4096) >> 20) + 1);
		return SKIP;
	}
	if (!pages)
		pages = 1;
	uint64_t bogus = (pages - 1) / 1000, total = pages + bogus; /* one after each 1000 */
	uint32_t *list = (uint32_t *)dma_alloc(4 * total);
	if (!list) {
		ksnprintf(d, n, "%lu pages: the list does not fit the DMA pool", pages);
		return FAIL;
	}
	if (vdev_find(5, 0, &v, d, n) || vdev_init(&v, 0, 2, d, n))
		return FAIL;
	if (fair && (vdev_find(4, 0, &rng, d, n) || vdev_init(&rng, 0, 1, d, n)))
		goto fail;
	volatile uint8_t *r = (volatile uint8_t *)(uintptr_t)REGION;
	for (uint64_t p = 0, i = 0; p < pages; i++) {
		if (i % 1001 == 1000) {
			list[i] = 0xFFFFFFF0u; /* not RAM: the device skips it */
			continue;
		}
		r[4096 * p + 7] = 0x5A;
		list[i] = (uint32_t)(REGION / 4096 + p++);
	}
	uint32_t third = (uint32_t)(4 * (total / 3) + 2);
	uint64_t a[3] = {pa(list), pa(list) + third, pa(list) + 2 * third};
	uint32_t l[3] = {third, third, (uint32_t)(4 * total) - 2 * third}, used;
	int w[3] = {0, 0, 0};
	uint8_t *ent = dma_alloc(32);
	uint64_t ea = pa(ent);
	uint32_t el = 32;
	int ew = 1;
	if (vq_add(&v, 0, a, l, w, 3, 0) < 0 ||
	    (fair && vq_add(&rng, 0, &ea, &el, &ew, 1, 0) < 0)) {
		ksnprintf(d, n, "cannot post the requests");
		goto fail;
	}
	/* Whether the entropy came while the inflate list was still being worked on. */
	struct vq *iq = &v.q[0];
	bool rng_seen = false, rng_first = false;
	uint64_t end = rdtsc() + tsc_hz * 30;
	while (iq->used[1] == iq->last_used) {
		if (fair && !rng_seen && rng.q[0].used[1] != rng.q[0].last_used) {
			rng_seen = true;
			rng_first = iq->used[1] == iq->last_used;
		}
		if (rdtsc() > end) {
			ksnprintf(d, n, "the inflate of %lu pages did not complete in 30 s", pages);
			goto fail;
		}
		__asm__ volatile("pause");
	}
	vq_wait(&v, 0, &used, 0);
	if (fair && !rng_first) {
		ksnprintf(d, n, "a virtio-rng request waited for the whole inflate of %lu pages",
			  pages);
		goto fail;
	}
	uint64_t zeroed = 0;
	for (uint64_t p = 0; p < pages; p++)
		zeroed += r[4096 * p + 7] == 0;
	if (zero && zeroed != pages) {
		ksnprintf(d, n, "host kept %lu of %lu inflated pages", pages - zeroed, pages);
		goto fail;
	}
	a[0] = pa(list);
	l[0] = (uint32_t)(4 * total);
	if (vq_add(&v, 1, a, l, w, 1, 0) < 0 || vq_wait(&v, 1, &used, 5000)) {
		ksnprintf(d, n, "deflate did not complete");
		goto fail;
	}
	ksnprintf(d, n,
		  "%lu pages in one inflate chain of 3 descriptors (%lu page numbers outside RAM "
		  "among them), %lu came back zeroed, deflated%s",
		  pages, bogus, zeroed, fair ? "; virtio-rng served meanwhile" : "");
	if (fair)
		vdev_reset(&rng);
	vdev_reset(&v);
	return PASS;
fail:
	if (fair)
		vdev_reset(&rng);
	vdev_reset(&v);
	return FAIL;
}
