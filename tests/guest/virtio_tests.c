/* Probe-guest tests of PCI and the virtio devices (blk, rng) and of hostile-driver handling. */
#include "probe.h"
#include "virtio.h"

#define BLK_F_RO	   (1ULL << 5)
#define BLK_F_FLUSH	   (1ULL << 9)
#define BLK_F_DISCARD	   (1ULL << 13)
#define BLK_F_WRITE_ZEROES (1ULL << 14)
#define F_INDIRECT	   (1ULL << 28)
#define F_EVENT_IDX	   (1ULL << 29)

/* The image the host makes: byte j of sector s is (s * 31 + j) & 0xFF. The guest writes
 * sectors 1000.. with (s * 7 + j * 13 + 0x5A) & 0xFF; the host checks them afterwards. */
uint8_t disk_pat(uint64_t s, unsigned j)
{
	return (uint8_t)(s * 31 + j);
}
static uint8_t write_pat(uint64_t s, unsigned j)
{
	return (uint8_t)(s * 7 + j * 13 + 0x5A);
}

static unsigned blk_q; /* the queue blk_req uses */

struct blk_hdr {
	uint32_t type, rsv;
	uint64_t sector;
};

static uint64_t pa(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

/* One request: header, the data split into nseg descriptors, status. Returns the status
 * byte, 0x100 + used length mismatch, or -1 on timeout. */
int blk_req(struct vdev *v, uint32_t type, uint64_t sector, uint8_t *buf, uint32_t len, int nseg,
	    int indirect)
{
	struct blk_hdr *h = (struct blk_hdr *)dma_alloc(16);
	uint8_t *st = dma_alloc(1);
	if (!h || !st)
		return -1;
	h->type = type;
	h->sector = sector;
	*st = 0xEE;
	uint64_t a[8];
	uint32_t l[8];
	int w[8], n = 0;
	a[n] = pa(h), l[n] = 16, w[n++] = 0;
	int wr = type == 0 || type == 8;
	uint32_t off = 0;
	for (int i = 0; i < nseg && len; i++) {
		uint32_t part = i == nseg - 1 ? len - off : len / (uint32_t)nseg;
		a[n] = pa(buf + off), l[n] = part, w[n++] = wr;
		off += part;
	}
	a[n] = pa(st), l[n] = 1, w[n++] = 1;
	if (vq_add(v, blk_q, a, l, w, n, indirect) < 0)
		return -1;
	uint32_t used;
	if (vq_wait(v, blk_q, &used, 2000))
		return -1;
	if (*st == 0 && wr && used != len + 1)
		return 0x100;
	return *st;
}

int test_pci(char *d, size_t n)
{
	struct pci_dev devs[32];
	int nd = pci_scan(devs, 32);
	if (nd <= 0) {
		ksnprintf(d, n, "no PCI functions on bus 0");
		return FAIL;
	}
	if (devs[0].dev != 0 || devs[0].class_code >> 8 != 0x0600) {
		ksnprintf(d, n, "00:00.0 is not a host bridge (class %06x)", devs[0].class_code);
		return FAIL;
	}
	int nv = 0;
	for (int i = 0; i < nd; i++)
		nv += devs[i].vendor == 0x1AF4;
	/* ECAM: where the MCFG says, else Cove's fixed address; it must agree with 0xCF8. */
	uint64_t ecam = 0;
	for (int i = 0; i < acpi.nt; i++)
		if (!memcmp(acpi.t[i].sig, "MCFG", 4) && acpi.t[i].len >= 60)
			ecam = rd64(acpi.t[i].addr + 44);
	const char *src = "MCFG";
	if (!ecam) {
		ecam = LAYOUT_PCI_ECAM;
		src = "fixed";
	}
	int ecam_ok = 1;
	for (int i = 0; i < nd; i++) {
		uint64_t a = ecam + ((uint64_t)devs[i].dev << 15);
		if (rd32(a) != ((uint32_t)devs[i].device << 16 | devs[i].vendor))
			ecam_ok = 0;
	}
	if (!ecam_ok && src[0] == 'M') {
		ksnprintf(d, n, "ECAM at 0x%lx (MCFG) disagrees with 0xCF8", ecam);
		return FAIL;
	}
	ksnprintf(d, n, "%d functions, %d virtio; ECAM at 0x%lx (%s) %s", nd, nv, ecam, src,
		  ecam_ok ? "agrees with 0xCF8" : "absent");
	return PASS;
}

int blk_open(struct vdev *v, int nth, uint64_t want, char *d, size_t n)
{
	dma_reset();
	if (vdev_find(2, nth, v, d, n) || vdev_init(v, want, 1, d, n))
		return -1;
	return 0;
}

int test_vblk(char *d, size_t n)
{
	struct vdev v;
	if (blk_open(&v, 0,
		     BLK_F_FLUSH | BLK_F_DISCARD | BLK_F_WRITE_ZEROES | F_INDIRECT | F_EVENT_IDX, d,
		     n))
		return FAIL;
	uint64_t cap = rd64(v.devcfg);
	if (cap < 2048) {
		ksnprintf(d, n, "capacity %lu sectors, want at least 2048", cap);
		return FAIL;
	}
	uint64_t irq0 = virtio_irqs[0];
	__asm__ volatile("sti");
	uint8_t *buf = dma_alloc(8192);
	int r = blk_req(&v, 0, 0, buf, 8192, 3, 0);
	if (r) {
		ksnprintf(d, n, "read of sectors 0-15: status %d", r);
		goto fail;
	}
	for (unsigned i = 0; i < 8192; i++)
		if (buf[i] != disk_pat(i / 512, i % 512)) {
			ksnprintf(d, n, "read: byte %u is 0x%x, want 0x%x", i, buf[i],
				  disk_pat(i / 512, i % 512));
			goto fail;
		}
	/* Write 1000-1007 with header and data in ONE readable descriptor. */
	uint8_t *w = dma_alloc(16 + 4096);
	struct blk_hdr *h = (struct blk_hdr *)w;
	h->type = 1;
	h->sector = 1000;
	for (unsigned i = 0; i < 4096; i++)
		w[16 + i] = write_pat(1000 + i / 512, i % 512);
	uint8_t *st = dma_alloc(1);
	*st = 0xEE;
	uint64_t a[2] = {pa(w), pa(st)};
	uint32_t l[2] = {16 + 4096, 1};
	int wf[2] = {0, 1};
	uint32_t used = 0;
	if (vq_add(&v, 0, a, l, wf, 2, 0) < 0 || vq_wait(&v, 0, &used, 2000) || *st != 0) {
		ksnprintf(d, n, "write (header+data in one descriptor): status %d", *st);
		goto fail;
	}
	if ((r = blk_req(&v, 4, 0, 0, 0, 0, 0))) {
		ksnprintf(d, n, "flush: status %d", r);
		goto fail;
	}
	/* Read it back through an indirect table. */
	memset(buf, 0, 4096);
	if ((r = blk_req(&v, 0, 1000, buf, 4096, 4, 1))) {
		ksnprintf(d, n, "indirect read-back: status %d", r);
		goto fail;
	}
	if (memcmp(buf, w + 16, 4096)) {
		ksnprintf(d, n, "read-back differs from what was written");
		goto fail;
	}
	/* get-id */
	memset(buf, 0, 32);
	if ((r = blk_req(&v, 8, 0, buf, 20, 1, 0)) && r != 0x100) {
		ksnprintf(d, n, "get-id: status %d", r);
		goto fail;
	}
	size_t idn;
	const char *id = cmdline_get("probe.blk_id", &idn);
	if (id && (idn > 20 || memcmp(buf, id, idn) || (idn < 20 && buf[idn]))) {
		ksnprintf(d, n, "get-id: '%s', want the host's id", (char *)buf);
		goto fail;
	}
	/* write-zeroes 1100-1107, then discard 1200-1215. */
	struct {
		uint64_t sector;
		uint32_t num, flags;
	} *seg = (void *)dma_alloc(16);
	const char *what = "";
	if (v.features & BLK_F_WRITE_ZEROES) {
		seg->sector = 1100, seg->num = 8, seg->flags = 0;
		if ((r = blk_req(&v, 13, 0, (uint8_t *)seg, 16, 1, 0)) && r != 0x100) {
			ksnprintf(d, n, "write-zeroes: status %d", r);
			goto fail;
		}
		memset(buf, 0xAA, 4096);
		if ((r = blk_req(&v, 0, 1100, buf, 4096, 1, 0))) {
			ksnprintf(d, n, "read after write-zeroes: status %d", r);
			goto fail;
		}
		for (unsigned i = 0; i < 4096; i++)
			if (buf[i]) {
				ksnprintf(d, n, "write-zeroes: byte %u is 0x%x", i, buf[i]);
				goto fail;
			}
		what = ", write-zeroes";
	}
	if (v.features & BLK_F_DISCARD) {
		seg->sector = 1200, seg->num = 16, seg->flags = 0;
		if ((r = blk_req(&v, 11, 0, (uint8_t *)seg, 16, 1, 0)) && r != 0x100) {
			ksnprintf(d, n, "discard: status %d", r);
			goto fail;
		}
	}
	__asm__ volatile("cli");
	uint64_t irqs = virtio_irqs[0] - irq0;
	if (!irqs) {
		ksnprintf(d, n, "requests completed but no MSI-X interrupt arrived");
		return FAIL;
	}
	ksnprintf(d, n, "%lu sectors; read, write, flush, indirect, get-id%s%s; %lu MSI-X irqs",
		  cap, what, v.features & BLK_F_DISCARD ? ", discard" : "", irqs);
	vdev_reset(&v);
	return PASS;
fail:
	__asm__ volatile("cli");
	vdev_reset(&v);
	return FAIL;
}

/* What test_vblk leaves on the disk (sectors 1000-1007 written, 1100-1107 zeroed), without a
 * flush: with probe.exit=halt the host then kills the VMM and looks for it in the image. */
int test_vblk_noflush(char *d, size_t n)
{
	struct vdev v;
	if (blk_open(&v, 0, BLK_F_FLUSH | BLK_F_WRITE_ZEROES | F_EVENT_IDX, d, n))
		return FAIL;
	uint8_t *w = dma_alloc(4096);
	for (unsigned i = 0; i < 4096; i++)
		w[i] = write_pat(1000 + i / 512, i % 512);
	int r = blk_req(&v, 1, 1000, w, 4096, 1, 0);
	if (r) {
		ksnprintf(d, n, "write of sectors 1000-1007: status %d", r);
		goto fail;
	}
	const char *what = "";
	if (v.features & BLK_F_WRITE_ZEROES) {
		struct {
			uint64_t sector;
			uint32_t num, flags;
		} *seg = (void *)dma_alloc(16);
		seg->sector = 1100, seg->num = 8, seg->flags = 0;
		if ((r = blk_req(&v, 13, 0, (uint8_t *)seg, 16, 1, 0))) {
			ksnprintf(d, n, "write-zeroes: status %d", r);
			goto fail;
		}
		what = ", write-zeroes";
	} else {
		memset(w, 0, 4096);
		if ((r = blk_req(&v, 1, 1100, w, 4096, 1, 0))) {
			ksnprintf(d, n, "write of zeroes to sectors 1100-1107: status %d", r);
			goto fail;
		}
	}
	ksnprintf(d, n, "write%s completed, no flush", what);
	return PASS;
fail:
	vdev_reset(&v);
	return FAIL;
}

int test_vblk_ro(char *d, size_t n)
{
	struct vdev v;
	if (blk_open(&v, 1, BLK_F_RO, d, n))
		return FAIL;
	if (!(v.features & BLK_F_RO)) {
		ksnprintf(d, n, "second disk does not say read-only");
		vdev_reset(&v);
		return FAIL;
	}
	uint8_t *buf = dma_alloc(512);
	int r = blk_req(&v, 0, 3, buf, 512, 1, 0);
	int rw = blk_req(&v, 1, 3, buf, 512, 1, 0);
	vdev_reset(&v);
	if (r || buf[0] != disk_pat(3, 0)) {
		ksnprintf(d, n, "read: status %d", r);
		return FAIL;
	}
	if (rw != 1 && rw != 2) {
		ksnprintf(d, n, "write to a read-only disk: status %d, want IOERR", rw);
		return FAIL;
	}
	ksnprintf(d, n, "reads work, writes fail with status %d", rw);
	return PASS;
}

/* Sector 0 of the first disk: an image header written there is refused when the VMM probed
 * the raw image (probe.sector0=refused, the default: Cove and QEMU without format=) or
 * taken (probe.sector0=allowed); an ordinary write there works either way. */
int test_vblk_guard(char *d, size_t n)
{
	struct vdev v;
	if (blk_open(&v, 0, 0, d, n))
		return FAIL;
	size_t len;
	const char *want = cmdline_get("probe.sector0", &len);
	int refuse = !(want && len == 7 && !memcmp(want, "allowed", 7));
	uint8_t *old = dma_alloc(512), *hdr = dma_alloc(512), *chk = dma_alloc(512);
	int r = blk_req(&v, 0, 0, old, 512, 1, 0);
	if (r) {
		vdev_reset(&v);
		ksnprintf(d, n, "read of sector 0: status %d", r);
		return FAIL;
	}
	memset(hdr, 0, 512);
	memcpy(hdr, "QFI\xfb\0\0\0\3", 8); /* a qcow2 version 3 header's start */
	int w = blk_req(&v, 1, 0, hdr, 512, 1, 0);
	int back = blk_req(&v, 1, 0, old, 512, 1, 0);
	int rr = blk_req(&v, 0, 0, chk, 512, 1, 0);
	vdev_reset(&v);
	if (back || rr || memcmp(chk, old, 512)) {
		ksnprintf(d, n, "sector 0 could not be written back (status %d, read %d)", back,
			  rr);
		return FAIL;
	}
	if (refuse ? w != 1 : w != 0) {
		ksnprintf(d, n, "image header written to sector 0: status %d, want %s", w,
			  refuse ? "IOERR (refused)" : "OK");
		return FAIL;
	}
	ksnprintf(d, n, "an image header to sector 0 %s (status %d); ordinary writes there work",
		  w ? "refused" : "taken", w);
	return PASS;
}

static int rng_get(struct vdev *v, uint8_t *buf, uint32_t len)
{
	uint64_t a[2] = {pa(buf), pa(buf + len / 2)};
	uint32_t l[2] = {len / 2, len - len / 2};
	int w[2] = {1, 1};
	uint32_t used = 0;
	if (vq_add(v, 0, a, l, w, 2, 0) < 0 || vq_wait(v, 0, &used, 2000))
		return -1;
	return (int)used;
}

int test_vrng(char *d, size_t n)
{
	struct vdev v;
	dma_reset();
	if (vdev_find(4, 0, &v, d, n) || vdev_init(&v, F_EVENT_IDX, 1, d, n))
		return FAIL;
	uint8_t *a = dma_alloc(64), *b = dma_alloc(64);
	int la = rng_get(&v, a, 64), lb = rng_get(&v, b, 64);
	vdev_reset(&v);
	if (la <= 0 || lb <= 0) {
		ksnprintf(d, n, "no entropy returned (%d, %d)", la, lb);
		return FAIL;
	}
	if (!memcmp(a, b, 16)) {
		ksnprintf(d, n, "two requests gave the same bytes");
		return FAIL;
	}
	ksnprintf(d, n, "%d + %d bytes", la, lb);
	return PASS;
}

/* ---- Hostile driver ------------------------------------------------------------ */

/* After a bad chain: 'R' (NEEDS_RESET), 'C' (the device completed it anyway, as QEMU does
 * for addresses it can bounce through), or 0 (no reaction: a hang). */
static char wait_reaction(struct vdev *v)
{
	for (int i = 0; i < 200; i++) {
		if (vdev_status(v) & 0x40)
			return 'R';
		if (v->q[0].used[1] != v->q[0].last_used)
			return 'C';
		delay_us(1000);
	}
	return 0;
}

static int good_read(struct vdev *v)
{
	uint8_t *buf = dma_alloc(512);
	return blk_req(v, 0, 5, buf, 512, 1, 0) == 0 && buf[7] == disk_pat(5, 7);
}

static void raw_desc(struct vq *q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	volatile uint8_t *e = q->desc + 16 * i;
	*(volatile uint64_t *)e = addr;
	*(volatile uint32_t *)(e + 8) = len;
	*(volatile uint16_t *)(e + 12) = flags;
	*(volatile uint16_t *)(e + 14) = next;
}

static void raw_post(struct vdev *v, uint16_t head)
{
	struct vq *q = &v->q[0];
	q->avail[2 + q->idx % q->size] = head;
	__asm__ volatile("mfence" ::: "memory");
	q->idx++;
	q->avail[1] = q->idx;
	__asm__ volatile("mfence" ::: "memory");
	vq_notify(v, 0);
}

int test_vhostile(char *d, size_t n)
{
	struct vdev v;
	static const char *const names[] = {"descriptor outside RAM", "looping chain",
					    "huge length"};
	char seen[5] = {0};
	for (int k = 0; k < 3; k++) {
		if (blk_open(&v, 0, F_EVENT_IDX, d, n))
			return FAIL;
		struct vq *q = &v.q[0];
		struct blk_hdr *h = (struct blk_hdr *)dma_alloc(16);
		h->type = 0;
		if (k == 0) {
			raw_desc(q, 0, pa(h), 16, 1, 1);
			raw_desc(q, 1, 0xFFFFFF000000ULL, 512, 3, 2);
			raw_desc(q, 2, pa(h) + 15, 1, 2, 0);
		} else if (k == 1) {
			raw_desc(q, 0, pa(h), 16, 1, 1);
			raw_desc(q, 1, pa(h), 16, 1, 0);
		} else {
			raw_desc(q, 0, pa(h), 16, 1, 1);
			raw_desc(q, 1, 0x100000, 0xFFFFF000u, 3, 2);
			raw_desc(q, 2, pa(h) + 15, 1, 2, 0);
		}
		raw_post(&v, 0);
		seen[k] = wait_reaction(&v);
		if (!seen[k]) {
			ksnprintf(d, n, "%s: no NEEDS_RESET and no completion", names[k]);
			vdev_reset(&v);
			return FAIL;
		}
		vdev_reset(&v);
	}
	/* After a reset the device works again; a live queue's size cannot be changed, and a
	 * notification for a queue that does not exist is ignored. */
	if (blk_open(&v, 0, F_EVENT_IDX, d, n))
		return FAIL;
	if (!good_read(&v)) {
		ksnprintf(d, n, "read after reset failed");
		vdev_reset(&v);
		return FAIL;
	}
	*(volatile uint16_t *)(uintptr_t)(v.common + 0x16) = 0;
	*(volatile uint16_t *)(uintptr_t)(v.common + 0x18) = 4;
	*(volatile uint16_t *)(uintptr_t)(v.notify + 7ULL * v.notify_mult) = 7;
	*(volatile uint16_t *)(uintptr_t)(v.common + 0x16) = 9;
	*(volatile uint16_t *)(uintptr_t)(v.common + 0x1C) = 1;
	int ok = good_read(&v) && good_read(&v);
	seen[3] = ok ? 'K' : 'X';
	if (!ok && (vdev_status(&v) & 0x40)) {
		/* QEMU applies the new size at once and then finds the ring broken. */
		seen[3] = 'R';
		ok = !blk_open(&v, 0, F_EVENT_IDX, d, n) && good_read(&v);
	}
	vdev_reset(&v);
	if (!ok) {
		ksnprintf(d, n, "device broken by a queue-size change or a stray notification");
		return FAIL;
	}
	/* The other devices were not disturbed. */
	char rd[96];
	if (test_vrng(rd, sizeof(rd)) == FAIL) {
		ksnprintf(d, n, "rng after the blk abuse: %s", rd);
		return FAIL;
	}
	/* Bad address, loop, huge length, live resize: R NEEDS_RESET, C completed, K kept on. */
	ksnprintf(d, n, "reactions %s (R = NEEDS_RESET, K = kept working); rng fine", seen);
	return PASS;
}

/* ---- virtio-console ------------------------------------------------------------ */

int test_vcon(char *d, size_t n)
{
	struct vdev v;
	dma_reset();
	if (vdev_find(3, 0, &v, d, n) || vdev_init(&v, 0, 2, d, n))
		return FAIL;
	uint8_t *rx[4];
	for (int i = 0; i < 4; i++) {
		rx[i] = dma_alloc(256);
		uint64_t a = pa(rx[i]);
		uint32_t l = 256;
		int w = 1;
		vq_add(&v, 0, &a, &l, &w, 1, 0);
	}
	/* The host speaks first (it connects when it likes); then the guest answers. */
	uint32_t used = 0;
	if (vq_wait(&v, 0, &used, 20000)) {
		ksnprintf(d, n, "nothing arrived from the host");
		goto fail;
	}
	struct vq *q = &v.q[0];
	volatile uint32_t *e =
	    (volatile uint32_t *)(q->used + 2) + 2 * ((q->last_used - 1) % q->size);
	uint8_t *got = rx[e[0] % 4];
	if (used == 0 || used > 200) {
		ksnprintf(d, n, "received %u bytes", used);
		goto fail;
	}
	uint8_t *out = dma_alloc(256);
	memcpy(out, "guest-got:", 10);
	memcpy(out + 10, got, used);
	uint64_t a = pa(out);
	uint32_t l = 10 + used;
	int w = 0;
	if (vq_add(&v, 1, &a, &l, &w, 1, 0) < 0 || vq_wait(&v, 1, &used, 2000)) {
		ksnprintf(d, n, "transmit did not complete");
		goto fail;
	}
	ksnprintf(d, n, "host's %u bytes in, the answer out", l - 10);
	vdev_reset(&v);
	return PASS;
fail:
	vdev_reset(&v);
	return FAIL;
}

/* Byte x of the pattern vcon_bulk sends; the stream's byte i is bulk_pat(i % BULK_PERIOD). */
#define BULK_PERIOD 65521u
#define BULK_MAXLEN 8192u
static uint8_t bulk_pat(uint32_t x)
{
	return (uint8_t)((x * 0x9E3779B1u) >> 24);
}

/* Sends the stream's bytes [off, end) on v's transmit queue in chains of 1 to 8 KiB, up to the
 * queue's size in flight, and waits until the device has used them all (60 s at most). */
static int bulk_send(struct vdev *v, const uint8_t *buf, uint64_t off, uint64_t end,
		     uint64_t *chains, char *d, size_t n)
{
	struct vq *q = &v->q[1];
	uint64_t deadline = rdtsc() + tsc_hz * 60;
	unsigned inflight = 0;
	int w = 0;
	while (off < end || inflight) {
		if (off < end && inflight < q->size) {
			uint32_t l = (uint32_t)(1024 + (*chains * 1237) % (BULK_MAXLEN - 1024));
			if (l > end - off)
				l = (uint32_t)(end - off);
			uint64_t a = pa(buf + off % BULK_PERIOD);
			if (vq_add(v, 1, &a, &l, &w, 1, 0) < 0) {
				ksnprintf(d, n, "cannot post output");
				return -1;
			}
			off += l;
			(*chains)++;
			inflight++;
			continue;
		}
		uint32_t used;
		if (vq_wait(v, 1, &used, 100) == 0)
			inflight--;
		else if (rdtsc() > deadline) {
			ksnprintf(d, n, "%lu of %lu bytes out after 60 s (%u chains not used)", off,
				  end, inflight);
			return -1;
		}
	}
	return 0;
}

/* The guest sends probe.con_bytes (default 1 MiB) on hvc0 once the host says something (not
 * with probe.con_wait=0), in chains of 1 to 8 KiB, as fast as the device takes them. A host client
 * that does not read for a while must still get every byte, in order (it checks, from the same
 * pattern). With probe.con_more=N the guest then waits for the host to say something again and
 * sends the stream's next N bytes: a client that stopped reading for longer than the device
 * holds output back loses some of the first part, but the guest's writes complete, and once the
 * client reads again it gets the rest whole. */
int test_vcon_bulk(char *d, size_t n)
{
	struct vdev v;
	uint64_t total = 1 << 20, wait = 1, more = 0;
	size_t len;
	const char *s = cmdline_get("probe.con_bytes", &len);
	if (s)
		parse_u64(s, len, 10, &total);
	s = cmdline_get("probe.con_wait", &len); /* 0: no word from the host (file=) */
	if (s)
		parse_u64(s, len, 10, &wait);
	s = cmdline_get("probe.con_more", &len);
	if (s)
		parse_u64(s, len, 10, &more);
	if (more && !wait) {
		ksnprintf(d, n, "probe.con_more needs the host's word (probe.con_wait=1)");
		return FAIL;
	}
	dma_reset();
	if (vdev_find(3, 0, &v, d, n) || vdev_init(&v, 0, 2, d, n))
		return FAIL;
	uint8_t *in = dma_alloc(64), *in2 = dma_alloc(64);
	uint8_t *buf = dma_alloc(BULK_PERIOD + BULK_MAXLEN);
	for (uint32_t j = 0; j < BULK_PERIOD + BULK_MAXLEN; j++)
		buf[j] = bulk_pat(j % BULK_PERIOD);
	uint64_t a = pa(in);
	uint32_t l = 64, used;
	int w = 1;
	vq_add(&v, 0, &a, &l, &w, 1, 0);
	if (more) { /* for the host's second word */
		a = pa(in2);
		vq_add(&v, 0, &a, &l, &w, 1, 0);
	}
	if (wait && vq_wait(&v, 0, &used, 20000)) {
		ksnprintf(d, n, "nothing arrived from the host");
		goto fail;
	}
	/* Words that came before the guest looked (a VMM that boots slowly) share a buffer. */
	unsigned words = 0;
	for (uint32_t j = 0; wait && j < used && j < 64; j++)
		words += in[j] == '\n';
	uint64_t chains = 0;
	if (bulk_send(&v, buf, 0, total, &chains, d, n))
		goto fail;
	if (more) {
		if (words < 2 && vq_wait(&v, 0, &used, 20000)) {
			ksnprintf(d, n, "%lu bytes out; no second word from the host", total);
			goto fail;
		}
		if (bulk_send(&v, buf, total, total + more, &chains, d, n))
			goto fail;
		ksnprintf(d, n, "%lu bytes out, then %lu more, in %lu chains", total, more, chains);
	} else {
		ksnprintf(d, n, "%lu bytes out in %lu chains", total, chains);
	}
	vdev_reset(&v);
	return PASS;
fail:
	vdev_reset(&v);
	return FAIL;
}

/* ---- virtio-balloon ------------------------------------------------------------ */

#define BALLOON_REGION 0x5000000ULL /* 80 MiB: 64 pages the test gives away and takes back */

int test_vballoon(char *d, size_t n)
{
	struct vdev v;
	dma_reset();
	if (boot_ram_total() < BALLOON_REGION + (1 << 20)) {
		ksnprintf(d, n, "needs at least 96 MiB of RAM");
		return SKIP;
	}
	if (vdev_find(5, 0, &v, d, n) || vdev_init_queues(&v, (1ULL << 1) | (1ULL << 2), 3, d, n))
		return FAIL;
	/* Statistics: free, total and available memory, as Linux reports them. Posted and
	 * notified before DRIVER_OK, as Linux's driver does (it never notifies that buffer
	 * again): the device must not lose the notification. The pause stands for the rest of
	 * Linux's probe, so that the device has seen the notification before DRIVER_OK. */
	uint8_t *st = dma_alloc(30);
	uint16_t tags[3] = {4, 5, 6};
	uint64_t vals[3] = {100ULL << 20, boot_ram_total(), 120ULL << 20};
	for (int i = 0; i < 3; i++) {
		memcpy(st + 10 * i, &tags[i], 2);
		memcpy(st + 10 * i + 2, &vals[i], 8);
	}
	uint64_t a = pa(st);
	uint32_t l = 30, used;
	int w = 0;
	if ((v.features & (1ULL << 1)) && vq_add(&v, 2, &a, &l, &w, 1, 0) < 0) {
		ksnprintf(d, n, "cannot post statistics");
		goto fail;
	}
	delay_us(20000);
	vdev_driver_ok(&v);
	uint32_t target = rd32(v.devcfg);
	/* Inflate 64 pages that hold a pattern, then deflate them. */
	volatile uint8_t *r = (volatile uint8_t *)(uintptr_t)BALLOON_REGION;
	for (int p = 0; p < 64; p++)
		r[4096 * p] = 0xAA;
	uint32_t *pfns = (uint32_t *)dma_alloc(256);
	for (int p = 0; p < 64; p++)
		pfns[p] = (uint32_t)(BALLOON_REGION / 4096) + (uint32_t)p;
	a = pa(pfns);
	l = 256;
	if (vq_add(&v, 0, &a, &l, &w, 1, 0) < 0 || vq_wait(&v, 0, &used, 2000)) {
		ksnprintf(d, n, "inflate did not complete");
		goto fail;
	}
	*(volatile uint32_t *)(uintptr_t)(v.devcfg + 4) = 64;
	int zeroed = 0;
	for (int p = 0; p < 64; p++)
		zeroed += r[4096 * p] == 0;
	size_t sl;
	if (cmdline_get("probe.balloon_zero", &sl) && zeroed != 64) {
		ksnprintf(d, n, "host kept %d of 64 inflated pages", 64 - zeroed);
		goto fail;
	}
	if (vq_add(&v, 1, &a, &l, &w, 1, 0) < 0 || vq_wait(&v, 1, &used, 2000)) {
		ksnprintf(d, n, "deflate did not complete");
		goto fail;
	}
	*(volatile uint32_t *)(uintptr_t)(v.devcfg + 4) = 0;
	for (int p = 0; p < 64; p++)
		r[4096 * p + 1] = (uint8_t)p;
	for (int p = 0; p < 64; p++)
		if (r[4096 * p + 1] != (uint8_t)p) {
			ksnprintf(d, n, "page %d unusable after deflate", p);
			goto fail;
		}
	ksnprintf(d, n,
		  "target %u pages; 64 pages inflated (%d came back zeroed), deflated; stats %s",
		  target, zeroed, (v.features & (1ULL << 1)) ? "posted" : "not offered");
	vdev_reset(&v);
	return PASS;
fail:
	vdev_reset(&v);
	return FAIL;
}

/* Several request queues (VIRTIO_BLK_F_MQ): a read through each queue. */
int test_vblk_mq(char *d, size_t n)
{
	struct vdev v;
	dma_reset();
	if (vdev_find(2, 0, &v, d, n))
		return FAIL;
	if (vdev_init(&v, (1ULL << 12) | F_EVENT_IDX, 1, d, n))
		return FAIL;
	unsigned nq = (v.features & (1ULL << 12)) ? rd16(v.devcfg + 34) : 1;
	if (nq < 2) {
		vdev_reset(&v);
		ksnprintf(d, n, "the disk has one queue (start it with queues=N)");
		return SKIP;
	}
	if (nq > VQ_MAX)
		nq = VQ_MAX;
	dma_reset();
	if (vdev_init(&v, (1ULL << 12) | F_EVENT_IDX, nq, d, n))
		return FAIL;
	for (blk_q = 0; blk_q < nq; blk_q++) {
		uint8_t *buf = dma_alloc(512);
		int r = blk_req(&v, 0, 5 + blk_q, buf, 512, 1, 0);
		if (r || buf[9] != disk_pat(5 + blk_q, 9)) {
			ksnprintf(d, n, "read through queue %u: status %d", blk_q, r);
			blk_q = 0;
			vdev_reset(&v);
			return FAIL;
		}
	}
	blk_q = 0;
	vdev_reset(&v);
	ksnprintf(d, n, "a read through each of %u queues", nq);
	return PASS;
}

/* INTx, the fallback without MSI-X: the pin's IOAPIC input is what Interrupt Line says (Cove
 * puts the GSI there, as its _PRT does); a level interrupt that the ISR read lowers. */
static void ioapic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)LAYOUT_IOAPIC = reg;
	*(volatile uint32_t *)(uintptr_t)(LAYOUT_IOAPIC + 0x10) = v;
}

int test_vblk_intx(char *d, size_t n)
{
	struct vdev v;
	dma_reset();
	if (vdev_find(2, 0, &v, d, n))
		return FAIL;
	unsigned gsi = pci_read(&v.pci, 0x3C, 1), pin = pci_read(&v.pci, 0x3D, 1);
	if (!pin || gsi < 16 || gsi > 23) {
		ksnprintf(d, n, "interrupt pin %u line %u: not an IOAPIC input 16-23", pin, gsi);
		return SKIP;
	}
	vdev_no_msix = 1;
	int r = vdev_init(&v, F_EVENT_IDX, 1, d, n);
	vdev_no_msix = 0;
	if (r)
		return FAIL;
	uint32_t id[4];
	cpuid(1, 0, id);
	idt_enable_vector(VEC_INTX);
	intx_isr = v.isr;
	/* Level-triggered, active low (as Linux programs PCI interrupts), to this CPU. */
	ioapic_write(0x11 + 2 * gsi, (id[1] >> 24) << 24);
	ioapic_write(0x10 + 2 * gsi, VEC_INTX | 1u << 13 | 1u << 15);
	uint64_t before = virtio_irqs[VEC_INTX - VEC_VIRTIO];
	__asm__ volatile("sti");
	uint8_t *buf = dma_alloc(512);
	int st = blk_req(&v, 0, 7, buf, 512, 1, 0);
	for (int i = 0; i < 100 && virtio_irqs[VEC_INTX - VEC_VIRTIO] == before; i++)
		delay_us(1000);
	__asm__ volatile("cli");
	uint64_t got = virtio_irqs[VEC_INTX - VEC_VIRTIO] - before;
	ioapic_write(0x10 + 2 * gsi, 1u << 16); /* masked */
	intx_isr = 0;
	vdev_reset(&v);
	if (st || buf[3] != disk_pat(7, 3)) {
		ksnprintf(d, n, "read: status %d", st);
		return FAIL;
	}
	if (!got) {
		ksnprintf(d, n, "no INTx interrupt on GSI %u", gsi);
		return FAIL;
	}
	ksnprintf(d, n, "INTA# on IOAPIC input %u: %lu interrupt(s)", gsi, got);
	return PASS;
}
