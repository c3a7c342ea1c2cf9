/* Ports of absent legacy devices: all-ones reads, dropped writes, a count. */
#include "devices/absent.h"

#include "devices/devutil.h"
#include "util/log.h"

#include <stdatomic.h>
#include <stdlib.h>

struct absent {
	struct device dev;
	atomic_uint_fast64_t accesses;
};

static void note(struct device *dev, uint64_t offset, unsigned len, const char *what)
{
	struct absent *a = dev->priv;
	if (atomic_fetch_add_explicit(&a->accesses, 1, memory_order_relaxed) == 0)
		log_debug("%s: %s at offset %#llx, %u bytes (no such device; more are not logged)",
			  dev->name, what, (unsigned long long)offset, len);
}

static void absent_read(struct device *dev, uint64_t offset, void *data, unsigned len)
{
	dev_store(data, len, ~0ULL);
	note(dev, offset, len, "read");
}

static void absent_write(struct device *dev, uint64_t offset, const void *data, unsigned len)
{
	note(dev, offset, len, "write");
}

static void absent_destroy(struct device *dev)
{
	free(dev->priv);
}

static const struct device_ops absent_ops = {
    .read = absent_read,
    .write = absent_write,
    .destroy = absent_destroy,
};

struct device *absent_new(const char *name)
{
	struct absent *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->dev = (struct device){.name = name, .ops = &absent_ops, .priv = a};
	atomic_init(&a->accesses, 0);
	return &a->dev;
}

uint64_t absent_count(const struct device *dev)
{
	struct absent *a = dev->priv;
	return atomic_load_explicit(&a->accesses, memory_order_relaxed);
}
