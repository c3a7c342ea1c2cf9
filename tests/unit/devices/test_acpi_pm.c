/* Unit tests of the ACPI PM block (SCI, S5, PM timer, reset register) and the boot timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "devices/acpi_pm.h"
#include "devices/boot_timer.h"
#include "fakes.h"
#include "vmm/layout.h"

static const struct irq_line sci = {.gsi = LAYOUT_IRQ_SCI};
static int poweroffs, resets;

static void on_poweroff(void *opaque)
{
	poweroffs++;
}

static void on_reset(void *opaque)
{
	resets++;
}

static struct device *new_pm(bool ext)
{
	const struct acpi_pm_config cfg = {
	    .sci = &sci, .timer_32bit = ext, .poweroff = on_poweroff, .reset = on_reset};
	return acpi_pm_new(&cfg);
}

static void poweroff_and_reset(void **state)
{
	poweroffs = resets = 0;
	struct device *d = new_pm(true), *r = acpi_pm_reset_port(d);
	assert_int_equal(dev_rd(d, 4, 2) & 1, 1); /* SCI_EN: always in ACPI mode */
	/* SLP_TYP without SLP_EN, and other sleep types, do nothing. */
	dev_wr(d, 4, LAYOUT_ACPI_S5_TYPE << 10 | 1, 2);
	dev_wr(d, 4, 1u << 10 | 1u << 13 | 1, 2);
	assert_int_equal(poweroffs, 0);
	dev_wr(d, 4, LAYOUT_ACPI_S5_TYPE << 10 | 1u << 13 | 1, 2);
	assert_int_equal(poweroffs, 1);
	/* The same as two byte writes (high byte holds SLP_EN). */
	dev_wr(d, 4, 1, 1);
	dev_wr(d, 5, (LAYOUT_ACPI_S5_TYPE << 2 | 1u << 5), 1);
	assert_int_equal(poweroffs, 2);
	/* Reset register: 0x06 resets, 0x02 alone does not. */
	wr8(r, 0, 0x02);
	assert_int_equal(resets, 0);
	assert_int_equal(rd8(r, 0), 0x02);
	wr8(r, 0, 0x06);
	assert_int_equal(resets, 1);
	d->ops->destroy(d);
}

static void sci_and_power_button(void **state)
{
	fake_irq_clear();
	struct device *d = new_pm(true);
	acpi_pm_power_button(d);
	assert_false(fake_irq_level[LAYOUT_IRQ_SCI]); /* not enabled yet */
	assert_true(dev_rd(d, 0, 2) & 0x100);
	dev_wr(d, 2, 0x100, 2); /* PWRBTN_EN */
	assert_true(fake_irq_level[LAYOUT_IRQ_SCI]);
	dev_wr(d, 0, 0x100, 2); /* write 1 to clear */
	assert_false(fake_irq_level[LAYOUT_IRQ_SCI]);
	assert_int_equal(dev_rd(d, 0, 2) & 0x100, 0);
	/* SCI_EN off masks the SCI. */
	dev_wr(d, 4, 0, 2);
	acpi_pm_power_button(d);
	assert_false(fake_irq_level[LAYOUT_IRQ_SCI]);
	dev_wr(d, 4, 1, 2);
	assert_true(fake_irq_level[LAYOUT_IRQ_SCI]);
	/* A 32-bit read of the event block: status low, enable high. */
	assert_int_equal(dev_rd(d, 0, 4), 0x01000100);
	d->ops->destroy(d);
}

static void pm_timer(void **state)
{
	fake_mono_ns = 5000000000ULL;
	struct device *d = new_pm(false);
	assert_int_equal(dev_rd(d, 8, 4), 0);
	fake_mono_ns += 1000000000ULL;
	assert_int_equal(dev_rd(d, 8, 4), 3579545);
	/* 24 bits wrap; TMR_STS shows the top bit toggled. */
	assert_int_equal(dev_rd(d, 0, 2) & 1, 0);
	fake_mono_ns += 5000000000ULL;
	assert_int_equal(dev_rd(d, 8, 4), (6 * 3579545) & 0xFFFFFF);
	assert_int_equal(dev_rd(d, 0, 2) & 1, 1);
	dev_wr(d, 0, 1, 2);
	assert_int_equal(dev_rd(d, 0, 2) & 1, 0);
	d->ops->destroy(d);
	d = new_pm(true);
	fake_mono_ns += 10000000000ULL;
	assert_int_equal(dev_rd(d, 8, 4), 35795450);
	d->ops->destroy(d);
}

/* A 32-bit read of a running timer is one value, not bytes from different moments. */
static void pm_timer_does_not_tear(void **state)
{
	struct device *d = new_pm(true);
	fake_mono_step = 280; /* about one tick per clock read */
	uint64_t last = dev_rd(d, 8, 4);
	for (int i = 0; i < 20000; i++) {
		uint64_t now = dev_rd(d, 8, 4);
		assert_true(now >= last && now - last < 8);
		last = now;
	}
	fake_mono_step = 0;
	d->ops->destroy(d);
}

static void pm_state_and_hostile(void **state)
{
	struct device *d = new_pm(true), *f = new_pm(true);
	dev_wr(d, 2, 0x0121, 2);
	acpi_pm_power_button(d);
	wr8(acpi_pm_reset_port(d), 0, 0x0A);
	fake_mono_ns += 123456789;
	check_save_restore(d, f);
	/* The timer continues from the saved value in the new device. */
	assert_int_equal(dev_rd(f, 8, 4), dev_rd(d, 8, 4));
	check_bad_states(d);
	poweroffs = resets = 0;
	hammer(d, LAYOUT_ACPI_PM_LEN + 4, 3000, 5);
	hammer(acpi_pm_reset_port(d), 2, 3000, 6);
	d->ops->reset(d);
	check_save_restore(d, f);
	d->ops->destroy(d);
	f->ops->destroy(f);
}

static void boot_timer(void **state)
{
	fake_mono_ns = 10000000000ULL;
	struct device *d = boot_timer_new(fake_mono_ns);
	fake_mono_ns += 12345678;
	/* Other values, offsets and widths are ignored. */
	wr8(d, 0, 122);
	wr8(d, 1, BOOT_TIMER_MAGIC);
	dev_wr(d, 0, BOOT_TIMER_MAGIC, 4);
	assert_int_equal(boot_timer_last_us(d), 0);
	/* The line goes to stderr: capture it. */
	fflush(stderr);
	int saved = dup(2);
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	dup2(fileno(tmp), 2);
	wr8(d, 0, BOOT_TIMER_MAGIC);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	char line[256] = {0};
	rewind(tmp);
	assert_non_null(fgets(line, sizeof(line), tmp));
	fclose(tmp);
	assert_non_null(strstr(line, "Guest-boot-time = 12345 us 12 ms since cove started"));
	assert_int_equal(boot_timer_last_us(d), 12345);
	assert_int_equal(dev_rd(d, 0, 4), 0);
	struct device *f = boot_timer_new(0);
	check_save_restore(d, f);
	assert_int_equal(boot_timer_last_us(f), 12345);
	check_bad_states(d);
	d->ops->destroy(d);
	f->ops->destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(poweroff_and_reset),
	    cmocka_unit_test(sci_and_power_button),
	    cmocka_unit_test(pm_timer),
	    cmocka_unit_test(pm_timer_does_not_tear),
	    cmocka_unit_test(pm_state_and_hostile),
	    cmocka_unit_test(boot_timer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
