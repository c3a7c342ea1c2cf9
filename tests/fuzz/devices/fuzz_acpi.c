/*
 * libFuzzer target: acpi_build over any configuration and buffer size (the tables must then
 * be well-formed: checksums, \_S5 found by the AML reader), and the AML reader over raw bytes.
 */
#include "vmm/acpi/acpi.h"
#include "vmm/acpi/aml.h"
#include "vmm/layout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SPAN (LAYOUT_ACPI_END - LAYOUT_ACPI)

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static const uint8_t *table(const uint8_t *mem, size_t size, uint64_t base, uint64_t gpa)
{
	if (gpa < base || gpa - base > size || size - (gpa - base) < 36)
		abort();
	const uint8_t *t = mem + (gpa - base);
	uint32_t len = get32(t + 4);
	if (len < 36 || len > size - (gpa - base))
		abort();
	uint8_t sum = 0;
	for (uint32_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + t[i]);
	if (sum != 0 && memcmp(t, "FACS", 4) != 0)
		abort();
	return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t mem[SPAN];
	if (size < 4)
		return 0;
	struct acpi_config cfg = {
	    .ncpus = data[0] | (data[1] & 1u) << 8,
	    .serial = data[1] & 2,
	    .i8042 = data[1] & 4,
	    .rtc = data[1] & 8,
	    .pm_timer_32bit = data[1] & 16,
	    .power_button = data[1] & 32,
	    .pci.present = (data[1] & 0xC0) == 0xC0,
	};
	size_t dst_size = ((size_t)data[2] | (size_t)data[3] << 8) % (SPAN + 1);
	if (cfg.pci.present && size >= 4 + 6 * 8) {
		uint64_t f[6];
		for (int i = 0; i < 6; i++) {
			f[i] = 0;
			for (int k = 0; k < 8; k++)
				f[i] |= (uint64_t)data[4 + 8 * i + k] << (8 * k);
		}
		cfg.pci.ecam_base = f[0];
		cfg.pci.bus_start = (uint8_t)f[1];
		cfg.pci.bus_end = (uint8_t)(f[1] >> 8);
		cfg.pci.mmio32_base = f[2];
		cfg.pci.mmio32_len = f[3];
		cfg.pci.mmio64_base = f[4];
		cfg.pci.mmio64_len = f[5];
	}
	uint64_t base = LAYOUT_ACPI, rsdp = 0;
	int rc = acpi_build(&cfg, mem, base, dst_size, &rsdp);
	if (rc == 0) {
		if (cfg.ncpus < 1 || cfg.ncpus > ACPI_MAX_CPUS || rsdp != base)
			abort();
		const uint8_t *x = table(mem, dst_size, base, get32(mem + 24));
		for (uint32_t i = 36; i + 8 <= get32(x + 4); i += 8) {
			const uint8_t *t = table(mem, dst_size, base, get32(x + i));
			if (memcmp(t, "FACP", 4) == 0) {
				const uint8_t *d = table(mem, dst_size, base, get32(t + 40));
				size_t off;
				uint64_t v;
				if (aml_find(d + 36, get32(d + 4) - 36, "\\_S5", &off) != 0 ||
				    aml_package_int(d + 36, get32(d + 4) - 36, off, 0, &v) != 0 ||
				    v != LAYOUT_ACPI_S5_TYPE)
					abort();
			}
		}
	} else if (rc != -EINVAL && rc != -ENOSPC) {
		abort();
	}
	/* The reader over arbitrary bytes. */
	size_t off;
	uint64_t v;
	if (aml_find(data + 4, size - 4, "\\_S5", &off) == 0)
		aml_package_int(data + 4, size - 4, off, data[0] % 8, &v);
	aml_find(data + 4, size - 4, "\\_SB.COM1._HID", &off);
	return 0;
}
