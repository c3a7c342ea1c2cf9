/* Unit tests of the CMOS RTC: time in BCD/binary and 12/24 h, UIP, setting, flags, CMOS RAM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "devices/rtc.h"
#include "fakes.h"

#define NS 1000000000LL
static const struct irq_line rtc_irq = {.gsi = 8};

static uint8_t cmos(struct device *d, uint8_t reg)
{
	wr8(d, 0, reg);
	return rd8(d, 1);
}

static void cmos_set(struct device *d, uint8_t reg, uint8_t v)
{
	wr8(d, 0, reg);
	wr8(d, 1, v);
}

static void reads_host_time(void **state)
{
	/* 2023-11-14 22:13:20 UTC, a Tuesday. */
	fake_real_ns = 1700000000LL * NS;
	struct device *d = rtc_new(&rtc_irq, 0, 0, 1);
	assert_int_equal(cmos(d, 0x0B) & 0x06, 0x02); /* BCD, 24 h */
	assert_int_equal(cmos(d, 0x00), 0x20);
	assert_int_equal(cmos(d, 0x02), 0x13);
	assert_int_equal(cmos(d, 0x04), 0x22);
	assert_int_equal(cmos(d, 0x06), 0x03);
	assert_int_equal(cmos(d, 0x07), 0x14);
	assert_int_equal(cmos(d, 0x08), 0x11);
	assert_int_equal(cmos(d, 0x09), 0x23);
	assert_int_equal(cmos(d, RTC_CENTURY_REG), 0x20);
	assert_int_equal(cmos(d, 0x0D), 0x80);
	/* Binary, 12 h: 22 h is 10 PM. */
	cmos_set(d, 0x0B, 0x04);
	assert_int_equal(cmos(d, 0x04), 0x80 | 10);
	assert_int_equal(cmos(d, 0x09), 23);
	assert_int_equal(cmos(d, 0x00), 20);
	/* The clock moves with the host. */
	fake_real_ns += 5 * NS;
	assert_int_equal(cmos(d, 0x00), 25);
	d->ops->destroy(d);
}

static void update_in_progress(void **state)
{
	fake_real_ns = 1700000000LL * NS + 500000000;
	struct device *d = rtc_new(NULL, 0, 0, 1);
	assert_int_equal(cmos(d, 0x0A), 0x26);
	fake_real_ns = 1700000000LL * NS + NS - 100000; /* within 244 us of the update */
	assert_int_equal(cmos(d, 0x0A), 0xA6);
	d->ops->destroy(d);
}

static void guest_sets_time(void **state)
{
	fake_real_ns = 1700000000LL * NS;
	struct device *d = rtc_new(NULL, 0, 0, 1);
	/* As Linux's mc146818_set_time: SET, write the fields, clear SET. */
	cmos_set(d, 0x0B, 0x82);
	cmos_set(d, 0x00, 0x00);
	cmos_set(d, 0x02, 0x30);
	cmos_set(d, 0x04, 0x08);
	cmos_set(d, 0x07, 0x01);
	cmos_set(d, 0x08, 0x02);
	cmos_set(d, 0x09, 0x99);
	cmos_set(d, RTC_CENTURY_REG, 0x19);
	fake_real_ns += 10 * NS; /* frozen while SET */
	assert_int_equal(cmos(d, 0x00), 0x00);
	cmos_set(d, 0x0B, 0x02);
	fake_real_ns += 3 * NS;
	assert_int_equal(cmos(d, 0x00), 0x03);
	assert_int_equal(cmos(d, 0x09), 0x99);
	assert_int_equal(cmos(d, RTC_CENTURY_REG), 0x19);
	assert_int_equal(cmos(d, 0x08), 0x02);
	/* A running clock takes a single field. */
	cmos_set(d, 0x02, 0x45);
	assert_int_equal(cmos(d, 0x02), 0x45);
	assert_int_equal(cmos(d, 0x04), 0x08);
	/* Nonsense (invalid BCD) does not crash and reads back something. */
	cmos_set(d, 0x0B, 0x82);
	cmos_set(d, 0x08, 0xFF);
	cmos_set(d, 0x07, 0xEE);
	cmos_set(d, 0x0B, 0x02);
	cmos(d, 0x08);
	d->ops->destroy(d);
}

static void flags_and_irq(void **state)
{
	fake_irq_clear();
	fake_real_ns = 1700000000LL * NS;
	struct device *d = rtc_new(&rtc_irq, 0, 0, 1);
	assert_int_equal(cmos(d, 0x0C), 0);
	/* Update-ended: a second passes, UIE on: tick raises IRQ 8, reading C lowers it. */
	cmos_set(d, 0x0B, 0x12);
	assert_true(rtc_tick_interval_ns(d) > 0);
	fake_real_ns += NS;
	rtc_tick(d);
	assert_true(fake_irq_level[8]);
	assert_int_equal(cmos(d, 0x0C), 0x90);
	assert_false(fake_irq_level[8]);
	/* Periodic at 1024 Hz (rate 6). */
	cmos_set(d, 0x0B, 0x42);
	fake_mono_ns += 1000000;
	rtc_tick(d);
	assert_true(fake_irq_level[8]);
	assert_int_equal(cmos(d, 0x0C) & 0xC0, 0xC0);
	/* Alarm at the next matching second, polled without IRQ enable. */
	cmos_set(d, 0x0B, 0x02);
	assert_int_equal(rtc_tick_interval_ns(d), 0);
	cmos_set(d, 0x01, 0x30);
	cmos_set(d, 0x03, 0xC0);
	cmos_set(d, 0x05, 0xC0);
	cmos(d, 0x0C);
	fake_real_ns += 5 * NS; /* 22:13:26 */
	assert_int_equal(cmos(d, 0x0C) & 0x20, 0);
	fake_real_ns += 5 * NS; /* passes :30 */
	assert_int_equal(cmos(d, 0x0C) & 0xA0, 0x20);
	d->ops->destroy(d);
}

static void memory_size_bytes(void **state)
{
	const uint64_t mib = 1024 * 1024;
	struct device *d = rtc_new(NULL, 3072 * mib, 1024 * mib, 4);
	assert_int_equal(cmos(d, 0x15) | cmos(d, 0x16) << 8, 640);
	assert_int_equal(cmos(d, 0x17) | cmos(d, 0x18) << 8, 65535);
	assert_int_equal(cmos(d, 0x30) | cmos(d, 0x31) << 8, 65535);
	assert_int_equal(cmos(d, 0x34) | cmos(d, 0x35) << 8, (3072 - 16) * 16);
	assert_int_equal(cmos(d, 0x5b) | cmos(d, 0x5c) << 8 | cmos(d, 0x5d) << 16, 1024 * 16);
	assert_int_equal(cmos(d, 0x5f), 3);
	d->ops->destroy(d);
	d = rtc_new(NULL, 32 * mib, 0, 1);
	assert_int_equal(cmos(d, 0x30) | cmos(d, 0x31) << 8, 31 * 1024);
	assert_int_equal(cmos(d, 0x34) | cmos(d, 0x35) << 8, 16 * 16);
	/* RAM is RAM; NMI bit in the index port does not change the register chosen. */
	cmos_set(d, 0x40, 0x5A);
	wr8(d, 0, 0x80 | 0x40);
	assert_int_equal(rd8(d, 1), 0x5A);
	assert_int_equal(rd8(d, 0), 0xFF);
	d->ops->destroy(d);
}

static void state_and_hostile(void **state)
{
	fake_real_ns = 1700000000LL * NS;
	struct device *d = rtc_new(&rtc_irq, 1 << 30, 0, 2), *f = rtc_new(&rtc_irq, 0, 0, 1);
	cmos_set(d, 0x0B, 0x86);
	cmos_set(d, 0x09, 50);
	cmos_set(d, 0x0B, 0x06);
	cmos_set(d, 0x50, 0x77);
	check_save_restore(d, f);
	assert_int_equal(cmos(f, 0x09), 50);
	assert_int_equal(cmos(f, 0x50), 0x77);
	check_bad_states(d);
	hammer(d, 2, 20000, 4);
	for (int i = 0; i < 1000; i++) {
		fake_real_ns += 7 * NS / 3;
		fake_mono_ns += 7 * NS / 3;
		hammer(d, 2, 10, (uint32_t)i);
		rtc_tick(d);
	}
	d->ops->reset(d);
	check_save_restore(d, f);
	d->ops->destroy(d);
	f->ops->destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(reads_host_time),	 cmocka_unit_test(update_in_progress),
	    cmocka_unit_test(guest_sets_time),	 cmocka_unit_test(flags_and_irq),
	    cmocka_unit_test(memory_size_bytes), cmocka_unit_test(state_and_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
