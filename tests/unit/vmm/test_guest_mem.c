/* Unit tests of the guest-memory accessor: ranges inside RAM only, no overflow. */
#include "vmm/guest_mem.h"
#include "vmm/layout.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void low_only(void **state)
{
	struct guest_mem m;
	assert_int_equal(guest_mem_init(&m, 16 << 20, false), 0);
	assert_non_null(guest_mem_ptr(&m, 0, 16 << 20));
	assert_non_null(guest_mem_ptr(&m, (16 << 20) - 1, 1));
	assert_non_null(guest_mem_ptr(&m, 0x1000, 0));
	assert_null(guest_mem_ptr(&m, (16 << 20) - 1, 2));
	assert_null(guest_mem_ptr(&m, 16 << 20, 1));
	assert_null(guest_mem_ptr(&m, 1, UINT64_MAX));
	assert_null(guest_mem_ptr(&m, UINT64_MAX, 2));
	assert_null(guest_mem_ptr(&m, LAYOUT_HIGH_RAM, 1));
	uint32_t v = 0x12345678, r = 0;
	assert_int_equal(guest_mem_write(&m, 0x1000, &v, 4), 0);
	assert_int_equal(guest_mem_read(&m, 0x1000, &r, 4), 0);
	assert_int_equal(r, v);
	assert_int_equal(guest_mem_write(&m, (16 << 20) - 2, &v, 4), -EFAULT);
	guest_mem_clear(&m);
	assert_int_equal(guest_mem_read(&m, 0x1000, &r, 4), 0);
	assert_int_equal(r, 0);
	guest_mem_free(&m);
	assert_null(guest_mem_ptr(&m, 0, 1));
}

static void split(void **state)
{
	struct guest_mem m;
	uint64_t size = LAYOUT_MMIO32_START + (64 << 20);
	assert_int_equal(guest_mem_init(&m, size, false), 0);
	assert_int_equal(m.low_size, LAYOUT_MMIO32_START);
	assert_int_equal(m.high_size, 64 << 20);
	/* Nothing in the hole, nothing spanning it. */
	assert_null(guest_mem_ptr(&m, LAYOUT_MMIO32_START, 1));
	assert_null(guest_mem_ptr(&m, LAYOUT_MMIO32_START - 1, 2));
	assert_null(guest_mem_ptr(&m, LAYOUT_IOAPIC, 4));
	uint8_t *hi = guest_mem_ptr(&m, LAYOUT_HIGH_RAM, 64 << 20);
	assert_non_null(hi);
	assert_ptr_equal(hi, m.host + LAYOUT_MMIO32_START);
	assert_null(guest_mem_ptr(&m, LAYOUT_HIGH_RAM + (64 << 20), 1));
	assert_null(guest_mem_ptr(&m, LAYOUT_HIGH_RAM + 1, 64 << 20));
	guest_mem_free(&m);
}

static void bad_sizes(void **state)
{
	struct guest_mem m;
	assert_int_equal(guest_mem_init(&m, 1 << 20, false), -EINVAL);
	assert_int_equal(guest_mem_init(&m, (16 << 20) + 1, false), -EINVAL);
	assert_int_equal(guest_mem_init(&m, GUEST_MEM_MAX * 2, false), -EINVAL);
	/* Huge pages fall back to ordinary pages when none are reserved. */
	assert_int_equal(guest_mem_init(&m, 16 << 20, true), 0);
	assert_non_null(guest_mem_ptr(&m, 0, 4096));
	*(volatile uint8_t *)guest_mem_ptr(&m, 0, 1) = 1;
	guest_mem_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(low_only),
	    cmocka_unit_test(split),
	    cmocka_unit_test(bad_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
