/* Writes the ACPI tables acpi_build makes to files (one per table) for iasl -d. */
#include "vmm/acpi/acpi.h"
#include "vmm/layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int dump(const char *dir, const char *name, const uint8_t *p, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s.dat", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3 && !(argc == 4 && strcmp(argv[3], "pci") == 0)) {
		fprintf(stderr, "usage: acpi_dump DIR NCPUS [pci]\n");
		return 2;
	}
	static uint8_t mem[LAYOUT_ACPI_END - LAYOUT_ACPI];
	struct acpi_config cfg = {.ncpus = (unsigned)atoi(argv[2]),
				  .serial = true,
				  .i8042 = true,
				  .rtc = true,
				  .pm_timer_32bit = true,
				  .power_button = true};
	if (argc == 4)
		cfg.pci =
		    (struct acpi_pci_config){.present = true,
					     .ecam_base = LAYOUT_PCI_ECAM,
					     .bus_end = 255,
					     .mmio32_base = LAYOUT_MMIO32_START + 0x10000000ULL,
					     .mmio32_len = 0x10000000ULL,
					     .mmio64_base = 0x8000000000ULL,
					     .mmio64_len = 0x8000000000ULL};
	uint64_t rsdp;
	int rc = acpi_build(&cfg, mem, LAYOUT_ACPI, sizeof(mem), &rsdp);
	if (rc) {
		fprintf(stderr, "acpi_build: %s\n", strerror(-rc));
		return 1;
	}
	size_t off = rsdp - LAYOUT_ACPI;
	if (dump(argv[1], "rsdp", mem + off, 36))
		return 1;
	/* Every table: walk the XSDT, then the DSDT and FACS the FADT points at. */
	const uint8_t *x = mem + (get32(mem + off + 24) - LAYOUT_ACPI);
	if (dump(argv[1], "xsdt", x, get32(x + 4)))
		return 1;
	const uint8_t *r = mem + (get32(mem + off + 16) - LAYOUT_ACPI);
	if (dump(argv[1], "rsdt", r, get32(r + 4)))
		return 1;
	for (uint32_t i = 36; i < get32(x + 4); i += 8) {
		const uint8_t *t = mem + (get32(x + i) - LAYOUT_ACPI);
		char name[5] = {0};
		memcpy(name, t, 4);
		if (dump(argv[1], name, t, get32(t + 4)))
			return 1;
		if (memcmp(name, "FACP", 4) == 0) {
			const uint8_t *facs = mem + (get32(t + 36) - LAYOUT_ACPI);
			const uint8_t *dsdt = mem + (get32(t + 40) - LAYOUT_ACPI);
			if (dump(argv[1], "FACS", facs, get32(facs + 4)) ||
			    dump(argv[1], "DSDT", dsdt, get32(dsdt + 4)))
				return 1;
		}
	}
	return 0;
}
