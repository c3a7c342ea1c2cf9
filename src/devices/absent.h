/* Ports of legacy devices this machine does not have, which guests probe anyway. */
#ifndef COVE_DEVICES_ABSENT_H
#define COVE_DEVICES_ABSENT_H

#include "vmm/device.h"

#include <stdint.h>

/*
 * A device that is not there: reads are all ones (a floating ISA bus), writes are dropped,
 * as on a PC without it (QEMU answers the same for ports nothing claims). Registering it
 * over the ranges Linux probes at every boot (the 8250 driver's COM2..COM4) keeps those
 * probes out of the count of unclaimed accesses, which then only shows surprises. The
 * accesses are counted here instead (absent_count) and logged at debug level.
 */
struct device *absent_new(const char *name);
uint64_t absent_count(const struct device *dev);

#endif
