/*
 * The guest-physical memory map and fixed I/O assignments of a Cove machine. One place,
 * so that the loaders, the ACPI tables, the devices and the probe guest agree.
 */
#ifndef COVE_VMM_LAYOUT_H
#define COVE_VMM_LAYOUT_H

/* RAM below 4 GiB ends where the 32-bit MMIO window starts; the rest sits above 4 GiB. */
#define LAYOUT_MMIO32_START 0xC0000000ULL /* 3 GiB */
#define LAYOUT_MMIO32_END   0x100000000ULL
#define LAYOUT_HIGH_RAM	    0x100000000ULL

/* Inside the 32-bit MMIO window. */
#define LAYOUT_BOOT_TIMER   LAYOUT_MMIO32_START /* Firecracker-compatible boot-time marker */
#define LAYOUT_PCI_ECAM	    0xE0000000ULL	/* 256 MiB: buses 0-255 (issue 3) */
#define LAYOUT_PCI_ECAM_LEN 0x10000000ULL
#define LAYOUT_IOAPIC	    0xFEC00000ULL
#define LAYOUT_LAPIC	    0xFEE00000ULL

/* Low memory used by the boot loaders (all below 1 MiB, reported as RAM or reserved). */
#define LAYOUT_GDT	   0x00000500ULL
#define LAYOUT_PVH_INFO	   0x00006000ULL /* hvm_start_info + memmap + module list */
#define LAYOUT_ZERO_PAGE   0x00007000ULL /* Linux boot_params */
#define LAYOUT_PAGE_TABLES 0x00009000ULL /* PML4, PDPT, 4 PDs: identity map of 4 GiB */
#define LAYOUT_CMDLINE	   0x00020000ULL
#define LAYOUT_CMDLINE_MAX 0x00010000ULL
#define LAYOUT_EBDA	   0x0009FC00ULL /* e820: reserved from here to 1 MiB */
#define LAYOUT_ACPI	   0x000E0000ULL /* ACPI tables (RSDP first), up to 1 MiB */
#define LAYOUT_ACPI_END	   0x00100000ULL
#define LAYOUT_KERNEL	   0x00100000ULL /* where protected-mode / PVH kernels load */

/* Port I/O. */
#define LAYOUT_PORT_COM1 0x3F8
/* COM2..COM4 are absent; Linux's 8250 driver probes them at every boot. */
#define LAYOUT_PORT_COM2    0x2F8
#define LAYOUT_PORT_COM3    0x3E8
#define LAYOUT_PORT_COM4    0x2E8
#define LAYOUT_IRQ_COM1	    4
#define LAYOUT_PORT_I8042   0x60 /* and 0x64 */
#define LAYOUT_PORT_RTC	    0x70 /* and 0x71 */
#define LAYOUT_IRQ_RTC	    8
#define LAYOUT_PORT_ACPI_PM 0x600 /* PM1a_EVT (4 bytes), PM1a_CNT at +4 (2), PM_TMR at +8 (4) */
#define LAYOUT_ACPI_PM_LEN  0x0C
#define LAYOUT_PORT_RESET   0xCF9 /* ACPI reset register: write 0x06 */
#define LAYOUT_IRQ_SCI	    9
#define LAYOUT_ACPI_S5_TYPE 5 /* SLP_TYP of \_S5 */

#endif
