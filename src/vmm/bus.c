/* The I/O buses: sorted, non-overlapping ranges per space, looked up under a read lock. */
#include "vmm/bus.h"

#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct bus_range {
	uint64_t base;
	uint64_t len;
	struct device *dev;
};

struct bus_space_map {
	struct bus_range *ranges; /* sorted by base */
	size_t n;
	size_t cap;
};

struct bus {
	pthread_rwlock_t lock;
	struct bus_space_map space[2];
	atomic_uint_fast64_t unclaimed;
};

struct bus *bus_new(void)
{
	struct bus *bus = calloc(1, sizeof(*bus));
	if (!bus)
		return NULL;
	pthread_rwlock_init(&bus->lock, NULL);
	atomic_init(&bus->unclaimed, 0);
	return bus;
}

void bus_free(struct bus *bus)
{
	if (!bus)
		return;
	for (int s = 0; s < 2; s++)
		free(bus->space[s].ranges);
	pthread_rwlock_destroy(&bus->lock);
	free(bus);
}

static struct bus_space_map *space_of(struct bus *bus, enum bus_space space)
{
	return &bus->space[space == BUS_MMIO ? 1 : 0];
}

int bus_register(struct bus *bus, enum bus_space space, uint64_t base, uint64_t len,
		 struct device *dev)
{
	if (len == 0 || base + len - 1 < base || !dev)
		return -EINVAL;
	int ret = 0;
	pthread_rwlock_wrlock(&bus->lock);
	struct bus_space_map *m = space_of(bus, space);
	size_t i = 0;
	while (i < m->n && m->ranges[i].base < base)
		i++;
	/* Overlap with the range before or the range at i? */
	if ((i > 0 && m->ranges[i - 1].base + (m->ranges[i - 1].len - 1) >= base) ||
	    (i < m->n && base + (len - 1) >= m->ranges[i].base)) {
		ret = -EEXIST;
		goto out;
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 8;
		struct bus_range *r = realloc(m->ranges, cap * sizeof(*r));
		if (!r) {
			ret = -ENOMEM;
			goto out;
		}
		m->ranges = r;
		m->cap = cap;
	}
	memmove(&m->ranges[i + 1], &m->ranges[i], (m->n - i) * sizeof(m->ranges[0]));
	m->ranges[i] = (struct bus_range){base, len, dev};
	m->n++;
out:
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int bus_unregister(struct bus *bus, enum bus_space space, uint64_t base)
{
	int ret = -ENOENT;
	pthread_rwlock_wrlock(&bus->lock);
	struct bus_space_map *m = space_of(bus, space);
	for (size_t i = 0; i < m->n; i++) {
		if (m->ranges[i].base == base) {
			memmove(&m->ranges[i], &m->ranges[i + 1],
				(m->n - i - 1) * sizeof(m->ranges[0]));
			m->n--;
			ret = 0;
			break;
		}
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

/* Finds the device whose range holds [addr, addr+len); sets *offset. */
static struct device *lookup(struct bus *bus, enum bus_space space, uint64_t addr, unsigned len,
			     uint64_t *offset)
{
	struct device *dev = NULL;
	pthread_rwlock_rdlock(&bus->lock);
	struct bus_space_map *m = space_of(bus, space);
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &m->ranges[mid];
		if (addr < r->base) {
			hi = mid;
		} else if (addr - r->base >= r->len) {
			lo = mid + 1;
		} else {
			if (len <= r->len - (addr - r->base)) {
				dev = r->dev;
				*offset = addr - r->base;
			}
			break;
		}
	}
	pthread_rwlock_unlock(&bus->lock);
	return dev;
}

/* The first accesses no device took are logged at debug level, to show what a guest
 * probes; after that they are only counted. */
#define UNCLAIMED_LOGGED 64

static void unclaimed(struct bus *bus, enum bus_space space, uint64_t addr, unsigned len,
		      bool write)
{
	uint64_t n = atomic_fetch_add_explicit(&bus->unclaimed, 1, memory_order_relaxed);
	if (n < UNCLAIMED_LOGGED)
		log_debug("unclaimed %s %s at %#llx, %u bytes%s",
			  space == BUS_MMIO ? "MMIO" : "port", write ? "write" : "read",
			  (unsigned long long)addr, len,
			  n + 1 == UNCLAIMED_LOGGED ? " (no more are logged)" : "");
}

static bool valid_len(unsigned len)
{
	return len == 1 || len == 2 || len == 4 || len == 8;
}

bool bus_read(struct bus *bus, enum bus_space space, uint64_t addr, void *data, unsigned len)
{
	uint64_t off = 0;
	struct device *dev = valid_len(len) ? lookup(bus, space, addr, len, &off) : NULL;
	if (!dev || !dev->ops->read) {
		memset(data, 0xff, len);
		unclaimed(bus, space, addr, len, false);
		return false;
	}
	dev->ops->read(dev, off, data, len);
	return true;
}

bool bus_write(struct bus *bus, enum bus_space space, uint64_t addr, const void *data, unsigned len)
{
	uint64_t off = 0;
	struct device *dev = valid_len(len) ? lookup(bus, space, addr, len, &off) : NULL;
	if (!dev || !dev->ops->write) {
		unclaimed(bus, space, addr, len, true);
		return false;
	}
	dev->ops->write(dev, off, data, len);
	return true;
}

void bus_count_unclaimed(struct bus *bus)
{
	atomic_fetch_add_explicit(&bus->unclaimed, 1, memory_order_relaxed);
}

uint64_t bus_unclaimed_count(const struct bus *bus)
{
	return atomic_load_explicit(&((struct bus *)bus)->unclaimed, memory_order_relaxed);
}

void bus_reset_all(struct bus *bus)
{
	/* Each device may sit on several ranges: reset it once. */
	pthread_rwlock_rdlock(&bus->lock);
	for (int s = 0; s < 2; s++) {
		struct bus_space_map *m = &bus->space[s];
		for (size_t i = 0; i < m->n; i++) {
			struct device *dev = m->ranges[i].dev;
			bool seen = false;
			for (int t = 0; t <= s && !seen; t++) {
				size_t end = t == s ? i : bus->space[t].n;
				for (size_t j = 0; j < end && !seen; j++)
					seen = bus->space[t].ranges[j].dev == dev;
			}
			if (!seen && dev->ops->reset)
				dev->ops->reset(dev);
		}
	}
	pthread_rwlock_unlock(&bus->lock);
}
