/* qcow2: refcount blocks of any width, cluster allocation, refcount table growth, ordered flushes.
 */
#include "block/qcow2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t q2_rc_get_entry(const struct qcow2 *q, const uint8_t *blk, uint64_t i)
{
	switch (q->refcount_order) {
	case 0:
	case 1:
	case 2: {
		unsigned bits = q->refcount_bits;
		uint64_t bit = i * bits;
		return (blk[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
	}
	case 3:
		return blk[i];
	case 4:
		return be16(blk + i * 2);
	case 5:
		return be32(blk + i * 4);
	default:
		return be64(blk + i * 8);
	}
}

void q2_rc_set_entry(const struct qcow2 *q, uint8_t *blk, uint64_t i, uint64_t v)
{
	switch (q->refcount_order) {
	case 0:
	case 1:
	case 2: {
		unsigned bits = q->refcount_bits;
		uint64_t bit = i * bits;
		uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit % 8));
		blk[bit / 8] = (uint8_t)((blk[bit / 8] & ~mask) | ((v << (bit % 8)) & mask));
		break;
	}
	case 3:
		blk[i] = (uint8_t)v;
		break;
	case 4:
		put16(blk + i * 2, (uint16_t)v);
		break;
	case 5:
		put32(blk + i * 4, (uint32_t)v);
		break;
	default:
		put64(blk + i * 8, v);
		break;
	}
}

int q2_write_rt(struct qcow2 *q, uint64_t lo, uint64_t hi)
{
	if (hi <= lo)
		return 0;
	uint64_t n = hi - lo;
	uint64_t *tmp = malloc(n * 8);
	if (!tmp)
		return -ENOMEM;
	for (uint64_t i = 0; i < n; i++)
		tmp[i] = htobe64(q->rt[lo + i]);
	int ret = file_pwrite(q->file, tmp, n * 8, q->rt_offset + lo * 8);
	free(tmp);
	return ret;
}

/* Clusters that a corrupt image may show as free but that hold the main metadata. */
static bool reserved(const struct qcow2 *q, uint64_t c)
{
	uint64_t o = c << q->cluster_bits;
	if (c == 0)
		return true;
	if (q->l1_size && o + q->cluster_size > q->l1_offset &&
	    o < q->l1_offset + (uint64_t)q->l1_size * 8)
		return true;
	return o >= q->rt_offset && o < q->rt_offset + (uint64_t)q->rt_clusters * q->cluster_size;
}

static int grow_rt(struct qcow2 *q, uint64_t min_entries);

/* Creates the refcount block of range ri as the first cluster of that range, describing itself. */
static int ensure_refblock(struct qcow2 *q, uint64_t ri)
{
	int ret;
	if (ri >= q->rt_entries) {
		ret = grow_rt(q, ri + 1);
		if (ret)
			return ret;
	}
	if (q->rt[ri] & QCOW2_RT_OFFSET_MASK)
		return 0;
	uint64_t cs = q->cluster_size;
	uint64_t c = ri * q->rb_entries;
	if (c > (QCOW2_OFFSET_MASK >> q->cluster_bits))
		return -ENOSPC;
	if (reserved(q, c))
		return -EIO; /* a corrupt image: the range of the header has no refcount block */
	uint64_t off = c * cs;
	uint8_t *blk;
	ret = q2_cache_get(q, &q->rbc, off, true, &blk);
	if (ret)
		return ret;
	q2_rc_set_entry(q, blk, 0, 1);
	ret = file_pwrite(q->file, blk, cs, off);
	if (ret)
		return ret;
	q2_cache_mark_dirty(&q->rbc, off); /* harmless: written again at the next flush */
	ret = file_sync(q->file);
	if (ret)
		return ret;
	q->rt[ri] = off;
	ret = q2_write_rt(q, ri, ri + 1);
	if (!ret)
		ret = file_sync(q->file);
	q->file_end = max_u64(q->file_end, off + cs);
	return ret;
}

static int get_block(struct qcow2 *q, uint64_t ri, bool alloc, uint8_t **blk)
{
	*blk = NULL;
	if (ri >= q->rt_entries || !(q->rt[ri] & QCOW2_RT_OFFSET_MASK)) {
		if (!alloc)
			return 0;
		int ret = ensure_refblock(q, ri);
		if (ret)
			return ret;
	}
	uint64_t off = q->rt[ri] & QCOW2_RT_OFFSET_MASK;
	if (off % q->cluster_size)
		return -EIO;
	return q2_cache_get(q, &q->rbc, off, false, blk);
}

int q2_refcount_get(struct qcow2 *q, uint64_t cluster, uint64_t *out)
{
	uint8_t *blk;
	int ret = get_block(q, cluster / q->rb_entries, false, &blk);
	if (ret)
		return ret;
	*out = blk ? q2_rc_get_entry(q, blk, cluster % q->rb_entries) : 0;
	return 0;
}

int q2_refcount_update(struct qcow2 *q, uint64_t off, uint64_t len, int64_t delta)
{
	if (!len)
		return 0;
	uint64_t first = off >> q->cluster_bits, last = (off + len - 1) >> q->cluster_bits;
	for (uint64_t c = first; c <= last; c++) {
		uint8_t *blk;
		uint64_t ri = c / q->rb_entries;
		int ret = get_block(q, ri, delta > 0, &blk);
		if (ret)
			return ret;
		if (!blk)
			return -EIO; /* decrement of a cluster without a refcount block */
		uint64_t i = c % q->rb_entries;
		uint64_t v = q2_rc_get_entry(q, blk, i);
		if (delta > 0 && v > q->refcount_max - (uint64_t)delta)
			return -ERANGE;
		if (delta < 0 && v < (uint64_t)-delta)
			return -EIO;
		v += (uint64_t)delta;
		q2_rc_set_entry(q, blk, i, v);
		q2_cache_mark_dirty(&q->rbc, q->rt[ri] & QCOW2_RT_OFFSET_MASK);
		if (v == 0 && c < q->free_hint)
			q->free_hint = c;
		/* A freed cluster can no longer take packed compressed data. */
		if (v == 0 && q->comp_next && (q->comp_next >> q->cluster_bits) == c)
			q->comp_next = 0;
	}
	return 0;
}

int q2_alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *off, uint64_t *got)
{
	uint64_t max_cluster = QCOW2_OFFSET_MASK >> q->cluster_bits;
	for (;;) {
		uint64_t c = q->free_hint, start = 0, run = 0;
		bool restart = false;
		while (run < n) {
			if (c > max_cluster)
				return -ENOSPC;
			uint64_t ri = c / q->rb_entries;
			if (ri >= q->rt_entries || !(q->rt[ri] & QCOW2_RT_OFFSET_MASK)) {
				int ret = ensure_refblock(q, ri);
				if (ret)
					return ret;
				restart = true;
				break;
			}
			uint8_t *blk;
			int ret = get_block(q, ri, false, &blk);
			if (ret)
				return ret;
			uint64_t end = (ri + 1) * q->rb_entries;
			bool stop = false;
			for (; c < end && run < n; c++) {
				if (q2_rc_get_entry(q, blk, c % q->rb_entries) == 0 &&
				    !reserved(q, c)) {
					if (!run)
						start = c;
					run++;
				} else if (run) {
					stop = true;
					break;
				} else {
					q->free_hint = c + 1;
				}
			}
			if (stop)
				break;
		}
		if (restart)
			continue;
		int ret =
		    q2_refcount_update(q, start << q->cluster_bits, run << q->cluster_bits, 1);
		if (ret)
			return ret;
		q->free_hint = start + run;
		q->file_end = max_u64(q->file_end, (start + run) << q->cluster_bits);
		*off = start << q->cluster_bits;
		*got = run;
		return 0;
	}
}

int q2_alloc_bytes(struct qcow2 *q, uint64_t len, uint64_t *off)
{
	uint64_t cs = q->cluster_size;
	if (len == 0 || len > cs)
		return -EINVAL;
	if (q->comp_next) {
		uint64_t cur = q->comp_next & ~(cs - 1);
		if (q->comp_next + len <= cur + cs) {
			int ret = q2_refcount_update(q, cur, 1, 1);
			if (!ret) {
				*off = q->comp_next;
				q->comp_next = (q->comp_next + len) % cs ? q->comp_next + len : 0;
				return 0;
			}
			if (ret != -ERANGE)
				return ret;
			/* Narrow refcounts: this cluster cannot be shared further; take a new one.
			 */
		}
	}
	uint64_t start, got;
	int ret = q2_alloc_clusters(q, 1, &start, &got);
	if (ret)
		return ret;
	*off = start;
	q->comp_next = len < cs ? start + len : 0;
	return 0;
}

int q2_free_later(struct qcow2 *q, uint64_t off, uint64_t len)
{
	if (q->nfrees == q->cfrees) {
		size_t n = q->cfrees ? q->cfrees * 2 : 64;
		struct q2_free *f = realloc(q->frees, n * sizeof(*f));
		if (!f)
			return -ENOMEM;
		q->frees = f;
		q->cfrees = n;
	}
	q->frees[q->nfrees++] = (struct q2_free){off, len};
	return 0;
}

static int sync_all(struct qcow2 *q)
{
	int ret = file_sync(q->file);
	if (!ret && q->ext_data)
		ret = file_sync(&q->data);
	return ret;
}

int q2_before_l2_write(struct qcow2 *q)
{
	bool wrote = false;
	int ret = q2_cache_write_dirty(q, &q->rbc, &wrote);
	if (ret)
		return ret;
	if (wrote || q->data_unsynced) {
		ret = sync_all(q);
		q->data_unsynced = false;
		if (!ret)
			q->tables_unsynced = false;
	}
	return ret;
}

static int sync_tables(struct qcow2 *q)
{
	int ret = file_sync(q->file);
	if (!ret)
		q->tables_unsynced = false;
	return ret;
}

/* Writes the dirty tables in the order that keeps the image consistent whatever part of
 * them a power cut lets through: refcount blocks and data synced before the L2 tables, L2
 * tables synced before the L1 table, all synced before the deferred refcount decrements.
 * Tables written earlier without a sync (an L2 table evicted from the cache, a write-back)
 * count as unsynced until a sync. durable: end with a sync too (a flush); else the last
 * writes stay in the page cache, which a kill of the process does not lose. */
static int write_tables(struct qcow2 *q, bool durable)
{
	int ret = q2_before_l2_write(q);
	bool wrote = false;
	if (!ret)
		ret = q2_cache_write_dirty(q, &q->l2c, &wrote);
	if (wrote)
		q->tables_unsynced = true;
	if (!ret && q->l1_dirty) {
		if (q->tables_unsynced)
			ret = sync_tables(q);
		if (!ret) {
			ret = q2_write_l1(q);
			q->tables_unsynced = true;
		}
	}
	if (!ret && q->tables_unsynced && (durable || q->nfrees))
		ret = sync_tables(q);
	if (ret)
		return ret;
	/* The references are gone from the disk: the clusters may be freed now. */
	if (q->nfrees) {
		size_t n = q->nfrees;
		q->nfrees = 0;
		for (size_t i = 0; i < n && !ret; i++)
			ret = q2_refcount_update(q, q->frees[i].off, q->frees[i].len, -1);
		bool w = false;
		if (!ret)
			ret = q2_cache_write_dirty(q, &q->rbc, &w);
		if (!ret && w && durable)
			ret = sync_tables(q);
		else if (w)
			q->tables_unsynced = true; /* for the next flush to sync */
	}
	return ret;
}

int q2_flush_meta(struct qcow2 *q)
{
	return write_tables(q, true);
}

int q2_write_back_meta(struct qcow2 *q)
{
	return write_tables(q, false);
}

int q2_drop_unused_refblocks(struct qcow2 *q)
{
	uint64_t cs = q->cluster_size;
	int ret = q2_flush_meta(q);
	bool freed = false;
	/* Range 0 holds the header: its block always stays. */
	for (uint64_t ri = q->rt_entries; !ret && ri-- > 1;) {
		uint64_t off = q->rt[ri] & QCOW2_RT_OFFSET_MASK;
		if (!off || off % cs)
			continue;
		uint8_t *blk;
		ret = q2_cache_get(q, &q->rbc, off, false, &blk);
		if (ret)
			break;
		uint64_t self = off >> q->cluster_bits;
		bool inside = self / q->rb_entries == ri, used = false;
		for (uint64_t i = 0; i < q->rb_entries && !used; i++)
			used = q2_rc_get_entry(q, blk, i) && !(inside && i == self % q->rb_entries);
		if (used)
			continue;
		/* Unhook it first (synced): a crash afterwards leaks the block at worst. */
		q->rt[ri] = 0;
		ret = q2_write_rt(q, ri, ri + 1);
		if (!ret)
			ret = file_sync(q->file);
		if (ret)
			break;
		q2_cache_drop(&q->rbc, off);
		if (!inside) {
			ret = q2_refcount_update(q, off, cs, -1);
			freed = true;
		}
	}
	if (!ret && freed)
		ret = q2_flush_meta(q);
	return ret;
}

/* Moves the refcount table to the end of the file, with room for min_entries. */
static int grow_rt(struct qcow2 *q, uint64_t min_entries)
{
	uint64_t cs = q->cluster_size, per = cs / 8;
	uint64_t ne = max_u64(min_entries, q->rt_entries * 2);
	ne = (ne + per - 1) / per * per;
	uint64_t tc = ne / per;
	if (tc * cs > QCOW2_MAX_RT_BYTES)
		return -EFBIG;
	int ret = q2_before_l2_write(q);
	if (ret)
		return ret;
	uint64_t p = q->file_end / cs, nb = 0;
	/* New blocks go after the table; find how many the new area itself needs. */
	for (;;) {
		uint64_t end = p + tc + nb, cnt = 0;
		for (uint64_t r = p / q->rb_entries; r <= (end - 1) / q->rb_entries; r++)
			if (r >= q->rt_entries || !q->rt[r])
				cnt++;
		if (cnt == nb)
			break;
		nb = cnt;
	}
	uint64_t end = p + tc + nb;
	if (end > (QCOW2_OFFSET_MASK >> q->cluster_bits) || (end - 1) / q->rb_entries >= ne)
		return -ENOSPC;
	uint64_t *nrt = calloc(ne, 8);
	uint8_t *blk = malloc(cs);
	if (!nrt || !blk) {
		free(nrt);
		free(blk);
		return -ENOMEM;
	}
	memcpy(nrt, q->rt, q->rt_entries * 8);
	uint64_t k = 0;
	for (uint64_t r = p / q->rb_entries; r <= (end - 1) / q->rb_entries && !ret; r++) {
		if (r < q->rt_entries && q->rt[r]) {
			/* Existing block: count the new clusters in it through the cache. */
			uint64_t a = max_u64(p, r * q->rb_entries),
				 b = min_u64(end, (r + 1) * q->rb_entries);
			ret = q2_refcount_update(q, a * cs, (b - a) * cs, 1);
			continue;
		}
		uint64_t boff = (p + tc + k++) * cs;
		memset(blk, 0, cs);
		uint64_t a = max_u64(p, r * q->rb_entries),
			 b = min_u64(end, (r + 1) * q->rb_entries);
		for (uint64_t c = a; c < b; c++)
			q2_rc_set_entry(q, blk, c % q->rb_entries, 1);
		nrt[r] = boff;
		ret = file_pwrite(q->file, blk, cs, boff);
	}
	free(blk);
	bool w;
	if (!ret)
		ret = q2_cache_write_dirty(q, &q->rbc, &w);
	if (!ret) {
		uint64_t *be = malloc(tc * cs);
		if (!be) {
			ret = -ENOMEM;
		} else {
			for (uint64_t i = 0; i < ne; i++)
				be[i] = htobe64(nrt[i]);
			ret = file_pwrite(q->file, be, tc * cs, p * cs);
			free(be);
		}
	}
	if (!ret)
		ret = file_sync(q->file);
	if (ret) {
		free(nrt);
		return ret;
	}
	uint64_t old_off = q->rt_offset, old_clusters = q->rt_clusters;
	uint64_t *old = q->rt;
	q->rt = nrt;
	q->rt_entries = ne;
	q->rt_offset = p * cs;
	q->rt_clusters = (uint32_t)tc;
	q->file_end = max_u64(q->file_end, end * cs);
	ret = qcow2_write_header(q);
	if (!ret)
		ret = file_sync(q->file);
	if (ret) {
		/* The header may or may not have moved; keep the new table (it is a superset). */
		free(old);
		return ret;
	}
	free(old);
	return q2_refcount_update(q, old_off, old_clusters * cs, -1);
}
