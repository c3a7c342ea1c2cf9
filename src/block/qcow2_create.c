/* qcow2: new image layout, preallocation, resize, backing change, amend, size estimates. */
#include "block/qcow2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

int qcow2_create_file(struct blk_file *f, const struct blk_create_opts *o, uint64_t size,
		      struct cove_err *err)
{
	uint64_t cs = o->cluster_size;
	unsigned cb = (unsigned)__builtin_ctzll(cs);
	unsigned order = (unsigned)__builtin_ctz(o->refcount_bits);
	uint64_t l2e = cs / (o->extended_l2 ? 16 : 8);
	uint64_t per_l1 = l2e * cs;
	uint64_t l1_size = div_up(size, per_l1);
	if (l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return cove_err_set(err, -EFBIG,
				    "qcow2: virtual size too large for cluster size %llu",
				    (unsigned long long)cs);
	uint64_t l1cl = div_up(l1_size * 8, cs); /* an empty image has no L1 table, as QEMU */
	uint64_t rbe = cs * 8 / o->refcount_bits;
	uint64_t nrb = 1, rtc = 1;
	for (;;) {
		uint64_t total = 1 + rtc + nrb + l1cl;
		uint64_t nb = div_up(total, rbe), nt = div_up(nb * 8, cs);
		if (nb == nrb && nt == rtc)
			break;
		nrb = max_u64(nb, nrb);
		rtc = max_u64(nt, rtc);
	}
	if (rtc * cs > QCOW2_MAX_RT_BYTES)
		return cove_err_set(err, -EFBIG, "qcow2: refcount table too large");
	uint64_t total = 1 + rtc + nrb + l1cl;
	struct qcow2 q;
	memset(&q, 0, sizeof(q));
	q.file = f;
	q.version = o->compat_v2 ? 2 : 3;
	q.cluster_bits = cb;
	q.cluster_size = cs;
	q.size = size;
	q.l1_size = (uint32_t)l1_size;
	q.l1_offset = l1_size ? (1 + rtc + nrb) * cs : 0;
	q.rt_offset = cs;
	q.rt_clusters = (uint32_t)rtc;
	q.refcount_order = order;
	q.refcount_bits = o->refcount_bits;
	if (o->extended_l2)
		q.incompat |= QCOW2_INCOMPAT_EXTL2;
	if (o->compression == BLK_COMPRESS_ZSTD) {
		q.incompat |= QCOW2_INCOMPAT_COMPRESSION;
		q.compression_type = 1;
	}
	if (o->lazy_refcounts)
		q.compat |= QCOW2_COMPAT_LAZY;
	q.backing_file = (char *)o->backing_file;
	q.backing_fmt = (char *)o->backing_fmt;
	int ret = file_truncate(f, total * cs);
	if (!ret)
		ret = qcow2_write_header(&q);
	if (ret == -ENOSPC)
		return cove_err_set(err, ret, "qcow2: backing file name too long for the header");
	if (ret)
		return cove_err_set(err, ret, "qcow2: cannot write the header");
	uint8_t *buf = calloc(rtc + nrb, cs);
	if (!buf)
		return -ENOMEM;
	for (uint64_t i = 0; i < nrb; i++)
		put64(buf + i * 8, (1 + rtc + i) * cs);
	for (uint64_t c = 0; c < total; c++)
		q2_rc_set_entry(&q, buf + rtc * cs + (c / rbe) * cs, c % rbe, 1);
	ret = file_pwrite(f, buf, (rtc + nrb) * cs, cs);
	free(buf);
	if (ret)
		return cove_err_set(err, ret, "qcow2: cannot write the refcount table");
	return 0;
}

int qcow2_preallocate(struct qcow2 *q, uint64_t from, uint64_t to, enum blk_prealloc pa)
{
	if (pa == BLK_PREALLOC_OFF || to <= from)
		return 0;
	uint64_t cs = q->cluster_size;
	unsigned cb = q->cluster_bits;
	uint64_t c = from >> cb, cend = div_up(to, cs);
	while (c < cend) {
		uint64_t l1i = c >> q->l2_bits;
		uint64_t n = min_u64(cend, (l1i + 1) << q->l2_bits) - c;
		uint8_t *l2;
		uint64_t l2off;
		int ret = q2_get_l2(q, l1i, true, &l2, &l2off);
		if (ret)
			return ret;
		for (uint64_t k = 0; k < n;) {
			uint64_t ci = (c + k) & (q->l2_entries - 1);
			uint64_t bm, e = q2_l2_get(q, l2, ci, &bm);
			if ((e & QCOW2_OFFSET_MASK) || (e & QCOW2_OFLAG_COMPRESSED)) {
				k++;
				continue;
			}
			uint64_t run = 1;
			while (k + run < n) {
				uint64_t e2 = q2_l2_get(q, l2, ci + run, NULL);
				if ((e2 & QCOW2_OFFSET_MASK) || (e2 & QCOW2_OFLAG_COMPRESSED))
					break;
				run++;
			}
			uint64_t off, got;
			ret = q2_alloc_clusters(q, run, &off, &got);
			if (ret)
				return ret;
			ret = q2_get_l2(q, l1i, true, &l2, &l2off);
			if (ret)
				return ret;
			for (uint64_t j = 0; j < got; j++)
				q2_l2_set(q, l2, ci + j, (off + j * cs) | QCOW2_OFLAG_COPIED,
					  q->extl2 ? 0xffffffffull : 0);
			q2_cache_mark_dirty(&q->l2c, l2off);
			if (pa == BLK_PREALLOC_FULL)
				ret = file_zero(&q->data, off, got * cs, false);
			else if (pa == BLK_PREALLOC_FALLOC)
				ret = file_zero(&q->data, off, got * cs, false);
			if (ret)
				return ret;
			k += got;
		}
		c += n;
	}
	q->data_unsynced = true;
	uint64_t fsz;
	int ret = file_size(q->file, &fsz);
	if (!ret && fsz < q->file_end)
		ret = file_truncate(q->file, q->file_end);
	return ret;
}

uint64_t qcow2_prealloc_size(uint64_t size, uint64_t cs, unsigned rorder, bool extl2)
{
	uint64_t aligned = div_up(size, cs) * cs;
	uint64_t esz = extl2 ? 16 : 8;
	uint64_t meta = cs;
	uint64_t nl2e = aligned / cs;
	nl2e = div_up(nl2e, cs / esz) * (cs / esz);
	meta += nl2e * esz;
	uint64_t nl1e = nl2e * esz / cs;
	nl1e = div_up(nl1e, cs / 8) * (cs / 8);
	meta += nl1e * 8;
	/* refcount table and blocks, as QEMU computes them */
	uint64_t clusters = (meta + aligned) / cs;
	uint64_t per_tbl = cs / 8, per_blk = cs * 8 / (1u << rorder);
	uint64_t table = 0, blocks = 0, n = 0, last;
	do {
		last = n;
		blocks = div_up(clusters + table + blocks, per_blk);
		table = div_up(blocks, per_tbl);
		n = clusters + blocks + table;
	} while (n != last);
	meta += (blocks + table) * cs;
	return meta + aligned;
}

/* Grows the active L1 table to hold n entries (moving it to new clusters when needed). */
static int grow_l1(struct qcow2 *q, uint64_t n)
{
	uint64_t cs = q->cluster_size;
	if (n <= q->l1_size)
		return 0;
	if (n * 8 > QCOW2_MAX_L1_BYTES)
		return -EFBIG;
	int ret = q2_flush_meta(q);
	if (ret)
		return ret;
	uint64_t have = div_up((uint64_t)q->l1_size * 8, cs), need = div_up(n * 8, cs);
	uint64_t *nl1 = calloc(need * cs / 8, 8);
	if (!nl1)
		return -ENOMEM;
	memcpy(nl1, q->l1, (uint64_t)q->l1_size * 8);
	uint64_t off = q->l1_offset;
	if (need > have || !q->l1_size) {
		uint64_t got;
		uint64_t save = q->free_hint;
		q->free_hint = q->file_end / cs;
		ret = q2_alloc_clusters(q, need, &off, &got);
		if (!ret && got != need)
			ret = -ENOSPC;
		if (save < q->free_hint)
			q->free_hint = save;
	}
	if (!ret) {
		uint64_t *be = malloc(need * cs);
		if (!be) {
			ret = -ENOMEM;
		} else {
			for (uint64_t i = 0; i < need * cs / 8; i++)
				be[i] = htobe64(nl1[i]);
			ret = file_pwrite(q->file, be, need * cs, off);
			free(be);
		}
	}
	if (!ret)
		ret = q2_flush_meta(q);
	if (!ret)
		ret = file_sync(q->file);
	if (ret) {
		free(nl1);
		return ret;
	}
	uint64_t old = q->l1_offset;
	free(q->l1);
	q->l1 = nl1;
	q->l1_alloc = (uint32_t)(need * cs / 8);
	q->l1_size = (uint32_t)n;
	q->l1_offset = off;
	ret = qcow2_write_header(q);
	if (!ret)
		ret = file_sync(q->file);
	if (!ret && off != old && have)
		ret = q2_refcount_update(q, old, have * cs, -1);
	return ret;
}

/*
 * Shrinking, first half: frees every cluster past the new end (the cluster that holds the
 * new end stays, as in qemu-img) and the L2 tables wholly past it. The discard path clears
 * the L2 entries, syncs them, and only then lowers the refcounts (q2_flush_meta), so a
 * crash in between leaks clusters at worst. The header keeps the old size until the
 * caller writes the new one: until then the tail reads as zeroes/backing.
 */
static int shrink_tail(struct blk *b, uint64_t size)
{
	struct qcow2 *q = b->q;
	uint64_t cs = q->cluster_size, per_l1 = q->l2_entries * cs;
	uint64_t from = div_up(size, cs) * cs;
	int ret = 0;
	for (uint64_t span = from; !ret && span < q->size;) {
		uint64_t l1i = span / per_l1, next = min_u64((l1i + 1) * per_l1, q->size);
		if (l1i < q->l1_size && (q->l1[l1i] & QCOW2_L1_OFFSET_MASK))
			ret = qcow2_zero(b, span, next - span, false, true);
		span = next;
	}
	if (!ret)
		ret = q2_flush_meta(q);
	for (uint64_t i = div_up(size, per_l1); !ret && i < q->l1_size; i++) {
		uint64_t o = q->l1[i] & QCOW2_L1_OFFSET_MASK;
		if (!o)
			continue;
		q2_cache_drop(&q->l2c, o);
		q2_set_l1(q, i, 0);
		ret = q2_free_later(q, o, cs);
	}
	if (!ret)
		ret = q2_drop_unused_refblocks(q);
	return ret;
}

/* Shrinking, second half (after the header has the new size): cuts the file after the
 * last cluster still in use, as qemu-img does. */
static int trim_file(struct qcow2 *q)
{
	uint64_t cs = q->cluster_size, c = q->file_end / cs;
	while (c > 1) {
		uint64_t rc;
		int ret = q2_refcount_get(q, c - 1, &rc);
		if (ret)
			return ret;
		if (rc)
			break;
		c--;
	}
	if (c * cs >= q->file_end)
		return 0;
	int ret = file_truncate(q->file, c * cs);
	if (ret)
		return ret;
	q->file_end = c * cs;
	/* Past the cut the file reads as zeroes again: fresh clusters there need no zero fill. */
	if (q->phys_end > c * cs)
		q->phys_end = c * cs;
	if (q->free_hint > c)
		q->free_hint = c;
	return file_sync(q->file);
}

int qcow2_resize(struct blk *b, uint64_t size, bool shrink, enum blk_prealloc pa,
		 struct cove_err *err)
{
	struct qcow2 *q = b->q;
	uint64_t cs = q->cluster_size;
	if (q->incompat & QCOW2_INCOMPAT_CORRUPT)
		return cove_err_set(err, -EROFS, "qcow2: image is marked corrupt");
	if (q->nsnaps)
		return cove_err_set(err, -ENOTSUP, "qcow2: cannot resize an image with snapshots");
	if (size > (1ull << 62))
		return cove_err_set(err, -EFBIG, "qcow2: size too large");
	uint64_t per_l1 = q->l2_entries * cs;
	int ret;
	if (size < q->size) {
		if (!shrink)
			return cove_err_set(err, -EBUSY,
					    "shrinking needs the shrink option (data past the new "
					    "end would be lost)");
		ret = shrink_tail(b, size);
	} else {
		ret = grow_l1(q, div_up(size, per_l1));
	}
	if (ret)
		return cove_err_set(err, ret, "qcow2: resize failed");
	uint64_t old = q->size;
	q->size = size;
	b->size = size;
	ret = qcow2_write_header(q);
	if (!ret)
		ret = file_sync(q->file);
	if (!ret && size < old)
		ret = trim_file(q);
	if (!ret && size > old)
		ret = qcow2_preallocate(q, old, size, pa);
	if (!ret)
		ret = qcow2_flush(b);
	if (ret)
		return cove_err_set(err, ret, "qcow2: resize failed");
	return 0;
}

int qcow2_set_backing(struct blk *b, const char *file, const char *fmt, struct cove_err *err)
{
	struct qcow2 *q = b->q;
	char *nf = file && *file ? strdup(file) : NULL;
	char *nfmt = nf && fmt && *fmt ? strdup(fmt) : NULL;
	if ((file && *file && !nf) || (nf && fmt && *fmt && !nfmt)) {
		free(nf);
		return -ENOMEM;
	}
	char *of = q->backing_file, *ofmt = q->backing_fmt;
	q->backing_file = nf;
	q->backing_fmt = nfmt;
	int ret = q2_flush_meta(q);
	if (!ret)
		ret = qcow2_write_header(q);
	if (!ret)
		ret = file_sync(q->file);
	if (ret) {
		q->backing_file = of;
		q->backing_fmt = ofmt;
		free(nf);
		free(nfmt);
		if (ret == -ENOSPC)
			return cove_err_set(err, ret,
					    "qcow2: backing file name too long for the header");
		return cove_err_set(err, ret, "qcow2: cannot write the header");
	}
	free(of);
	free(ofmt);
	/* Reads now go to the new backing file, when it can be opened. */
	blk_close(b->backing);
	b->backing = NULL;
	if (nf) {
		struct blk_open_opts bo = {.readonly = true};
		if (nfmt)
			blk_format_parse(nfmt, &bo.format);
		char *p = blk_resolve_relative(b->filename, nf);
		if (p) {
			struct cove_err e2 = {0};
			struct blk_chain me = {b->dev, b->ino, NULL};
			blk_open_depth(p, &bo, 1, &me, &b->backing, &e2);
			free(p);
		}
	}
	return 0;
}

/* v3 → v2: zero clusters have no encoding in version 2. */
static int expand_zero_clusters(struct qcow2 *q)
{
	uint64_t cs = q->cluster_size;
	for (uint32_t i = 0; i < q->l1_size; i++) {
		for (uint64_t j = 0; j < q->l2_entries; j++) {
			uint8_t *l2;
			uint64_t l2off;
			int ret = q2_get_l2(q, i, false, &l2, &l2off);
			if (ret)
				return ret;
			if (!l2)
				break;
			uint64_t e = q2_l2_get(q, l2, j, NULL);
			if ((e & QCOW2_OFLAG_COMPRESSED) || !(e & QCOW2_OFLAG_ZERO))
				continue;
			uint64_t guest = (((uint64_t)i << q->l2_bits) + j) * cs;
			if (guest >= q->size)
				break;
			if (!q->b->backing && !(e & QCOW2_OFFSET_MASK)) {
				ret = q2_get_l2(q, i, true, &l2, &l2off);
				if (ret)
					return ret;
				q2_l2_set(q, l2, j, 0, 0);
				q2_cache_mark_dirty(&q->l2c, l2off);
				continue;
			}
			/* Write real zeroes (allocates or reuses the cluster) */
			struct iovec v = {q->zero_buf, min_u64(cs, q->size - guest)};
			uint32_t v_save = q->version;
			ret = qcow2_pwritev(q->b, &v, 1, guest, v.iov_len);
			q->version = v_save;
			if (ret)
				return ret;
		}
	}
	return q2_flush_meta(q);
}

int qcow2_amend(struct blk *b, const struct blk_create_opts *o, struct cove_err *err)
{
	struct qcow2 *q = b->q;
	int ret;
	if (q->incompat & QCOW2_INCOMPAT_CORRUPT)
		return cove_err_set(err, -EROFS, "qcow2: image is marked corrupt");
	if (o->cluster_size && o->cluster_size != q->cluster_size)
		return cove_err_set(err, -ENOTSUP, "qcow2: amend cannot change cluster_size");
	if (o->extended_l2 != q->extl2)
		return cove_err_set(err, -ENOTSUP, "qcow2: amend cannot change extended_l2");
	if ((o->compression == BLK_COMPRESS_ZSTD) != (q->compression_type == 1))
		return cove_err_set(err, -ENOTSUP, "qcow2: amend cannot change compression_type");
	if (o->data_file)
		return cove_err_set(err, -ENOTSUP, "qcow2: amend cannot change data_file");
	unsigned want_v = o->compat_v2 ? 2 : 3;
	unsigned want_bits = o->refcount_bits ? o->refcount_bits : q->refcount_bits;
	if (want_v == 2 && (want_bits != 16 || o->lazy_refcounts))
		return cove_err_set(
		    err, -EINVAL,
		    "qcow2: compat=0.10 needs refcount_bits=16 and no lazy_refcounts");
	if (want_bits > 64 || (want_bits & (want_bits - 1)))
		return cove_err_set(err, -EINVAL, "refcount_bits must be a power of two up to 64");
	ret = qcow2_flush(b);
	if (ret)
		return cove_err_set(err, ret, "qcow2: flush failed");
	if (want_bits != q->refcount_bits) {
		ret = q2_rebuild_refcounts(q, (unsigned)__builtin_ctz(want_bits), err);
		if (ret)
			return ret;
	}
	if (want_v == 2 && q->version == 3) {
		if (q->nsnaps)
			return cove_err_set(err, -ENOTSUP,
					    "qcow2: downgrade to compat=0.10 with snapshots is not "
					    "supported");
		if (q->incompat & ~QCOW2_INCOMPAT_DIRTY)
			return cove_err_set(err, -ENOTSUP,
					    "qcow2: the image uses features version 2 lacks");
		ret = expand_zero_clusters(q);
		if (ret)
			return cove_err_set(err, ret, "qcow2: cannot expand zero clusters");
		q->version = 2;
		q->incompat = q->compat = q->autoclear = 0;
		q->dirty_bit_set = false;
	} else if (want_v == 3 && q->version == 2) {
		q->version = 3;
	}
	if (q->version == 3) {
		if (o->lazy_refcounts)
			q->compat |= QCOW2_COMPAT_LAZY;
		else
			q->compat &= ~QCOW2_COMPAT_LAZY;
		if (!o->lazy_refcounts && q->dirty_bit_set) {
			q->incompat &= ~QCOW2_INCOMPAT_DIRTY;
			q->dirty_bit_set = false;
		}
	}
	ret = qcow2_write_header(q);
	if (!ret)
		ret = file_sync(q->file);
	if (ret)
		return cove_err_set(err, ret, "qcow2: cannot write the header");
	if (o->backing_file &&
	    (!q->backing_file || strcmp(o->backing_file, q->backing_file) ||
	     (o->backing_fmt && (!q->backing_fmt || strcmp(o->backing_fmt, q->backing_fmt)))))
		return qcow2_set_backing(b, o->backing_file, o->backing_fmt, err);
	return 0;
}
