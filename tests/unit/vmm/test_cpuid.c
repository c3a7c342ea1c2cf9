/* Unit tests of the CPUID topology: APIC IDs, counts, cache sharing, hypervisor leaves. */
#include "vmm/cpuid.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#define CAP 32

static unsigned base(struct kvm_cpuid_entry2 *e)
{
	unsigned n = 0;
	memset(e, 0, sizeof(e[0]) * CAP);
	e[n++] = (struct kvm_cpuid_entry2){.function = 0, .eax = 0x1F};
	e[n++] = (struct kvm_cpuid_entry2){.function = 1, .ebx = 0x00010800, .edx = 0};
	/* leaf 4: L1d (level 1, type 1) and L3 (level 3, type 3), then the end. */
	e[n++] = (struct kvm_cpuid_entry2){.function = 4, .index = 0, .eax = (1 << 5) | 1};
	e[n++] = (struct kvm_cpuid_entry2){.function = 4, .index = 1, .eax = (3 << 5) | 3};
	e[n++] = (struct kvm_cpuid_entry2){.function = 4, .index = 2, .eax = 0};
	e[n++] = (struct kvm_cpuid_entry2){.function = 0xB, .index = 0, .ecx = 0x100};
	e[n++] = (struct kvm_cpuid_entry2){.function = 0x1F, .index = 0};
	e[n++] = (struct kvm_cpuid_entry2){.function = 0x40000000,
					   .eax = 0x40000001,
					   .ebx = 0x4B4D564B,
					   .ecx = 0x564B4D56,
					   .edx = 0x4D};
	e[n++] = (struct kvm_cpuid_entry2){.function = 0x40000001, .eax = 0x12345678};
	e[n++] = (struct kvm_cpuid_entry2){.function = 0x80000008, .ecx = 0xF000};
	return n;
}

static struct kvm_cpuid_entry2 *find(struct kvm_cpuid_entry2 *e, int n, unsigned fn, unsigned idx)
{
	for (int i = 0; i < n; i++)
		if (e[i].function == fn && e[i].index == idx)
			return &e[i];
	fail_msg("leaf %#x.%u missing", fn, idx);
	return NULL;
}

static void topology_4(void **state)
{
	struct kvm_cpuid_entry2 e[CAP];
	unsigned n0 = base(e);
	struct kvm_cpuid_entry2 hv0 = e[7], hv1 = e[8];
	int n = cpuid_set_topology(e, n0, CAP, 3, 4);
	assert_true(n > (int)n0); /* 0xB and 0x1F subleaves 1, 2 added */
	struct kvm_cpuid_entry2 *l1 = find(e, n, 1, 0);
	assert_int_equal(l1->ebx >> 24, 3);	     /* APIC ID */
	assert_int_equal((l1->ebx >> 16) & 0xFF, 4); /* logical processors */
	assert_int_equal(l1->ebx & 0xFFFF, 0x0800);  /* the rest kept */
	assert_true(l1->edx & (1u << 28));
	assert_true(l1->ecx & (1u << 31));
	assert_int_equal(find(e, n, 4, 0)->eax >> 26, 3);
	assert_int_equal((find(e, n, 4, 0)->eax >> 14) & 0xFFF, 0); /* L1 per core */
	assert_int_equal((find(e, n, 4, 1)->eax >> 14) & 0xFFF, 3); /* L3 shared by 4 */
	assert_int_equal(find(e, n, 4, 2)->eax, 0);		    /* end marker untouched */
	for (unsigned fn = 0xB; fn <= 0x1F; fn += 0x14) {
		struct kvm_cpuid_entry2 *smt = find(e, n, fn, 0), *core = find(e, n, fn, 1),
					*end = find(e, n, fn, 2);
		assert_int_equal(smt->ebx, 1);
		assert_int_equal((smt->ecx >> 8) & 0xFF, 1);
		assert_int_equal(smt->edx, 3);
		assert_int_equal(core->eax & 0x1F, 2); /* log2(4) */
		assert_int_equal(core->ebx, 4);
		assert_int_equal((core->ecx >> 8) & 0xFF, 2);
		assert_int_equal(core->edx, 3);
		assert_int_equal((end->ecx >> 8) & 0xFF, 0);
	}
	assert_int_equal(find(e, n, 0x80000008, 0)->ecx & 0xFF, 3);
	/* Hypervisor leaves are passed through unchanged. */
	assert_memory_equal(find(e, n, 0x40000000, 0), &hv0, sizeof(hv0));
	assert_memory_equal(find(e, n, 0x40000001, 0), &hv1, sizeof(hv1));
}

static void topology_1_and_odd(void **state)
{
	struct kvm_cpuid_entry2 e[CAP];
	int n = cpuid_set_topology(e, base(e), CAP, 0, 1);
	assert_true(n > 0);
	assert_false(find(e, n, 1, 0)->edx & (1u << 28));
	assert_int_equal(find(e, n, 0xB, 1)->ebx, 1);
	assert_int_equal(find(e, n, 0xB, 1)->eax, 0);
	n = cpuid_set_topology(e, base(e), CAP, 254, 255);
	assert_int_equal(find(e, n, 1, 0)->ebx >> 24, 254);
	assert_int_equal(find(e, n, 0xB, 1)->eax, 8);
	assert_int_equal(find(e, n, 0xB, 1)->ebx, 255);
	assert_int_equal(find(e, n, 0xB, 0)->edx, 254);
	n = cpuid_set_topology(e, base(e), CAP, 2, 3);
	assert_int_equal((find(e, n, 1, 0)->ebx >> 16) & 0xFF, 4); /* rounded up */
	assert_int_equal(find(e, n, 0xB, 1)->ebx, 3);
}

static void no_room(void **state)
{
	struct kvm_cpuid_entry2 e[CAP];
	unsigned n = base(e);
	assert_int_equal(cpuid_set_topology(e, n, n, 0, 2), -ENOSPC);
	assert_int_equal(cpuid_set_topology(e, n, CAP, 0, 0), -EINVAL);
}

static void order(void **state)
{
	assert_int_equal(cpuid_order(0), 0);
	assert_int_equal(cpuid_order(1), 0);
	assert_int_equal(cpuid_order(2), 1);
	assert_int_equal(cpuid_order(3), 2);
	assert_int_equal(cpuid_order(255), 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(topology_4),
	    cmocka_unit_test(topology_1_and_odd),
	    cmocka_unit_test(no_room),
	    cmocka_unit_test(order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
