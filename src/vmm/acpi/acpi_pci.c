/* ACPI for the PCI host bridge (issue 3): \_SB.PCI0 with _CRS and _PRT, and the MCFG table. */
#include "vmm/acpi/acpi_pci.h"

#include "vmm/acpi/aml.h"

#include <string.h>

static void le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Word/DWord/QWord address space descriptors (ACPI 6.5 §6.4.3.5), producer, fixed ends. */
static void addr_desc(struct aml *a, uint8_t tag, int w, uint8_t type, uint8_t tflags, uint64_t min,
		      uint64_t max)
{
	uint8_t d[46] = {0};
	size_t body = 3 + 5 * (size_t)w;
	d[0] = tag;
	le(d + 1, body, 2);
	d[3] = type;
	d[4] = 0x0C; /* MinFixed, MaxFixed, positive decode, producer */
	d[5] = tflags;
	uint8_t *f = d + 6;
	le(f, 0, w);			 /* granularity */
	le(f + w, min, w);		 /* minimum */
	le(f + 2 * w, max, w);		 /* maximum */
	le(f + 3 * w, 0, w);		 /* translation */
	le(f + 4 * w, max - min + 1, w); /* length */
	aml_raw(a, d, 3 + body);
}

static void prt(struct aml *a)
{
	/* Slot s, pin p (INTA..INTD) → IOAPIC input ACPI_PCI_INTX_GSI_BASE + (s + p) % 8. */
	aml_name(a, "_PRT");
	aml_package_open(a, 31 * 4);
	for (unsigned s = 1; s < 32; s++) {
		for (unsigned p = 0; p < 4; p++) {
			aml_package_open(a, 4);
			aml_int(a, (uint64_t)s << 16 | 0xFFFF);
			aml_int(a, p);
			aml_int(a, 0);
			aml_int(a, ACPI_PCI_INTX_GSI_BASE + (s + p) % 8);
			aml_close(a);
		}
	}
	aml_close(a);
}

void acpi_pci_dsdt(struct aml *a, const struct acpi_pci_config *pci)
{
	aml_device_open(a, "PCI0");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0A08"); /* PCI Express root bridge */
	aml_name(a, "_CID");
	aml_eisaid(a, "PNP0A03");
	aml_name(a, "_SEG");
	aml_int(a, 0);
	aml_name(a, "_UID");
	aml_int(a, 0);
	aml_name(a, "_BBN");
	aml_int(a, pci->bus_start);
	aml_name(a, "_CRS");
	aml_buffer_open(a);
	addr_desc(a, 0x88, 2, 2, 0, pci->bus_start, pci->bus_end); /* WordBusNumber */
	aml_res_io(a, 0xCF8, 0xCF8, 1, 8);
	addr_desc(a, 0x88, 2, 1, 3, 0x0000, 0x0CF7); /* WordIO, entire range */
	addr_desc(a, 0x88, 2, 1, 3, 0x0D00, 0xFFFF);
	if (pci->mmio32_len) /* DWordMemory, read-write, not cacheable */
		addr_desc(a, 0x87, 4, 0, 1, pci->mmio32_base,
			  pci->mmio32_base + pci->mmio32_len - 1);
	if (pci->mmio64_len) /* QWordMemory */
		addr_desc(a, 0x8A, 8, 0, 1, pci->mmio64_base,
			  pci->mmio64_base + pci->mmio64_len - 1);
	aml_res_end(a);
	aml_close(a);
	prt(a);
	aml_close(a);

	/* The ECAM window as a motherboard resource, so that Linux trusts the MCFG. */
	aml_device_open(a, "MRES");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0C02");
	aml_name(a, "_CRS");
	aml_buffer_open(a);
	uint8_t m[12] = {0x86, 9, 0, 1}; /* Memory32Fixed, read-write */
	uint64_t len = ((uint64_t)pci->bus_end - pci->bus_start + 1) << 20;
	le(m + 4, pci->ecam_base, 4);
	le(m + 8, len, 4);
	aml_raw(a, m, sizeof(m));
	aml_res_end(a);
	aml_close(a);
	aml_close(a);
}

void acpi_pci_mcfg(uint8_t *t, const struct acpi_pci_config *pci)
{
	/* After the 36-byte header (the caller writes it): 8 reserved bytes, then one
	 * allocation: base, segment 0, first and last bus, 4 reserved bytes. */
	memset(t + 36, 0, ACPI_PCI_MCFG_LEN - 36);
	le(t + 44, pci->ecam_base, 8);
	le(t + 52, 0, 2);
	t[54] = pci->bus_start;
	t[55] = pci->bus_end;
}
