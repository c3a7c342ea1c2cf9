/* i8042 keyboard controller: enough for Linux's probe, and the CPU reset line (command 0xFE). */
#ifndef COVE_DEVICES_I8042_H
#define COVE_DEVICES_I8042_H

#include "vmm/device.h"
#include "vmm/irq.h"

/*
 * Creates the controller. reset(opaque) is called (from the vCPU thread, with no device
 * lock held) when the guest pulses the reset line. kbd_irq (IRQ 1) may be NULL.
 * Register the returned device at LAYOUT_PORT_I8042 (data, length 1) and
 * i8042_command_port(dev) at LAYOUT_PORT_I8042 + 4 (status/command, length 1): the bus
 * passes offsets relative to a range, so the two ports are two views of one device.
 * The command-port view has no state of its own (save writes nothing) and is freed with
 * dev. Returns NULL on allocation failure.
 */
struct device *i8042_new(const struct irq_line *kbd_irq, void (*reset)(void *opaque), void *opaque);
struct device *i8042_command_port(struct device *dev);

#endif
