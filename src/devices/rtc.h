/* MC146818 CMOS RTC (ports 0x70/0x71) running on the host's clock, with CMOS RAM. */
#ifndef COVE_DEVICES_RTC_H
#define COVE_DEVICES_RTC_H

#include "vmm/device.h"
#include "vmm/irq.h"

#include <stdint.h>

/* Register at LAYOUT_PORT_RTC with this length (index port, data port). */
#define RTC_PORT_LEN 2

/* The CMOS byte holding the century (the FADT's CENTURY field points here). */
#define RTC_CENTURY_REG 0x32

/*
 * Creates the RTC set to the host's UTC time. The memory-size bytes of CMOS RAM are
 * filled as QEMU does from the RAM below 4 GiB and above 4 GiB (0x15-0x18, 0x30/0x31,
 * 0x34/0x35, 0x5b-0x5d) and 0x5f holds ncpus - 1. irq (IRQ 8) may be NULL; it is
 * raised by rtc_tick() for the periodic, alarm and update-ended interrupts. Returns NULL
 * on allocation failure.
 */
struct device *rtc_new(const struct irq_line *irq, uint64_t ram_below_4g, uint64_t ram_above_4g,
		       unsigned ncpus);

/*
 * Optional: the event loop calls this from a timer (every rtc_tick_interval_ns()) to
 * deliver enabled RTC interrupts. Without it the flags in register C still work (polled).
 * rtc_tick_interval_ns returns 0 when no interrupt is enabled.
 */
void rtc_tick(struct device *dev);
uint64_t rtc_tick_interval_ns(struct device *dev);

#endif
