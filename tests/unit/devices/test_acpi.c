/* Unit tests of acpi_build: checksums, MADT per CPU count, FADT fields, the DSDT's AML. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "vmm/acpi/acpi.h"
#include "vmm/acpi/aml.h"
#include "vmm/layout.h"

#define SPAN (LAYOUT_ACPI_END - LAYOUT_ACPI)
static uint8_t mem[SPAN];

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* A table at a guest address: inside the area, length sane, checksum right. */
static const uint8_t *table(uint64_t gpa, const char *sig)
{
	assert_true(gpa >= LAYOUT_ACPI && gpa + 36 <= LAYOUT_ACPI_END);
	const uint8_t *t = mem + (gpa - LAYOUT_ACPI);
	assert_memory_equal(t, sig, 4);
	uint32_t len = get32(t + 4);
	assert_true(len >= 36 && gpa + len <= LAYOUT_ACPI_END);
	if (strcmp(sig, "FACS") != 0)
		assert_int_equal(sum(t, len), 0);
	return t;
}

static struct acpi_config full(unsigned ncpus)
{
	struct acpi_config c = {.ncpus = ncpus,
				.serial = true,
				.i8042 = true,
				.rtc = true,
				.pm_timer_32bit = true,
				.power_button = true};
	return c;
}

static const uint8_t *xsdt_entry(const char *sig)
{
	const uint8_t *x = mem + (get32(mem + 24) - LAYOUT_ACPI);
	unsigned n = (get32(x + 4) - 36) / 8;
	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = get32(x + 36 + 8 * i);
		if (memcmp(mem + (gpa - LAYOUT_ACPI), sig, 4) == 0)
			return table(gpa, sig);
	}
	fail_msg("no %s in the XSDT", sig);
	return NULL;
}

static struct acpi_pci_config pci_config(void)
{
	struct acpi_pci_config p = {.present = true,
				    .ecam_base = LAYOUT_PCI_ECAM,
				    .bus_start = 0,
				    .bus_end = 255,
				    .mmio32_base = LAYOUT_MMIO32_START + 0x10000000ULL,
				    .mmio32_len = 0x10000000ULL,
				    .mmio64_base = 0x8000000000ULL,
				    .mmio64_len = 0x8000000000ULL};
	return p;
}

static void rsdp_and_checksums(void **state)
{
	struct acpi_config c = full(4);
	uint64_t rsdp = 0;
	memset(mem, 0xAA, sizeof(mem));
	assert_int_equal(acpi_build(&c, mem, LAYOUT_ACPI, SPAN, &rsdp), 0);
	assert_int_equal(rsdp, LAYOUT_ACPI);
	assert_memory_equal(mem, "RSD PTR ", 8);
	assert_int_equal(mem[15], 2);
	assert_int_equal(get32(mem + 20), 36);
	assert_int_equal(sum(mem, 20), 0);
	assert_int_equal(sum(mem, 36), 0);
	const uint8_t *x = table(get32(mem + 24), "XSDT");
	const uint8_t *r = table(get32(mem + 16), "RSDT");
	unsigned n = (get32(x + 4) - 36) / 8;
	assert_int_equal(n, 2);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(get32(x + 36 + 8 * i), get32(r + 36 + 4 * i));
	xsdt_entry("FACP");
	xsdt_entry("APIC");
}

static void madt_per_cpu_count(void **state)
{
	const unsigned counts[] = {1, 2, 3, 8, 64, ACPI_MAX_CPUS};
	for (unsigned k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		struct acpi_config c = full(counts[k]);
		uint64_t rsdp;
		assert_int_equal(acpi_build(&c, mem, LAYOUT_ACPI, SPAN, &rsdp), 0);
		const uint8_t *m = xsdt_entry("APIC");
		assert_int_equal(get32(m + 36), LAYOUT_LAPIC);
		assert_int_equal(get32(m + 40) & 1, 1); /* PCAT_COMPAT */
		unsigned cpus = 0, ioapics = 0, nmis = 0;
		bool irq0 = false, sci = false;
		for (uint32_t off = 44; off < get32(m + 4);) {
			const uint8_t *e = m + off;
			assert_true(e[1] >= 2 && off + e[1] <= get32(m + 4));
			switch (e[0]) {
			case 0:
				assert_int_equal(e[1], 8);
				assert_int_equal(e[2], cpus);
				assert_int_equal(e[3], cpus);
				assert_int_equal(get32(e + 4) & 1, 1);
				cpus++;
				break;
			case 1:
				assert_int_equal(get32(e + 4), LAYOUT_IOAPIC);
				assert_int_equal(get32(e + 8), 0);
				ioapics++;
				break;
			case 2:
				if (e[3] == 0) {
					assert_int_equal(get32(e + 4), 2);
					irq0 = true;
				}
				if (e[3] == LAYOUT_IRQ_SCI) {
					assert_int_equal(get32(e + 4), LAYOUT_IRQ_SCI);
					assert_int_equal(get16(e + 8), 0x000D);
					sci = true;
				}
				break;
			case 4:
				assert_int_equal(e[2], 0xFF);
				assert_int_equal(e[5], 1);
				nmis++;
				break;
			default:
				fail_msg("unexpected MADT entry %u", e[0]);
			}
			off += e[1];
		}
		assert_int_equal(cpus, counts[k]);
		assert_int_equal(ioapics, 1);
		assert_int_equal(nmis, 1);
		assert_true(irq0 && sci);
	}
}

static void fadt_fields(void **state)
{
	struct acpi_config c = full(2);
	uint64_t rsdp;
	assert_int_equal(acpi_build(&c, mem, LAYOUT_ACPI, SPAN, &rsdp), 0);
	const uint8_t *f = xsdt_entry("FACP");
	assert_int_equal(get32(f + 4), 276);
	assert_int_equal(f[8], 6);
	assert_int_equal(get16(f + 46), LAYOUT_IRQ_SCI);
	assert_int_equal(get32(f + 48), 0); /* no SMI_CMD */
	assert_int_equal(get32(f + 56), LAYOUT_PORT_ACPI_PM);
	assert_int_equal(get32(f + 64), LAYOUT_PORT_ACPI_PM + 4);
	assert_int_equal(get32(f + 76), LAYOUT_PORT_ACPI_PM + 8);
	assert_int_equal(f[88], 4);
	assert_int_equal(f[89], 2);
	assert_int_equal(f[91], 4);
	assert_int_equal(f[108], 0x32);
	assert_int_equal(get16(f + 109) & 3, 3); /* legacy devices, 8042 */
	uint32_t flags = get32(f + 112);
	assert_true(flags & (1u << 10));  /* RESET_REG_SUP */
	assert_true(flags & (1u << 8));	  /* TMR_VAL_EXT */
	assert_false(flags & (1u << 4));  /* fixed power button */
	assert_false(flags & (1u << 20)); /* not hardware-reduced */
	assert_int_equal(f[116], 1);	  /* reset register in I/O space */
	assert_int_equal(f[117], 8);
	assert_int_equal(get32(f + 120), LAYOUT_PORT_RESET);
	assert_int_equal(f[128], 6);
	/* DSDT and X_DSDT agree; the FACS is there and 64-byte aligned. */
	assert_int_equal(get32(f + 40), get32(f + 140));
	table(get32(f + 40), "DSDT");
	uint32_t facs = get32(f + 36);
	assert_int_equal(facs % 64, 0);
	assert_int_equal(get32(table(facs, "FACS") + 4), 64);
	/* X_PM1a_EVT_BLK: I/O space, 32 bits, same port as the legacy field. */
	assert_int_equal(f[148], 1);
	assert_int_equal(f[149], 32);
	assert_int_equal(get32(f + 152), LAYOUT_PORT_ACPI_PM);
	/* Without the optional parts. */
	struct acpi_config m = {.ncpus = 1};
	assert_int_equal(acpi_build(&m, mem, LAYOUT_ACPI, SPAN, &rsdp), 0);
	f = xsdt_entry("FACP");
	assert_int_equal(get16(f + 109) & 0x23, 0x21); /* no 8042, no CMOS RTC */
	assert_int_equal(f[108], 0);
	assert_true(get32(f + 112) & (1u << 4));
	assert_false(get32(f + 112) & (1u << 8));
}

static const uint8_t *dsdt_body(size_t *len)
{
	const uint8_t *f = xsdt_entry("FACP");
	const uint8_t *d = table(get32(f + 40), "DSDT");
	*len = get32(d + 4) - 36;
	return d + 36;
}

static void dsdt_aml(void **state)
{
	struct acpi_config c = full(1);
	uint64_t rsdp, v;
	size_t len, off;
	assert_int_equal(acpi_build(&c, mem, LAYOUT_ACPI, SPAN, &rsdp), 0);
	const uint8_t *aml = dsdt_body(&len);
	assert_int_equal(aml_find(aml, len, "\\_S5", &off), 0);
	assert_int_equal(aml_package_int(aml, len, off, 0, &v), 0);
	assert_int_equal(v, LAYOUT_ACPI_S5_TYPE);
	assert_int_equal(aml_package_int(aml, len, off, 1, &v), 0);
	assert_int_equal(v, LAYOUT_ACPI_S5_TYPE);
	assert_int_equal(aml_package_int(aml, len, off, 4, &v), -ENOENT);
	assert_int_equal(aml_find(aml, len, "\\_SB.COM1._HID", &off), 0);
	assert_int_equal(aml_read_int(aml, len, off, &v, NULL), 0);
	assert_int_equal(v, 0x0105D041); /* EISAID("PNP0501") */
	assert_int_equal(aml_find(aml, len, "\\_SB.PS2K._HID", &off), 0);
	assert_int_equal(aml_find(aml, len, "\\_SB.RTC._HID", &off), 0);
	assert_int_equal(aml_find(aml, len, "\\_SB.COM1._CRS", &off), 0);
	/* The resource template holds IO 0x3F8 length 8 and IRQ 4. */
	const uint8_t io[] = {0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08, 0x22, 0x10, 0x00};
	assert_non_null(memmem(aml + off, len - off, io, sizeof(io)));
	assert_int_equal(aml_find(aml, len, "\\_SB.NOPE", &off), -ENOENT);
	/* Every truncation is parsed safely (an error or not found, never a crash). */
	for (size_t n = 0; n < len; n++) {
		int rc = aml_find(aml, n, "\\_S5", &off);
		assert_true(rc == -EINVAL || rc == -ENOENT || rc == 0);
	}
	/* Without the optional devices they are absent, \_S5 stays. */
	struct acpi_config m = {.ncpus = 1};
	assert_int_equal(acpi_build(&m, mem, LAYOUT_ACPI, SPAN, &rsdp), 0);
	aml = dsdt_body(&len);
	assert_int_equal(aml_find(aml, len, "\\_SB.COM1._HID", &off), -ENOENT);
	assert_int_equal(aml_find(aml, len, "\\_S5", &off), 0);
}

static uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void pci_host_bridge(void **state)
{
	struct acpi_config c = full(2);
	uint64_t rsdp, v;
	size_t len, off;
	c.pci = pci_config();
	c.pci.bus_end = 15;
	assert_int_equal(acpi_build(&c, mem, LAYOUT_ACPI, SPAN, &rsdp), 0);
	const uint8_t *m = xsdt_entry("MCFG");
	assert_int_equal(get32(m + 4), 60);
	assert_int_equal(get64(m + 44), LAYOUT_PCI_ECAM);
	assert_int_equal(get16(m + 52), 0);
	assert_int_equal(m[54], 0);
	assert_int_equal(m[55], 15);
	const uint8_t *aml = dsdt_body(&len);
	assert_int_equal(aml_find(aml, len, "\\_SB.PCI0._HID", &off), 0);
	assert_int_equal(aml_read_int(aml, len, off, &v, NULL), 0);
	assert_int_equal(v, 0x080AD041); /* EISAID("PNP0A08") */
	assert_int_equal(aml_find(aml, len, "\\_SB.PCI0._CRS", &off), 0);
	/* WordBusNumber 0-15 and DWordMemory over the 32-bit window, as descriptors. */
	const uint8_t bus[] = {0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0, 0, 0, 0, 15, 0, 0, 0, 16, 0};
	assert_non_null(memmem(aml + off, len - off, bus, sizeof(bus)));
	const uint8_t mem32[] = {0x87, 0x17, 0x00, 0x00, 0x0C, 0x01, 0, 0, 0, 0, 0, 0, 0, 0xD0};
	assert_non_null(memmem(aml + off, len - off, mem32, sizeof(mem32)));
	/* Without the 64-bit window there is no QWord descriptor. */
	c.pci.mmio64_len = 0;
	assert_int_equal(acpi_build(&c, mem, LAYOUT_ACPI, SPAN, &rsdp), 0);
	aml = dsdt_body(&len);
	assert_int_equal(aml_find(aml, len, "\\_SB.PCI0._CRS", &off), 0);
	assert_null(memchr(aml + off, 0x8A, len - off));
}

static void emitter(void **state)
{
	static uint8_t buf[16384];
	struct aml a;
	size_t off;
	uint64_t v;
	/* Package lengths of 1, 2 and 3 bytes. */
	const size_t sizes[] = {10, 60, 61, 62, 63, 64, 300, 4090, 4100, 9000};
	for (unsigned k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		aml_init(&a, buf, sizeof(buf));
		aml_scope_open(&a, "\\_SB");
		aml_name(&a, "BUF");
		aml_buffer_open(&a);
		for (size_t i = 0; i < sizes[k]; i++)
			aml_raw(&a, "\x5A", 1);
		aml_close(&a);
		aml_name(&a, "X");
		aml_int(&a, 0x123456789ULL);
		aml_close(&a);
		long n = aml_finish(&a);
		assert_true(n > 0);
		assert_int_equal(aml_find(buf, (size_t)n, "\\_SB.X", &off), 0);
		assert_int_equal(aml_read_int(buf, (size_t)n, off, &v, NULL), 0);
		assert_int_equal(v, 0x123456789ULL);
	}
	/* Errors stick: overflow, bad names, unbalanced. */
	aml_init(&a, buf, 4);
	aml_name(&a, "ABCD");
	aml_int(&a, 1);
	assert_int_equal(aml_finish(&a), -ENOSPC);
	aml_init(&a, buf, sizeof(buf));
	aml_name(&a, "TOOLONG");
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_init(&a, buf, sizeof(buf));
	aml_scope_open(&a, "\\_SB");
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_init(&a, buf, sizeof(buf));
	aml_close(&a);
	assert_int_equal(aml_finish(&a), -EINVAL);
	aml_init(&a, buf, sizeof(buf));
	aml_eisaid(&a, "pnp0501");
	assert_int_equal(aml_finish(&a), -EINVAL);
}

static void bad_configs(void **state)
{
	uint64_t rsdp;
	struct acpi_config c = full(0);
	assert_int_equal(acpi_build(&c, mem, LAYOUT_ACPI, SPAN, &rsdp), -EINVAL);
	c.ncpus = ACPI_MAX_CPUS + 1;
	assert_int_equal(acpi_build(&c, mem, LAYOUT_ACPI, SPAN, &rsdp), -EINVAL);
	c.ncpus = 1;
	assert_int_equal(acpi_build(&c, mem, 0xFFFFF000ULL, SPAN, &rsdp), -EINVAL);
	assert_int_equal(acpi_build(&c, mem, LAYOUT_ACPI, 100, &rsdp), -ENOSPC);
	assert_int_equal(acpi_build(&c, mem, LAYOUT_ACPI, 700, &rsdp), -ENOSPC);
	/* PCI windows that are empty, cross 4 GiB, wrap, or an ECAM base not 1 MiB aligned. */
	c.pci = pci_config();
	c.pci.mmio32_len = 0;
	assert_int_equal(acpi_build(&c, mem, LAYOUT_ACPI, SPAN, &rsdp), -EINVAL);
	c.pci = pci_config();
	c.pci.mmio32_len = 0x40000001ULL;
	assert_int_equal(acpi_build(&c, mem, LAYOUT_ACPI, SPAN, &rsdp), -EINVAL);
	c.pci = pci_config();
	c.pci.mmio64_base = UINT64_MAX - 10;
	assert_int_equal(acpi_build(&c, mem, LAYOUT_ACPI, SPAN, &rsdp), -EINVAL);
	c.pci = pci_config();
	c.pci.ecam_base += 4096;
	assert_int_equal(acpi_build(&c, mem, LAYOUT_ACPI, SPAN, &rsdp), -EINVAL);
	c.pci = pci_config();
	c.pci.bus_start = 3;
	c.pci.bus_end = 2;
	assert_int_equal(acpi_build(&c, mem, LAYOUT_ACPI, SPAN, &rsdp), -EINVAL);
	/* 255 CPUs with everything fits the area with room to spare. */
	c = full(ACPI_MAX_CPUS);
	assert_int_equal(acpi_build(&c, mem, LAYOUT_ACPI, 8192, &rsdp), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rsdp_and_checksums), cmocka_unit_test(madt_per_cpu_count),
	    cmocka_unit_test(fadt_fields),	  cmocka_unit_test(dsdt_aml),
	    cmocka_unit_test(pci_host_bridge),	  cmocka_unit_test(emitter),
	    cmocka_unit_test(bad_configs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
