/* Builds the ACPI tables of a Cove machine: RSDP, XSDT, RSDT, FADT, FACS, MADT, MCFG, DSDT. */
#include "vmm/acpi/acpi.h"

#include "devices/rtc.h"
#include "vmm/acpi/acpi_internal.h"
#include "vmm/layout.h"

#include <errno.h>
#include <string.h>

#define HDR_LEN	    36
#define RSDP_LEN    36
#define FADT_LEN    276
#define FACS_LEN    64
#define MAX_TABLES  3 /* FADT, MADT and MCFG in the XSDT and RSDT */
#define MCFG_LEN    (HDR_LEN + 8 + 16)
#define OEM_ID	    "COVE  "
#define OEM_TABLE   "COVEMACH"
#define CREATOR_ID  "COVE"
#define GAS_IO	    1
#define ACCESS_BYTE 1

/* FADT flags and IAPC_BOOT_ARCH bits (ACPI 6.5, 5.2.9). */
#define FADT_WBINVD	   (1u << 0)
#define FADT_PROC_C1	   (1u << 2)
#define FADT_PWR_BUTTON	   (1u << 4) /* set: no fixed-feature power button */
#define FADT_SLP_BUTTON	   (1u << 5)
#define FADT_TMR_VAL_EXT   (1u << 8)
#define FADT_RESET_REG_SUP (1u << 10)
#define BOOT_LEGACY	   (1u << 0)
#define BOOT_8042	   (1u << 1)
#define BOOT_NO_CMOS_RTC   (1u << 5)

/* MADT entry types and flags. */
#define MADT_LAPIC	 0
#define MADT_IOAPIC	 1
#define MADT_ISO	 2
#define MADT_LAPIC_NMI	 4
#define MADT_PCAT_COMPAT 1u
#define ISO_LEVEL_HIGH	 0x000D /* active high (01), level (11 << 2) */
#define IOAPIC_ID	 0
#define LAPIC_ENABLED	 1u
#define NMI_ALL_CPUS	 0xFF
#define NMI_LINT1	 1
#define PM1_EVT_LEN	 4
#define PM1_CNT_LEN	 2
#define PM_TMR_LEN	 4
#define RESET_VALUE	 0x06
#define P_LVL2_DISABLED	 0x65  /* > 100 us: no C2 */
#define P_LVL3_DISABLED	 0x3E9 /* > 1000 us: no C3 */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint8_t checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)-sum;
}

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, OEM_ID, 6);
	memcpy(t + 16, OEM_TABLE, 8);
	put32(t + 24, 1);
	memcpy(t + 28, CREATOR_ID, 4);
	put32(t + 32, 1);
}

static void finish(uint8_t *t, uint32_t len)
{
	t[9] = 0;
	t[9] = checksum(t, len);
}

/* A Generic Address Structure for an I/O port block. */
static void gas_io(uint8_t *p, uint16_t port, uint8_t bits, uint8_t access)
{
	p[0] = GAS_IO;
	p[1] = bits;
	p[2] = 0;
	p[3] = access;
	put64(p + 4, port);
}

static size_t align_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static void fadt(uint8_t *t, const struct acpi_config *cfg, uint32_t facs, uint32_t dsdt)
{
	const uint16_t pm = LAYOUT_PORT_ACPI_PM;
	header(t, "FACP", FADT_LEN, 6);
	put32(t + 36, facs);
	put32(t + 40, dsdt);
	t[45] = 0; /* preferred PM profile: unspecified */
	put16(t + 46, LAYOUT_IRQ_SCI);
	/* SMI_CMD 0: the machine is always in ACPI mode (SCI_EN reads 1). */
	put32(t + 56, pm);	/* PM1a_EVT_BLK */
	put32(t + 64, pm + 4u); /* PM1a_CNT_BLK */
	put32(t + 76, pm + 8u); /* PM_TMR_BLK */
	t[88] = PM1_EVT_LEN;
	t[89] = PM1_CNT_LEN;
	t[91] = PM_TMR_LEN;
	put16(t + 96, P_LVL2_DISABLED);
	put16(t + 98, P_LVL3_DISABLED);
	t[108] = cfg->rtc ? RTC_CENTURY_REG : 0;
	uint16_t boot = BOOT_LEGACY;
	if (cfg->i8042)
		boot |= BOOT_8042;
	if (!cfg->rtc)
		boot |= BOOT_NO_CMOS_RTC;
	put16(t + 109, boot);
	uint32_t flags = FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_RESET_REG_SUP;
	if (!cfg->power_button)
		flags |= FADT_PWR_BUTTON;
	if (cfg->pm_timer_32bit)
		flags |= FADT_TMR_VAL_EXT;
	put32(t + 112, flags);
	gas_io(t + 116, LAYOUT_PORT_RESET, 8, ACCESS_BYTE);
	t[128] = RESET_VALUE;
	t[131] = 0;	      /* FADT minor version: ACPI 6.0 */
	put64(t + 140, dsdt); /* X_DSDT */
	gas_io(t + 148, pm, 8 * PM1_EVT_LEN, 0);
	gas_io(t + 172, pm + 4, 8 * PM1_CNT_LEN, 0);
	gas_io(t + 208, pm + 8, 8 * PM_TMR_LEN, 0);
	memcpy(t + 268, "COVE", 4); /* hypervisor vendor identity */
	finish(t, FADT_LEN);
}

static size_t madt_len(unsigned ncpus)
{
	return 44 + 8 * (size_t)ncpus + 12 + 2 * 10 + 6;
}

static void madt(uint8_t *t, unsigned ncpus)
{
	size_t len = madt_len(ncpus);
	header(t, "APIC", (uint32_t)len, 5);
	put32(t + 36, (uint32_t)LAYOUT_LAPIC);
	put32(t + 40, MADT_PCAT_COMPAT);
	uint8_t *e = t + 44;
	for (unsigned i = 0; i < ncpus; i++, e += 8) {
		e[0] = MADT_LAPIC;
		e[1] = 8;
		e[2] = (uint8_t)i; /* ACPI processor UID */
		e[3] = (uint8_t)i; /* APIC id */
		put32(e + 4, LAPIC_ENABLED);
	}
	e[0] = MADT_IOAPIC;
	e[1] = 12;
	e[2] = IOAPIC_ID;
	put32(e + 4, (uint32_t)LAYOUT_IOAPIC);
	put32(e + 8, 0); /* GSI base */
	e += 12;
	/* The PIT's IRQ 0 is wired to IOAPIC pin 2; the SCI is level-triggered, active high. */
	const struct {
		uint8_t irq;
		uint32_t gsi;
		uint16_t flags;
	} iso[2] = {{0, 2, 0}, {LAYOUT_IRQ_SCI, LAYOUT_IRQ_SCI, ISO_LEVEL_HIGH}};
	for (int i = 0; i < 2; i++, e += 10) {
		e[0] = MADT_ISO;
		e[1] = 10;
		e[2] = 0; /* ISA */
		e[3] = iso[i].irq;
		put32(e + 4, iso[i].gsi);
		put16(e + 8, iso[i].flags);
	}
	e[0] = MADT_LAPIC_NMI;
	e[1] = 6;
	e[2] = NMI_ALL_CPUS;
	put16(e + 3, 0);
	e[5] = NMI_LINT1;
	finish(t, (uint32_t)len);
}

/* The PCI windows must be non-empty, must not wrap, and the 32-bit one must stay below 4 GiB. */
static bool pci_ok(const struct acpi_pci_config *p)
{
	const uint64_t mib = 1ULL << 20;
	if (p->bus_start > p->bus_end || p->ecam_base % mib ||
	    p->ecam_base > UINT64_MAX - ((uint64_t)p->bus_end + 1) * mib)
		return false;
	if (!p->mmio32_len || p->mmio32_base >= LAYOUT_MMIO32_END ||
	    p->mmio32_len > LAYOUT_MMIO32_END - p->mmio32_base)
		return false;
	return !p->mmio64_len || p->mmio64_base <= UINT64_MAX - (p->mmio64_len - 1);
}

static void mcfg(uint8_t *t, const struct acpi_pci_config *p)
{
	header(t, "MCFG", MCFG_LEN, 1);
	uint8_t *e = t + HDR_LEN + 8;
	put64(e, p->ecam_base); /* the address of bus 0, even when bus_start > 0 */
	put16(e + 8, 0);	/* segment */
	e[10] = p->bus_start;
	e[11] = p->bus_end;
	finish(t, MCFG_LEN);
}

int acpi_build(const struct acpi_config *cfg, uint8_t *dst, uint64_t dst_gpa, size_t dst_size,
	       uint64_t *rsdp_gpa)
{
	if (!cfg || !dst || cfg->ncpus < 1 || cfg->ncpus > ACPI_MAX_CPUS ||
	    dst_gpa > LAYOUT_MMIO32_END || dst_size > LAYOUT_MMIO32_END - dst_gpa)
		return -EINVAL;
	if (cfg->pci.present && !pci_ok(&cfg->pci))
		return -EINVAL;
	memset(dst, 0, dst_size);

	/* Layout: RSDP, XSDT, RSDT, FADT, FACS (64-byte aligned), MADT, MCFG, DSDT. */
	unsigned ntables = cfg->pci.present ? 3 : 2;
	size_t xsdt = align_up(RSDP_LEN, 16), xsdt_len = HDR_LEN + 8 * ntables;
	size_t rsdt = align_up(xsdt + xsdt_len, 16), rsdt_len = HDR_LEN + 4 * ntables;
	size_t fadt_at = align_up(rsdt + rsdt_len, 16);
	size_t facs = align_up(fadt_at + FADT_LEN, 64);
	size_t madt_at = align_up(facs + FACS_LEN, 16);
	size_t mcfg_at = align_up(madt_at + madt_len(cfg->ncpus), 16);
	size_t dsdt = cfg->pci.present ? align_up(mcfg_at + MCFG_LEN, 16) : mcfg_at;
	if (dsdt + HDR_LEN > dst_size)
		return -ENOSPC;
	long body = acpi_dsdt_body(cfg, dst + dsdt + HDR_LEN, dst_size - dsdt - HDR_LEN);
	if (body < 0)
		return (int)body;
	uint32_t dsdt_len = (uint32_t)(HDR_LEN + (size_t)body);
	header(dst + dsdt, "DSDT", dsdt_len, 2);
	finish(dst + dsdt, dsdt_len);

	uint32_t base = (uint32_t)dst_gpa;
	madt(dst + madt_at, cfg->ncpus);
	if (cfg->pci.present)
		mcfg(dst + mcfg_at, &cfg->pci);

	uint8_t *f = dst + facs;
	memcpy(f, "FACS", 4);
	put32(f + 4, FACS_LEN);
	f[32] = 2; /* version */

	fadt(dst + fadt_at, cfg, base + (uint32_t)facs, base + (uint32_t)dsdt);

	const size_t tables[MAX_TABLES] = {fadt_at, madt_at, mcfg_at};
	header(dst + xsdt, "XSDT", (uint32_t)xsdt_len, 1);
	header(dst + rsdt, "RSDT", (uint32_t)rsdt_len, 1);
	for (unsigned i = 0; i < ntables; i++) {
		put64(dst + xsdt + HDR_LEN + 8 * i, base + tables[i]);
		put32(dst + rsdt + HDR_LEN + 4 * i, base + (uint32_t)tables[i]);
	}
	finish(dst + xsdt, (uint32_t)xsdt_len);
	finish(dst + rsdt, (uint32_t)rsdt_len);

	uint8_t *r = dst;
	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, OEM_ID, 6);
	r[15] = 2;
	put32(r + 16, base + (uint32_t)rsdt);
	put32(r + 20, RSDP_LEN);
	put64(r + 24, base + xsdt);
	r[8] = checksum(r, 20);
	r[32] = checksum(r, RSDP_LEN);
	if (rsdp_gpa)
		*rsdp_gpa = dst_gpa;
	return 0;
}
