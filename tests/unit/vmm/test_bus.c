/* Unit tests of the I/O bus: dispatch by range, overlaps refused, unclaimed reads all ones. */
#include "vmm/bus.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

struct fake {
	uint64_t last_off;
	unsigned writes, resets;
};

static void fake_read(struct device *dev, uint64_t off, void *data, unsigned len)
{
	memset(data, (int)off, len);
}

static void fake_write(struct device *dev, uint64_t off, const void *data, unsigned len)
{
	struct fake *f = dev->priv;
	f->last_off = off;
	f->writes++;
}

static void fake_reset(struct device *dev)
{
	((struct fake *)dev->priv)->resets++;
}

static const struct device_ops fake_ops = {
    .read = fake_read, .write = fake_write, .reset = fake_reset};

static void dispatch(void **state)
{
	struct bus *b = bus_new();
	struct fake f = {0};
	struct device d = {"fake", &fake_ops, &f};
	assert_int_equal(bus_register(b, BUS_PIO, 0x3F8, 8, &d), 0);
	assert_int_equal(bus_register(b, BUS_PIO, 0x3F0, 8, &d), 0);
	assert_int_equal(bus_register(b, BUS_PIO, 0x3FF, 1, &d), -EEXIST);
	assert_int_equal(bus_register(b, BUS_PIO, 0x3F4, 8, &d), -EEXIST);
	assert_int_equal(bus_register(b, BUS_PIO, 0x3E0, 0x100, &d), -EEXIST);
	assert_int_equal(bus_register(b, BUS_PIO, 0, 0, &d), -EINVAL);
	assert_int_equal(bus_register(b, BUS_MMIO, UINT64_MAX, 2, &d), -EINVAL);
	assert_int_equal(bus_register(b, BUS_MMIO, 0x3F8, 8, &d), 0); /* other space */

	uint8_t v = 0;
	assert_true(bus_write(b, BUS_PIO, 0x3FB, &v, 1));
	assert_int_equal(f.last_off, 3);
	uint32_t r = 0;
	assert_true(bus_read(b, BUS_PIO, 0x3FA, &r, 2));
	assert_int_equal(r, 0x0202);
	/* A read that runs past the end of the range is not claimed. */
	assert_false(bus_read(b, BUS_PIO, 0x3FE, &r, 4));
	assert_false(bus_read(b, BUS_PIO, 0x80, &r, 4));
	assert_int_equal(r, 0xFFFFFFFF);
	assert_false(bus_write(b, BUS_PIO, 0x80, &v, 1));
	assert_false(bus_read(b, BUS_PIO, 0x3F8, &r, 3)); /* odd size */
	assert_int_equal(bus_unclaimed_count(b), 4);

	bus_reset_all(b);
	assert_int_equal(f.resets, 1); /* once, though it has three ranges */
	assert_int_equal(bus_unregister(b, BUS_PIO, 0x3F8), 0);
	assert_int_equal(bus_unregister(b, BUS_PIO, 0x3F8), -ENOENT);
	assert_false(bus_write(b, BUS_PIO, 0x3F8, &v, 1));
	bus_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(dispatch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
