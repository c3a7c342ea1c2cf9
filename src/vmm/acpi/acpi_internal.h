/* Pieces of the ACPI builder shared between its files. */
#ifndef COVE_VMM_ACPI_INTERNAL_H
#define COVE_VMM_ACPI_INTERNAL_H

#include "vmm/acpi/acpi.h"

/* Writes the DSDT's AML (after the header) into dst; returns its length or -errno. */
long acpi_dsdt_body(const struct acpi_config *cfg, uint8_t *dst, size_t cap);

#endif
