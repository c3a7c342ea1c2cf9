/* Fakes for device unit tests: a settable clock and interrupt lines that record their level. */
#ifndef COVE_TESTS_DEVICES_FAKES_H
#define COVE_TESTS_DEVICES_FAKES_H

#include "vmm/device.h"
#include "vmm/irq.h"

#include <stdbool.h>
#include <stdint.h>

extern uint64_t fake_mono_ns;
extern uint64_t fake_mono_step; /* added after every read of the clock */
extern int64_t fake_real_ns;

#define FAKE_GSIS 24
extern bool fake_irq_level[FAKE_GSIS];
extern unsigned fake_irq_rises[FAKE_GSIS]; /* low-to-high transitions */
void fake_irq_clear(void);

/* Port access helpers. */
uint64_t dev_rd(struct device *d, uint64_t off, unsigned len);
void dev_wr(struct device *d, uint64_t off, uint64_t v, unsigned len);
static inline uint8_t rd8(struct device *d, uint64_t off)
{
	return (uint8_t)dev_rd(d, off, 1);
}
static inline void wr8(struct device *d, uint64_t off, uint8_t v)
{
	dev_wr(d, off, v, 1);
}

/*
 * Checks the contract every device keeps: save -> restore into fresh -> save gives the
 * same bytes; truncated, extended and corrupted states are refused with -EINVAL; random
 * accesses of every width at every offset in [0, span) neither crash nor hang.
 */
void check_save_restore(struct device *dev, struct device *fresh);
void check_bad_states(struct device *dev);
void hammer(struct device *dev, uint64_t span, unsigned rounds, uint32_t seed);

#endif
