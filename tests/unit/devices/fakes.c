/* Fake clock and IRQ lines for the device unit tests, and checks every device must pass. */
#include "fakes.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/devutil.h"

uint64_t fake_mono_ns = 1000000000ULL;
uint64_t fake_mono_step;
int64_t fake_real_ns = 1700000000LL * 1000000000LL; /* 2023-11-14 22:13:20 UTC */
bool fake_irq_level[FAKE_GSIS];
unsigned fake_irq_rises[FAKE_GSIS];

uint64_t devclock_mono_ns(void)
{
	uint64_t t = fake_mono_ns;
	fake_mono_ns += fake_mono_step;
	return t;
}

int64_t devclock_real_ns(void)
{
	return fake_real_ns;
}

void irq_line_set(const struct irq_line *line, bool level)
{
	if (line->gsi >= FAKE_GSIS)
		return;
	if (level && !fake_irq_level[line->gsi])
		fake_irq_rises[line->gsi]++;
	fake_irq_level[line->gsi] = level;
}

void irq_line_pulse(const struct irq_line *line)
{
	irq_line_set(line, true);
	irq_line_set(line, false);
}

void fake_irq_clear(void)
{
	memset(fake_irq_level, 0, sizeof(fake_irq_level));
	memset(fake_irq_rises, 0, sizeof(fake_irq_rises));
}

uint64_t dev_rd(struct device *d, uint64_t off, unsigned len)
{
	uint64_t v = 0;
	d->ops->read(d, off, &v, len);
	return len == 8 ? v : v & ((1ULL << (8 * len)) - 1);
}

void dev_wr(struct device *d, uint64_t off, uint64_t v, unsigned len)
{
	d->ops->write(d, off, &v, len);
}

void check_save_restore(struct device *dev, struct device *fresh)
{
	struct state_buf a = {0}, b = {0};
	assert_int_equal(dev->ops->save(dev, &a), 0);
	assert_true(a.len > 0);
	assert_int_equal(fresh->ops->restore(fresh, a.data, a.len), 0);
	assert_int_equal(fresh->ops->save(fresh, &b), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	state_buf_free(&a);
	state_buf_free(&b);
}

void check_bad_states(struct device *dev)
{
	struct state_buf s = {0};
	assert_int_equal(dev->ops->save(dev, &s), 0);
	uint8_t *copy = malloc(s.len + 16);
	assert_non_null(copy);
	/* Every truncation. */
	for (size_t n = 0; n < s.len; n++)
		assert_int_equal(dev->ops->restore(dev, s.data, n), -EINVAL);
	/* Extra bytes. */
	memcpy(copy, s.data, s.len);
	memset(copy + s.len, 0, 16);
	assert_int_equal(dev->ops->restore(dev, copy, s.len + 1), -EINVAL);
	/* Wrong magic, wrong version. */
	memcpy(copy, s.data, s.len);
	copy[0] ^= 0xFF;
	assert_int_equal(dev->ops->restore(dev, copy, s.len), -EINVAL);
	memcpy(copy, s.data, s.len);
	copy[4] ^= 0x01;
	assert_int_equal(dev->ops->restore(dev, copy, s.len), -EINVAL);
	/* Random garbage of the right and of random lengths: refused, or accepted, never a crash.
	 */
	srand(7);
	for (int i = 0; i < 2000; i++) {
		size_t n = (size_t)rand() % (s.len + 16);
		for (size_t k = 0; k < n; k++)
			copy[k] = (uint8_t)rand();
		if (i & 1)
			memcpy(copy, s.data, n < 6 ? n : 6); /* keep magic and version */
		int rc = dev->ops->restore(dev, copy, n);
		assert_true(rc == 0 || rc == -EINVAL);
	}
	/* The device still takes its own state back. */
	assert_int_equal(dev->ops->restore(dev, s.data, s.len), 0);
	free(copy);
	state_buf_free(&s);
}

void hammer(struct device *dev, uint64_t span, unsigned rounds, uint32_t seed)
{
	static const unsigned widths[4] = {1, 2, 4, 8};
	srand(seed);
	for (unsigned r = 0; r < rounds; r++) {
		for (uint64_t off = 0; off < span; off++) {
			unsigned len = widths[rand() % 4];
			uint64_t v =
			    (uint64_t)rand() << 33 ^ (uint64_t)rand() << 11 ^ (uint64_t)rand();
			if (rand() % 2)
				dev_wr(dev, off, v, len);
			else
				dev_rd(dev, off, len);
		}
	}
}
