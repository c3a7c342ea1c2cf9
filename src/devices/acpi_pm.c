/* ACPI fixed hardware: PM1a status/enable/control, the PM timer, the reset register, SCI. */
#include "devices/acpi_pm.h"

#include "devices/devutil.h"
#include "util/log.h"
#include "vmm/layout.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#define STS_TMR	   0x0001
#define STS_BM	   0x0010
#define STS_GBL	   0x0020
#define STS_PWRBTN 0x0100
#define STS_SLPBTN 0x0200
#define STS_RTC	   0x0400
#define STS_WAK	   0x8000
#define STS_MASK   (STS_TMR | STS_BM | STS_GBL | STS_PWRBTN | STS_SLPBTN | STS_RTC | STS_WAK)
#define EN_MASK	   (STS_TMR | STS_GBL | STS_PWRBTN | STS_SLPBTN | STS_RTC)
#define CNT_SCI_EN 0x0001
#define CNT_MASK   0x1C07 /* SCI_EN, BM_RLD, GBL_RLS, SLP_TYP */
#define CNT_SLP_EN 0x2000
#define SLP_TYP(v) (((v) >> 10) & 7)
#define PM_FREQ	   3579545ULL
#define RESET_CPU  0x04 /* in the reset register: 0x06 = hard reset */
#define RCR_MASK   0x0A

struct acpi_pm {
	struct device dev;
	struct device reset_dev; /* the view registered at LAYOUT_PORT_RESET */
	pthread_mutex_t lock;
	struct acpi_pm_config cfg;
	struct irq_line sci;
	bool sci_level;

	uint16_t sts, en, cnt;
	uint8_t rcr;
	/* The timer counts from tmr_base (monotonic ns) starting at tmr_start ticks. */
	uint64_t tmr_base_ns;
	uint64_t tmr_start;
	uint64_t tmr_sts_ticks; /* ticks when TMR_STS was last cleared */
};

static struct acpi_pm *to_pm(struct device *dev)
{
	return dev->priv;
}

static uint64_t ticks(const struct acpi_pm *p)
{
	uint64_t ns = devclock_mono_ns() - p->tmr_base_ns;
	/* ns * PM_FREQ / 1e9 without overflow for centuries of uptime. */
	uint64_t t =
	    (ns / 1000000000ULL) * PM_FREQ + (ns % 1000000000ULL) * PM_FREQ / 1000000000ULL;
	return p->tmr_start + t;
}

static unsigned tmr_bits(const struct acpi_pm *p)
{
	return p->cfg.timer_32bit ? 32 : 24;
}

/* TMR_STS: the timer's top bit changed since the guest last cleared it. */
static uint16_t status(const struct acpi_pm *p)
{
	uint16_t s = p->sts;
	unsigned top = tmr_bits(p) - 1;
	if ((ticks(p) >> top) != (p->tmr_sts_ticks >> top))
		s |= STS_TMR;
	return s;
}

static void update_sci(struct acpi_pm *p)
{
	bool level = (p->cnt & CNT_SCI_EN) && (status(p) & p->en & EN_MASK);
	if (level != p->sci_level && p->cfg.sci)
		irq_line_set(&p->sci, level);
	p->sci_level = level;
}

static uint32_t reg_read(struct acpi_pm *p, unsigned off)
{
	switch (off) {
	case 0:
		return status(p);
	case 2:
		return p->en;
	case 4:
		return p->cnt;
	case 8: {
		uint64_t t = ticks(p);
		return p->cfg.timer_32bit ? (uint32_t)t : (uint32_t)(t & 0xFFFFFF);
	}
	}
	return 0xFFFF;
}

enum action { ACT_NONE, ACT_POWEROFF, ACT_RESET };

static enum action reg_write(struct acpi_pm *p, unsigned off, uint32_t v)
{
	switch (off) {
	case 0: /* write 1 to clear */
		if (v & STS_TMR)
			p->tmr_sts_ticks = ticks(p);
		p->sts &= (uint16_t) ~(v & STS_MASK);
		break;
	case 2:
		p->en = (uint16_t)(v & EN_MASK);
		break;
	case 4:
		p->cnt = (uint16_t)(v & CNT_MASK);
		if (v & CNT_SLP_EN) {
			if (SLP_TYP(v) == LAYOUT_ACPI_S5_TYPE)
				return ACT_POWEROFF;
			log_info("acpi: guest asked for sleep type %u, which is not supported",
				 SLP_TYP(v));
		}
		break;
	}
	return ACT_NONE;
}

/*
 * The block is byte-addressable: an access of len bytes at offset touches the 16-bit
 * registers it covers (PM1_STS at 0, PM1_EN at 2, PM1_CNT at 4, PM_TMR at 8, 32 bits).
 */
static void pm_read(struct device *dev, uint64_t offset, void *data, unsigned len)
{
	struct acpi_pm *p = to_pm(dev);
	uint64_t v = 0;
	/* Each register is read once per access, so a wide read of the timer cannot tear. */
	uint32_t regs[5];
	bool have[5] = {false};
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < len && i < 8; i++) {
		uint64_t at = offset + i;
		uint8_t b = 0xFF;
		if (at < LAYOUT_ACPI_PM_LEN) {
			unsigned base = at >= 8 ? 8 : (unsigned)(at & ~1ULL);
			if (!have[base / 2]) {
				regs[base / 2] = reg_read(p, base);
				have[base / 2] = true;
			}
			b = (uint8_t)(regs[base / 2] >> (8 * (at - base)));
		}
		v |= (uint64_t)b << (8 * i);
	}
	pthread_mutex_unlock(&p->lock);
	dev_store(data, len, v);
}

static void pm_write(struct device *dev, uint64_t offset, const void *data, unsigned len)
{
	struct acpi_pm *p = to_pm(dev);
	uint64_t v = dev_load(data, len);
	enum action act = ACT_NONE;
	if (len > 8)
		len = 1;
	pthread_mutex_lock(&p->lock);
	/* Split the access into the registers it covers; each gets its bytes in place. */
	for (unsigned base = 0; base < 8; base += 2) {
		uint32_t mask = 0, val = 0;
		for (unsigned i = 0; i < len; i++) {
			uint64_t at = offset + i;
			if (at >= base && at < base + 2u) {
				mask |= 0xFFu << (8 * (at - base));
				val |= (uint32_t)((v >> (8 * i)) & 0xFF) << (8 * (at - base));
			}
		}
		if (!mask)
			continue;
		if (mask != 0xFFFF) {
			/* A partial write keeps the other byte (status bits are write-1-to-clear).
			 */
			uint32_t old = base == 0 ? 0 : reg_read(p, base);
			val |= old & ~mask;
		}
		enum action a = reg_write(p, base, val);
		if (a != ACT_NONE)
			act = a;
	}
	update_sci(p);
	pthread_mutex_unlock(&p->lock);
	if (act == ACT_POWEROFF && p->cfg.poweroff)
		p->cfg.poweroff(p->cfg.opaque);
}

static void reset_read(struct device *dev, uint64_t offset, void *data, unsigned len)
{
	struct acpi_pm *p = to_pm(dev);
	pthread_mutex_lock(&p->lock);
	uint8_t v = offset == 0 ? p->rcr : 0xFF;
	pthread_mutex_unlock(&p->lock);
	dev_store(data, len, 0xFFFFFFFFFFFFFF00ULL | v);
}

static void reset_write(struct device *dev, uint64_t offset, const void *data, unsigned len)
{
	struct acpi_pm *p = to_pm(dev);
	if (offset != 0)
		return;
	uint8_t v = (uint8_t)dev_load(data, len);
	pthread_mutex_lock(&p->lock);
	p->rcr = v & RCR_MASK;
	pthread_mutex_unlock(&p->lock);
	if ((v & RESET_CPU) && p->cfg.reset)
		p->cfg.reset(p->cfg.opaque);
}

static void reset_locked(struct acpi_pm *p)
{
	p->sts = 0;
	p->en = 0;
	p->cnt = CNT_SCI_EN; /* no SMI_CMD in the FADT: always in ACPI mode */
	p->rcr = 0;
	p->tmr_base_ns = devclock_mono_ns();
	p->tmr_start = 0;
	p->tmr_sts_ticks = 0;
	update_sci(p);
}

static void pm_reset(struct device *dev)
{
	struct acpi_pm *p = to_pm(dev);
	pthread_mutex_lock(&p->lock);
	reset_locked(p);
	pthread_mutex_unlock(&p->lock);
}

#define PM_MAGIC   DEV_MAGIC('A', 'P', 'M', '1')
#define PM_VERSION 1

static int pm_save(struct device *dev, struct state_buf *buf)
{
	struct acpi_pm *p = to_pm(dev);
	struct state_w w = {.buf = buf};
	pthread_mutex_lock(&p->lock);
	uint64_t t = ticks(p);
	sw_header(&w, PM_MAGIC, PM_VERSION);
	sw_u16(&w, p->sts);
	sw_u16(&w, p->en);
	sw_u16(&w, p->cnt);
	sw_u8(&w, p->rcr);
	sw_u64(&w, t);
	sw_u64(&w, t - p->tmr_sts_ticks);
	pthread_mutex_unlock(&p->lock);
	return w.err;
}

static int pm_restore(struct device *dev, const void *data, size_t len)
{
	struct acpi_pm *p = to_pm(dev);
	struct state_r r = {.p = data, .len = len};
	sr_header(&r, PM_MAGIC, PM_VERSION);
	uint16_t sts = sr_u16(&r), en = sr_u16(&r), cnt = sr_u16(&r);
	uint8_t rcr = sr_u8(&r);
	uint64_t t = sr_u64(&r), since = sr_u64(&r);
	if (!sr_done(&r) || (sts & ~STS_MASK) || (en & ~EN_MASK) || (cnt & ~CNT_MASK) ||
	    (rcr & ~RCR_MASK) || since > t)
		return -EINVAL;

	pthread_mutex_lock(&p->lock);
	p->sts = sts;
	p->en = en;
	p->cnt = cnt;
	p->rcr = rcr;
	p->tmr_base_ns = devclock_mono_ns();
	p->tmr_start = t;
	p->tmr_sts_ticks = t - since;
	p->sci_level = !((p->cnt & CNT_SCI_EN) && (status(p) & p->en & EN_MASK));
	update_sci(p); /* forces the line to the restored level */
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static void pm_destroy(struct device *dev)
{
	struct acpi_pm *p = to_pm(dev);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static int view_save(struct device *dev, struct state_buf *buf)
{
	return 0; /* the reset register's bits are saved with the PM block */
}

static int view_restore(struct device *dev, const void *data, size_t len)
{
	return len == 0 ? 0 : -EINVAL;
}

static const struct device_ops pm_ops = {
    .read = pm_read,
    .write = pm_write,
    .reset = pm_reset,
    .save = pm_save,
    .restore = pm_restore,
    .destroy = pm_destroy,
};

static const struct device_ops reset_ops = {
    .read = reset_read,
    .write = reset_write,
    .save = view_save,
    .restore = view_restore,
};

struct device *acpi_pm_new(const struct acpi_pm_config *cfg)
{
	struct acpi_pm *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	if (pthread_mutex_init(&p->lock, NULL) != 0) {
		free(p);
		return NULL;
	}
	p->dev.name = "acpi-pm";
	p->dev.ops = &pm_ops;
	p->dev.priv = p;
	p->reset_dev.name = "acpi-reset";
	p->reset_dev.ops = &reset_ops;
	p->reset_dev.priv = p;
	p->cfg = *cfg;
	if (cfg->sci) {
		p->sci = *cfg->sci;
		p->cfg.sci = &p->sci;
	}
	reset_locked(p);
	return &p->dev;
}

struct device *acpi_pm_reset_port(struct device *dev)
{
	return &to_pm(dev)->reset_dev;
}

void acpi_pm_power_button(struct device *dev)
{
	struct acpi_pm *p = to_pm(dev);
	pthread_mutex_lock(&p->lock);
	p->sts |= STS_PWRBTN;
	update_sci(p);
	pthread_mutex_unlock(&p->lock);
}
