/* Unit tests of the e820 map: RAM split around the hole, reserved areas, no overlaps. */
#include "vmm/e820.h"
#include "vmm/guest_mem.h"
#include "vmm/layout.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

static uint64_t ram_total(const struct e820_entry *m, int n)
{
	uint64_t t = 0;
	for (int i = 0; i < n; i++)
		if (m[i].type == E820_RAM)
			t += m[i].size;
	return t;
}

static void check_sorted(const struct e820_entry *m, int n)
{
	for (int i = 1; i < n; i++)
		assert_true(m[i - 1].addr + m[i - 1].size <= m[i].addr);
}

static void small(void **state)
{
	struct e820_entry m[E820_MAX_BUILT];
	uint64_t lo, hi;
	guest_mem_split(256ULL << 20, &lo, &hi);
	assert_int_equal(lo, 256ULL << 20);
	assert_int_equal(hi, 0);
	int n = e820_build(lo, hi, m, E820_MAX_BUILT);
	assert_int_equal(n, 4);
	check_sorted(m, n);
	assert_int_equal(m[0].addr, 0);
	assert_int_equal(m[0].type, E820_RAM);
	assert_int_equal(m[1].addr, LAYOUT_EBDA);
	assert_int_equal(m[1].type, E820_RESERVED);
	assert_int_equal(m[2].addr, LAYOUT_KERNEL);
	/* All RAM but the reserved BIOS area is in the map. */
	assert_int_equal(ram_total(m, n), (256ULL << 20) - (LAYOUT_KERNEL - LAYOUT_EBDA));
	/* The ACPI tables are inside a reserved range. */
	assert_true(m[1].addr <= LAYOUT_ACPI && LAYOUT_ACPI_END <= m[1].addr + m[1].size);
}

static void above_hole(void **state)
{
	struct e820_entry m[E820_MAX_BUILT];
	uint64_t lo, hi;
	guest_mem_split(8ULL << 30, &lo, &hi);
	assert_int_equal(lo, LAYOUT_MMIO32_START);
	assert_int_equal(hi, (8ULL << 30) - LAYOUT_MMIO32_START);
	int n = e820_build(lo, hi, m, E820_MAX_BUILT);
	assert_int_equal(n, 5);
	check_sorted(m, n);
	assert_int_equal(m[4].addr, LAYOUT_HIGH_RAM);
	assert_int_equal(m[4].size, hi);
	assert_int_equal(m[4].type, E820_RAM);
	/* No RAM inside the hole. */
	for (int i = 0; i < n; i++)
		if (m[i].type == E820_RAM)
			assert_true(m[i].addr + m[i].size <= LAYOUT_MMIO32_START ||
				    m[i].addr >= LAYOUT_MMIO32_END);
	assert_int_equal(ram_total(m, n), (8ULL << 30) - (LAYOUT_KERNEL - LAYOUT_EBDA));
}

static void exact_3g(void **state)
{
	uint64_t lo, hi;
	guest_mem_split(3ULL << 30, &lo, &hi);
	assert_int_equal(lo, 3ULL << 30);
	assert_int_equal(hi, 0);
}

static void bad(void **state)
{
	struct e820_entry m[E820_MAX_BUILT];
	assert_int_equal(e820_build(1 << 20, 0, m, 2), -EINVAL);
	assert_int_equal(e820_build(4096, 0, m, E820_MAX_BUILT), -EINVAL);
	assert_int_equal(e820_build(LAYOUT_MMIO32_START + 4096, 0, m, E820_MAX_BUILT), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(small),
	    cmocka_unit_test(above_hole),
	    cmocka_unit_test(exact_3g),
	    cmocka_unit_test(bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
