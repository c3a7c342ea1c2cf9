/* The probe guest's PCI access: configuration mechanism #1 (0xCF8/0xCFC), bus 0 scan, BARs. */
#include "probe.h"
#include "virtio.h"

volatile uint64_t virtio_irqs[16];

uint64_t intx_isr; /* the ISR register of the device on INTx (read to lower the line) */

void virtio_irq(uint64_t vec)
{
	if (vec == VEC_INTX && intx_isr)
		(void)rd8(intx_isr); /* before the EOI, or the level line fires again */
	if (vec >= VEC_VIRTIO && vec < VEC_VIRTIO + 16)
		virtio_irqs[vec - VEC_VIRTIO]++;
}

static uint32_t cf8(const struct pci_dev *d, unsigned off)
{
	return 0x80000000u | (uint32_t)d->bus << 16 | (uint32_t)d->dev << 11 |
	       (uint32_t)d->fn << 8 | (off & 0xFC);
}

uint32_t pci_read(const struct pci_dev *d, unsigned off, unsigned len)
{
	outl(0xCF8, cf8(d, off));
	if (len == 1)
		return inb((uint16_t)(0xCFC + (off & 3)));
	if (len == 2)
		return inw((uint16_t)(0xCFC + (off & 2)));
	return inl(0xCFC);
}

void pci_write(const struct pci_dev *d, unsigned off, unsigned len, uint32_t v)
{
	outl(0xCF8, cf8(d, off));
	if (len == 1)
		outb((uint16_t)(0xCFC + (off & 3)), (uint8_t)v);
	else if (len == 2)
		outw((uint16_t)(0xCFC + (off & 2)), (uint16_t)v);
	else
		outl(0xCFC, v);
}

int pci_scan(struct pci_dev *out, int max)
{
	int n = 0;
	for (unsigned dev = 0; dev < 32 && n < max; dev++) {
		struct pci_dev d = {0, (uint8_t)dev, 0, 0, 0, 0};
		uint32_t id = pci_read(&d, 0, 4);
		if ((id & 0xFFFF) == 0xFFFF)
			continue;
		d.vendor = (uint16_t)id;
		d.device = (uint16_t)(id >> 16);
		d.class_code = pci_read(&d, 8, 4) >> 8;
		out[n++] = d;
	}
	return n;
}

/* A BAR's address (64-bit BARs read both halves). Unassigned or above 4 GiB (outside the
 * probe's identity map): 0. */
uint64_t pci_bar(const struct pci_dev *d, unsigned bar)
{
	uint32_t lo = pci_read(d, 0x10 + 4 * bar, 4);
	if (lo & 1)
		return 0; /* I/O BAR */
	uint64_t a = lo & ~0xFULL;
	if (((lo >> 1) & 3) == 2 && bar < 5)
		a |= (uint64_t)pci_read(d, 0x10 + 4 * bar + 4, 4) << 32;
	return a >= (1ULL << 32) ? 0 : a;
}
