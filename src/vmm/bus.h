/* The I/O buses: port I/O (16-bit space) and MMIO (64-bit space), mapping ranges to devices. */
#ifndef COVE_VMM_BUS_H
#define COVE_VMM_BUS_H

#include "vmm/device.h"

#include <stdbool.h>
#include <stdint.h>

enum bus_space {
	BUS_PIO,
	BUS_MMIO,
};

struct bus;

struct bus *bus_new(void);
void bus_free(struct bus *bus);

/* Maps [base, base+len) to dev. Fails with -EEXIST if it overlaps a mapped range. */
int bus_register(struct bus *bus, enum bus_space space, uint64_t base, uint64_t len,
		 struct device *dev);
int bus_unregister(struct bus *bus, enum bus_space space, uint64_t base);

/*
 * Dispatches an access. Returns true when a device claimed it; an unclaimed read fills
 * data with all ones and is counted (bus_unclaimed_count), never fatal.
 */
bool bus_read(struct bus *bus, enum bus_space space, uint64_t addr, void *data, unsigned len);
bool bus_write(struct bus *bus, enum bus_space space, uint64_t addr, const void *data,
	       unsigned len);
uint64_t bus_unclaimed_count(const struct bus *bus);
/* Counts an access no device could take (for example one wider than any bus access). */
void bus_count_unclaimed(struct bus *bus);

/* Calls reset on every registered device once. */
void bus_reset_all(struct bus *bus);

#endif
