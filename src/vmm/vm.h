/* The KVM machine: the VM, its RAM, buses, in-kernel irqchip and PIT, and its vCPUs. */
#ifndef COVE_VMM_VM_H
#define COVE_VMM_VM_H

#include "vmm/bus.h"
#include "vmm/guest_mem.h"

#include <cove/error.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define VM_MAX_CPUS 255

struct irq_chip {
	int vm_fd;
};

/* Why the vCPUs stopped (vm_run's result). */
enum vm_stop {
	VM_RUNNING = 0,
	VM_POWEROFF, /* guest powered off (ACPI S5) */
	VM_RESET,    /* guest reset: i8042, ACPI reset register, triple fault */
	VM_ERROR,    /* KVM internal error, failed entry, crash: message in stop_msg */
	VM_STOPPED,  /* stopped from the host (signal) */
};

/* How the boot processor starts (set by the loaders). */
enum boot_mode {
	BOOT_LINUX64, /* 64-bit long mode, paging on, RSI = boot_params */
	BOOT_PVH32,   /* 32-bit protected mode, paging off, EBX = hvm_start_info */
};

struct boot_entry {
	enum boot_mode mode;
	uint64_t rip;
	uint64_t arg; /* RSI (Linux) or EBX (PVH) */
};

struct vm;
struct kvm_run;

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	bool on_caller;	   /* runs on vm_run's thread (the boot vCPU), not its own */
	uint64_t io_exits; /* port-I/O exits handled */
};

struct vm {
	int kvm_fd;
	int vm_fd;
	size_t run_size;
	struct guest_mem mem;
	struct irq_chip irq;
	struct bus *pio;
	struct bus *mmio;
	unsigned ncpus;
	struct vcpu *vcpus;
	void *supported_cpuid; /* struct kvm_cpuid2 * */
	atomic_int stop;       /* enum vm_stop */
	pthread_mutex_t lock;  /* guards thread_started and running */
	pthread_cond_t cond;   /* signalled when a vCPU thread ends */
	unsigned running;      /* vCPU threads not yet ended */
	char stop_msg[2048];   /* why, for VM_ERROR and VM_RESET (one line, or a register dump) */
};

/*
 * Opens kvm_path (NULL: $COVE_KVM_DEV or /dev/kvm), creates the VM with the in-kernel
 * irqchip and PIT, maps mem_size bytes of RAM and creates ncpus vCPUs with CPUID and MSRs.
 * Returns 0 or -errno with a message for the user in err.
 */
int vm_create(struct vm *vm, const char *kvm_path, uint64_t mem_size, bool hugepages,
	      unsigned ncpus, struct cove_err *err);
void vm_destroy(struct vm *vm);

/*
 * Sets the boot processor's registers for entry, runs every vCPU in its own thread and
 * returns when they have all stopped: the enum vm_stop reason.
 */
int vm_run(struct vm *vm, const struct boot_entry *entry);

/* Asks every vCPU to stop (first reason wins). Safe from any thread, not from signal handlers. */
void vm_request_stop(struct vm *vm, enum vm_stop reason, const char *msg);

/* Sum of port-I/O exits over all vCPUs. */
uint64_t vm_io_exits(const struct vm *vm);

/* vcpu.c */
int vcpu_init(struct vm *vm, struct vcpu *vcpu, unsigned id, struct cove_err *err);
void vcpu_fini(struct vcpu *vcpu);
int vcpu_set_entry(struct vcpu *vcpu, const struct boot_entry *entry);
void *vcpu_thread(void *arg);
/* Called by each vCPU thread as it ends. */
void vm_vcpu_ended(struct vm *vm);
/* Writes the vCPU's registers (one line each group) into buf. */
void vcpu_dump(struct vcpu *vcpu, char *buf, size_t len);

#endif
