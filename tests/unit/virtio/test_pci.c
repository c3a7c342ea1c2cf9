/* Unit tests of the PCI host bridge against what the DSDT says: each slot's _PRT entries
 * (pins A-D) route to the GSIs the bridge intends, pin A's the same as the Interrupt Line
 * register; 64-bit BARs placed, sized and mapped above 4 GiB. */
#include "devices/pci/pci.h"
#include "devices/virtio/virtio_machine.h"
#include "vmm/acpi/acpi.h"
#include "vmm/acpi/acpi_pci.h"
#include "vmm/acpi/aml.h"
#include "vmm/bus.h"
#include "vmm/layout.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define SPAN (LAYOUT_ACPI_END - LAYOUT_ACPI)

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The DSDT's AML after its header, as the machine would build it. */
static const uint8_t *dsdt(uint8_t *mem, size_t *len)
{
	static struct virtio_machine any; /* virtio_machine_acpi only asks whether there is one */
	struct acpi_config c = {.ncpus = 1, .pci = virtio_machine_acpi(&any)};
	uint64_t rsdp;
	assert_int_equal(acpi_build(&c, mem, LAYOUT_ACPI, SPAN, &rsdp), 0);
	const uint8_t *xsdt = mem + (get32(mem + 24) - LAYOUT_ACPI);
	unsigned n = (get32(xsdt + 4) - 36) / 8;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *t = mem + (get32(xsdt + 36 + 8 * i) - LAYOUT_ACPI);
		if (!memcmp(t, "FACP", 4)) {
			const uint8_t *d = mem + (get32(t + 40) - LAYOUT_ACPI);
			assert_memory_equal(d, "DSDT", 4);
			*len = get32(d + 4) - 36;
			return d + 36;
		}
	}
	fail_msg("no FADT");
	return NULL;
}

static void prt_matches_interrupt_line(void **state)
{
	uint8_t *mem = calloc(1, SPAN);
	size_t len = 0, prt = 0, e = 0, end = 0;
	const uint8_t *aml = dsdt(mem, &len);
	assert_int_equal(aml_find(aml, len, "\\_SB.PCI0._PRT", &prt), 0);
	/* A function in every slot, placed by the bridge as the machine places devices. */
	struct bus *pio = bus_new(), *mmio = bus_new();
	struct pci_host *h = calloc(1, sizeof(*h));
	struct pci_func *f = calloc(PCI_MAX_SLOTS, sizeof(*f));
	assert_int_equal(pci_host_init(h, pio, mmio, NULL), 0);
	for (unsigned s = 1; s < PCI_MAX_SLOTS; s++) {
		pci_func_init(&f[s], 0x1AF4, 0x1041, 0x020000, 0x1AF4, 1);
		assert_int_equal(pci_host_add(h, &f[s]), (int)s);
	}
	unsigned idx = 0, gsi_used[24] = {0};
	for (unsigned s = 1; s < PCI_MAX_SLOTS; s++) {
		for (unsigned pin = 0; pin < 4; pin++, idx++) {
			uint64_t addr, p, src, gsi;
			assert_int_equal(aml_package_elem(aml, len, prt, idx, &e, &end), 0);
			assert_int_equal(aml_package_int(aml, end, e, 0, &addr), 0);
			assert_int_equal(aml_package_int(aml, end, e, 1, &p), 0);
			assert_int_equal(aml_package_int(aml, end, e, 2, &src), 0);
			assert_int_equal(aml_package_int(aml, end, e, 3, &gsi), 0);
			assert_int_equal(aml_package_int(aml, end, e, 4, &gsi), -ENOENT);
			assert_int_equal(addr, (uint64_t)s << 16 | 0xFFFF); /* any function */
			assert_int_equal(p, pin);
			assert_int_equal(src, 0); /* a GSI, not a link device */
			/* The swizzle the bridge uses: pin A of slot s at base + s % 8, each
			 * further pin one input on. */
			assert_int_equal(gsi, PCI_INTX_GSI_BASE + (s + pin) % 8);
			assert_true(gsi >= 16 && gsi < 24); /* IOAPIC inputs, above the ISA IRQs */
			gsi_used[gsi]++;
			if (pin == 0) {
				assert_int_equal(pci_cfg_get(&f[s], PCI_INTERRUPT_PIN, 1), 1);
				assert_int_equal(pci_cfg_get(&f[s], PCI_INTERRUPT_LINE, 1), gsi);
				assert_int_equal(f[s].gsi, gsi);
			}
		}
	}
	/* 124 entries and no more; the load is spread over all eight inputs. */
	assert_int_equal(aml_package_elem(aml, len, prt, idx, &e, NULL), -ENOENT);
	for (unsigned g = 16; g < 24; g++)
		assert_true(gsi_used[g] >= 15);
	assert_int_equal(ACPI_PCI_INTX_GSI_BASE, PCI_INTX_GSI_BASE);
	pci_host_fini(h);
	free(f);
	free(h);
	bus_free(pio);
	bus_free(mmio);
	free(mem);
}

static void bar_read(struct device *dev, uint64_t off, void *data, unsigned len)
{
	uint64_t v = 0xB0B0000000000000ULL | off;
	memcpy(data, &v, len);
}

static void bar_write(struct device *dev, uint64_t off, const void *data, unsigned len)
{
}

static const struct device_ops bar_ops = {.read = bar_read, .write = bar_write};

static void cfg_wr(struct bus *mmio, unsigned slot, unsigned off, uint32_t v)
{
	bus_write(mmio, BUS_MMIO, LAYOUT_PCI_ECAM + ((uint64_t)slot << 15) + off, &v, 4);
}

static uint32_t cfg_rd(struct bus *mmio, unsigned slot, unsigned off)
{
	uint32_t v = 0;
	bus_read(mmio, BUS_MMIO, LAYOUT_PCI_ECAM + ((uint64_t)slot << 15) + off, &v, 4);
	return v;
}

static void bar64_above_4g(void **state)
{
	struct bus *pio = bus_new(), *mmio = bus_new();
	struct pci_host *h = calloc(1, sizeof(*h));
	struct pci_func *f = calloc(4, sizeof(*f));
	struct device dev = {.name = "big", .ops = &bar_ops};
	assert_int_equal(pci_host_init(h, pio, mmio, NULL), 0);
	/* Two 1 GiB 64-bit BARs: the window above 4 GiB, one after the other. */
	for (int i = 0; i < 2; i++) {
		pci_func_init(&f[i], 0x1AF4, 0x1040, 0xFF0000, 0, 0);
		pci_func_set_bar(&f[i], 0, 1ULL << 30, true, &dev);
		assert_true(pci_host_add(h, &f[i]) > 0);
	}
	unsigned s0 = f[0].slot, s1 = f[1].slot;
	assert_int_equal(cfg_rd(mmio, s0, PCI_BAR0), 0x4); /* memory, 64-bit, low bits 0 */
	assert_int_equal(cfg_rd(mmio, s0, PCI_BAR0 + 4), PCI_MMIO64_BASE >> 32);
	uint64_t b1 = cfg_rd(mmio, s1, PCI_BAR0) & ~0xFULL;
	b1 |= (uint64_t)cfg_rd(mmio, s1, PCI_BAR0 + 4) << 32;
	assert_int_equal(b1, PCI_MMIO64_BASE + (1ULL << 30));
	/* Sizing both halves: all ones in, the size mask out. */
	cfg_wr(mmio, s0, PCI_BAR0, 0xFFFFFFFFu);
	cfg_wr(mmio, s0, PCI_BAR0 + 4, 0xFFFFFFFFu);
	assert_int_equal(cfg_rd(mmio, s0, PCI_BAR0), 0xC0000004u);
	assert_int_equal(cfg_rd(mmio, s0, PCI_BAR0 + 4), 0xFFFFFFFFu);
	cfg_wr(mmio, s0, PCI_BAR0, 0);
	cfg_wr(mmio, s0, PCI_BAR0 + 4, PCI_MMIO64_BASE >> 32);
	/* Memory decoding on: the BAR answers at 512 GiB, and not below 4 GiB. */
	cfg_wr(mmio, s0, PCI_COMMAND, PCI_CMD_MEM);
	uint64_t v = 0;
	assert_true(bus_read(mmio, BUS_MMIO, PCI_MMIO64_BASE + 0x1234, &v, 8));
	assert_int_equal(v, 0xB0B0000000001234ULL);
	assert_true(bus_read(mmio, BUS_MMIO, PCI_MMIO64_BASE + (1ULL << 30) - 8, &v, 8));
	assert_false(bus_read(mmio, BUS_MMIO, PCI_MMIO64_BASE + (1ULL << 30), &v, 8));
	/* The guest moves it (upper half first, as Linux does): it follows. */
	cfg_wr(mmio, s0, PCI_BAR0 + 4, 0x90);
	cfg_wr(mmio, s0, PCI_BAR0, 0x40000000u);
	assert_false(bus_read(mmio, BUS_MMIO, PCI_MMIO64_BASE + 0x1234, &v, 8));
	assert_true(bus_read(mmio, BUS_MMIO, 0x9040000000ULL + 8, &v, 8));
	assert_int_equal(v, 0xB0B0000000000008ULL);
	/* A small 64-bit BAR (virtio's) stays in the 32-bit hole; one bigger than the whole
	 * 64-bit window does not fit. */
	pci_func_init(&f[2], 0x1AF4, 0x1041, 0x020000, 0, 0);
	pci_func_set_bar(&f[2], 0, 0x8000, true, &dev);
	assert_true(pci_host_add(h, &f[2]) > 0);
	uint32_t lo = cfg_rd(mmio, f[2].slot, PCI_BAR0);
	assert_true((lo & ~0xFu) >= PCI_MMIO32_BASE && (lo & ~0xFu) < PCI_MMIO32_END);
	assert_int_equal(cfg_rd(mmio, f[2].slot, PCI_BAR0 + 4), 0);
	pci_func_init(&f[3], 0x1AF4, 0x1041, 0x020000, 0, 0);
	pci_func_set_bar(&f[3], 0, PCI_MMIO64_SIZE * 2, true, &dev);
	assert_int_equal(pci_host_add(h, &f[3]), -ENOSPC);
	pci_host_fini(h);
	free(f);
	free(h);
	bus_free(pio);
	bus_free(mmio);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(prt_matches_interrupt_line),
	    cmocka_unit_test(bar64_above_4g),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
