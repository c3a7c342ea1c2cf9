/* ACPI tables for a Cove machine: RSDP, XSDT/RSDT, FADT, FACS, MADT and an AML DSDT. */
#ifndef COVE_VMM_ACPI_ACPI_H
#define COVE_VMM_ACPI_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* APIC ids are 0..ncpus-1 in xAPIC MADT entries; 255 is the broadcast id. */
#define ACPI_MAX_CPUS 255

/*
 * A PCI Express host bridge: \_SB.PCI0 (PNP0A08) whose _CRS gives the bus range, the
 * legacy config ports 0xCF8-0xCFF, the I/O windows around them and the memory windows,
 * and an MCFG table for ECAM. The ECAM area must also be reserved in the e820 map.
 */
struct acpi_pci_config {
	bool present;
	uint64_t ecam_base; /* LAYOUT_PCI_ECAM: bus 0's config space, 1 MiB aligned */
	uint8_t bus_start, bus_end;
	uint64_t mmio32_base, mmio32_len; /* below 4 GiB; len > 0 */
	uint64_t mmio64_base, mmio64_len; /* len 0: no 64-bit window */
};

struct acpi_config {
	unsigned ncpus;	     /* 1..ACPI_MAX_CPUS */
	bool serial;	     /* \_SB.COM1 (PNP0501, LAYOUT_PORT_COM1, LAYOUT_IRQ_COM1) */
	bool i8042;	     /* \_SB.PS2K (PNP0303) and the 8042 flag in IAPC_BOOT_ARCH */
	bool rtc;	     /* \_SB.RTC (PNP0B00); without it IAPC_BOOT_ARCH says "no CMOS RTC" */
	bool pm_timer_32bit; /* TMR_VAL_EXT: must match acpi_pm_config.timer_32bit */
	bool power_button;   /* fixed-feature power button (acpi_pm_power_button) */
	struct acpi_pci_config pci;
};

/*
 * Writes the tables into dst, which the guest sees at dst_gpa (normally LAYOUT_ACPI, with
 * dst_size = LAYOUT_ACPI_END - LAYOUT_ACPI). The RSDP (revision 2) is at dst + 0 and its
 * address is stored in *rsdp_gpa. Unused bytes of dst are zeroed.
 * Returns 0, -EINVAL for a bad config (ncpus out of range, dst_gpa + dst_size beyond
 * 4 GiB, PCI windows that are empty, overlap 4 GiB or wrap), or -ENOSPC when the tables
 * do not fit.
 */
int acpi_build(const struct acpi_config *cfg, uint8_t *dst, uint64_t dst_gpa, size_t dst_size,
	       uint64_t *rsdp_gpa);

#endif
