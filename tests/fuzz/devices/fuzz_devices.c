/*
 * libFuzzer target: drives the legacy devices (UART, i8042, RTC, ACPI PM, boot timer) with
 * guest accesses of any offset, width and value, host input, clock jumps, resets and
 * save/restore round trips. A save -> restore -> save that differs aborts.
 */
#include "devices/acpi_pm.h"
#include "devices/boot_timer.h"
#include "devices/devutil.h"
#include "devices/i8042.h"
#include "devices/rtc.h"
#include "devices/serial.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t mono_ns = 1000000000ULL;
static int64_t real_ns = 1700000000LL * 1000000000LL;

uint64_t devclock_mono_ns(void)
{
	return mono_ns;
}

int64_t devclock_real_ns(void)
{
	return real_ns;
}

void irq_line_set(const struct irq_line *line, bool level)
{
	(void)line;
	(void)level;
}

void irq_line_pulse(const struct irq_line *line)
{
	(void)line;
}

static void nop(void *opaque)
{
	(void)opaque;
}

struct input {
	const uint8_t *p;
	size_t len;
};

static uint64_t take(struct input *in, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n && in->len; i++, in->p++, in->len--)
		v |= (uint64_t)*in->p << (8 * i);
	return v;
}

static void roundtrip(struct device *dev, struct device *fresh)
{
	struct state_buf a = {0}, b = {0};
	if (dev->ops->save(dev, &a) != 0)
		abort();
	if (fresh->ops->restore(fresh, a.data, a.len) != 0)
		abort();
	if (fresh->ops->save(fresh, &b) != 0 || a.len != b.len || memcmp(a.data, b.data, a.len))
		abort();
	/* Truncated state is refused. */
	if (a.len && dev->ops->restore(dev, a.data, a.len - 1) != -EINVAL)
		abort();
	state_buf_free(&a);
	state_buf_free(&b);
}

static struct device *make(unsigned kind)
{
	static const struct irq_line irq = {.gsi = 4};
	const struct acpi_pm_config pm = {
	    .sci = &irq, .timer_32bit = kind & 8, .poweroff = nop, .reset = nop};
	switch (kind % 5) {
	case 0:
		return serial_new(&irq, -1);
	case 1:
		return i8042_new(&irq, nop, NULL);
	case 2:
		return rtc_new(&irq, 1ULL << 30, 1ULL << 32, 4);
	case 3:
		return acpi_pm_new(&pm);
	default:
		return boot_timer_new(0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned widths[4] = {1, 2, 4, 8};
	struct input in = {data, size};
	unsigned kind = (unsigned)take(&in, 1);
	struct device *dev = make(kind), *fresh = make(kind);
	if (!dev || !fresh)
		abort();
	/* The second port view, where the device has one. */
	struct device *view = dev;
	if (kind % 5 == 1)
		view = i8042_command_port(dev);
	else if (kind % 5 == 3)
		view = acpi_pm_reset_port(dev);
	unsigned steps = 0;
	while (in.len && steps++ < 4096) {
		uint8_t op = (uint8_t)take(&in, 1);
		unsigned len = widths[(op >> 4) & 3];
		struct device *target = (op & 0x40) ? view : dev;
		uint64_t off = take(&in, 1) % 24, v;
		switch (op & 0x0F) {
		case 0:
		case 1:
		case 2:
		case 3:
			v = take(&in, len);
			target->ops->write(target, off, &v, len);
			break;
		case 4:
		case 5:
		case 6:
			target->ops->read(target, off, &v, len);
			break;
		case 7:
			mono_ns += take(&in, 4) * 1000;
			real_ns += (int64_t)take(&in, 4) * 1000;
			break;
		case 8:
			if (kind % 5 == 0) {
				uint8_t buf[64];
				size_t n = take(&in, 1) % sizeof(buf);
				for (size_t i = 0; i < n; i++)
					buf[i] = (uint8_t)take(&in, 1);
				serial_input(dev, buf, n);
			} else if (kind % 5 == 2) {
				rtc_tick(dev);
				rtc_tick_interval_ns(dev);
			} else if (kind % 5 == 3) {
				acpi_pm_power_button(dev);
			}
			break;
		case 9:
			roundtrip(dev, fresh);
			break;
		case 10:
			if (dev->ops->reset)
				dev->ops->reset(dev);
			break;
		case 11: {
			/* Restore fuzz bytes as state: refused or taken, never a crash. */
			size_t n = take(&in, 1);
			n = n < in.len ? n : in.len;
			int rc = dev->ops->restore(dev, in.p, n);
			if (rc != 0 && rc != -EINVAL)
				abort();
			in.p += n;
			in.len -= n;
			break;
		}
		default:
			if (kind % 5 == 0)
				serial_flush(dev);
			break;
		}
	}
	roundtrip(dev, fresh);
	dev->ops->destroy(dev);
	fresh->ops->destroy(fresh);
	return 0;
}
