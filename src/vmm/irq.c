/* Interrupt lines into the in-kernel PIC + IOAPIC through KVM_IRQ_LINE. */
#include "vmm/irq.h"
#include "vmm/vm.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>

void irq_line_set(const struct irq_line *line, bool level)
{
	if (!line || !line->chip || line->chip->vm_fd < 0)
		return;
	struct kvm_irq_level irq = {.irq = line->gsi, .level = level ? 1 : 0};
	ioctl(line->chip->vm_fd, KVM_IRQ_LINE, &irq);
}

void irq_line_pulse(const struct irq_line *line)
{
	irq_line_set(line, true);
	irq_line_set(line, false);
}
