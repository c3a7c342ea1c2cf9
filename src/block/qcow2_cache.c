/* qcow2: a bounded LRU cache of cluster-sized metadata tables (L2 tables, refcount blocks). */
#include "block/qcow2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int q2_cache_init(struct q2_cache *c, unsigned n, uint64_t cluster_size)
{
	c->n = n;
	c->tick = 0;
	c->last = 0;
	c->e = calloc(n, sizeof(*c->e));
	return c->e ? 0 : -ENOMEM;
}

void q2_cache_free(struct q2_cache *c)
{
	for (unsigned i = 0; c->e && i < c->n; i++)
		free(c->e[i].data);
	free(c->e);
	c->e = NULL;
}

static int find(const struct q2_cache *c, uint64_t off)
{
	if (c->e[c->last].off == off)
		return (int)c->last;
	for (unsigned i = 0; i < c->n; i++)
		if (c->e[i].off == off)
			return (int)i;
	return -1;
}

int q2_cache_get(struct qcow2 *q, struct q2_cache *c, uint64_t off, bool fresh, uint8_t **out)
{
	if (!off || off % q->cluster_size)
		return -EIO; /* offset 0 is the header: never a table */
	int i = find(c, off);
	if (i >= 0) {
		c->e[i].lru = ++c->tick;
		c->last = (unsigned)i;
		if (fresh) {
			memset(c->e[i].data, 0, q->cluster_size);
			c->e[i].dirty = true;
		}
		*out = c->e[i].data;
		return 0;
	}
	/* Victim: an empty slot, else the least recently used. */
	unsigned v = 0;
	for (unsigned j = 0; j < c->n; j++) {
		if (!c->e[j].off) {
			v = j;
			break;
		}
		if (c->e[j].lru < c->e[v].lru)
			v = j;
	}
	struct q2_cache_ent *e = &c->e[v];
	if (e->off && e->dirty) {
		/* An L2 table may reach the disk only after the refcounts (and data) it
		 * depends on; refcount blocks may be written at any time. */
		int ret = c == &q->l2c ? q2_before_l2_write(q) : 0;
		if (!ret)
			ret = file_pwrite(q->file, e->data, q->cluster_size, e->off);
		if (c == &q->l2c)
			q->tables_unsynced = true;
		if (ret)
			return ret;
	}
	if (!e->data) {
		/* aligned, so that O_DIRECT table I/O needs no bounce buffer */
		void *p;
		if (posix_memalign(&p, BLK_DIRECT_ALIGN, q->cluster_size))
			return -ENOMEM;
		e->data = p;
	}
	e->off = 0;
	e->dirty = false;
	if (fresh) {
		memset(e->data, 0, q->cluster_size);
		e->dirty = true;
	} else {
		int ret = file_pread(q->file, e->data, q->cluster_size, off);
		if (ret)
			return ret;
	}
	e->off = off;
	e->lru = ++c->tick;
	c->last = v;
	*out = e->data;
	return 0;
}

void q2_cache_mark_dirty(struct q2_cache *c, uint64_t off)
{
	int i = find(c, off);
	if (i >= 0)
		c->e[i].dirty = true;
}

void q2_cache_drop(struct q2_cache *c, uint64_t off)
{
	int i = find(c, off);
	if (i >= 0) {
		c->e[i].off = 0;
		c->e[i].dirty = false;
	}
}

bool q2_cache_has_dirty(const struct q2_cache *c)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->e[i].off && c->e[i].dirty)
			return true;
	return false;
}

int q2_cache_write_dirty(struct qcow2 *q, struct q2_cache *c, bool *wrote)
{
	for (unsigned i = 0; i < c->n; i++) {
		struct q2_cache_ent *e = &c->e[i];
		if (!e->off || !e->dirty)
			continue;
		int ret = file_pwrite(q->file, e->data, q->cluster_size, e->off);
		if (ret)
			return ret;
		e->dirty = false;
		*wrote = true;
	}
	return 0;
}
