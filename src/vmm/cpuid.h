/* CPUID for a vCPU: KVM's supported leaves with the topology of an N-vCPU machine. */
#ifndef COVE_VMM_CPUID_H
#define COVE_VMM_CPUID_H

#include <linux/kvm.h>

/*
 * Rewrites the topology leaves of entries (n used, room for cap) for the vCPU with APIC
 * ID apic_id in a machine of ncpus vCPUs (one socket, ncpus cores, one thread each):
 * leaf 1 (APIC ID, logical count, HTT, hypervisor bit), leaf 4 (cores and sharing per
 * cache), leaves 0xB and 0x1F (SMT and core levels), 0x80000008 (AMD core count).
 * Leaves from 0x40000000 to 0x4FFFFFFF (the hypervisor's) are left unchanged.
 * Returns the new entry count, or -ENOSPC if cap is too small.
 */
int cpuid_set_topology(struct kvm_cpuid_entry2 *entries, unsigned n, unsigned cap, unsigned apic_id,
		       unsigned ncpus);

/* Bits needed to hold ids 0..count-1 (0 for count <= 1). */
unsigned cpuid_order(unsigned count);

#endif
