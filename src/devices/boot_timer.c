/* The boot-time marker: a byte write of 123 reports how long the guest took to boot. */
#include "devices/boot_timer.h"

#include "devices/devutil.h"
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

struct boot_timer {
	struct device dev;
	pthread_mutex_t lock;
	uint64_t start_ns;
	uint64_t last_us;
	uint32_t signals;
};

static struct boot_timer *to_bt(struct device *dev)
{
	return dev->priv;
}

static void bt_read(struct device *dev, uint64_t offset, void *data, unsigned len)
{
	dev_store(data, len, 0);
}

static void bt_write(struct device *dev, uint64_t offset, const void *data, unsigned len)
{
	struct boot_timer *b = to_bt(dev);
	if (offset != 0 || len != 1 || *(const uint8_t *)data != BOOT_TIMER_MAGIC)
		return;
	uint64_t now = devclock_mono_ns();
	uint64_t us = now > b->start_ns ? (now - b->start_ns) / 1000 : 0;
	pthread_mutex_lock(&b->lock);
	b->last_us = us;
	b->signals++;
	pthread_mutex_unlock(&b->lock);
	/* One line on stderr, as Firecracker prints it; through the logger when it shows info. */
	if (log_get_level() >= LOG_LEVEL_INFO)
		log_info("Guest-boot-time = %llu us %llu ms since cove started",
			 (unsigned long long)us, (unsigned long long)(us / 1000));
	else
		fprintf(stderr, "Guest-boot-time = %llu us %llu ms since cove started\n",
			(unsigned long long)us, (unsigned long long)(us / 1000));
}

#define BT_MAGIC   DEV_MAGIC('B', 'T', 'M', 'R')
#define BT_VERSION 1

static int bt_save(struct device *dev, struct state_buf *buf)
{
	struct boot_timer *b = to_bt(dev);
	struct state_w w = {.buf = buf};
	pthread_mutex_lock(&b->lock);
	sw_header(&w, BT_MAGIC, BT_VERSION);
	sw_u64(&w, b->last_us);
	sw_u32(&w, b->signals);
	pthread_mutex_unlock(&b->lock);
	return w.err;
}

static int bt_restore(struct device *dev, const void *data, size_t len)
{
	struct boot_timer *b = to_bt(dev);
	struct state_r r = {.p = data, .len = len};
	sr_header(&r, BT_MAGIC, BT_VERSION);
	uint64_t last = sr_u64(&r);
	uint32_t signals = sr_u32(&r);
	if (!sr_done(&r) || (signals == 0 && last != 0))
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	b->last_us = last;
	b->signals = signals;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static void bt_destroy(struct device *dev)
{
	struct boot_timer *b = to_bt(dev);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static const struct device_ops bt_ops = {
    .read = bt_read,
    .write = bt_write,
    .save = bt_save,
    .restore = bt_restore,
    .destroy = bt_destroy,
};

struct device *boot_timer_new(uint64_t start_ns)
{
	struct boot_timer *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	if (pthread_mutex_init(&b->lock, NULL) != 0) {
		free(b);
		return NULL;
	}
	b->dev.name = "boot-timer";
	b->dev.ops = &bt_ops;
	b->dev.priv = b;
	b->start_ns = start_ns;
	return &b->dev;
}

uint64_t boot_timer_last_us(struct device *dev)
{
	struct boot_timer *b = to_bt(dev);
	pthread_mutex_lock(&b->lock);
	uint64_t us = b->last_us;
	pthread_mutex_unlock(&b->lock);
	return us;
}
