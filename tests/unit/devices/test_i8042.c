/* Unit tests of the i8042: Linux's probe sequence, the keyboard, the reset line, state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "devices/i8042.h"
#include "fakes.h"

static const struct irq_line kbd_irq = {.gsi = 1};
static int resets;

static void on_reset(void *opaque)
{
	resets++;
	*(int *)opaque += 1;
}

static uint8_t cmd_read(struct device *d, uint8_t cmd)
{
	struct device *c = i8042_command_port(d);
	wr8(c, 0, cmd);
	assert_true(rd8(c, 0) & 0x01);
	return rd8(d, 0);
}

static void linux_probe(void **state)
{
	int n = 0;
	struct device *d = i8042_new(&kbd_irq, on_reset, &n);
	struct device *c = i8042_command_port(d);
	assert_non_null(d);
	/* Flush: nothing pending. */
	assert_int_equal(rd8(c, 0) & 0x01, 0);
	/* Self-test, interface test. */
	assert_int_equal(cmd_read(d, 0xAA), 0x55);
	assert_true(rd8(c, 0) & 0x04); /* system flag */
	assert_int_equal(cmd_read(d, 0xAB), 0x00);
	/* Command byte: read, write back with the keyboard disabled, read again. */
	uint8_t cb = cmd_read(d, 0x20);
	assert_int_equal(cb & 0x01, 0x01);
	wr8(c, 0, 0x60);
	wr8(d, 0, (uint8_t)(cb | 0x10));
	assert_int_equal(cmd_read(d, 0x20), cb | 0x10);
	wr8(c, 0, 0xAE);
	assert_int_equal(cmd_read(d, 0x20) & 0x10, 0);
	wr8(c, 0, 0xA7);
	assert_int_equal(cmd_read(d, 0x20) & 0x20, 0x20);
	wr8(c, 0, 0xA8);
	assert_int_equal(cmd_read(d, 0x20) & 0x20, 0);
	/* Aux loopback (0xD3) comes back as aux data. */
	wr8(c, 0, 0xD3);
	wr8(d, 0, 0x5A);
	assert_int_equal(rd8(c, 0) & 0x21, 0x21);
	assert_int_equal(rd8(d, 0), 0x5A);
	/* An empty buffer reads the last byte again. */
	assert_int_equal(rd8(d, 0), 0x5A);
	assert_int_equal(n, 0);
	d->ops->destroy(d);
}

static void keyboard(void **state)
{
	fake_irq_clear();
	struct device *d = i8042_new(&kbd_irq, NULL, NULL);
	struct device *c = i8042_command_port(d);
	wr8(d, 0, 0xF2); /* identify */
	assert_true(fake_irq_level[1]);
	assert_int_equal(fake_irq_rises[1], 1);
	/* Each byte that moves into the output buffer is a new interrupt edge. */
	assert_int_equal(rd8(d, 0), 0xFA);
	assert_int_equal(fake_irq_rises[1], 2);
	assert_int_equal(rd8(d, 0), 0xAB);
	assert_int_equal(rd8(d, 0), 0x83);
	assert_false(fake_irq_level[1]);
	assert_int_equal(rd8(c, 0) & 0x01, 0);
	wr8(d, 0, 0xFF); /* reset */
	assert_int_equal(rd8(d, 0), 0xFA);
	assert_int_equal(rd8(d, 0), 0xAA);
	wr8(d, 0, 0xF0); /* get scan code set */
	wr8(d, 0, 0x00);
	assert_int_equal(rd8(d, 0), 0xFA);
	assert_int_equal(rd8(d, 0), 0xFA);
	assert_int_equal(rd8(d, 0), 2);
	wr8(d, 0, 0xED); /* LEDs */
	wr8(d, 0, 0x07);
	assert_int_equal(rd8(d, 0), 0xFA);
	assert_int_equal(rd8(d, 0), 0xFA);
	/* Interrupts off in the command byte: no IRQ. */
	wr8(c, 0, 0x60);
	wr8(d, 0, 0x00);
	wr8(d, 0, 0xEE);
	assert_false(fake_irq_level[1]);
	assert_int_equal(rd8(d, 0), 0xEE);
	d->ops->destroy(d);
}

static void reset_line(void **state)
{
	int n = 0;
	resets = 0;
	struct device *d = i8042_new(NULL, on_reset, &n);
	struct device *c = i8042_command_port(d);
	wr8(c, 0, 0xFE);
	assert_int_equal(n, 1);
	wr8(c, 0, 0xFF); /* pulses no line */
	assert_int_equal(n, 1);
	/* Writing the output port with bit 0 low resets too. */
	wr8(c, 0, 0xD1);
	wr8(d, 0, 0x02);
	assert_int_equal(n, 2);
	wr8(c, 0, 0xD1);
	wr8(d, 0, 0x03);
	assert_int_equal(n, 2);
	assert_int_equal(cmd_read(d, 0xD0), 0x03);
	/* No callback: nothing happens. */
	struct device *e = i8042_new(NULL, NULL, NULL);
	wr8(i8042_command_port(e), 0, 0xFE);
	e->ops->destroy(e);
	d->ops->destroy(d);
}

static void state_and_hostile(void **state)
{
	int n = 0;
	struct device *d = i8042_new(&kbd_irq, on_reset, &n);
	struct device *f = i8042_new(&kbd_irq, on_reset, &n);
	struct device *c = i8042_command_port(d);
	wr8(c, 0, 0xAA);
	wr8(d, 0, 0xF2);
	wr8(c, 0, 0x60); /* a pending command byte write */
	check_save_restore(d, f);
	assert_int_equal(rd8(f, 0), 0x55);
	check_bad_states(d);
	/* The command-port view has no state of its own. */
	struct state_buf s = {0};
	assert_int_equal(c->ops->save(c, &s), 0);
	assert_int_equal(s.len, 0);
	assert_int_equal(c->ops->restore(c, "x", 1), -22);
	hammer(d, 4, 3000, 2);
	hammer(c, 4, 3000, 3);
	d->ops->reset(d);
	assert_int_equal(rd8(c, 0) & 0x01, 0);
	check_save_restore(d, f);
	d->ops->destroy(d);
	f->ops->destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(linux_probe),
	    cmocka_unit_test(keyboard),
	    cmocka_unit_test(reset_line),
	    cmocka_unit_test(state_and_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
