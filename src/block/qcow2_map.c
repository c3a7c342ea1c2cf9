/* qcow2: the L1/L2 tables (lookup, allocation of L2 tables), guest reads and block status. */
#include "block/qcow2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t q2_l2_get(const struct qcow2 *q, const uint8_t *l2, uint64_t i, uint64_t *bitmap)
{
	const uint8_t *p = l2 + i * q->l2_entry_size;
	if (bitmap)
		*bitmap = q->extl2 ? be64(p + 8) : 0;
	return be64(p);
}

void q2_l2_set(const struct qcow2 *q, uint8_t *l2, uint64_t i, uint64_t e, uint64_t bitmap)
{
	uint8_t *p = l2 + i * q->l2_entry_size;
	put64(p, e);
	if (q->extl2)
		put64(p + 8, bitmap);
}

void q2_compressed_range(const struct qcow2 *q, uint64_t e, uint64_t *off, uint64_t *len)
{
	unsigned x = 62 - (q->cluster_bits - 8);
	*off = e & ((1ull << x) - 1);
	uint64_t nsec = ((e >> x) & ((1ull << (q->cluster_bits - 8)) - 1)) + 1;
	*len = nsec * 512 - (*off & 511);
}

int q2_set_l1(struct qcow2 *q, uint64_t i, uint64_t v)
{
	q->l1[i] = v;
	if (!q->l1_dirty) {
		q->l1_dlo = q->l1_dhi = (uint32_t)i;
		q->l1_dirty = true;
	} else {
		if (i < q->l1_dlo)
			q->l1_dlo = (uint32_t)i;
		if (i > q->l1_dhi)
			q->l1_dhi = (uint32_t)i;
	}
	return 0;
}

int q2_write_l1(struct qcow2 *q)
{
	if (!q->l1_dirty)
		return 0;
	uint64_t lo = q->l1_dlo, n = (uint64_t)q->l1_dhi - lo + 1;
	uint64_t *tmp = malloc(n * 8);
	if (!tmp)
		return -ENOMEM;
	for (uint64_t i = 0; i < n; i++)
		tmp[i] = htobe64(q->l1[lo + i]);
	int ret = file_pwrite(q->file, tmp, n * 8, q->l1_offset + lo * 8);
	free(tmp);
	if (!ret)
		q->l1_dirty = false;
	return ret;
}

/* May guest data be written in place at host cluster h (refcount exactly one, no metadata)? */
static int inplace_check(struct qcow2 *q, uint64_t h)
{
	if (h % q->cluster_size || h < q->cluster_size)
		return -EIO;
	uint64_t rc;
	int ret = q2_refcount_get(q, h >> q->cluster_bits, &rc);
	if (ret)
		return ret;
	if (rc != 1)
		return rc == 0 ? -EIO : 0;
	if (h >= q->l1_offset && h < q->l1_offset + (uint64_t)q->l1_size * 8)
		return -EIO;
	if (h >= q->rt_offset && h < q->rt_offset + (uint64_t)q->rt_clusters * q->cluster_size)
		return -EIO;
	for (unsigned i = 0; i < q->nsnaps; i++)
		if (h >= q->snaps[i].l1_offset &&
		    h < q->snaps[i].l1_offset + (uint64_t)q->snaps[i].l1_size * 8)
			return -EIO;
	return 1;
}

/* Marks the image corrupt (as QEMU does) so that nothing writes to it until check -r all. */
static void mark_corrupt(struct qcow2 *q)
{
	if (q->b->readonly || (q->incompat & (QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DIRTY)) ||
	    q->version < 3 || q->in_check)
		return;
	q->incompat |= QCOW2_INCOMPAT_CORRUPT;
	if (!qcow2_write_header(q))
		file_sync(q->file);
}

int q2_inplace_ok(struct qcow2 *q, uint64_t h)
{
	int ret = inplace_check(q, h);
	if (ret == -EIO)
		mark_corrupt(q);
	return ret;
}

int q2_get_l2(struct qcow2 *q, uint64_t l1i, bool alloc, uint8_t **l2, uint64_t *l2off)
{
	uint64_t cs = q->cluster_size;
	*l2 = NULL;
	if (l1i >= q->l1_size)
		return alloc ? -EINVAL : 0;
	uint64_t e = q->l1[l1i], off = e & QCOW2_L1_OFFSET_MASK;
	if (off % cs)
		return -EIO;
	if (!off && !alloc)
		return 0;
	if (off && alloc && (e & QCOW2_OFLAG_COPIED)) {
		/* About to modify it: it must be ours alone and not other metadata. */
		int ret = q2_inplace_ok(q, off);
		if (ret < 0)
			return ret;
		if (ret == 0)
			e &= ~QCOW2_OFLAG_COPIED;
	}
	if (off && (!alloc || (e & QCOW2_OFLAG_COPIED))) {
		*l2off = off;
		return q2_cache_get(q, &q->l2c, off, false, l2);
	}
	/* A new table, or a copy of one shared with a snapshot. */
	uint64_t noff, got;
	int ret = q2_alloc_clusters(q, 1, &noff, &got);
	if (ret)
		return ret;
	if (off) {
		uint8_t *old;
		ret = q2_cache_get(q, &q->l2c, off, false, &old);
		if (ret)
			return ret;
		memcpy(q->ctmp, old, cs);
		ret = q2_cache_get(q, &q->l2c, noff, true, l2);
		if (ret)
			return ret;
		memcpy(*l2, q->ctmp, cs);
		ret = q2_free_later(q, off, cs);
		if (ret)
			return ret;
	} else {
		ret = q2_cache_get(q, &q->l2c, noff, true, l2);
		if (ret)
			return ret;
	}
	q2_set_l1(q, l1i, noff | QCOW2_OFLAG_COPIED);
	*l2off = noff;
	return 0;
}

/* Status of subcluster sc of entry (e, bm). */
static enum q2_kind unit_kind(const struct qcow2 *q, uint64_t e, uint64_t bm, unsigned sc,
			      uint64_t *host)
{
	*host = 0;
	if (e & QCOW2_OFLAG_COMPRESSED) {
		*host = e;
		return Q2_COMPRESSED;
	}
	uint64_t off = e & QCOW2_OFFSET_MASK;
	if (q->extl2) {
		if (bm & (1ull << sc)) {
			*host = off + ((uint64_t)sc << q->sc_bits);
			return Q2_DATA;
		}
		if (!(bm & (1ull << (sc + 32)))) {
			*host = off ? off + ((uint64_t)sc << q->sc_bits) : 0;
			return off ? Q2_UNALLOC_ALLOC : Q2_UNALLOC;
		}
		*host = off ? off + ((uint64_t)sc << q->sc_bits) : 0;
		return off ? Q2_ZERO_ALLOC : Q2_ZERO;
	}
	if (q->version >= 3 && (e & QCOW2_OFLAG_ZERO)) {
		*host = off;
		return off ? Q2_ZERO_ALLOC : Q2_ZERO;
	}
	if (!off && !(q->ext_data && (e & QCOW2_OFLAG_COPIED)))
		return Q2_UNALLOC;
	*host = off;
	return Q2_DATA;
}

/* Maps guest pos: the kind, host offset (of pos, for DATA) and how far the same mapping runs. */
int q2_map(struct qcow2 *q, uint64_t pos, uint64_t maxlen, enum q2_kind *kind, uint64_t *host,
	   uint64_t *run)
{
	unsigned cb = q->cluster_bits;
	uint64_t l1i = pos >> (cb + q->l2_bits);
	uint64_t span_end = (l1i + 1) << (cb + q->l2_bits);
	uint64_t limit = min_u64(pos + maxlen, span_end);
	uint8_t *l2;
	uint64_t l2off;
	int ret = q2_get_l2(q, l1i, false, &l2, &l2off);
	if (ret)
		return ret;
	if (!l2) {
		*kind = Q2_UNALLOC;
		*host = 0;
		*run = limit - pos;
		return 0;
	}
	uint64_t ci = (pos >> cb) & (q->l2_entries - 1);
	uint64_t bm, e = q2_l2_get(q, l2, ci, &bm);
	unsigned sc = (unsigned)((pos & (q->cluster_size - 1)) >> q->sc_bits);
	uint64_t h;
	enum q2_kind k = unit_kind(q, e, bm, sc, &h);
	bool hosted = k == Q2_DATA || k == Q2_ZERO_ALLOC || k == Q2_UNALLOC_ALLOC;
	if (hosted && (e & QCOW2_OFFSET_MASK) % q->cluster_size)
		return -EIO;
	if (k == Q2_COMPRESSED) {
		if (q->ext_data)
			return -EIO;
		*kind = k;
		*host = e;
		*run = min_u64(limit, ((pos >> cb) + 1) << cb) - pos;
		return 0;
	}
	*kind = k;
	*host = hosted ? h + (pos & (q->sc_size - 1)) : 0;
	/* Extend over following units with the same kind (and contiguous host offsets). */
	uint64_t u = ((pos >> q->sc_bits) + 1) << q->sc_bits;
	uint64_t expect = hosted ? h + q->sc_size : 0;
	while (u < limit) {
		uint64_t uci = (u >> cb) & (q->l2_entries - 1);
		if (uci != ci) {
			ci = uci;
			e = q2_l2_get(q, l2, ci, &bm);
			if (hosted && (e & QCOW2_OFFSET_MASK) % q->cluster_size)
				break;
		}
		unsigned usc = (unsigned)((u & (q->cluster_size - 1)) >> q->sc_bits);
		enum q2_kind uk = unit_kind(q, e, bm, usc, &h);
		if (uk != k || (hosted && h != expect))
			break;
		expect += q->sc_size;
		u += q->sc_size;
	}
	*run = min_u64(u, limit) - pos;
	return 0;
}

typedef int (*vec_fn)(void *ctx, const struct iovec *iov, int n, uint64_t off);

static int sliced(vec_fn fn, void *ctx, const struct iovec *iov, int iovcnt, uint64_t ioff,
		  uint64_t len, uint64_t off)
{
	struct iovec loc[BLK_IOV_BATCH];
	while (len) {
		uint64_t got;
		int n = iov_slice(iov, iovcnt, ioff, len, loc, BLK_IOV_BATCH, &got);
		if (!n || !got)
			return -EINVAL;
		int ret = fn(ctx, loc, n, off);
		if (ret)
			return ret;
		ioff += got;
		off += got;
		len -= got;
	}
	return 0;
}

static int file_rd(void *ctx, const struct iovec *iov, int n, uint64_t off)
{
	return file_preadv(ctx, iov, n, off);
}

static int blk_rd(void *ctx, const struct iovec *iov, int n, uint64_t off)
{
	return blk_preadv(ctx, iov, n, off);
}

static int read_compressed(struct qcow2 *q, uint64_t e)
{
	if (q->cbuf_off == e)
		return 0;
	uint64_t coff, clen;
	q2_compressed_range(q, e, &coff, &clen);
	q->cbuf_off = ~0ull;
	int ret = file_pread(q->file, q->ctmp, clen, coff);
	if (ret)
		return ret;
	ret = q2_decompress(q, q->ctmp, clen, q->cbuf, q->cluster_size);
	if (ret)
		return ret;
	q->cbuf_off = e;
	return 0;
}

int qcow2_preadv(struct blk *b, const struct iovec *iov, int iovcnt, uint64_t off, uint64_t len)
{
	struct qcow2 *q = b->q;
	uint64_t done = 0;
	while (done < len) {
		uint64_t pos = off + done, host, run;
		enum q2_kind k;
		int ret = q2_map(q, pos, len - done, &k, &host, &run);
		if (ret)
			return ret;
		switch (k) {
		case Q2_DATA:
			ret = sliced(file_rd, &q->data, iov, iovcnt, done, run, host);
			break;
		case Q2_ZERO:
		case Q2_ZERO_ALLOC:
			iov_memset(iov, iovcnt, done, 0, run);
			break;
		case Q2_UNALLOC:
		case Q2_UNALLOC_ALLOC: {
			uint64_t n = 0;
			if (b->backing && pos < b->backing->size)
				n = min_u64(run, b->backing->size - pos);
			if (n)
				ret = sliced(blk_rd, b->backing, iov, iovcnt, done, n, pos);
			if (!ret && n < run)
				iov_memset(iov, iovcnt, done + n, 0, run - n);
			break;
		}
		case Q2_COMPRESSED:
			ret = read_compressed(q, host);
			if (!ret)
				iov_from_buf(iov, iovcnt, done,
					     q->cbuf + (pos & (q->cluster_size - 1)), run);
			break;
		}
		if (ret)
			return ret;
		done += run;
	}
	return 0;
}

int q2_pread(struct qcow2 *q, void *buf, uint64_t len, uint64_t off)
{
	struct iovec v = {buf, len};
	return len ? qcow2_preadv(q->b, &v, 1, off, len) : 0;
}

int qcow2_block_status(struct blk *b, uint64_t off, uint64_t len, struct blk_status *st)
{
	struct qcow2 *q = b->q;
	enum q2_kind k;
	uint64_t host, run;
	int ret = q2_map(q, off, len, &k, &host, &run);
	if (ret)
		return ret;
	st->len = run;
	st->depth = 0;
	st->file_name = q->ext_data ? q->data_file : b->filename;
	st->file_offset = 0;
	switch (k) {
	case Q2_DATA:
		st->flags = BLK_STATUS_DATA | BLK_STATUS_ALLOCATED | BLK_STATUS_OFFSET;
		st->file_offset = host;
		break;
	case Q2_ZERO:
		st->flags = BLK_STATUS_ZERO | BLK_STATUS_ALLOCATED;
		break;
	case Q2_ZERO_ALLOC: /* preallocated zeroes: qemu-img map shows their offset */
		st->flags = BLK_STATUS_ZERO | BLK_STATUS_ALLOCATED | BLK_STATUS_OFFSET;
		st->file_offset = host;
		break;
	case Q2_COMPRESSED:
		st->flags = BLK_STATUS_DATA | BLK_STATUS_ALLOCATED | BLK_STATUS_COMPRESSED;
		break;
	case Q2_UNALLOC:
	case Q2_UNALLOC_ALLOC:
		if (b->backing && off < b->backing->size) {
			struct blk_status bs;
			ret = blk_block_status(b->backing, off,
					       min_u64(run, b->backing->size - off), &bs);
			if (ret)
				return ret;
			*st = bs;
			st->depth = bs.depth + 1;
			st->flags &= ~BLK_STATUS_ALLOCATED;
			return 0;
		}
		st->flags = BLK_STATUS_ZERO; /* past the backing file's end: depth 0, as QEMU */
		if (k == Q2_UNALLOC_ALLOC && !b->backing) {
			/* a subcluster of an allocated cluster: qemu-img map shows its offset */
			st->flags |= BLK_STATUS_OFFSET;
			st->file_offset = host;
		}
		break;
	}
	return 0;
}
