/* The PCI root bridge's _PRT (issue 3): how each slot's INTx pins reach the IOAPIC. */
#include "vmm/acpi/acpi_pci.h"

#include "vmm/acpi/aml.h"

void acpi_pci_prt(struct aml *a)
{
	/* Slot s, pin p (INTA..INTD) → IOAPIC input ACPI_PCI_INTX_GSI_BASE + (s + p) % 8, as
	 * src/devices/pci assigns them (Interrupt Line of pin A). Slot 0 is the host bridge. */
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
