/* The DSDT's AML: the legacy devices under \_SB and the \_S5 sleep package. */
#include "vmm/acpi/acpi_internal.h"

#include "devices/rtc.h"
#include "devices/serial.h"
#include "vmm/acpi/aml.h"
#include "vmm/layout.h"

static void io_port(struct aml *a, uint16_t base, uint8_t len)
{
	aml_res_io(a, base, base, 1, len);
}

static void com1(struct aml *a)
{
	aml_device_open(a, "COM1");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0501");
	aml_name(a, "_UID");
	aml_int(a, 1);
	aml_name(a, "_CRS");
	aml_buffer_open(a);
	io_port(a, LAYOUT_PORT_COM1, SERIAL_PORT_LEN);
	aml_res_irq(a, 1u << LAYOUT_IRQ_COM1);
	aml_res_end(a);
	aml_close(a);
	aml_close(a);
}

static void keyboard(struct aml *a)
{
	aml_device_open(a, "PS2K");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0303");
	aml_name(a, "_CID");
	aml_eisaid(a, "PNP030B");
	aml_name(a, "_CRS");
	aml_buffer_open(a);
	io_port(a, LAYOUT_PORT_I8042, 1);
	io_port(a, LAYOUT_PORT_I8042 + 4, 1);
	aml_res_irq(a, 1u << 1);
	aml_res_end(a);
	aml_close(a);
	aml_close(a);
}

static void rtc(struct aml *a)
{
	aml_device_open(a, "RTC");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0B00");
	aml_name(a, "_CRS");
	aml_buffer_open(a);
	io_port(a, LAYOUT_PORT_RTC, RTC_PORT_LEN);
	aml_res_irq(a, 1u << LAYOUT_IRQ_RTC);
	aml_res_end(a);
	aml_close(a);
	aml_close(a);
}

#define PCI_CONFIG_PORT 0xCF8 /* the legacy configuration mechanism: 0xCF8-0xCFF */

static void pci_host(struct aml *a, const struct acpi_pci_config *pci)
{
	aml_device_open(a, "PCI0");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0A08");
	aml_name(a, "_CID");
	aml_eisaid(a, "PNP0A03");
	aml_name(a, "_SEG");
	aml_int(a, 0);
	aml_name(a, "_BBN");
	aml_int(a, pci->bus_start);
	aml_name(a, "_UID");
	aml_int(a, 0);
	aml_name(a, "_CRS");
	aml_buffer_open(a);
	aml_res_word_bus(a, pci->bus_start, pci->bus_end);
	io_port(a, PCI_CONFIG_PORT, 8);
	aml_res_word_io(a, 0x0000, PCI_CONFIG_PORT - 1);
	aml_res_word_io(a, PCI_CONFIG_PORT + 8, 0xFFFF);
	aml_res_dword_mem(a, (uint32_t)pci->mmio32_base,
			  (uint32_t)(pci->mmio32_base + pci->mmio32_len - 1));
	if (pci->mmio64_len)
		aml_res_qword_mem(a, pci->mmio64_base, pci->mmio64_base + pci->mmio64_len - 1);
	aml_res_end(a);
	aml_close(a);
	aml_close(a);
}

long acpi_dsdt_body(const struct acpi_config *cfg, uint8_t *dst, size_t cap)
{
	struct aml a;
	aml_init(&a, dst, cap);
	aml_scope_open(&a, "\\_SB");
	if (cfg->serial)
		com1(&a);
	if (cfg->i8042)
		keyboard(&a);
	if (cfg->rtc)
		rtc(&a);
	if (cfg->pci.present)
		pci_host(&a, &cfg->pci);
	aml_close(&a);
	/* \_S5: SLP_TYPa, SLP_TYPb (PM1b does not exist), two reserved. */
	aml_name(&a, "\\_S5");
	aml_package_open(&a, 4);
	aml_int(&a, LAYOUT_ACPI_S5_TYPE);
	aml_int(&a, LAYOUT_ACPI_S5_TYPE);
	aml_int(&a, 0);
	aml_int(&a, 0);
	aml_close(&a);
	return aml_finish(&a);
}
