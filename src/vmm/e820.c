/* The e820 memory map: RAM, the reserved BIOS area below 1 MiB, the PCI ECAM window. */
#include "vmm/e820.h"
#include "vmm/layout.h"

#include <errno.h>

int e820_build(uint64_t low_size, uint64_t high_size, struct e820_entry *out, unsigned max)
{
	if (max < E820_MAX_BUILT || low_size < LAYOUT_KERNEL || low_size > LAYOUT_MMIO32_START)
		return -EINVAL;
	unsigned n = 0;
	out[n++] = (struct e820_entry){0, LAYOUT_EBDA, E820_RAM};
	out[n++] = (struct e820_entry){LAYOUT_EBDA, LAYOUT_KERNEL - LAYOUT_EBDA, E820_RESERVED};
	if (low_size > LAYOUT_KERNEL)
		out[n++] = (struct e820_entry){LAYOUT_KERNEL, low_size - LAYOUT_KERNEL, E820_RAM};
	out[n++] = (struct e820_entry){LAYOUT_PCI_ECAM, LAYOUT_PCI_ECAM_LEN, E820_RESERVED};
	if (high_size)
		out[n++] = (struct e820_entry){LAYOUT_HIGH_RAM, high_size, E820_RAM};
	return (int)n;
}
