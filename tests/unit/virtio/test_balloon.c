/* Unit tests of virtio-balloon driven as Linux's driver does it: the statistics buffer posted and
 * notified before DRIVER_OK, and an inflate list too long for one turn of the I/O thread, done
 * a budget at a time from where the last turn stopped. */
#include "devices/virtio/virtio_devices.h"
#include "vdriver.h"

#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define F_STATS_VQ (1ULL << 1)
#define LIST	   0x40000u /* the inflate lists */
#define PAGES	   0x80000u /* pages 128..255: what the lists name */

static struct virtio_pci *vp;

static int setup(void **state)
{
	if (vd_setup(state))
		return -1;
	struct virtio_balloon_opts o = {.amount_mib = 1, .deflate_on_oom = true};
	struct cove_err err = {0};
	vp = virtio_balloon_new(&o, &vd_mem, NULL, &err);
	return vp ? 0 : -1;
}

static int teardown(void **state)
{
	virtio_dev_free(vp);
	return vd_teardown(state);
}

static struct virtio_balloon_info info(void)
{
	struct virtio_balloon_info i;
	virtio_balloon_info(vp, &i);
	return i;
}

/* Linux's virtballoon_probe: the first statistics buffer is posted and notified before
 * DRIVER_OK, and never notified again. The device takes it at DRIVER_OK, not before. */
static void test_stats_before_driver_ok(void **state)
{
	assert_true(vd_init_queues(vp, VIRTIO_F_VERSION_1 | F_STATS_VQ, 3));
	uint8_t st[20] = {4, 0}; /* free memory, then total memory */
	uint64_t free_b = 300ULL << 10, total = 1ULL << 20;
	memcpy(st + 2, &free_b, 8);
	st[10] = 5;
	memcpy(st + 12, &total, 8);
	memcpy(vd_ram + LIST, st, sizeof(st));
	vd_post1(vp, 2, 0, LIST, sizeof(st), false, true);
	assert_int_equal(info().stats_reports, 0);
	assert_true(vd_driver_ok(vp));
	struct virtio_balloon_info i = info();
	assert_int_equal(i.stats_reports, 1);
	assert_int_equal(i.stats[4], free_b);
	assert_int_equal(i.stats[5], total);
	assert_int_equal(vd_used_idx(2), 0); /* the device keeps it until it polls */
}

/* Whether queue q's kick eventfd was written (the transport asked for another turn); reads
 * it. */
static bool requeued(unsigned q)
{
	struct pollfd p = {.fd = vp->kick_fd[q], .events = POLLIN};
	uint64_t n;
	return poll(&p, 1, 0) == 1 && read(vp->kick_fd[q], &n, sizeof(n)) == sizeof(n);
}

/* One chain naming more pages than three turns may take (split over three descriptors, with
 * a page number across each boundary, and some numbers outside RAM), then a short one: each
 * turn takes at most the budget, the next turn goes on where it stopped, and in the end
 * every page named is dropped (reads back as zero) and no other. */
static void test_inflate_budget(void **state)
{
	enum { BUDGET = VIRTIO_BALLOON_PAGES_PER_TURN, N = 3 * BUDGET + 100, SHORT = 10 };
	assert_int_equal(virtio_pci_kick_init(vp), 0);
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1, 3));
	memset(vd_ram + 100 * 4096, 0xAA, 156 * 4096); /* pages 100..255 */
	uint32_t *list = (uint32_t *)(vd_ram + LIST);
	unsigned outside = 0;
	for (unsigned i = 0; i < N; i++) {
		list[i] = PAGES / 4096 + i % 128;
		if (i % 700 == 699) {
			list[i] = 0x7FFFFFFF; /* not RAM: skipped */
			outside++;
		}
	}
	uint32_t third = 4 * (N / 3) + 2; /* cuts a page number in two */
	vd_post(vp, 0, 0, 3, (uint64_t[]){LIST, LIST + third, LIST + 2 * third},
		(uint32_t[]){third, third, 4 * N - 2 * third}, (bool[]){false, false, false},
		false);
	uint32_t *list2 = (uint32_t *)(vd_ram + LIST + 0x8000);
	for (unsigned i = 0; i < SHORT; i++)
		list2[i] = 100 + i;
	vd_post1(vp, 0, 3, LIST + 0x8000, 4 * SHORT, false, true);

	uint64_t want = N - outside + SHORT, before = 0;
	unsigned turns = 1;
	for (;;) {
		uint64_t now = info().inflated;
		assert_true(now - before <= BUDGET);
		before = now;
		if (!requeued(0))
			break;
		assert_true(vd_used_idx(0) < 2);
		virtio_pci_kick(vp, 0); /* the I/O thread's next turn */
		turns++;
		assert_true(turns < 100);
	}
	assert_int_equal(turns, (N + SHORT + BUDGET - 1) / BUDGET);
	assert_int_equal(info().inflated, want);
	assert_int_equal(vd_used_idx(0), 2);
	assert_int_equal(vd_used_len(0, 0), 0);
	for (unsigned p = 100; p < 256; p++) {
		bool named = p >= PAGES / 4096 || p < 100 + SHORT;
		assert_int_equal(vd_ram[p * 4096 + 4095], named ? 0 : 0xAA);
	}
	assert_false(vd_rd(vp, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_stats_before_driver_ok),
	    T(test_inflate_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
