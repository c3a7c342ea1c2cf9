/* ACPI fixed hardware: PM1a event and control blocks, PM timer, reset register, SCI. */
#ifndef COVE_DEVICES_ACPI_PM_H
#define COVE_DEVICES_ACPI_PM_H

#include "vmm/device.h"
#include "vmm/irq.h"

#include <stdbool.h>

struct acpi_pm_config {
	const struct irq_line *sci; /* LAYOUT_IRQ_SCI (level); may be NULL */
	bool timer_32bit;	    /* must match acpi_config.pm_timer_32bit (TMR_VAL_EXT) */
	/* Called from the vCPU thread with no device lock held. May be NULL. */
	void (*poweroff)(void *opaque); /* SLP_EN with SLP_TYP == LAYOUT_ACPI_S5_TYPE */
	void (*reset)(void *opaque);	/* reset register written with bit 2 (0x06) */
	void *opaque;
};

/*
 * Creates the block. Register the device at LAYOUT_PORT_ACPI_PM, length
 * LAYOUT_ACPI_PM_LEN (PM1a_EVT at +0, PM1a_CNT at +4, PM_TMR at +8), and
 * acpi_pm_reset_port(dev) at LAYOUT_PORT_RESET, length 1 (a stateless view of the same
 * device, freed with it). cfg is copied. Returns NULL on allocation failure.
 */
struct device *acpi_pm_new(const struct acpi_pm_config *cfg);
struct device *acpi_pm_reset_port(struct device *dev);

/* Presses the power button: sets PWRBTN_STS and raises the SCI if enabled (thread-safe). */
void acpi_pm_power_button(struct device *dev);

#endif
