/* The probe guest's virtio-pci driver: capabilities, feature negotiation, split queues, MSI-X. */
#include "virtio.h"
#include "probe.h"

#define ST_ACK	       1
#define ST_DRIVER      2
#define ST_DRIVER_OK   4
#define ST_FEATURES_OK 8
#define F_VERSION_1    (1ULL << 32)
#define F_EVENT_IDX    (1ULL << 29)

int vdev_no_msix;

static uint8_t dma_pool[1 << 20] __attribute__((aligned(4096)));
static size_t dma_used;

uint8_t *dma_alloc(size_t n)
{
	size_t at = (dma_used + 4095) & ~(size_t)4095;
	if (at + n > sizeof(dma_pool))
		return 0;
	dma_used = at + n;
	memset(dma_pool + at, 0, n);
	return dma_pool + at;
}

void dma_reset(void)
{
	dma_used = 0;
}

static void wr8(uint64_t a, uint8_t v)
{
	*(volatile uint8_t *)(uintptr_t)a = v;
}
static void wr16(uint64_t a, uint16_t v)
{
	*(volatile uint16_t *)(uintptr_t)a = v;
}
static void wr32(uint64_t a, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)a = v;
}
static void wr64(uint64_t a, uint64_t v)
{
	wr32(a, (uint32_t)v);
	wr32(a + 4, (uint32_t)(v >> 32));
}
static void barrier(void)
{
	__asm__ volatile("mfence" ::: "memory");
}

int vdev_find(unsigned device_id, int nth, struct vdev *v, char *err, size_t errn)
{
	struct pci_dev devs[32];
	int n = pci_scan(devs, 32);
	for (int i = 0; i < n; i++) {
		if (devs[i].vendor != 0x1AF4 || devs[i].device != 0x1040 + device_id)
			continue;
		if (nth-- > 0)
			continue;
		memset(v, 0, sizeof(*v));
		v->pci = devs[i];
		struct pci_dev *d = &v->pci;
		pci_write(d, 4, 2, pci_read(d, 4, 2) | 0x6); /* memory decoding, bus master */
		unsigned p = pci_read(d, 0x34, 1) & 0xFC;
		for (int guard = 0; p && guard < 48; guard++) {
			unsigned id = pci_read(d, p, 1);
			if (id == 0x11) {
				v->msix_cap = p;
				v->msix_n = (pci_read(d, p + 2, 2) & 0x7FF) + 1;
				uint32_t t = pci_read(d, p + 4, 4);
				uint64_t b = pci_bar(d, t & 7);
				v->msix_table = b ? b + (t & ~7u) : 0;
			} else if (id == 0x09) {
				unsigned type = pci_read(d, p + 3, 1), bar = pci_read(d, p + 4, 1);
				uint64_t base = bar < 6 ? pci_bar(d, bar) : 0;
				uint64_t a = base ? base + pci_read(d, p + 8, 4) : 0;
				if (type == 1 && !v->common)
					v->common = a;
				else if (type == 2 && !v->notify) {
					v->notify = a;
					v->notify_mult = pci_read(d, p + 16, 4);
				} else if (type == 3 && !v->isr)
					v->isr = a;
				else if (type == 4 && !v->devcfg)
					v->devcfg = a;
			}
			p = pci_read(d, p + 1, 1) & 0xFC;
		}
		if (!v->common || !v->notify || !v->isr) {
			ksnprintf(err, errn, "virtio %02x: missing capabilities (BAR above 4 GiB?)",
				  d->dev);
			return -1;
		}
		return 0;
	}
	ksnprintf(err, errn, "no virtio device %u (#%d) on bus 0", device_id, nth);
	return -1;
}

uint8_t vdev_status(struct vdev *v)
{
	return rd8(v->common + 0x14);
}

void vdev_reset(struct vdev *v)
{
	wr8(v->common + 0x14, 0);
	for (int i = 0; i < 20000 && rd8(v->common + 0x14); i++) /* as Linux: until it reads 0 */
		delay_us(100);
}

static uint32_t apic_id(void)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	return r[1] >> 24;
}

int vdev_init(struct vdev *v, uint64_t want, unsigned nq, char *err, size_t errn)
{
	if (vdev_init_queues(v, want, nq, err, errn))
		return -1;
	vdev_driver_ok(v);
	return 0;
}

void vdev_driver_ok(struct vdev *v)
{
	wr8(v->common + 0x14, ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
}

int vdev_init_queues(struct vdev *v, uint64_t want, unsigned nq, char *err, size_t errn)
{
	uint64_t c = v->common;
	vdev_reset(v);
	wr8(c + 0x14, ST_ACK);
	wr8(c + 0x14, ST_ACK | ST_DRIVER);
	wr32(c + 0x00, 0);
	uint64_t f = rd32(c + 0x04);
	wr32(c + 0x00, 1);
	f |= (uint64_t)rd32(c + 0x04) << 32;
	if (!(f & F_VERSION_1)) {
		ksnprintf(err, errn, "device does not offer VERSION_1");
		return -1;
	}
	v->features = (want | F_VERSION_1) & f;
	v->event_idx = (v->features & F_EVENT_IDX) != 0;
	wr32(c + 0x08, 0);
	wr32(c + 0x0C, (uint32_t)v->features);
	wr32(c + 0x08, 1);
	wr32(c + 0x0C, (uint32_t)(v->features >> 32));
	wr8(c + 0x14, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	if (!(rd8(c + 0x14) & ST_FEATURES_OK)) {
		ksnprintf(err, errn, "FEATURES_OK not accepted (features 0x%lx)", v->features);
		return -1;
	}
	unsigned have = rd16(c + 0x12);
	if (nq > have || nq > VQ_MAX) {
		ksnprintf(err, errn, "device has %u queues, want %u", have, nq);
		return -1;
	}
	/* MSI-X: vector q for queue q, the config vector after them; all to this CPU. */
	int msix = v->msix_table && v->msix_n > nq && !vdev_no_msix;
	if (msix) {
		for (int vec = VEC_VIRTIO; vec < VEC_VIRTIO + 16; vec++)
			idt_enable_vector(vec);
		for (unsigned i = 0; i <= nq; i++) {
			uint64_t e = v->msix_table + 16 * i;
			wr32(e, 0xFEE00000u | apic_id() << 12);
			wr32(e + 4, 0);
			wr32(e + 8, i == nq ? VEC_VIRTIO + 15 : VEC_VIRTIO + i);
			wr32(e + 12, 0);
		}
		pci_write(&v->pci, v->msix_cap + 2, 2,
			  pci_read(&v->pci, v->msix_cap + 2, 2) | 0x8000);
		wr16(c + 0x10, (uint16_t)nq);
	} else if (v->msix_cap) /* INTx: MSI-X off (an earlier user may have turned it on) */
		pci_write(&v->pci, v->msix_cap + 2, 2,
			  pci_read(&v->pci, v->msix_cap + 2, 2) & ~0x8000u);
	v->nq = nq;
	for (unsigned q = 0; q < nq; q++) {
		struct vq *vq = &v->q[q];
		wr16(c + 0x16, (uint16_t)q);
		uint16_t max = rd16(c + 0x18);
		if (!max) {
			ksnprintf(err, errn, "queue %u not available", q);
			return -1;
		}
		vq->size = max < VQ_SIZE ? max : VQ_SIZE;
		wr16(c + 0x18, vq->size);
		vq->desc = dma_alloc(16 * vq->size);
		vq->avail = (volatile uint16_t *)dma_alloc(6 + 2 * vq->size);
		vq->used = (volatile uint16_t *)dma_alloc(6 + 8 * vq->size);
		if (!vq->desc || !vq->avail || !vq->used) {
			ksnprintf(err, errn, "out of DMA memory");
			return -1;
		}
		vq->idx = vq->last_used = vq->free_head = 0;
		wr64(c + 0x20, (uint64_t)(uintptr_t)vq->desc);
		wr64(c + 0x28, (uint64_t)(uintptr_t)vq->avail);
		wr64(c + 0x30, (uint64_t)(uintptr_t)vq->used);
		if (msix)
			wr16(c + 0x1A, (uint16_t)q);
		vq->notify_off = rd16(c + 0x1E);
		wr16(c + 0x1C, 1);
	}
	return 0;
}

void vq_notify(struct vdev *v, unsigned q)
{
	wr16(v->notify + (uint64_t)v->q[q].notify_off * v->notify_mult, (uint16_t)q);
}

int vq_add(struct vdev *v, unsigned q, const uint64_t *addr, const uint32_t *len, const int *write,
	   int n, int indirect)
{
	struct vq *vq = &v->q[q];
	if (n <= 0 || n > vq->size)
		return -1;
	uint16_t head = vq->free_head;
	volatile uint8_t *tbl = vq->desc;
	uint16_t first = head;
	if (indirect) {
		tbl = dma_alloc(16 * (size_t)n);
		if (!tbl)
			return -1;
		first = 0;
	}
	for (int i = 0; i < n; i++) {
		uint16_t at = (uint16_t)((first + i) % (indirect ? n : vq->size));
		uint16_t next = (uint16_t)((first + i + 1) % (indirect ? n : vq->size));
		volatile uint8_t *d = tbl + 16 * at;
		*(volatile uint64_t *)d = addr[i];
		*(volatile uint32_t *)(d + 8) = len[i];
		*(volatile uint16_t *)(d + 12) =
		    (uint16_t)((i + 1 < n ? 1 : 0) | (write[i] ? 2 : 0));
		*(volatile uint16_t *)(d + 14) = next;
	}
	if (indirect) {
		volatile uint8_t *d = vq->desc + 16 * head;
		*(volatile uint64_t *)d = (uint64_t)(uintptr_t)tbl;
		*(volatile uint32_t *)(d + 8) = 16u * (uint32_t)n;
		*(volatile uint16_t *)(d + 12) = 4;
		*(volatile uint16_t *)(d + 14) = 0;
		vq->free_head = (uint16_t)((head + 1) % vq->size);
	} else {
		vq->free_head = (uint16_t)((head + n) % vq->size);
	}
	vq->avail[2 + vq->idx % vq->size] = head;
	barrier();
	uint16_t old = vq->idx;
	vq->idx++;
	vq->avail[1] = vq->idx;
	barrier();
	int kick = 1;
	if (v->event_idx) {
		uint16_t ev = vq->used[2 + 4 * vq->size];
		kick = (uint16_t)(vq->idx - ev - 1) < (uint16_t)(vq->idx - old);
	} else {
		kick = !(vq->used[0] & 1);
	}
	if (kick)
		vq_notify(v, q);
	return head;
}

int vq_wait(struct vdev *v, unsigned q, uint32_t *len, unsigned ms)
{
	struct vq *vq = &v->q[q];
	uint64_t end = rdtsc() + (tsc_hz / 1000) * ms;
	while (vq->used[1] == vq->last_used) {
		if (rdtsc() > end)
			return -1;
		__asm__ volatile("pause");
	}
	barrier();
	volatile uint32_t *e = (volatile uint32_t *)(vq->used + 2) + 2 * (vq->last_used % vq->size);
	if (len)
		*len = e[1];
	vq->last_used++;
	if (v->event_idx)
		vq->avail[2 + vq->size] = vq->last_used;
	return 0;
}
