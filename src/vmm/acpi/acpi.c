/* Builds the ACPI tables of a Cove machine (stub until the builder lands). */
#include "vmm/acpi/acpi.h"

#include <errno.h>

int acpi_build(const struct acpi_config *cfg, uint8_t *dst, uint64_t dst_gpa, size_t dst_size,
	       uint64_t *rsdp_gpa)
{
	return -EOPNOTSUPP;
}
