/* The e820 memory map that both boot protocols hand to the guest. */
#ifndef COVE_VMM_E820_H
#define COVE_VMM_E820_H

#include <stdint.h>

#define E820_RAM      1
#define E820_RESERVED 2

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

/* Most entries e820_build writes. */
#define E820_MAX_BUILT 5

/*
 * Fills out (room for max entries) with the map of a machine with low_size bytes of RAM
 * from 0 and high_size bytes from 4 GiB: RAM below the EBDA, reserved EBDA/BIOS area
 * (ACPI tables live there), RAM from 1 MiB, the PCI ECAM window reserved, high RAM.
 * Returns the number of entries, or -EINVAL if max is too small or low_size < 1 MiB.
 */
int e820_build(uint64_t low_size, uint64_t high_size, struct e820_entry *out, unsigned max);

#endif
