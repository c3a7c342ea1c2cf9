/* The PCI parts of the ACPI tables: the DSDT's root bridge and the MCFG table. */
#ifndef COVE_VMM_ACPI_ACPI_PCI_H
#define COVE_VMM_ACPI_ACPI_PCI_H

#include "vmm/acpi/acpi.h"

#include <stdint.h>

struct aml;

#define ACPI_PCI_MCFG_LEN      60
#define ACPI_PCI_INTX_GSI_BASE 16 /* as src/devices/pci/pci.h: PCI_INTX_GSI_BASE */

/* \_SB.PCI0 (PNP0A08) with _CRS (buses, 0xCF8, I/O, both MMIO windows) and _PRT, and
 * \_SB.MRES (PNP0C02) reserving the ECAM window. Call inside Scope(\_SB). */
void acpi_pci_dsdt(struct aml *a, const struct acpi_pci_config *pci);
/* Fills the MCFG body of the ACPI_PCI_MCFG_LEN-byte table at t (header left to the caller). */
void acpi_pci_mcfg(uint8_t *t, const struct acpi_pci_config *pci);

#endif
