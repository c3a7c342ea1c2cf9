/* MC146818 CMOS RTC on the host's clock: BCD/binary, 12/24 h, UIP, flags, CMOS RAM. */
#include "devices/rtc.h"

#include "devices/devutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#define CMOS_SIZE 128
#define REG_SEC	  0x00
#define REG_SEC_A 0x01
#define REG_MIN	  0x02
#define REG_MIN_A 0x03
#define REG_HOUR  0x04
#define REG_HR_A  0x05
#define REG_WDAY  0x06
#define REG_MDAY  0x07
#define REG_MON	  0x08
#define REG_YEAR  0x09
#define REG_A	  0x0A
#define REG_B	  0x0B
#define REG_C	  0x0C
#define REG_D	  0x0D

#define A_UIP	   0x80
#define A_DEFAULT  0x26 /* 32.768 kHz time base, 1024 Hz periodic rate */
#define B_SET	   0x80
#define B_PIE	   0x40
#define B_AIE	   0x20
#define B_UIE	   0x10
#define B_DM	   0x04 /* binary (not BCD) */
#define B_24H	   0x02
#define B_DEFAULT  B_24H
#define C_IRQF	   0x80
#define C_PF	   0x40
#define C_AF	   0x20
#define C_UF	   0x10
#define D_VRT	   0x80 /* valid RAM and time */
#define UIP_NS	   244000
#define NS	   1000000000LL
#define MAX_OFFSET (400LL * 366 * 86400 * 100) /* guest clocks up to 40000 years away */

struct rtc {
	struct device dev;
	pthread_mutex_t lock;
	struct irq_line irq;
	bool has_irq;
	bool irq_level;

	uint8_t cmos[CMOS_SIZE]; /* time bytes here are used only while SET freezes the clock */
	uint8_t index;
	bool nmi_disabled;
	uint8_t reg_a, reg_b, reg_c;
	int64_t offset; /* guest seconds minus host seconds */
	/* Lazily raised flags: the guest second and monotonic time they were last checked. */
	int64_t seen_sec;
	uint64_t pf_ns;
};

static struct rtc *to_rtc(struct device *dev)
{
	return dev->priv;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t guest_sec(const struct rtc *r, int64_t *sub_ns)
{
	int64_t now = devclock_real_ns();
	int64_t sec = floor_div(now, NS);
	if (sub_ns)
		*sub_ns = now - sec * NS;
	return sec + r->offset;
}

static uint8_t to_reg(const struct rtc *r, unsigned v)
{
	v %= 100;
	return (r->reg_b & B_DM) ? (uint8_t)v : (uint8_t)((v / 10) << 4 | (v % 10));
}

static unsigned from_reg(const struct rtc *r, uint8_t v)
{
	return (r->reg_b & B_DM) ? v : (unsigned)(v >> 4) * 10 + (v & 0x0F);
}

static uint8_t hour_to_reg(const struct rtc *r, unsigned h)
{
	if (r->reg_b & B_24H)
		return to_reg(r, h);
	unsigned h12 = h % 12 ? h % 12 : 12;
	return to_reg(r, h12) | (h >= 12 ? 0x80 : 0);
}

static unsigned hour_from_reg(const struct rtc *r, uint8_t v)
{
	if (r->reg_b & B_24H)
		return from_reg(r, v);
	return from_reg(r, v & 0x7F) % 12 + ((v & 0x80) ? 12 : 0);
}

/* Writes the clock's current time into the time bytes of cmos. */
static void time_to_regs(struct rtc *r, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm))
		return;
	unsigned year = (unsigned)(tm.tm_year + 1900);
	r->cmos[REG_SEC] = to_reg(r, (unsigned)tm.tm_sec);
	r->cmos[REG_MIN] = to_reg(r, (unsigned)tm.tm_min);
	r->cmos[REG_HOUR] = hour_to_reg(r, (unsigned)tm.tm_hour);
	r->cmos[REG_WDAY] = to_reg(r, (unsigned)tm.tm_wday + 1);
	r->cmos[REG_MDAY] = to_reg(r, (unsigned)tm.tm_mday);
	r->cmos[REG_MON] = to_reg(r, (unsigned)tm.tm_mon + 1);
	r->cmos[REG_YEAR] = to_reg(r, year % 100);
	r->cmos[RTC_CENTURY_REG] = to_reg(r, year / 100);
}

/* The time the guest wrote into the time bytes (any values: timegm normalizes them). */
static int64_t regs_to_time(const struct rtc *r)
{
	struct tm tm = {0};
	tm.tm_sec = (int)from_reg(r, r->cmos[REG_SEC]);
	tm.tm_min = (int)from_reg(r, r->cmos[REG_MIN]);
	tm.tm_hour = (int)hour_from_reg(r, r->cmos[REG_HOUR]);
	tm.tm_mday = (int)from_reg(r, r->cmos[REG_MDAY]);
	tm.tm_mon = (int)from_reg(r, r->cmos[REG_MON]) - 1;
	tm.tm_year =
	    (int)(from_reg(r, r->cmos[RTC_CENTURY_REG]) * 100 + from_reg(r, r->cmos[REG_YEAR])) -
	    1900;
	return (int64_t)timegm(&tm);
}

/* Makes the clock read t now (guest clocks far from the host's are refused). */
static void set_time(struct rtc *r, int64_t t)
{
	int64_t host = guest_sec(r, NULL) - r->offset;
	int64_t off = t - host;
	if (off > -MAX_OFFSET && off < MAX_OFFSET)
		r->offset = off;
	r->seen_sec = guest_sec(r, NULL);
}

static bool is_time_reg(unsigned i)
{
	return i == REG_SEC || i == REG_MIN || i == REG_HOUR || (i >= REG_WDAY && i <= REG_YEAR) ||
	       i == RTC_CENTURY_REG;
}

static uint64_t period_ns(const struct rtc *r)
{
	unsigned rs = r->reg_a & 0x0F;
	if (rs == 0)
		return 0;
	if (rs < 3)
		rs += 7;
	return (uint64_t)(1u << (rs - 1)) * (uint64_t)NS / 32768;
}

static bool alarm_matches(const struct rtc *r, int64_t t)
{
	int64_t tod = t - floor_div(t, 86400) * 86400;
	unsigned h = (unsigned)(tod / 3600), m = (unsigned)(tod / 60 % 60),
		 s = (unsigned)(tod % 60);
	uint8_t ah = r->cmos[REG_HR_A], am = r->cmos[REG_MIN_A], as = r->cmos[REG_SEC_A];
	return (ah >= 0xC0 || hour_from_reg(r, ah) == h) && (am >= 0xC0 || from_reg(r, am) == m) &&
	       (as >= 0xC0 || from_reg(r, as) == s);
}

/* Raises the flags of events since the last check: update ended, alarm, periodic. */
static void update_flags(struct rtc *r)
{
	if (!(r->reg_b & B_SET)) {
		int64_t now = guest_sec(r, NULL);
		if (now != r->seen_sec) {
			r->reg_c |= C_UF;
			/* Alarm: any second since the last check that matches (at most a day). */
			int64_t from = now - r->seen_sec > 86400 || now < r->seen_sec
					   ? now - 86399
					   : r->seen_sec + 1;
			for (int64_t t = from; t <= now; t++) {
				if (alarm_matches(r, t)) {
					r->reg_c |= C_AF;
					break;
				}
			}
			r->seen_sec = now;
		}
	}
	uint64_t p = period_ns(r), mono = devclock_mono_ns();
	if (p && mono - r->pf_ns >= p) {
		r->reg_c |= C_PF;
		r->pf_ns = mono - (mono - r->pf_ns) % p;
	}
	uint8_t en = r->reg_b & (B_PIE | B_AIE | B_UIE); /* same bit positions as C's flags */
	if (r->reg_c & en & (C_PF | C_AF | C_UF))
		r->reg_c |= C_IRQF;
}

static void update_irq(struct rtc *r)
{
	bool level = (r->reg_c & C_IRQF) != 0;
	if (r->has_irq && level != r->irq_level)
		irq_line_set(&r->irq, level);
	r->irq_level = level;
}

static uint8_t reg_read(struct rtc *r, unsigned i)
{
	switch (i) {
	case REG_A: {
		int64_t sub;
		guest_sec(r, &sub);
		bool uip = !(r->reg_b & B_SET) && sub >= NS - UIP_NS;
		return (uint8_t)(r->reg_a | (uip ? A_UIP : 0));
	}
	case REG_B:
		return r->reg_b;
	case REG_C: {
		update_flags(r);
		uint8_t v = r->reg_c;
		r->reg_c = 0;
		update_irq(r);
		return v;
	}
	case REG_D:
		return D_VRT;
	}
	if (is_time_reg(i) && !(r->reg_b & B_SET))
		time_to_regs(r, guest_sec(r, NULL));
	return r->cmos[i];
}

static void reg_write(struct rtc *r, unsigned i, uint8_t v)
{
	switch (i) {
	case REG_A:
		r->reg_a = v & 0x7F;
		return;
	case REG_B: {
		uint8_t old = r->reg_b;
		if (v & B_SET)
			v &= (uint8_t)~B_UIE;
		r->reg_b = v;
		if ((v & B_SET) && !(old & B_SET))
			time_to_regs(r, guest_sec(r, NULL)); /* freeze the clock as it reads */
		if (!(v & B_SET) && (old & B_SET))
			set_time(r, regs_to_time(r));
		update_flags(r);
		update_irq(r);
		return;
	}
	case REG_C:
	case REG_D:
		return; /* read-only */
	}
	if (is_time_reg(i) && !(r->reg_b & B_SET)) {
		/* A running clock: change the one field and carry on from there. */
		time_to_regs(r, guest_sec(r, NULL));
		r->cmos[i] = v;
		set_time(r, regs_to_time(r));
		return;
	}
	r->cmos[i] = v;
}

static void rtc_read(struct device *dev, uint64_t offset, void *data, unsigned len)
{
	struct rtc *r = to_rtc(dev);
	uint8_t v = 0xFF; /* the index port is write-only */
	if (offset == 1) {
		pthread_mutex_lock(&r->lock);
		v = reg_read(r, r->index);
		pthread_mutex_unlock(&r->lock);
	}
	dev_store(data, len, 0xFFFFFFFFFFFFFF00ULL | v);
}

static void rtc_write(struct device *dev, uint64_t offset, const void *data, unsigned len)
{
	struct rtc *r = to_rtc(dev);
	uint8_t v = (uint8_t)dev_load(data, len);
	pthread_mutex_lock(&r->lock);
	if (offset == 0) {
		r->index = v & 0x7F;
		r->nmi_disabled = (v & 0x80) != 0;
	} else if (offset == 1) {
		reg_write(r, r->index, v);
	}
	pthread_mutex_unlock(&r->lock);
}

static void reset_locked(struct rtc *r)
{
	/* RAM keeps its contents over a reset (it is battery-backed); the control bits do not. */
	r->reg_b &= (uint8_t) ~(B_PIE | B_AIE | B_UIE | B_SET);
	r->reg_c = 0;
	r->index = 0;
	r->nmi_disabled = false;
	r->seen_sec = guest_sec(r, NULL);
	r->pf_ns = devclock_mono_ns();
	update_irq(r);
}

static void rtc_reset(struct device *dev)
{
	struct rtc *r = to_rtc(dev);
	pthread_mutex_lock(&r->lock);
	reset_locked(r);
	pthread_mutex_unlock(&r->lock);
}

#define RTC_MAGIC   DEV_MAGIC('C', 'M', 'O', 'S')
#define RTC_VERSION 1

static int rtc_save(struct device *dev, struct state_buf *buf)
{
	struct rtc *r = to_rtc(dev);
	struct state_w w = {.buf = buf};
	pthread_mutex_lock(&r->lock);
	sw_header(&w, RTC_MAGIC, RTC_VERSION);
	sw_bytes(&w, r->cmos, CMOS_SIZE);
	sw_u8(&w, r->index);
	sw_u8(&w, r->nmi_disabled);
	sw_u8(&w, r->reg_a);
	sw_u8(&w, r->reg_b);
	sw_u8(&w, r->reg_c);
	sw_u64(&w, (uint64_t)r->offset);
	pthread_mutex_unlock(&r->lock);
	return w.err;
}

static int rtc_restore(struct device *dev, const void *data, size_t len)
{
	struct rtc *r = to_rtc(dev);
	struct state_r rd = {.p = data, .len = len};
	uint8_t cmos[CMOS_SIZE];
	sr_header(&rd, RTC_MAGIC, RTC_VERSION);
	sr_bytes(&rd, cmos, CMOS_SIZE);
	uint8_t index = sr_u8(&rd), nmi = sr_u8(&rd), a = sr_u8(&rd), b = sr_u8(&rd);
	uint8_t c = sr_u8(&rd);
	int64_t offset = (int64_t)sr_u64(&rd);
	if (!sr_done(&rd) || index >= CMOS_SIZE || nmi > 1 || (a & A_UIP) || (c & 0x0F) ||
	    offset <= -MAX_OFFSET || offset >= MAX_OFFSET)
		return -EINVAL;

	pthread_mutex_lock(&r->lock);
	memcpy(r->cmos, cmos, CMOS_SIZE);
	r->index = index;
	r->nmi_disabled = nmi;
	r->reg_a = a;
	r->reg_b = b;
	r->reg_c = c;
	r->offset = offset;
	r->seen_sec = guest_sec(r, NULL);
	r->pf_ns = devclock_mono_ns();
	if (r->has_irq) {
		r->irq_level = (c & C_IRQF) != 0;
		irq_line_set(&r->irq, r->irq_level);
	}
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static void rtc_destroy(struct device *dev)
{
	struct rtc *r = to_rtc(dev);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static const struct device_ops rtc_ops = {
    .read = rtc_read,
    .write = rtc_write,
    .reset = rtc_reset,
    .save = rtc_save,
    .restore = rtc_restore,
    .destroy = rtc_destroy,
};

static void set16(uint8_t *cmos, unsigned at, uint64_t v)
{
	cmos[at] = (uint8_t)v;
	cmos[at + 1] = (uint8_t)(v >> 8);
}

/* The memory-size bytes as QEMU's PC machine fills them (SeaBIOS and old guests read them). */
static void fill_memory(uint8_t *cmos, uint64_t below, uint64_t above, unsigned ncpus)
{
	const uint64_t kib = 1024, mib = 1024 * 1024;
	uint64_t v = below / kib < 640 ? below / kib : 640;
	set16(cmos, 0x15, v);
	v = below > mib ? (below - mib) / kib : 0;
	v = v > 65535 ? 65535 : v;
	set16(cmos, 0x17, v);
	set16(cmos, 0x30, v);
	v = below > 16 * mib ? (below - 16 * mib) / (64 * kib) : 0;
	v = v > 65535 ? 65535 : v;
	set16(cmos, 0x34, v);
	v = above / (64 * kib);
	v = v > 0xFFFFFF ? 0xFFFFFF : v;
	cmos[0x5b] = (uint8_t)v;
	cmos[0x5c] = (uint8_t)(v >> 8);
	cmos[0x5d] = (uint8_t)(v >> 16);
	cmos[0x5f] = (uint8_t)(ncpus ? ncpus - 1 : 0);
}

struct device *rtc_new(const struct irq_line *irq, uint64_t ram_below_4g, uint64_t ram_above_4g,
		       unsigned ncpus)
{
	struct rtc *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	if (pthread_mutex_init(&r->lock, NULL) != 0) {
		free(r);
		return NULL;
	}
	r->dev.name = "rtc";
	r->dev.ops = &rtc_ops;
	r->dev.priv = r;
	if (irq) {
		r->irq = *irq;
		r->has_irq = true;
	}
	fill_memory(r->cmos, ram_below_4g, ram_above_4g, ncpus);
	r->reg_a = A_DEFAULT;
	r->reg_b = B_DEFAULT;
	reset_locked(r);
	return &r->dev;
}

void rtc_tick(struct device *dev)
{
	struct rtc *r = to_rtc(dev);
	pthread_mutex_lock(&r->lock);
	update_flags(r);
	update_irq(r);
	pthread_mutex_unlock(&r->lock);
}

uint64_t rtc_tick_interval_ns(struct device *dev)
{
	struct rtc *r = to_rtc(dev);
	uint64_t ns = 0;
	pthread_mutex_lock(&r->lock);
	if (r->reg_b & (B_AIE | B_UIE))
		ns = NS / 4; /* see each second within a quarter of it */
	if ((r->reg_b & B_PIE) && period_ns(r) && (!ns || period_ns(r) < ns))
		ns = period_ns(r);
	pthread_mutex_unlock(&r->lock);
	return ns;
}
