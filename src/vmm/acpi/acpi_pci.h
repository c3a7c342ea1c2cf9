/* The PCI root bridge's interrupt routing (_PRT) for the DSDT. */
#ifndef COVE_VMM_ACPI_ACPI_PCI_H
#define COVE_VMM_ACPI_ACPI_PCI_H

struct aml;

#define ACPI_PCI_INTX_GSI_BASE 16 /* as src/devices/pci/pci.h: PCI_INTX_GSI_BASE */

/* Name(_PRT, ...) for slots 1-31, pins A-D. Call inside Device(PCI0). */
void acpi_pci_prt(struct aml *a);

#endif
