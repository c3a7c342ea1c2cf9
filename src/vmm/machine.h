/* A whole Cove machine: the VM, the legacy devices, ACPI tables and the loaded kernel. */
#ifndef COVE_VMM_MACHINE_H
#define COVE_VMM_MACHINE_H

#include "vmm/irq.h"
#include "vmm/loader.h"
#include "vmm/vm.h"

struct virtio_opts;
struct virtio_machine;

#include <cove/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct machine_config {
	const char *kvm_path; /* NULL: $COVE_KVM_DEV or /dev/kvm */
	unsigned ncpus;
	uint64_t mem_size;
	bool hugepages;
	const uint8_t *kernel; /* image bytes (the caller keeps them) */
	size_t kernel_len;
	const uint8_t *initrd;
	size_t initrd_len;
	const char *cmdline;
	enum boot_choice boot;		  /* --boot */
	int console_fd;			  /* guest COM1 output, -1 to discard */
	uint64_t start_ns;		  /* CLOCK_MONOTONIC when cove started (boot-time marker) */
	const struct virtio_opts *virtio; /* virtio devices, or NULL */
};

struct machine {
	struct vm vm;
	struct device *serial;
	struct device *i8042;
	struct device *rtc;
	struct device *pm;
	struct device *boot_timer;
	struct device *absent_com;     /* COM2..COM4, probed by guests, not there */
	struct virtio_machine *virtio; /* PCI host bridge + virtio devices */
	struct irq_line com1_irq;
	struct irq_line rtc_irq;
	struct irq_line sci_irq;
	struct irq_line kbd_irq;
	struct boot_entry entry;
	struct boot_report boot; /* how the kernel was loaded */
	uint64_t rsdp;
	int port80_fd; /* eventfd that takes port 0x80 writes in the kernel, or -1 */
	char reset_why[64];
};

/* Builds the machine and loads the kernel. Returns 0 or -errno with a message in err. */
int machine_create(struct machine *m, const struct machine_config *cfg, struct cove_err *err);

/* Runs until the guest powers off, resets, fails or is stopped: enum vm_stop. */
int machine_run(struct machine *m);

void machine_destroy(struct machine *m);

#endif
