/* Firecracker-compatible boot-time marker: the guest writes the byte 123 to signal "booted". */
#ifndef COVE_DEVICES_BOOT_TIMER_H
#define COVE_DEVICES_BOOT_TIMER_H

#include "vmm/device.h"

#include <stdint.h>

/* Register at LAYOUT_BOOT_TIMER (MMIO) with this length. */
#define BOOT_TIMER_LEN	 0x1000
#define BOOT_TIMER_MAGIC 123

/*
 * start_ns is the CLOCK_MONOTONIC time at which cove started. A byte write of 123 at
 * offset 0 prints "Guest-boot-time = N us M ms since cove started" on stderr (once per
 * write) and logs it at info level. Returns NULL on allocation failure.
 */
struct device *boot_timer_new(uint64_t start_ns);

/* Microseconds measured at the last signal, 0 if none yet. */
uint64_t boot_timer_last_us(struct device *dev);

#endif
