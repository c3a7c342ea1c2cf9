/* A tiny virtio-pci driver for the device models' unit tests: guest RAM, registers, queues. */
#include "vdriver.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

uint8_t *vd_ram;
struct guest_mem vd_mem;

int vd_setup(void **state)
{
	(void)state;
	/* Page-aligned anonymous memory, as a VM's RAM is (the balloon's MADV_DONTNEED works). */
	void *p = mmap(NULL, VD_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	vd_ram = p == MAP_FAILED ? NULL : p;
	vd_mem = (struct guest_mem){.host = vd_ram, .map_len = VD_RAM, .low_size = VD_RAM};
	return vd_ram ? 0 : -1;
}

int vd_teardown(void **state)
{
	(void)state;
	if (vd_ram)
		munmap(vd_ram, VD_RAM);
	vd_ram = NULL;
	return 0;
}

uint64_t vd_rd(struct virtio_pci *vp, uint64_t off, unsigned len)
{
	uint64_t v = 0;
	vp->bar.ops->read(&vp->bar, off, &v, len);
	return v;
}

void vd_wr(struct virtio_pci *vp, uint64_t off, unsigned len, uint64_t v)
{
	vp->bar.ops->write(&vp->bar, off, &v, len);
}

bool vd_init(struct virtio_pci *vp, uint64_t features, unsigned nq)
{
	return vd_init_queues(vp, features, nq) && vd_driver_ok(vp);
}

bool vd_init_queues(struct virtio_pci *vp, uint64_t features, unsigned nq)
{
	vd_wr(vp, 0x14, 1, 0);
	vd_wr(vp, 0x14, 1, 1 | 2);
	vd_wr(vp, 0x08, 4, 0);
	vd_wr(vp, 0x0C, 4, (uint32_t)features);
	vd_wr(vp, 0x08, 4, 1);
	vd_wr(vp, 0x0C, 4, (uint32_t)(features >> 32));
	vd_wr(vp, 0x14, 1, 1 | 2 | 8);
	if (vd_rd(vp, 0x14, 1) != (1 | 2 | 8))
		return false;
	for (unsigned q = 0; q < nq; q++) {
		vd_wr(vp, 0x16, 2, q);
		vd_wr(vp, 0x18, 2, VD_QSIZE);
		vd_wr(vp, 0x20, 8, VD_QBASE(q));
		vd_wr(vp, 0x28, 8, VD_QBASE(q) + 0x1000);
		vd_wr(vp, 0x30, 8, VD_QBASE(q) + 0x2000);
		vd_wr(vp, 0x1C, 2, 1);
	}
	return true;
}

bool vd_driver_ok(struct virtio_pci *vp)
{
	vd_wr(vp, 0x14, 1, 1 | 2 | 8 | 4);
	return vd_rd(vp, 0x14, 1) == (1 | 2 | 8 | 4);
}

void vd_post(struct virtio_pci *vp, unsigned q, unsigned first, unsigned n, const uint64_t *addr,
	     const uint32_t *len, const bool *write, bool kick)
{
	for (unsigned i = 0; i < n; i++) {
		uint16_t flags = (uint16_t)((write[i] ? VIRTQ_DESC_F_WRITE : 0) |
					    (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
		struct virtq_desc d = {addr[i], len[i], flags,
				       (uint16_t)(i + 1 < n ? first + i + 1 : 0)};
		memcpy(vd_ram + VD_QBASE(q) + 16 * (first + i), &d, 16);
	}
	uint16_t idx;
	memcpy(&idx, vd_ram + VD_QBASE(q) + 0x1002, 2);
	uint16_t head = (uint16_t)first;
	memcpy(vd_ram + VD_QBASE(q) + 0x1004 + 2 * (idx % VD_QSIZE), &head, 2);
	idx++;
	memcpy(vd_ram + VD_QBASE(q) + 0x1002, &idx, 2);
	if (kick)
		vd_wr(vp, VPCI_NOTIFY + 4 * q, 2, q);
}

void vd_post1(struct virtio_pci *vp, unsigned q, unsigned slot, uint64_t addr, uint32_t len,
	      bool write, bool kick)
{
	vd_post(vp, q, slot, 1, &addr, &len, &write, kick);
}

uint16_t vd_used_idx(unsigned q)
{
	uint16_t v;
	memcpy(&v, vd_ram + VD_QBASE(q) + 0x2002, 2);
	return v;
}

uint32_t vd_used_len(unsigned q, unsigned n)
{
	uint32_t v;
	memcpy(&v, vd_ram + VD_QBASE(q) + 0x2004 + 8 * (n % VD_QSIZE) + 4, 4);
	return v;
}
