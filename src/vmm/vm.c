/* The KVM VM: /dev/kvm, the VM with its in-kernel irqchip and PIT, RAM slots, vCPU threads. */
#include "vmm/vm.h"
#include "util/log.h"
#include "vmm/layout.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* Three pages just below the BIOS area that KVM needs on VT-x: TSS and identity map. */
#define KVM_IDENTITY_MAP 0xFEFFC000ULL
#define KVM_TSS		 0xFEFFD000ULL

static int open_kvm(const char *path, struct cove_err *err)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			return cove_err_set(err, -e,
					    "%s: no such device (is KVM available? load kvm_intel, "
					    "kvm_amd or kvm_pvm)",
					    path);
		if (e == EACCES || e == EPERM)
			return cove_err_set(
			    err, -e, "%s: permission denied (add yourself to group kvm)", path);
		return cove_err_set(err, -e, "%s: %s", path, strerror(e));
	}
	int version = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		close(fd);
		return cove_err_set(err, -ENOTSUP, "%s: not a KVM device (API version %d)", path,
				    version);
	}
	return fd;
}

static int need_cap(int kvm_fd, int cap, const char *name, struct cove_err *err)
{
	if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, cap) <= 0)
		return cove_err_set(err, -ENOTSUP, "KVM lacks %s", name);
	return 0;
}

static int get_supported_cpuid(struct vm *vm, struct cove_err *err)
{
	for (unsigned n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return cove_err_set(err, -ENOMEM, "out of memory");
		c->nent = n;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			/* KVM emulates the TSC-deadline timer but leaves its bit to userspace. */
			if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
				for (unsigned i = 0; i < c->nent; i++)
					if (c->entries[i].function == 1)
						c->entries[i].ecx |= 1u << 24;
			vm->supported_cpuid = c;
			return 0;
		}
		int e = errno;
		free(c);
		if (e != E2BIG)
			return cove_err_set(err, -e, "KVM_GET_SUPPORTED_CPUID: %s", strerror(e));
	}
	return cove_err_set(err, -E2BIG, "KVM_GET_SUPPORTED_CPUID: too many entries");
}

static int set_slot(struct vm *vm, unsigned slot, uint64_t gpa, uint64_t size, void *host,
		    struct cove_err *err)
{
	struct kvm_userspace_memory_region r = {
	    .slot = slot,
	    .guest_phys_addr = gpa,
	    .memory_size = size,
	    .userspace_addr = (uintptr_t)host,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return cove_err_set(err, -errno, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
	return 0;
}

static uint64_t t_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void kick_handler(int sig)
{
	(void)sig; /* only there to interrupt KVM_RUN */
}

int vm_create(struct vm *vm, const char *kvm_path, uint64_t mem_size, bool hugepages,
	      unsigned ncpus, struct cove_err *err)
{
	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = vm->irq.vm_fd = -1;
	atomic_init(&vm->stop, VM_RUNNING);
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	if (ncpus < 1 || ncpus > VM_MAX_CPUS)
		return cove_err_set(err, -EINVAL, "--cpus %u: out of range (1 to %d)", ncpus,
				    VM_MAX_CPUS);
	if (!kvm_path)
		kvm_path = getenv("COVE_KVM_DEV");
	if (!kvm_path || !*kvm_path)
		kvm_path = "/dev/kvm";
	int ret = open_kvm(kvm_path, err);
	if (ret < 0)
		return ret;
	vm->kvm_fd = ret;
	if ((ret = need_cap(vm->kvm_fd, KVM_CAP_IRQCHIP, "an in-kernel irqchip", err)) ||
	    (ret = need_cap(vm->kvm_fd, KVM_CAP_USER_MEMORY, "user memory", err)) ||
	    (ret = need_cap(vm->kvm_fd, KVM_CAP_IMMEDIATE_EXIT, "immediate_exit", err)))
		goto fail;
	int run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size <= 0) {
		ret = cove_err_set(err, -EINVAL, "KVM_GET_VCPU_MMAP_SIZE failed");
		goto fail;
	}
	vm->run_size = (size_t)run_size;
	int max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max_vcpus > 0 && ncpus > (unsigned)max_vcpus) {
		ret = cove_err_set(err, -EINVAL, "--cpus %u: this host's KVM allows at most %d",
				   ncpus, max_vcpus);
		goto fail;
	}
	if ((ret = get_supported_cpuid(vm, err)))
		goto fail;

	uint64_t t0 = t_us();
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		ret = cove_err_set(err, -errno, "KVM_CREATE_VM: %s", strerror(errno));
		goto fail;
	}
	vm->irq.vm_fd = vm->vm_fd;
	/* Only VT-x needs these; other backends reject them harmlessly. */
	uint64_t idmap = KVM_IDENTITY_MAP;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		log_debug("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS) < 0)
		log_debug("KVM_SET_TSS_ADDR: %s", strerror(errno));
	uint64_t t1 = t_us();
	/* Memory first: adding a slot once the irqchip exists was seen to cost milliseconds. */
	ret = guest_mem_init(&vm->mem, mem_size, hugepages);
	if (ret == -EINVAL) {
		cove_err_set(err, ret,
			     "--memory %llu MiB: out of range (16 MiB to 1 TiB, whole pages)",
			     (unsigned long long)(mem_size >> 20));
		goto fail;
	}
	if (ret) {
		cove_err_set(err, ret, "cannot map %llu MiB of guest memory",
			     (unsigned long long)(mem_size >> 20));
		goto fail;
	}
	if ((ret = set_slot(vm, 0, 0, vm->mem.low_size, vm->mem.host, err)))
		goto fail;
	if (vm->mem.high_size && (ret = set_slot(vm, 1, LAYOUT_HIGH_RAM, vm->mem.high_size,
						 vm->mem.host + vm->mem.low_size, err)))
		goto fail;

	uint64_t t2 = t_us();
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		ret = cove_err_set(err, -errno, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
		goto fail;
	}
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		ret = cove_err_set(err, -errno, "KVM_CREATE_PIT2: %s", strerror(errno));
		goto fail;
	}

	uint64_t t3 = t_us();
	vm->pio = bus_new();
	vm->mmio = bus_new();
	if (!vm->pio || !vm->mmio) {
		ret = cove_err_set(err, -ENOMEM, "out of memory");
		goto fail;
	}

	struct sigaction sa = {.sa_handler = kick_handler};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);

	vm->vcpus = calloc(ncpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		ret = cove_err_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < ncpus; i++) {
		vm->vcpus[i].fd = -1;
		vm->vcpus[i].vm = vm;
	}
	vm->ncpus = ncpus;
	for (unsigned i = 0; i < ncpus; i++) {
		if ((ret = vcpu_init(vm, &vm->vcpus[i], i, err))) {
			cove_err_prefix(err, "vCPU %u", i);
			goto fail;
		}
	}
	log_debug("vm: create %llu us, memory %llu us, irqchip+pit %llu us, vcpus %llu us",
		  (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
		  (unsigned long long)(t3 - t2), (unsigned long long)(t_us() - t3));
	return 0;
fail:
	vm_destroy(vm);
	return ret;
}

void vm_destroy(struct vm *vm)
{
	if (vm->vcpus) {
		for (unsigned i = 0; i < vm->ncpus; i++)
			vcpu_fini(&vm->vcpus[i]);
		free(vm->vcpus);
	}
	bus_free(vm->pio);
	bus_free(vm->mmio);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	guest_mem_free(&vm->mem);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	free(vm->supported_cpuid);
	pthread_mutex_destroy(&vm->lock);
	pthread_cond_destroy(&vm->cond);
	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = vm->irq.vm_fd = -1;
}

void vm_request_stop(struct vm *vm, enum vm_stop reason, const char *msg)
{
	int expected = VM_RUNNING;
	if (atomic_compare_exchange_strong(&vm->stop, &expected, (int)reason) && msg)
		snprintf(vm->stop_msg, sizeof(vm->stop_msg), "%s", msg);
	/* The flag first, then the kick: a vCPU about to enter KVM_RUN sees immediate_exit. */
	pthread_mutex_lock(&vm->lock);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		if (v->run)
			__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		if (v->thread_started)
			pthread_kill(v->thread, SIGUSR1);
	}
	pthread_mutex_unlock(&vm->lock);
}

void vm_vcpu_ended(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->running--;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

int vm_run(struct vm *vm, const struct boot_entry *entry)
{
	int ret = vcpu_set_entry(&vm->vcpus[0], entry);
	if (ret) {
		char msg[128];
		snprintf(msg, sizeof(msg), "cannot set the boot vCPU's registers: %s",
			 strerror(-ret));
		vm_request_stop(vm, VM_ERROR, msg);
		return VM_ERROR;
	}
	/* vCPU threads (this one too, while it runs the boot vCPU) take SIGUSR1, the kick, only. */
	sigset_t all, old;
	sigfillset(&all);
	sigdelset(&all, SIGUSR1);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	bool failed = false;
	pthread_mutex_lock(&vm->lock);
	/* The boot vCPU runs on this thread: one thread fewer to start before the guest runs. */
	struct vcpu *bsp = &vm->vcpus[0];
	bsp->thread = pthread_self();
	bsp->thread_started = true;
	bsp->on_caller = true;
	vm->running++;
	for (unsigned i = 1; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		if (pthread_create(&v->thread, NULL, vcpu_thread, v) != 0) {
			failed = true;
			break;
		}
		v->thread_started = true;
		vm->running++;
		char name[16];
		snprintf(name, sizeof(name), "vcpu%u", i);
		pthread_setname_np(v->thread, name);
	}
	pthread_mutex_unlock(&vm->lock);
	if (failed)
		vm_request_stop(vm, VM_ERROR, "cannot start a vCPU thread");
	vcpu_thread(bsp);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	/* Wait until every thread has ended, so that no kick can reach a joined thread. */
	pthread_mutex_lock(&vm->lock);
	while (vm->running)
		pthread_cond_wait(&vm->cond, &vm->lock);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		if (v->thread_started && !v->on_caller)
			pthread_join(v->thread, NULL);
		v->thread_started = false;
		v->on_caller = false;
	}
	pthread_mutex_unlock(&vm->lock);
	return atomic_load(&vm->stop);
}

uint64_t vm_io_exits(const struct vm *vm)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < vm->ncpus; i++)
		n += __atomic_load_n(&vm->vcpus[i].io_exits, __ATOMIC_RELAXED);
	return n;
}
