/* Unit tests of the virtio-pci transport and host bridge, driven as a guest would: config
 * space, BAR sizing, feature negotiation, queues, MSI-X masking, virtio-blk and virtio-rng
 * requests, NEEDS_RESET, and save → restore → save giving identical bytes. */
#include "devices/pci/pci.h"
#include "devices/virtio/ratelimit.h"
#include "devices/virtio/virtio_devices.h"
#include "vdriver.h"
#include "vmm/bus.h"
#include "vmm/layout.h"

#include <cove/block.h>

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* Request buffers, clear of the queues' rings (vdriver puts them from VD_QBASE(0)). */
#define HDR 0x40000u /* request headers */
#define BUF 0x41000u /* data */
#define ST  0x42000u /* status bytes */

static char path[64], qpath[64];
static struct virtio_pci *vp;

static int setup(void **state)
{
	if (vd_setup(state))
		return -1;
	snprintf(path, sizeof(path), "/tmp/cove-vblk-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	uint8_t buf[512];
	for (int s = 0; s < 64; s++) {
		memset(buf, s, sizeof(buf));
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			return -1;
	}
	close(fd);
	/* A qcow2 overlay over it (unallocated: reads come from the raw file). */
	snprintf(qpath, sizeof(qpath), "/tmp/cove-vblk-q-XXXXXX");
	fd = mkstemp(qpath);
	if (fd < 0)
		return -1;
	close(fd);
	struct blk_create_opts co = {
	    .format = BLK_FMT_QCOW2, .backing_file = path, .backing_fmt = "raw"};
	struct cove_err cerr = {0};
	if (blk_create(qpath, &co, true, &cerr))
		return -1;
	struct virtio_disk_opts o = {.path = path, .queues = 2, .sync_io = true};
	snprintf(o.id, sizeof(o.id), "unit-disk");
	struct cove_err err = {0};
	vp = virtio_blk_new(&o, &vd_mem, NULL, &err);
	return vp ? 0 : -1;
}

static int teardown(void **state)
{
	virtio_dev_free(vp);
	unlink(path);
	unlink(qpath);
	return vd_teardown(state);
}

static void test_features(void **state)
{
	vd_wr(vp, 0x00, 4, 1);
	assert_true(vd_rd(vp, 0x04, 4) & 1);	 /* VERSION_1 is bit 32 */
	assert_int_equal(vd_rd(vp, 0x12, 2), 2); /* two queues */
	/* Without VERSION_1 the device refuses FEATURES_OK. */
	vd_wr(vp, 0x14, 1, 3);
	vd_wr(vp, 0x08, 4, 1);
	vd_wr(vp, 0x0C, 4, 0);
	vd_wr(vp, 0x14, 1, 3 | 8);
	assert_false(vd_rd(vp, 0x14, 1) & 8);
	/* A feature it did not offer: refused too. */
	vd_wr(vp, 0x14, 1, 0);
	vd_wr(vp, 0x14, 1, 3);
	vd_wr(vp, 0x08, 4, 1);
	vd_wr(vp, 0x0C, 4, 1 | 0x80000000u);
	vd_wr(vp, 0x14, 1, 3 | 8);
	assert_false(vd_rd(vp, 0x14, 1) & 8);
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1 | VIRTIO_F_EVENT_IDX, 1));
	assert_int_equal(vd_rd(vp, 0x14, 1), 15);
}

static void test_blk_read_write(void **state)
{
	assert_true(vd_init(
	    vp, VIRTIO_F_VERSION_1 | VIRTIO_F_EVENT_IDX | VIRTIO_F_INDIRECT_DESC | (1ULL << 9), 1));
	assert_int_equal(vd_rd(vp, VPCI_DEVCFG, 8), 64); /* capacity in sectors */
	uint32_t hdr[4] = {0, 0, 5, 0};			 /* read sector 5 */
	memcpy(vd_ram + HDR, hdr, 16);
	vd_ram[ST] = 0xEE;
	vd_post(vp, 0, 0, 3, (uint64_t[]){HDR, BUF, ST}, (uint32_t[]){16, 1024, 1},
		(bool[]){false, true, true}, true);
	assert_int_equal(vd_used_idx(0), 1);
	assert_int_equal(vd_ram[ST], 0);
	assert_int_equal(vd_ram[BUF], 5);
	assert_int_equal(vd_ram[BUF + 1023], 6);
	/* Write 512 bytes of 0x77 at sector 9 with the header and data in one descriptor. */
	uint32_t w[4] = {1, 0, 9, 0};
	memcpy(vd_ram + HDR, w, 16);
	memset(vd_ram + HDR + 16, 0x77, 512);
	vd_post(vp, 0, 3, 2, (uint64_t[]){HDR, ST}, (uint32_t[]){16 + 512, 1},
		(bool[]){false, true}, true);
	assert_int_equal(vd_used_idx(0), 2);
	assert_int_equal(vd_ram[ST], 0);
	FILE *f = fopen(path, "rb");
	uint8_t b[512];
	fseek(f, 9 * 512, SEEK_SET);
	assert_int_equal(fread(b, 1, 512, f), 512);
	fclose(f);
	assert_int_equal(b[0], 0x77);
	assert_int_equal(b[511], 0x77);
	/* Past the end of the disk: IOERR, not a crash. */
	uint32_t beyond[4] = {0, 0, 63, 0};
	memcpy(vd_ram + HDR, beyond, 16);
	vd_post(vp, 0, 5, 3, (uint64_t[]){HDR, BUF, ST}, (uint32_t[]){16, 1024, 1},
		(bool[]){false, true, true}, true);
	assert_int_equal(vd_ram[ST], 1);
	/* Unknown request type: UNSUPP. */
	uint32_t odd[4] = {99, 0, 0, 0};
	memcpy(vd_ram + HDR, odd, 16);
	vd_post(vp, 0, 8, 2, (uint64_t[]){HDR, ST}, (uint32_t[]){16, 1}, (bool[]){false, true},
		true);
	assert_int_equal(vd_ram[ST], 2);
	/* get-id */
	uint32_t gid[4] = {8, 0, 0, 0};
	memcpy(vd_ram + HDR, gid, 16);
	vd_post(vp, 0, 10, 3, (uint64_t[]){HDR, BUF, ST}, (uint32_t[]){16, 20, 1},
		(bool[]){false, true, true}, true);
	assert_string_equal((char *)vd_ram + BUF, "unit-disk");
	assert_false(vd_rd(vp, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_needs_reset(void **state)
{
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1, 1));
	/* A chain with no status byte is dropped quietly... */
	vd_post1(vp, 0, 0, HDR, 16, false, true);
	assert_int_equal(vd_used_idx(0), 1);
	assert_false(vd_rd(vp, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
	/* ...but one outside RAM breaks the device. */
	vd_post1(vp, 0, 1, VD_RAM - 4, 64, true, true);
	assert_true(vd_rd(vp, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
	/* Notifications now do nothing; a reset brings it back. */
	vd_post1(vp, 0, 0, HDR, 16, false, true);
	assert_int_equal(vd_used_idx(0), 1);
	vd_wr(vp, 0x14, 1, 0);
	assert_int_equal(vd_rd(vp, 0x14, 1), 0);
	memset(vd_ram + VD_QBASE(0) + 0x1000, 0, 0x2000); /* avail and used rings */
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1, 1));
	assert_int_equal(vd_rd(vp, 0x14, 1), 15);
	/* Rings outside VD_RAM at enable time. */
	vd_wr(vp, 0x16, 2, 1);
	vd_wr(vp, 0x20, 8, VD_RAM - 16);
	vd_wr(vp, 0x1C, 2, 1);
	assert_true(vd_rd(vp, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_live_queue_and_stray_notify(void **state)
{
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1, 1));
	vd_wr(vp, 0x16, 2, 0);
	vd_wr(vp, 0x18, 2, 4);
	assert_int_equal(vd_rd(vp, 0x18, 2), 16); /* a live queue's size does not change */
	vd_wr(vp, VPCI_NOTIFY + 4 * 7, 2, 7);	  /* no queue 7 */
	vd_wr(vp, 0x16, 2, 9);
	assert_int_equal(vd_rd(vp, 0x18, 2), 0); /* no queue 9 either */
	assert_false(vd_rd(vp, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_msix_mask_pending(void **state)
{
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1, 1));
	/* Enable MSI-X in config space, vector 0 for queue 0, masked. */
	uint16_t ctrl = (uint16_t)pci_cfg_get(&vp->pci, vp->msix_cap + 2, 2);
	pci_cfg_set(&vp->pci, vp->msix_cap + 2, 2, ctrl | 0x8000);
	vp->pci.ops->cfg_written(&vp->pci, vp->msix_cap + 2, 2);
	assert_true(vp->msix_on);
	vd_wr(vp, VPCI_MSIX + 0, 4, 0xFEE00000u);
	vd_wr(vp, VPCI_MSIX + 8, 4, 0x50);
	assert_int_equal(vd_rd(vp, VPCI_MSIX + 12, 4), 1); /* masked after reset */
	vd_wr(vp, 0x16, 2, 0);
	vd_wr(vp, 0x1A, 2, 0);
	assert_int_equal(vd_rd(vp, 0x1A, 2), 0);
	vd_wr(vp, 0x1A, 2, 200); /* no such vector: NO_VECTOR */
	assert_int_equal(vd_rd(vp, 0x1A, 2), VIRTIO_MSI_NO_VECTOR);
	vd_wr(vp, 0x1A, 2, 0);
	pthread_mutex_lock(&vp->lock);
	virtio_pci_notify_queue(vp, 0);
	pthread_mutex_unlock(&vp->lock);
	assert_int_equal(vd_rd(vp, VPCI_PBA, 8), 1);
	uint64_t before = vp->interrupts;
	vd_wr(vp, VPCI_MSIX + 12, 4, 0); /* unmask: the pending message goes out */
	assert_int_equal(vd_rd(vp, VPCI_PBA, 8), 0);
	assert_int_equal(vp->interrupts, before + 1);
}

static void test_save_restore(void **state)
{
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1 | VIRTIO_F_EVENT_IDX, 1));
	uint32_t hdr[4] = {0, 0, 1, 0};
	memcpy(vd_ram + HDR, hdr, 16);
	vd_post(vp, 0, 0, 3, (uint64_t[]){HDR, BUF, ST}, (uint32_t[]){16, 512, 1},
		(bool[]){false, true, true}, true);
	vd_wr(vp, VPCI_MSIX + 16, 4, 0xFEE01000u);
	/* Limits set at run time and the counters are part of the state. */
	virtio_blk_set_limits(vp, 5000000, 300);
	struct state_buf a = {0}, b = {0};
	assert_int_equal(virtio_pci_save(vp, &a), 0);

	struct virtio_disk_opts o = {.path = path, .queues = 2, .sync_io = true};
	struct cove_err err = {0};
	struct virtio_pci *other = virtio_blk_new(&o, &vd_mem, NULL, &err);
	assert_non_null(other);
	assert_int_equal(virtio_pci_restore(other, a.data, a.len), 0);
	assert_int_equal(virtio_pci_save(other, &b), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	struct virtio_blk_stats s1, s2;
	assert_int_equal(virtio_blk_stats(vp, &s1), 0);
	assert_int_equal(virtio_blk_stats(other, &s2), 0);
	assert_int_equal(s2.rd_reqs, 1);
	assert_int_equal(s2.rd_bytes, 512);
	assert_int_equal(s2.bps, 5000000);
	assert_int_equal(s2.iops, 300);
	assert_memory_equal(&s1, &s2, sizeof(s1));
	/* A saved rate the limiter cannot hold (above RATELIMIT_MAX means unlimited) is not
	 * applied on restore, and the stats show what is. */
	uint8_t *edited = malloc(a.len);
	assert_non_null(edited);
	memcpy(edited, a.data, a.len);
	uint64_t saved_bps = 5000000, huge = RATELIMIT_MAX + 1;
	uint8_t *at = memmem(edited, a.len, &saved_bps, 8);
	assert_non_null(at);
	memcpy(at, &huge, 8);
	struct virtio_pci *third = virtio_blk_new(&o, &vd_mem, NULL, &err);
	assert_non_null(third);
	assert_int_equal(virtio_pci_restore(third, edited, a.len), 0);
	assert_int_equal(virtio_blk_stats(third, &s2), 0);
	assert_int_equal(s2.bps, 0);
	assert_int_equal(s2.iops, 300);
	virtio_dev_free(third);
	free(edited);
	/* A disk of another format (or size) does not take the state. */
	struct virtio_disk_opts q = {.path = qpath, .queues = 2, .sync_io = true};
	struct virtio_pci *qdisk = virtio_blk_new(&q, &vd_mem, NULL, &err);
	assert_non_null(qdisk);
	assert_int_equal(virtio_pci_restore(qdisk, a.data, a.len), -EINVAL);
	virtio_dev_free(qdisk);
	/* The restored device carries on where the first left off. */
	struct virtio_pci *first = vp;
	vp = other;
	vd_post(vp, 0, 3, 3, (uint64_t[]){HDR, BUF, ST}, (uint32_t[]){16, 512, 1},
		(bool[]){false, true, true}, true);
	assert_int_equal(vd_used_idx(0), 2);
	vp = first;
	/* Truncated or foreign states are refused. */
	assert_int_equal(virtio_pci_restore(other, a.data, a.len - 1), -EINVAL);
	struct virtio_pci *rng = virtio_rng_new(&vd_mem, NULL, &err);
	assert_int_equal(virtio_pci_restore(rng, a.data, a.len), -EINVAL);
	virtio_dev_free(rng);
	virtio_dev_free(other);
	state_buf_free(&a);
	state_buf_free(&b);
}

/* A virtio-blk request in descriptors d0..d0+2 (header at hdr, len bytes of data at buf,
 * status at st), posted without a notification. Returns the head. */
static uint16_t blk_post(unsigned d0, uint32_t type, uint64_t sector, uint64_t buf, uint32_t len)
{
	uint64_t hdr = HDR + 0x20 * d0, st = ST + d0;
	uint32_t h[4] = {type, 0, (uint32_t)sector, (uint32_t)(sector >> 32)};
	memcpy(vd_ram + hdr, h, 16);
	vd_ram[st] = 0xEE;
	if (len)
		vd_post(vp, 0, d0, 3, (uint64_t[]){hdr, buf, st}, (uint32_t[]){16, len, 1},
			(bool[]){false, type == 0, true}, false);
	else
		vd_post(vp, 0, d0, 2, (uint64_t[]){hdr, st}, (uint32_t[]){16, 1},
			(bool[]){false, true}, false);
	return (uint16_t)d0;
}

/* Runs the device's backend (completions, rate-limit timer) until want chains are used. */
static void run_backend(uint16_t want)
{
	int fd = vp->ops->backend_fd(vp);
	for (int i = 0; i < 200 && vd_used_idx(0) != want; i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		poll(&p, 1, 50);
		virtio_pci_backend(vp);
	}
}

/* A second device on the same VD_RAM: its rings start empty. */
static struct virtio_pci *disk_new(const char *file, bool sync_io, enum blk_format fmt)
{
	memset(vd_ram + VD_QBASE(0), 0, 0x3000);
	struct virtio_disk_opts o = {
	    .path = (char *)file, .queues = 1, .sync_io = sync_io, .format = fmt};
	snprintf(o.id, sizeof(o.id), "unit-async");
	struct cove_err err = {0};
	return virtio_blk_new(&o, &vd_mem, NULL, &err);
}

/* blk_aio_*: requests complete through the backend fd, a batch with one interrupt; the
 * counters see them; a save first drains what is in flight. */
static void test_blk_async(void **state)
{
	struct virtio_pci *sync_disk = vp;
	vp = disk_new(path, false, BLK_FMT_RAW);
	assert_non_null(vp);
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1 | (1ULL << 9), 1));
	for (unsigned i = 0; i < 3; i++) {
		memset(vd_ram + 0x20000 + 0x1000 * i, 0x40 + (int)i, 512);
		blk_post(3 * i, 1, 20 + i, 0x20000 + 0x1000 * i, 512);
	}
	uint64_t irqs = vp->interrupts;
	vd_wr(vp, VPCI_NOTIFY, 2, 0);
	run_backend(3);
	assert_int_equal(vd_used_idx(0), 3);
	assert_int_equal(vp->interrupts - irqs, 1);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(vd_ram[ST + 3 * i], 0);
	/* Read them back in one request of three segments' worth through the ring. */
	blk_post(9, 0, 20, 0x30000, 1536);
	vd_wr(vp, VPCI_NOTIFY, 2, 0);
	run_backend(4);
	assert_int_equal(vd_ram[ST + 9], 0);
	assert_int_equal(vd_ram[0x30000], 0x40);
	assert_int_equal(vd_ram[0x30000 + 1535], 0x42);
	/* A flush, then a save with a write still in flight: the save finishes it first. */
	blk_post(12, 4, 0, 0, 0);
	vd_wr(vp, VPCI_NOTIFY, 2, 0);
	run_backend(5);
	blk_post(0, 1, 30, 0x20000, 512);
	vd_wr(vp, VPCI_NOTIFY, 2, 0);
	struct state_buf a = {0};
	assert_int_equal(virtio_pci_save(vp, &a), 0);
	assert_int_equal(vd_used_idx(0), 6);
	state_buf_free(&a);
	struct virtio_blk_stats s;
	assert_int_equal(virtio_blk_stats(vp, &s), 0);
	assert_string_equal(s.id, "unit-async");
	assert_int_equal(s.wr_reqs, 4);
	assert_int_equal(s.wr_bytes, 4 * 512);
	assert_int_equal(s.rd_reqs, 1);
	assert_int_equal(s.rd_bytes, 1536);
	assert_int_equal(s.fl_reqs, 1);
	assert_int_equal(s.errors, 0);
	assert_int_equal(virtio_blk_stats(sync_disk, &s), 0);
	virtio_dev_free(vp);
	vp = sync_disk;
}

/* A reset with reads taken by the ring but not yet completed: they are done before the
 * status reads 0 (nothing of them is left to arrive), they complete into nothing (no used
 * entry, no status byte), and the device works again. */
static void test_blk_reset_in_flight(void **state)
{
	struct virtio_pci *sync_disk = vp;
	vp = disk_new(path, false, BLK_FMT_RAW);
	assert_non_null(vp);
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1, 1));
	memset(vd_ram + 0x20000, 0xCC, 0x3000);
	for (unsigned i = 0; i < 3; i++)
		blk_post(3 * i, 0, 10 + 2 * i, 0x20000 + 0x1000 * i, 1024);
	vd_wr(vp, VPCI_NOTIFY, 2, 0); /* submitted; the completions wait for the backend */
	vd_wr(vp, 0x14, 1, 0);
	assert_int_equal(vd_rd(vp, 0x14, 1), 0);
	assert_false(vp->reset_pending);
	assert_int_equal(vp->ops->drain(vp, 0), 0);
	assert_int_equal(vd_ram[0x20000], 10);
	assert_int_equal(vd_ram[0x22000 + 1023], 15);
	virtio_pci_backend(vp);
	assert_int_equal(vd_used_idx(0), 0);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(vd_ram[ST + 3 * i], 0xEE);
	memset(vd_ram + VD_QBASE(0) + 0x1000, 0, 0x2000); /* avail and used rings */
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1, 1));
	blk_post(0, 0, 20, 0x30000, 512);
	vd_wr(vp, VPCI_NOTIFY, 2, 0);
	run_backend(1);
	assert_int_equal(vd_used_idx(0), 1);
	assert_int_equal(vd_ram[ST], 0);
	assert_int_equal(vd_ram[0x30000 + 511], 20);
	virtio_dev_free(vp);
	vp = sync_disk;
}

/* A model whose I/O stays in flight until fake_busy is cleared. */
static bool fake_busy;
static void fake_notify(struct virtio_pci *p, unsigned q)
{
}
static int fake_drain(struct virtio_pci *p, unsigned ms)
{
	return fake_busy ? -EBUSY : 0;
}
static const struct virtio_dev_ops fake_ops = {.notify = fake_notify, .drain = fake_drain};

/* The transport's side of a reset that waits for I/O in flight: the status reads nonzero and
 * the driver's writes change nothing until the model's drain says it is done (seen on a status
 * read, or by the I/O thread); then the device starts over from its reset state. */
static void test_reset_waits_for_io(void **state)
{
	struct virtio_pci fake;
	virtio_pci_init(&fake, &(struct virtio_pci_config){.name = "fake",
							   .device_id = 4,
							   .nqueues = 1,
							   .qmax = VD_QSIZE,
							   .ops = &fake_ops,
							   .mem = &vd_mem});
	assert_true(vd_init(&fake, VIRTIO_F_VERSION_1, 1));
	fake_busy = true;
	vd_wr(&fake, 0x14, 1, 0);
	assert_true(fake.reset_pending);
	assert_int_equal(vd_rd(&fake, 0x14, 1), 15);
	/* A driver that does not wait: nothing changes. */
	vd_wr(&fake, 0x14, 1, 1);
	vd_wr(&fake, 0x16, 2, 0);
	vd_wr(&fake, 0x18, 2, 8);
	assert_int_equal(vd_rd(&fake, 0x14, 1), 15);
	assert_int_equal(vd_rd(&fake, 0x1C, 2), 0); /* the queue is already off */
	fake_busy = false;
	assert_int_equal(vd_rd(&fake, 0x14, 1), 0);
	assert_false(fake.reset_pending);
	assert_int_equal(vd_rd(&fake, 0x18, 2), VD_QSIZE); /* the size written meanwhile: ignored */
	/* The I/O thread ends it too, without a status read. */
	assert_true(vd_init(&fake, VIRTIO_F_VERSION_1, 1));
	fake_busy = true;
	vd_wr(&fake, 0x14, 1, 0);
	assert_true(fake.reset_pending);
	virtio_pci_backend(&fake);
	assert_true(fake.reset_pending);
	fake_busy = false;
	virtio_pci_backend(&fake);
	assert_false(fake.reset_pending);
	assert_int_equal(vd_rd(&fake, 0x14, 1), 0);
	/* With nothing in flight the write of 0 is the whole reset. */
	assert_true(vd_init(&fake, VIRTIO_F_VERSION_1, 1));
	vd_wr(&fake, 0x14, 1, 0);
	assert_false(fake.reset_pending);
	assert_int_equal(fake.resets_waited, 2);
	virtio_pci_fini(&fake);
}

/* A disk started without a limit gets one at run time; lifting it serves what waited. */
static void test_blk_runtime_limit(void **state)
{
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1, 1));
	virtio_blk_set_limits(vp, 0, 1); /* one request per second */
	blk_post(0, 0, 1, 0x20000, 512);
	blk_post(3, 0, 2, 0x21000, 512);
	vd_wr(vp, VPCI_NOTIFY, 2, 0);
	assert_int_equal(vd_used_idx(0), 1); /* the second waits for the bucket */
	struct virtio_blk_stats s;
	assert_int_equal(virtio_blk_stats(vp, &s), 0);
	assert_int_equal(s.iops, 1);
	assert_int_equal(s.throttled, 1);
	virtio_blk_set_limits(vp, 0, 0);
	run_backend(2);
	assert_int_equal(vd_used_idx(0), 2);
	assert_int_equal(vd_ram[0x21000], 2);
	assert_int_equal(virtio_blk_stats(vp, &s), 0);
	assert_int_equal(s.rd_reqs, 2);
	assert_int_equal(s.iops, 0);
}

/* A probed raw image: the guest may write sector 0, but not an image header there. */
static void test_blk_sector0_guard(void **state)
{
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1, 1));
	memset(vd_ram + 0x20000, 0, 1024);
	memcpy(vd_ram + 0x20000, "QFI\xfb\0\0\0\3", 8);
	blk_post(0, 1, 0, 0x20000, 1024);
	vd_wr(vp, VPCI_NOTIFY, 2, 0);
	assert_int_equal(vd_ram[ST], 1); /* IOERR */
	uint8_t b[8];
	FILE *f = fopen(path, "rb");
	assert_int_equal(fread(b, 1, 8, f), 8);
	fclose(f);
	assert_int_equal(b[0], 0); /* sector 0 unchanged */
	memset(vd_ram + 0x20000, 0x33, 1024);
	blk_post(3, 1, 0, 0x20000, 1024);
	vd_wr(vp, VPCI_NOTIFY, 2, 0);
	assert_int_equal(vd_ram[ST + 3], 0);
	/* format=raw lifts the guard. */
	struct virtio_pci *guarded = vp;
	vp = disk_new(path, true, BLK_FMT_RAW);
	assert_non_null(vp);
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1, 1));
	memcpy(vd_ram + 0x20000, "QFI\xfb\0\0\0\3", 8);
	blk_post(0, 1, 0, 0x20000, 512);
	vd_wr(vp, VPCI_NOTIFY, 2, 0);
	assert_int_equal(vd_used_idx(0), 1);
	assert_int_equal(vd_ram[ST], 0);
	/* Put the sector back so that other tests see a raw image. */
	memset(vd_ram + 0x20000, 0, 512);
	blk_post(3, 1, 0, 0x20000, 512);
	vd_wr(vp, VPCI_NOTIFY, 2, 0);
	virtio_dev_free(vp);
	vp = guarded;
}

/* A qcow2 overlay: reads fall through to the backing file, writes stay in the overlay; both
 * engines. A wrong or corrupt format is a clear error. */
static void test_blk_qcow2(void **state)
{
	struct virtio_pci *raw = vp;
	for (int sync_io = 0; sync_io < 2; sync_io++) {
		vp = disk_new(qpath, sync_io, BLK_FMT_AUTO);
		assert_non_null(vp);
		assert_true(vd_init(vp, VIRTIO_F_VERSION_1, 1));
		assert_int_equal(vd_rd(vp, VPCI_DEVCFG, 8), 64);
		blk_post(0, 0, 5, 0x20000, 1024);
		vd_wr(vp, VPCI_NOTIFY, 2, 0);
		run_backend(1);
		assert_int_equal(vd_used_idx(0), 1);
		assert_int_equal(vd_ram[ST], 0);
		assert_int_equal(vd_ram[0x20000], 5);
		assert_int_equal(vd_ram[0x20000 + 1023], 6);
		memset(vd_ram + 0x21000, 0x60 + sync_io, 512);
		blk_post(3, 1, 40, 0x21000, 512);
		vd_wr(vp, VPCI_NOTIFY, 2, 0);
		run_backend(2);
		assert_int_equal(vd_used_idx(0), 2);
		assert_int_equal(vd_ram[ST + 3], 0);
		virtio_dev_free(vp);
	}
	vp = raw;
	memset(vd_ram + VD_QBASE(0), 0, 0x3000);
	struct blk *q, *r;
	struct cove_err err = {0};
	assert_int_equal(blk_open(qpath, NULL, &q, &err), 0);
	assert_int_equal(blk_open(path, NULL, &r, &err), 0);
	uint8_t qb[512], rb[512];
	assert_int_equal(blk_pread(q, qb, 512, 40 * 512), 0);
	assert_int_equal(blk_pread(r, rb, 512, 40 * 512), 0);
	assert_int_equal(qb[0], 0x61);
	assert_int_equal(rb[0], 40); /* the backing file is untouched */
	blk_close(q);
	blk_close(r);
	/* format=qcow2 on a raw file; a qcow2 header pointing past the end of the file. */
	struct virtio_disk_opts o = {.path = path, .queues = 1, .format = BLK_FMT_QCOW2};
	err = (struct cove_err){0};
	assert_null(virtio_blk_new(&o, &vd_mem, NULL, &err));
	assert_true(err.code < 0 && strstr(err.msg, path));
	char bad[64];
	snprintf(bad, sizeof(bad), "/tmp/cove-vblk-bad-XXXXXX");
	int fd = mkstemp(bad);
	assert_true(fd >= 0);
	uint8_t hdr[512] = {'Q', 'F', 'I', 0xfb, 0, 0, 0, 3};
	memset(hdr + 40, 0x7f, 8); /* l1_table_offset far past the end */
	hdr[35] = 4;		   /* l1_size */
	hdr[23] = 16;		   /* cluster_bits */
	assert_int_equal(write(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	close(fd);
	o.path = bad;
	o.format = BLK_FMT_AUTO;
	err = (struct cove_err){0};
	assert_null(virtio_blk_new(&o, &vd_mem, NULL, &err));
	assert_true(err.code < 0 && strstr(err.msg, bad));
	unlink(bad);
}

static void test_rng(void **state)
{
	struct cove_err err = {0};
	struct virtio_pci *blk = vp;
	vp = virtio_rng_new(&vd_mem, NULL, &err);
	assert_non_null(vp);
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1, 1));
	vd_post(vp, 0, 0, 2, (uint64_t[]){BUF, BUF + 32}, (uint32_t[]){32, 32},
		(bool[]){true, true}, true);
	assert_int_equal(vd_used_len(0, 0), 64);
	struct state_buf a = {0}, b = {0};
	assert_int_equal(virtio_pci_save(vp, &a), 0);
	assert_int_equal(virtio_pci_restore(vp, a.data, a.len), 0);
	assert_int_equal(virtio_pci_save(vp, &b), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	state_buf_free(&a);
	state_buf_free(&b);
	virtio_dev_free(vp);
	vp = blk;
}

/* A notification on a live queue before DRIVER_OK (Linux's balloon sends one so for its
 * statistics): nothing is used before DRIVER_OK (virtio 1.2 §3.1.1), and nothing is lost: the
 * queue is served when the driver sets it, whether the notification came by MMIO exit or by
 * the ioeventfd. */
static void test_notify_before_driver_ok(void **state)
{
	struct cove_err err = {0};
	struct virtio_pci *blk = vp;
	vp = virtio_rng_new(&vd_mem, NULL, &err);
	assert_non_null(vp);
	for (int by_eventfd = 0; by_eventfd < 2; by_eventfd++) {
		memset(vd_ram + VD_QBASE(0), 0, 0x3000);
		assert_true(vd_init_queues(vp, VIRTIO_F_VERSION_1, 1));
		vd_post1(vp, 0, 0, BUF, 32, true, !by_eventfd);
		if (by_eventfd)
			virtio_pci_kick(vp, 0);
		assert_int_equal(vd_used_idx(0), 0);
		assert_true(vd_driver_ok(vp));
		assert_int_equal(vd_used_idx(0), 1);
		assert_int_equal(vd_used_len(0, 0), 32);
		vd_wr(vp, 0x14, 1, 0);
	}
	virtio_dev_free(vp);
	vp = blk;
}

static void test_host_bridge(void **state)
{
	struct bus *pio = bus_new(), *mmio = bus_new();
	struct pci_host *h = calloc(1, sizeof(*h));
	assert_int_equal(pci_host_init(h, pio, mmio, NULL), 0);
	assert_true(pci_host_add(h, &vp->pci) > 0);
	unsigned slot = vp->pci.slot;
	uint32_t v = 0;
	/* ECAM and 0xCF8 see the same function. */
	bus_read(mmio, BUS_MMIO, LAYOUT_PCI_ECAM + (slot << 15), &v, 4);
	assert_int_equal(v, 0x1AF4 | (0x1042u << 16));
	uint32_t addr = 0x80000000u | slot << 11;
	bus_write(pio, BUS_PIO, 0xCF8, &addr, 4);
	v = 0;
	bus_read(pio, BUS_PIO, 0xCFC, &v, 4);
	assert_int_equal(v, 0x1AF4 | (0x1042u << 16));
	/* An empty slot reads all ones. */
	bus_read(mmio, BUS_MMIO, LAYOUT_PCI_ECAM + (31 << 15), &v, 4);
	assert_int_equal(v, 0xFFFFFFFFu);
	/* BAR sizing: all ones in, size mask out; BAR mapped once memory decoding is on. */
	uint64_t bar = LAYOUT_PCI_ECAM + (slot << 15) + 0x10;
	uint32_t orig = 0, ones = 0xFFFFFFFFu, sz = 0;
	bus_read(mmio, BUS_MMIO, bar, &orig, 4);
	assert_true(orig >= PCI_MMIO32_BASE && orig < PCI_MMIO32_END);
	bus_write(mmio, BUS_MMIO, bar, &ones, 4);
	bus_read(mmio, BUS_MMIO, bar, &sz, 4);
	assert_int_equal(sz, (uint32_t) ~(VPCI_BAR_SIZE - 1) | 4);
	bus_write(mmio, BUS_MMIO, bar, &orig, 4);
	uint16_t cmd = PCI_CMD_MEM;
	bus_write(mmio, BUS_MMIO, LAYOUT_PCI_ECAM + (slot << 15) + 4, &cmd, 2);
	uint16_t nq = 0;
	assert_true(bus_read(mmio, BUS_MMIO, (orig & ~0xFu) + 0x12, &nq, 2));
	assert_int_equal(nq, 2);
	/* The capability list holds MSI-X and five virtio capabilities. */
	unsigned p = vp->pci.cfg[PCI_CAP_PTR], n = 0;
	while (p && n < 10) {
		n++;
		p = vp->pci.cfg[p + 1];
	}
	assert_int_equal(n, 6);
	pci_host_fini(h);
	free(h);
	bus_free(pio);
	bus_free(mmio);
}

/* save → restore into a fresh device → save: the same bytes, for every device model. */
static struct virtio_pci *make(int kind)
{
	struct cove_err err = {0};
	static char uds[64];
	struct virtio_opts co = {.hvc = true, .hvc_file = "/dev/null"};
	switch (kind) {
	case 0:
		return virtio_balloon_new(&(struct virtio_balloon_opts){.amount_mib = 1}, &vd_mem,
					  NULL, &err);
	case 1:
		return virtio_console_new(&co, &vd_mem, NULL, &err);
	default:
		snprintf(uds, sizeof(uds), "/tmp/cove-unit-vsock-%d-%d", getpid(), kind);
		unlink(uds);
		return virtio_vsock_new(42, uds, &vd_mem, NULL, &err);
	}
}

static void test_save_restore_models(void **state)
{
	struct virtio_pci *blk = vp;
	for (int kind = 0; kind < 3; kind++) {
		vp = make(kind);
		assert_non_null(vp);
		assert_true(vd_init(vp, VIRTIO_F_VERSION_1 | VIRTIO_F_EVENT_IDX, 1));
		if (kind == 0) {
			vd_wr(vp, VPCI_DEVCFG + 4, 4, 3); /* balloon: actual */
			assert_int_equal(vd_rd(vp, VPCI_DEVCFG, 4), 256);
		}
		struct state_buf a = {0}, b = {0};
		assert_int_equal(virtio_pci_save(vp, &a), 0);
		struct virtio_pci *other = make(kind + 3 * (kind == 2));
		assert_non_null(other);
		assert_int_equal(virtio_pci_restore(other, a.data, a.len), 0);
		assert_int_equal(virtio_pci_save(other, &b), 0);
		assert_int_equal(a.len, b.len);
		assert_memory_equal(a.data, b.data, a.len);
		state_buf_free(&a);
		state_buf_free(&b);
		virtio_dev_free(other);
		virtio_dev_free(vp);
	}
	vp = blk;
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_features),
	    T(test_blk_read_write),
	    T(test_needs_reset),
	    T(test_live_queue_and_stray_notify),
	    T(test_msix_mask_pending),
	    T(test_save_restore),
	    T(test_blk_async),
	    T(test_blk_reset_in_flight),
	    T(test_reset_waits_for_io),
	    T(test_blk_runtime_limit),
	    T(test_blk_sector0_guard),
	    T(test_blk_qcow2),
	    T(test_rng),
	    T(test_notify_before_driver_ok),
	    T(test_host_bridge),
	    T(test_save_restore_models),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
