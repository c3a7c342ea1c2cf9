/* A whole Cove machine: VM, devices on the buses, ACPI tables, kernel; unwinds on failure. */
#include "vmm/machine.h"
#include "devices/absent.h"
#include "devices/acpi_pm.h"
#include "devices/boot_timer.h"
#include "devices/i8042.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "devices/virtio/virtio_machine.h"
#include "vmm/acpi/acpi.h"
#include "vmm/layout.h"
#include "vmm/loader.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PORT_POST 0x80 /* POST codes; Linux's outb_p() writes it as an I/O delay */

/*
 * Port 0x80 is a write-only sink with no device behind it, written twice per outb_p() by
 * Linux's legacy drivers. An ioeventfd lets KVM complete those writes in the kernel, which
 * under PVM is several times cheaper than an exit to this process. Best effort: without it
 * the writes are unclaimed port I/O like any other.
 */
static void sink_port80(struct machine *m)
{
	m->port80_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->port80_fd < 0)
		return;
	struct kvm_ioeventfd io = {
	    .addr = PORT_POST,
	    .len = 1,
	    .fd = m->port80_fd,
	    .flags = KVM_IOEVENTFD_FLAG_PIO,
	};
	if (ioctl(m->vm.vm_fd, KVM_IOEVENTFD, &io) < 0) {
		close(m->port80_fd);
		m->port80_fd = -1;
	}
}

static void on_poweroff(void *opaque)
{
	struct machine *m = opaque;
	vm_request_stop(&m->vm, VM_POWEROFF, NULL);
}

static void on_acpi_reset(void *opaque)
{
	struct machine *m = opaque;
	vm_request_stop(&m->vm, VM_RESET, "guest reset (ACPI reset register)");
}

static void on_i8042_reset(void *opaque)
{
	struct machine *m = opaque;
	vm_request_stop(&m->vm, VM_RESET, "guest reset (i8042 reset line)");
}

static void destroy_dev(struct device **dev)
{
	if (*dev && (*dev)->ops->destroy)
		(*dev)->ops->destroy(*dev);
	*dev = NULL;
}

static int add(struct machine *m, enum bus_space space, uint64_t base, uint64_t len,
	       struct device *dev, const char *what, struct cove_err *err)
{
	if (!dev)
		return cove_err_set(err, -ENOMEM, "cannot create the %s", what);
	int ret = bus_register(space == BUS_PIO ? m->vm.pio : m->vm.mmio, space, base, len, dev);
	if (ret)
		return cove_err_set(err, ret, "cannot map the %s: %s", what, strerror(-ret));
	return 0;
}

static int add_devices(struct machine *m, const struct machine_config *cfg, struct cove_err *err)
{
	struct irq_chip *chip = &m->vm.irq;
	m->com1_irq = (struct irq_line){chip, LAYOUT_IRQ_COM1};
	m->rtc_irq = (struct irq_line){chip, LAYOUT_IRQ_RTC};
	m->sci_irq = (struct irq_line){chip, LAYOUT_IRQ_SCI};
	m->kbd_irq = (struct irq_line){chip, 1};
	int ret;

	m->serial = serial_new(&m->com1_irq, cfg->console_fd);
	if ((ret =
		 add(m, BUS_PIO, LAYOUT_PORT_COM1, SERIAL_PORT_LEN, m->serial, "serial port", err)))
		return ret;
	static const uint16_t absent_com[] = {LAYOUT_PORT_COM2, LAYOUT_PORT_COM3, LAYOUT_PORT_COM4};
	m->absent_com = absent_new("absent COM2-4");
	for (size_t i = 0; i < sizeof(absent_com) / sizeof(absent_com[0]); i++)
		if ((ret = add(m, BUS_PIO, absent_com[i], SERIAL_PORT_LEN, m->absent_com,
			       "absent serial ports", err)))
			return ret;
	m->i8042 = i8042_new(&m->kbd_irq, on_i8042_reset, m);
	if ((ret = add(m, BUS_PIO, LAYOUT_PORT_I8042, 1, m->i8042, "i8042", err)) ||
	    (ret = add(m, BUS_PIO, LAYOUT_PORT_I8042 + 4, 1, i8042_command_port(m->i8042), "i8042",
		       err)))
		return ret;
	m->rtc = rtc_new(&m->rtc_irq, m->vm.mem.low_size, m->vm.mem.high_size, cfg->ncpus);
	if ((ret = add(m, BUS_PIO, LAYOUT_PORT_RTC, RTC_PORT_LEN, m->rtc, "RTC", err)))
		return ret;
	struct acpi_pm_config pm = {
	    .sci = &m->sci_irq,
	    .timer_32bit = true,
	    .poweroff = on_poweroff,
	    .reset = on_acpi_reset,
	    .opaque = m,
	};
	m->pm = acpi_pm_new(&pm);
	if ((ret = add(m, BUS_PIO, LAYOUT_PORT_ACPI_PM, LAYOUT_ACPI_PM_LEN, m->pm, "ACPI PM block",
		       err)) ||
	    /* virtio: the PCI host bridge owns 0xCF8..0xCFB and passes 0xCF9 to the reset
	     * register; then the virtio devices. */
	    (ret = virtio_machine_create(&m->virtio, &m->vm, acpi_pm_reset_port(m->pm), cfg->virtio,
					 err)))
		return ret;
	m->boot_timer = boot_timer_new(cfg->start_ns);
	if ((ret = add(m, BUS_MMIO, LAYOUT_BOOT_TIMER, BOOT_TIMER_LEN, m->boot_timer, "boot timer",
		       err)))
		return ret;

	struct acpi_config acfg = {
	    .ncpus = cfg->ncpus,
	    .serial = true,
	    .i8042 = true,
	    .rtc = true,
	    .pm_timer_32bit = true,
	    .power_button = true,
	    .pci = virtio_machine_acpi(m->virtio), /* virtio: PCI root bridge + MCFG */
	};
	uint64_t size = LAYOUT_ACPI_END - LAYOUT_ACPI;
	uint8_t *dst = guest_mem_ptr(&m->vm.mem, LAYOUT_ACPI, size);
	if (!dst)
		return cove_err_set(err, -EFAULT, "no room for the ACPI tables");
	ret = acpi_build(&acfg, dst, LAYOUT_ACPI, size, &m->rsdp);
	if (ret)
		return cove_err_set(err, ret, "cannot build the ACPI tables: %s", strerror(-ret));
	return 0;
}

int machine_create(struct machine *m, const struct machine_config *cfg, struct cove_err *err)
{
	memset(m, 0, sizeof(*m));
	m->port80_fd = -1;
	int ret = vm_create(&m->vm, cfg->kvm_path, cfg->mem_size, cfg->hugepages, cfg->ncpus, err);
	if (ret)
		return ret;
	if ((ret = add_devices(m, cfg, err)))
		goto fail;
	sink_port80(m);
	struct boot_config boot = {
	    .kernel = cfg->kernel,
	    .kernel_len = cfg->kernel_len,
	    .initrd = cfg->initrd,
	    .initrd_len = cfg->initrd_len,
	    .cmdline = cfg->cmdline,
	    .rsdp = m->rsdp,
	    .boot = cfg->boot,
	};
	if ((ret = loader_load(&m->vm.mem, &boot, &m->entry, &m->boot, err)))
		goto fail;
	return 0;
fail:
	machine_destroy(m);
	return ret;
}

int machine_run(struct machine *m)
{
	int stop = vm_run(&m->vm, &m->entry);
	if (m->serial)
		serial_flush(m->serial);
	return stop;
}

void machine_destroy(struct machine *m)
{
	/* The vCPUs are stopped; the buses go with the VM, the devices after them. */
	struct device *serial = m->serial, *i8042 = m->i8042, *rtc = m->rtc, *pm = m->pm,
		      *bt = m->boot_timer, *absent_com = m->absent_com;
	/* virtio first: its I/O thread touches guest RAM and its eventfds are bound to the VM. */
	virtio_machine_destroy(m->virtio);
	m->virtio = NULL;
	vm_destroy(&m->vm);
	if (m->port80_fd >= 0)
		close(m->port80_fd);
	m->port80_fd = -1;
	destroy_dev(&serial);
	destroy_dev(&i8042);
	destroy_dev(&rtc);
	destroy_dev(&pm);
	destroy_dev(&bt);
	destroy_dev(&absent_com);
	m->serial = m->i8042 = m->rtc = m->pm = m->boot_timer = m->absent_com = NULL;
}
