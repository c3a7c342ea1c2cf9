/* Interrupt lines into the in-kernel irqchip (PIC + IOAPIC), as devices see them. */
#ifndef COVE_VMM_IRQ_H
#define COVE_VMM_IRQ_H

#include <stdbool.h>

struct irq_chip; /* owned by the VM (vmm/vm.h) */

struct irq_line {
	struct irq_chip *chip;
	unsigned gsi; /* ISA IRQ n is GSI n (IOAPIC pins 0-15, PIC too) */
};

/* Sets an interrupt line's level (KVM_IRQ_LINE). Edge-triggered ISA devices pulse it. */
void irq_line_set(const struct irq_line *line, bool level);
void irq_line_pulse(const struct irq_line *line);

#endif
