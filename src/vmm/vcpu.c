/* vCPUs: creation with CPUID and MSRs, boot-entry register state, and the KVM_RUN exit loop. */
#include "util/log.h"
#include "vmm/cpuid.h"
#include "vmm/layout.h"
#include "vmm/vm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* Boot GDT selectors (Linux's boot protocol wants __BOOT_CS 0x10, __BOOT_DS 0x18). */
#define SEL_CODE32 0x08
#define SEL_CODE64 0x10
#define SEL_DATA   0x18
#define SEL_TSS	   0x20
#define GDT_COUNT  5

#define CR0_PE	 (1ULL << 0)
#define CR0_ET	 (1ULL << 4)
#define CR0_PG	 (1ULL << 31)
#define CR4_PAE	 (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define PTE_P	 1ULL
#define PTE_RW	 2ULL
#define PTE_PS	 (1ULL << 7)

static int set_msrs(struct vcpu *v)
{
	static const struct {
		uint32_t index;
		uint64_t value;
	} init[] = {
	    {0x174, 0},	     /* SYSENTER_CS */
	    {0x175, 0},	     /* SYSENTER_ESP */
	    {0x176, 0},	     /* SYSENTER_EIP */
	    {0xC0000081, 0}, /* STAR */
	    {0xC0000082, 0}, /* LSTAR */
	    {0xC0000083, 0}, /* CSTAR */
	    {0xC0000084, 0}, /* SYSCALL_MASK */
	    {0xC0000102, 0}, /* KERNEL_GS_BASE */
	    {0x1A0, 1},	     /* MISC_ENABLE: fast strings, as firmware leaves it */
	    {0x2FF, 0x806},  /* MTRRdefType: enabled, write-back, as firmware leaves it */
	};
	enum { N = sizeof(init) / sizeof(init[0]) };
	_Alignas(8) uint8_t buf[sizeof(struct kvm_msrs) + N * sizeof(struct kvm_msr_entry)];
	memset(buf, 0, sizeof(buf));
	struct kvm_msrs *m = (struct kvm_msrs *)buf;
	m->nmsrs = N;
	for (unsigned i = 0; i < N; i++) {
		m->entries[i].index = init[i].index;
		m->entries[i].data = init[i].value;
	}
	int r = ioctl(v->fd, KVM_SET_MSRS, m);
	if (r < 0)
		return -errno;
	if (r < N) /* a backend may refuse some; Linux copes with their reset values */
		log_debug("vcpu%u: KVM set %d of %d MSRs", v->id, r, N);
	return 0;
}

static int set_cpuid(struct vcpu *v)
{
	const struct kvm_cpuid2 *sup = v->vm->supported_cpuid;
	unsigned cap = sup->nent + 8;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + cap * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	memcpy(c->entries, sup->entries, sup->nent * sizeof(c->entries[0]));
	int n = cpuid_set_topology(c->entries, sup->nent, cap, v->id, v->vm->ncpus);
	int ret = 0;
	if (n < 0) {
		ret = n;
	} else {
		c->nent = (unsigned)n;
		if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
			ret = -errno;
	}
	free(c);
	return ret;
}

int vcpu_init(struct vm *vm, struct vcpu *v, unsigned id, struct cove_err *err)
{
	v->vm = vm;
	v->id = id;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0)
		return cove_err_set(err, -errno, "KVM_CREATE_VCPU: %s", strerror(errno));
	void *run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (run == MAP_FAILED)
		return cove_err_set(err, -errno, "mmap kvm_run: %s", strerror(errno));
	v->run = run;
	int ret = set_cpuid(v);
	if (ret)
		return cove_err_set(err, ret, "KVM_SET_CPUID2: %s", strerror(-ret));
	ret = set_msrs(v);
	if (ret)
		return cove_err_set(err, ret, "KVM_SET_MSRS: %s", strerror(-ret));
	return 0;
}

void vcpu_fini(struct vcpu *v)
{
	if (v->run)
		munmap(v->run, v->vm->run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

static struct kvm_segment seg(uint16_t sel, uint8_t type, bool code64)
{
	struct kvm_segment s = {
	    .base = 0,
	    .limit = 0xFFFFFFFF,
	    .selector = sel,
	    .type = type,
	    .present = 1,
	    .dpl = 0,
	    .db = code64 ? 0 : 1,
	    .s = 1,
	    .l = code64 ? 1 : 0,
	    .g = 1,
	};
	return s;
}

/* The boot GDT and (for 64-bit entry) identity page tables for the first 4 GiB. */
static int write_boot_tables(struct vm *vm, bool paging)
{
	uint64_t gdt[GDT_COUNT] = {
	    0,
	    0x00CF9B000000FFFFULL, /* 0x08: code, 32-bit, flat */
	    0x00AF9B000000FFFFULL, /* 0x10: code, 64-bit */
	    0x00CF93000000FFFFULL, /* 0x18: data, flat */
	    0x00008B0000000067ULL, /* 0x20: TSS (busy), base 0 */
	};
	int ret = guest_mem_write(&vm->mem, LAYOUT_GDT, gdt, sizeof(gdt));
	if (ret || !paging)
		return ret;
	/* PML4 -> one PDPT -> four page directories of 2 MiB pages. */
	uint64_t *pt = guest_mem_ptr(&vm->mem, LAYOUT_PAGE_TABLES, 6 * 4096);
	if (!pt)
		return -EFAULT;
	memset(pt, 0, 6 * 4096);
	uint64_t pdpt = LAYOUT_PAGE_TABLES + 4096;
	pt[0] = pdpt | PTE_P | PTE_RW;
	for (unsigned i = 0; i < 4; i++) {
		uint64_t pd = LAYOUT_PAGE_TABLES + (2 + i) * 4096;
		pt[512 + i] = pd | PTE_P | PTE_RW;
		for (unsigned j = 0; j < 512; j++)
			pt[(2 + i) * 512 + j] =
			    ((uint64_t)(i * 512 + j) << 21) | PTE_P | PTE_RW | PTE_PS;
	}
	return 0;
}

int vcpu_set_entry(struct vcpu *v, const struct boot_entry *entry)
{
	bool lm = entry->mode == BOOT_LINUX64;
	int ret = write_boot_tables(v->vm, lm);
	if (ret)
		return ret;
	struct kvm_sregs sr;
	if (ioctl(v->fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	struct kvm_segment data = seg(SEL_DATA, 3, false);
	sr.cs = lm ? seg(SEL_CODE64, 0xB, true) : seg(SEL_CODE32, 0xB, false);
	sr.ds = sr.es = sr.fs = sr.gs = sr.ss = data;
	sr.tr = (struct kvm_segment){.limit = 0x67, .selector = SEL_TSS, .type = 0xB, .present = 1};
	sr.gdt.base = LAYOUT_GDT;
	sr.gdt.limit = GDT_COUNT * 8 - 1;
	sr.idt.base = 0;
	sr.idt.limit = 0;
	if (lm) {
		sr.cr0 = CR0_PE | CR0_ET | CR0_PG;
		sr.cr3 = LAYOUT_PAGE_TABLES;
		sr.cr4 = CR4_PAE;
		sr.efer = EFER_LME | EFER_LMA;
	} else {
		sr.cr0 = CR0_PE | CR0_ET;
		sr.cr3 = 0;
		sr.cr4 = 0;
		sr.efer = 0;
	}
	if (ioctl(v->fd, KVM_SET_SREGS, &sr) < 0)
		return -errno;

	struct kvm_regs r = {.rflags = 2, .rip = entry->rip};
	if (lm) {
		r.rsi = entry->arg;
		r.rsp = LAYOUT_PAGE_TABLES - 16; /* below the page tables, above boot_params */
	} else {
		r.rbx = entry->arg;
	}
	if (ioctl(v->fd, KVM_SET_REGS, &r) < 0)
		return -errno;
	struct kvm_fpu fpu = {.fcw = 0x37F, .mxcsr = 0x1F80};
	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		log_debug("vcpu%u: KVM_SET_FPU: %s", v->id, strerror(errno));
	return 0;
}

void vcpu_dump(struct vcpu *v, char *buf, size_t len)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
		snprintf(buf, len, "vcpu%u: registers unavailable: %s", v->id, strerror(errno));
		return;
	}
	snprintf(buf, len,
		 "vcpu%u registers:\n"
		 "  rip=%016llx rsp=%016llx rflags=%08llx\n"
		 "  rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n"
		 "  rsi=%016llx rdi=%016llx rbp=%016llx\n"
		 "  r8=%016llx r9=%016llx r10=%016llx r11=%016llx\n"
		 "  r12=%016llx r13=%016llx r14=%016llx r15=%016llx\n"
		 "  cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx efer=%016llx\n"
		 "  cs=%04x(base %llx l=%u db=%u) ss=%04x ds=%04x gdt=%llx/%x idt=%llx/%x",
		 v->id, r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp,
		 r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, s.cr0, s.cr2, s.cr3, s.cr4,
		 s.efer, s.cs.selector, s.cs.base, s.cs.l, s.cs.db, s.ss.selector, s.ds.selector,
		 s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit);
}

static void stop_with_dump(struct vcpu *v, const char *what)
{
	char dump[1536];
	char msg[2048];
	vcpu_dump(v, dump, sizeof(dump));
	snprintf(msg, sizeof(msg), "%s\n%s", what, dump);
	vm_request_stop(v->vm, VM_ERROR, msg);
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	unsigned size = run->io.size;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	for (uint32_t i = 0; i < run->io.count; i++, data += size) {
		if (run->io.direction == KVM_EXIT_IO_OUT)
			bus_write(v->vm->pio, BUS_PIO, run->io.port, data, size);
		else
			bus_read(v->vm->pio, BUS_PIO, run->io.port, data, size);
	}
	__atomic_store_n(&v->io_exits, v->io_exits + 1, __ATOMIC_RELAXED);
}

/* Returns false when the vCPU must stop. */
static bool handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	char what[256];
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(v);
		return true;
	case KVM_EXIT_MMIO:
		if (run->mmio.len > sizeof(run->mmio.data)) { /* KVM never sends one; ignore it */
			memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
			bus_count_unclaimed(v->vm->mmio);
			return true;
		}
		if (run->mmio.is_write)
			bus_write(v->vm->mmio, BUS_MMIO, run->mmio.phys_addr, run->mmio.data,
				  run->mmio.len);
		else
			bus_read(v->vm->mmio, BUS_MMIO, run->mmio.phys_addr, run->mmio.data,
				 run->mmio.len);
		return true;
	case KVM_EXIT_HLT:
	case KVM_EXIT_INTR:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		return true;
	case KVM_EXIT_SHUTDOWN:
		snprintf(what, sizeof(what), "guest reset (triple fault on vcpu%u)", v->id);
		vm_request_stop(v->vm, VM_RESET, what);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			vm_request_stop(v->vm, VM_POWEROFF, NULL);
			return false;
		case KVM_SYSTEM_EVENT_RESET:
			vm_request_stop(v->vm, VM_RESET, "guest reset");
			return false;
		default:
			snprintf(what, sizeof(what), "guest crashed (system event %u on vcpu%u)",
				 run->system_event.type, v->id);
			stop_with_dump(v, what);
			return false;
		}
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(what, sizeof(what), "KVM internal error on vcpu%u (suberror %u%s)", v->id,
			 run->internal.suberror,
			 run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
			     ? ": an instruction could not be emulated"
			     : "");
		stop_with_dump(v, what);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "KVM could not enter vcpu%u (reason 0x%llx)", v->id,
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		stop_with_dump(v, what);
		return false;
	default:
		snprintf(what, sizeof(what), "unexpected KVM exit %u on vcpu%u", run->exit_reason,
			 v->id);
		stop_with_dump(v, what);
		return false;
	}
}

/* --- pause gate (the API socket's PATCH /vm): vCPUs park between exits --- */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	atomic_bool requested;
	unsigned parked;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0};

static bool vm_stopping(struct vm *vm)
{
	return atomic_load(&vm->stop) != VM_RUNNING;
}

/* Waits here, outside KVM_RUN, while a pause is requested and the VM is not stopping. */
static void park(struct vcpu *v)
{
	pthread_mutex_lock(&gate.lock);
	gate.parked++;
	pthread_cond_broadcast(&gate.cond);
	while (atomic_load(&gate.requested) && !vm_stopping(v->vm)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000 * 1000; /* a stop does not signal the gate: look again */
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&gate.cond, &gate.lock, &ts);
	}
	gate.parked--;
	/* The flag is cleared before the loop looks at requested and stop again. */
	if (!vm_stopping(v->vm))
		__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&gate.lock);
}

int vm_pause(struct vm *vm, unsigned timeout_ms)
{
	pthread_mutex_lock(&gate.lock);
	atomic_store(&gate.requested, true);
	pthread_mutex_lock(&vm->lock);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		if (v->run)
			__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		if (v->thread_started)
			pthread_kill(v->thread, SIGUSR1);
	}
	pthread_mutex_unlock(&vm->lock);
	struct timespec end;
	clock_gettime(CLOCK_REALTIME, &end);
	end.tv_sec += timeout_ms / 1000;
	end.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (end.tv_nsec >= 1000000000) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000;
	}
	int ret = 0;
	while (gate.parked < vm->ncpus) {
		if (vm_stopping(vm)) {
			ret = -ESRCH;
			break;
		}
		if (pthread_cond_timedwait(&gate.cond, &gate.lock, &end) == ETIMEDOUT) {
			ret = gate.parked < vm->ncpus ? -ETIMEDOUT : 0;
			break;
		}
	}
	if (ret) {
		atomic_store(&gate.requested, false);
		pthread_cond_broadcast(&gate.cond);
	}
	pthread_mutex_unlock(&gate.lock);
	return ret;
}

void vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&gate.lock);
	/* Tell a kvmclock guest it was stopped (its soft-lockup watchdog then keeps quiet), as
	 * QEMU does on resume; the vCPUs are parked. Guests without kvmclock: EINVAL, ignored. */
	if (atomic_load(&gate.requested) && gate.parked >= vm->ncpus)
		for (unsigned i = 0; i < vm->ncpus; i++)
			if (vm->vcpus[i].fd >= 0)
				(void)ioctl(vm->vcpus[i].fd, KVM_KVMCLOCK_CTRL, 0);
	atomic_store(&gate.requested, false);
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
}
/* --- end of the pause gate --- */

void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	while (atomic_load_explicit(&vm->stop, memory_order_acquire) == VM_RUNNING) {
		if (atomic_load_explicit(&gate.requested, memory_order_acquire)) {
			park(v); /* pause gate */
			continue;
		}
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			char what[128];
			snprintf(what, sizeof(what), "KVM_RUN on vcpu%u: %s", v->id,
				 strerror(errno));
			stop_with_dump(v, what);
			break;
		}
		if (!handle_exit(v))
			break;
	}
	vm_vcpu_ended(vm);
	return NULL;
}
