/* CPUID topology: one socket of N single-thread cores, APIC ID = vCPU index. */
#include "vmm/cpuid.h"

#include <errno.h>
#include <string.h>

unsigned cpuid_order(unsigned count)
{
	unsigned bits = 0;
	while (bits < 32 && (1ULL << bits) < count)
		bits++;
	return bits;
}

static struct kvm_cpuid_entry2 *find(struct kvm_cpuid_entry2 *e, unsigned n, unsigned fn,
				     unsigned idx)
{
	for (unsigned i = 0; i < n; i++)
		if (e[i].function == fn && e[i].index == idx)
			return &e[i];
	return NULL;
}

static int has_leaf(struct kvm_cpuid_entry2 *e, unsigned n, unsigned fn)
{
	for (unsigned i = 0; i < n; i++)
		if (e[i].function == fn)
			return 1;
	return 0;
}

/* The 0xB/0x1F subleaf idx; added if missing. Returns NULL when out of room. */
static struct kvm_cpuid_entry2 *subleaf(struct kvm_cpuid_entry2 *e, unsigned *n, unsigned cap,
					unsigned fn, unsigned idx)
{
	struct kvm_cpuid_entry2 *x = find(e, *n, fn, idx);
	if (x)
		return x;
	if (*n >= cap)
		return NULL;
	x = &e[(*n)++];
	memset(x, 0, sizeof(*x));
	x->function = fn;
	x->index = idx;
	x->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	return x;
}

static int set_ext_topology(struct kvm_cpuid_entry2 *e, unsigned *n, unsigned cap, unsigned fn,
			    unsigned apic_id, unsigned ncpus)
{
	/* Level 0: SMT (1 thread per core); level 1: core (ncpus per package); then end. */
	for (unsigned idx = 0; idx < 3; idx++) {
		struct kvm_cpuid_entry2 *x = subleaf(e, n, cap, fn, idx);
		if (!x)
			return -ENOSPC;
		x->flags |= KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		x->edx = apic_id;
		if (idx == 0) {
			x->eax = 0;
			x->ebx = 1;
			x->ecx = (1u << 8) | idx;
		} else if (idx == 1) {
			x->eax = cpuid_order(ncpus);
			x->ebx = ncpus;
			x->ecx = (2u << 8) | idx;
		} else {
			x->eax = 0;
			x->ebx = 0;
			x->ecx = idx;
		}
	}
	/* Subleaves past the end report an invalid level. */
	for (unsigned i = 0; i < *n; i++) {
		if (e[i].function == fn && e[i].index >= 3) {
			e[i].eax = e[i].ebx = 0;
			e[i].ecx = e[i].index;
			e[i].edx = apic_id;
		}
	}
	return 0;
}

int cpuid_set_topology(struct kvm_cpuid_entry2 *e, unsigned n, unsigned cap, unsigned apic_id,
		       unsigned ncpus)
{
	if (n > cap || ncpus == 0)
		return -EINVAL;
	unsigned logical = 1u << cpuid_order(ncpus);
	for (unsigned i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *x = &e[i];
		switch (x->function) {
		case 1:
			x->ebx = (x->ebx & 0xFFFFu) | ((logical & 0xFFu) << 16) | (apic_id << 24);
			if (ncpus > 1)
				x->edx |= 1u << 28; /* HTT: the logical count is valid */
			else
				x->edx &= ~(1u << 28);
			x->ecx |= 1u << 31; /* running under a hypervisor */
			break;
		case 4: {
			unsigned level = (x->eax >> 5) & 7;
			unsigned sharing = level >= 3 ? logical - 1 : 0;
			unsigned cores = logical > 64 ? 63 : logical - 1;
			if ((x->eax & 0x1F) == 0) /* no more caches */
				break;
			x->eax = (x->eax & 0x3FFFu) | ((sharing & 0xFFFu) << 14) | (cores << 26);
			break;
		}
		case 0x80000008:
			x->ecx = (x->ecx & ~0xF0FFu) | ((ncpus - 1) & 0xFFu) |
				 (cpuid_order(ncpus) << 12);
			break;
		default:
			break;
		}
	}
	if (has_leaf(e, n, 0xB) && set_ext_topology(e, &n, cap, 0xB, apic_id, ncpus))
		return -ENOSPC;
	if (has_leaf(e, n, 0x1F) && set_ext_topology(e, &n, cap, 0x1F, apic_id, ncpus))
		return -ENOSPC;
	return (int)n;
}
