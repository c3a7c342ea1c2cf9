/* qcow2: guest writes (allocation, copy-on-write, fills), zeroes, discards, compressed clusters. */
#include "block/qcow2.h"
#include "util/zero.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

static int lazy_mark_dirty(struct qcow2 *q)
{
	if (!(q->compat & QCOW2_COMPAT_LAZY) || q->dirty_bit_set || q->version < 3)
		return 0;
	q->incompat |= QCOW2_INCOMPAT_DIRTY;
	int ret = qcow2_write_header(q);
	if (!ret)
		ret = file_sync(q->file);
	if (!ret)
		q->dirty_bit_set = true;
	return ret;
}

static int check_writable(struct qcow2 *q)
{
	if (q->b->readonly)
		return -EROFS;
	if (q->incompat & QCOW2_INCOMPAT_CORRUPT)
		return -EROFS;
	return lazy_mark_dirty(q);
}

int qcow2_fast_extent(struct blk *b, uint64_t off, uint64_t len, bool write, uint64_t *host)
{
	struct qcow2 *q = b->q;
	enum q2_kind k;
	uint64_t run;
	int ret = q2_map(q, off, len, &k, host, &run);
	if (ret || k != Q2_DATA || run < len)
		return 0;
	if (!write)
		return 1;
	if (b->readonly || (q->incompat & QCOW2_INCOMPAT_CORRUPT) || q->ext_data ||
	    ((q->compat & QCOW2_COMPAT_LAZY) && !q->dirty_bit_set && q->version >= 3))
		return 0;
	/* Every cluster in place: COPIED, refcount one, no metadata under it. */
	unsigned cb = q->cluster_bits;
	for (uint64_t c = off >> cb; c <= (off + len - 1) >> cb; c++) {
		uint8_t *l2;
		uint64_t l2off;
		if (q2_get_l2(q, c >> q->l2_bits, false, &l2, &l2off) || !l2)
			return 0;
		uint64_t e = q2_l2_get(q, l2, c & (q->l2_entries - 1), NULL);
		if (!(e & QCOW2_OFLAG_COPIED) || (e & QCOW2_OFLAG_COMPRESSED))
			return 0;
		if (q2_inplace_ok(q, e & QCOW2_OFFSET_MASK) != 1)
			return 0;
	}
	return 1;
}

struct wc {
	uint64_t e, bm, host;
	uint32_t ws, we, fs, fe; /* written range; range made valid (filled) */
	uint32_t ds, de;	 /* range actually sent to the file */
	bool fresh, full;
};

static int write_chunk(struct qcow2 *q, const struct iovec *iov, int iovcnt, uint64_t ioff,
		       uint64_t start, uint64_t end)
{
	uint64_t cs = q->cluster_size, scs = q->sc_size;
	unsigned cb = q->cluster_bits;
	uint64_t l1i = start >> (cb + q->l2_bits);
	uint8_t *l2;
	uint64_t l2off;
	int ret = q2_get_l2(q, l1i, true, &l2, &l2off);
	if (ret)
		return ret;
	uint64_t c0 = start >> cb, c1 = (end - 1) >> cb, n = c1 - c0 + 1;
	struct wc *w = calloc(n, sizeof(*w));
	uint8_t *head = NULL, *tail = NULL;
	if (!w)
		return -ENOMEM;
	uint64_t nfresh = 0;
	for (uint64_t k = 0; k < n; k++) {
		struct wc *x = &w[k];
		uint64_t ci = (c0 + k) & (q->l2_entries - 1);
		x->e = q2_l2_get(q, l2, ci, &x->bm);
		x->ws = k == 0 ? (uint32_t)(start & (cs - 1)) : 0;
		x->we = k == n - 1 ? (uint32_t)(((end - 1) & (cs - 1)) + 1) : (uint32_t)cs;
		uint64_t h = x->e & QCOW2_OFFSET_MASK;
		bool comp = x->e & QCOW2_OFLAG_COMPRESSED;
		bool inplace = false;
		if (q->ext_data) {
			if (comp) {
				ret = -EIO;
				goto out;
			}
			inplace = true;
			h = (c0 + k) << cb;
		} else if (!comp && h && (x->e & QCOW2_OFLAG_COPIED)) {
			ret = q2_inplace_ok(q, h);
			if (ret < 0)
				goto out;
			inplace = ret == 1;
			ret = 0;
		}
		x->fs = x->ws;
		x->fe = x->we;
		if (inplace) {
			x->host = h;
			if (q->extl2) {
				unsigned s0 = x->ws >> q->sc_bits, s1 = (x->we - 1) >> q->sc_bits;
				if (!(x->bm & (1ull << s0)))
					x->fs = (uint32_t)(x->ws & ~(scs - 1));
				if (!(x->bm & (1ull << s1)))
					x->fe =
					    (uint32_t)min_u64(cs, (x->we + scs - 1) & ~(scs - 1));
			} else if ((q->version >= 3 && (x->e & QCOW2_OFLAG_ZERO)) ||
				   (q->ext_data && !(x->e & QCOW2_OFLAG_COPIED))) {
				/* reads as zero (or backing) until now: fill the whole cluster */
				x->fs = 0;
				x->fe = (uint32_t)cs;
			}
		} else {
			x->fresh = true;
			nfresh++;
			if (!q->extl2 || comp || (h && (x->bm & 0xffffffffull))) {
				x->fs = 0;
				x->fe = (uint32_t)cs;
				x->full = true;
			} else {
				x->fs = (uint32_t)(x->ws & ~(scs - 1));
				x->fe = (uint32_t)min_u64(cs, (x->we + scs - 1) & ~(scs - 1));
			}
		}
	}
	/* Old contents around the written range (only the first and last cluster have any). */
	if (w[0].fs < w[0].ws) {
		head = malloc(w[0].ws - w[0].fs);
		if (!head) {
			ret = -ENOMEM;
			goto out;
		}
		ret = q2_pread(q, head, w[0].ws - w[0].fs, (c0 << cb) + w[0].fs);
		if (ret)
			goto out;
	}
	if (w[n - 1].fe > w[n - 1].we) {
		tail = malloc(w[n - 1].fe - w[n - 1].we);
		if (!tail) {
			ret = -ENOMEM;
			goto out;
		}
		ret = q2_pread(q, tail, w[n - 1].fe - w[n - 1].we, (c1 << cb) + w[n - 1].we);
		if (ret)
			goto out;
	}
	uint64_t phys_end = q->phys_end; /* before anything of this request is written */
	/* New clusters, in as few contiguous runs as the allocator gives. */
	for (uint64_t k = 0, left = nfresh; left;) {
		uint64_t off, got;
		ret = q2_alloc_clusters(q, left, &off, &got);
		if (ret)
			goto out;
		for (; got && k < n; k++) {
			if (!w[k].fresh)
				continue;
			w[k].host = off;
			off += cs;
			got--;
			left--;
		}
	}
	/* A fresh cluster that was never written reads as zero: zero fills need not be sent. */
	for (uint64_t k = 0; k < n; k++) {
		w[k].ds = w[k].fs;
		w[k].de = w[k].fe;
	}
	bool never = !q->ext_data && q->data.wend;
	if (never && w[0].fresh && head && w[0].host >= phys_end &&
	    mem_is_zero(head, w[0].ws - w[0].fs))
		w[0].ds = w[0].ws;
	if (never && w[n - 1].fresh && tail && w[n - 1].host >= phys_end &&
	    mem_is_zero(tail, w[n - 1].fe - w[n - 1].we))
		w[n - 1].de = w[n - 1].we;
	/* Data: one pwritev per contiguous host run. */
	{
		struct iovec v[BLK_IOV_BATCH];
		int nv = 0;
		uint64_t run_start = 0, run_end = 0;
		uint64_t io = ioff;
		for (uint64_t k = 0; k <= n; k++) {
			struct wc *x = k < n ? &w[k] : NULL;
			uint64_t dst = x ? x->host + x->ds : 0;
			if (nv && (!x || dst != run_end || nv + 3 + 1 > BLK_IOV_BATCH)) {
				ret = file_pwritev(&q->data, v, nv, run_start);
				if (ret)
					goto out;
				nv = 0;
			}
			if (!x)
				break;
			if (!nv)
				run_start = run_end = dst;
			if (k == 0 && x->ds < x->ws)
				v[nv++] = (struct iovec){head, x->ws - x->ds};
			uint64_t got;
			int m = iov_slice(iov, iovcnt, io, x->we - x->ws, v + nv,
					  BLK_IOV_BATCH - 2 - nv, &got);
			if (got != x->we - x->ws) {
				/* Too many pieces: write what we have, then the rest alone. */
				nv += m;
				ret = file_pwritev(&q->data, v, nv, run_start);
				if (ret)
					goto out;
				struct iovec rest[BLK_IOV_BATCH];
				uint64_t rem = x->we - x->ws - got,
					 roff = dst + (x->ws - x->ds) + got;
				uint64_t rio = io + got;
				while (rem) {
					uint64_t g;
					int rm = iov_slice(iov, iovcnt, rio, rem, rest,
							   BLK_IOV_BATCH, &g);
					ret = file_pwritev(&q->data, rest, rm, roff);
					if (ret)
						goto out;
					rem -= g;
					roff += g;
					rio += g;
				}
				nv = 0;
				run_start = x->host + x->we;
			} else {
				nv += m;
			}
			io += x->we - x->ws;
			if (k == n - 1 && x->de > x->we)
				v[nv++] = (struct iovec){tail, x->de - x->we};
			run_end = x->host + x->de;
			if (!nv)
				run_start = run_end;
		}
	}
	if (nfresh)
		q->data_unsynced = true;
	/* O_DIRECT: a fresh cluster at the end of the file whose zero tail was not sent leaves
	 * the file ending inside it, and every later write there would extend the file, which
	 * the filesystem runs one at a time (ext4 completes extending direct writes
	 * synchronously). Allocating the tail (it still reads as zero) keeps them parallel. */
	if (never && q->data.direct && w[n - 1].fresh && w[n - 1].de < cs &&
	    w[n - 1].host >= phys_end)
		(void)fallocate(q->data.fd, 0, (off_t)(w[n - 1].host + w[n - 1].de),
				(off_t)(cs - w[n - 1].de));
	/* Metadata: the L2 entries (in the cache) and deferred frees of replaced clusters. */
	ret = q2_get_l2(q, l1i, true, &l2, &l2off);
	if (ret)
		goto out;
	for (uint64_t k = 0; k < n; k++) {
		struct wc *x = &w[k];
		uint64_t ci = (c0 + k) & (q->l2_entries - 1);
		uint64_t bm = x->bm;
		if (q->extl2) {
			if (x->full) {
				bm = 0xffffffffull;
			} else {
				unsigned s0 = x->fs >> q->sc_bits, s1 = (x->fe - 1) >> q->sc_bits;
				for (unsigned s = s0; s <= s1; s++) {
					bm |= 1ull << s;
					bm &= ~(1ull << (s + 32));
				}
			}
		}
		uint64_t ne = (q->ext_data ? ((c0 + k) << cb) : x->host) | QCOW2_OFLAG_COPIED;
		q2_l2_set(q, l2, ci, ne, bm);
		if (x->fresh && !q->ext_data) {
			uint64_t oh = x->e & QCOW2_OFFSET_MASK;
			if (x->e & QCOW2_OFLAG_COMPRESSED) {
				uint64_t co, cl;
				q2_compressed_range(q, x->e, &co, &cl);
				ret = q2_free_later(q, co, cl);
			} else if (oh) {
				ret = q2_free_later(q, oh, cs);
			}
			if (ret)
				goto out;
		}
	}
	q2_cache_mark_dirty(&q->l2c, l2off);
	q->cbuf_off = ~0ull;
out:
	free(head);
	free(tail);
	free(w);
	return ret;
}

int qcow2_pwritev(struct blk *b, const struct iovec *iov, int iovcnt, uint64_t off, uint64_t len)
{
	struct qcow2 *q = b->q;
	int ret = check_writable(q);
	if (ret)
		return ret;
	uint64_t span = 1ull << (q->cluster_bits + q->l2_bits);
	uint64_t done = 0;
	while (done < len) {
		uint64_t pos = off + done;
		uint64_t n = min_u64(len - done, ((pos / span) + 1) * span - pos);
		ret = write_chunk(q, iov, iovcnt, done, pos, pos + n);
		if (ret)
			return ret;
		done += n;
	}
	return 0;
}

static int write_zero_bytes(struct qcow2 *q, uint64_t off, uint64_t len)
{
	while (len) {
		uint64_t n = min_u64(len, q->cluster_size);
		struct iovec v = {q->zero_buf, n};
		int ret = qcow2_pwritev(q->b, &v, 1, off, n);
		if (ret)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

/* One whole cluster made to read as zero (or deallocated). */
static int zero_cluster(struct qcow2 *q, uint64_t guest, bool unmap, bool discard)
{
	uint64_t cs = q->cluster_size;
	uint64_t l1i = guest >> (q->cluster_bits + q->l2_bits);
	uint8_t *l2;
	uint64_t l2off;
	int ret;
	if (discard || (q->version < 3 && !q->b->backing && unmap)) {
		ret = q2_get_l2(q, l1i, false, &l2, &l2off);
		if (ret || !l2)
			return ret;
		/* An unallocated L1 span is already deallocated. */
		if (!(q->l1[l1i] & QCOW2_OFLAG_COPIED)) {
			ret = q2_get_l2(q, l1i, true, &l2, &l2off);
			if (ret)
				return ret;
		}
	} else if (q->version < 3) {
		return write_zero_bytes(q, guest, cs);
	} else {
		ret = q2_get_l2(q, l1i, true, &l2, &l2off);
		if (ret)
			return ret;
	}
	uint64_t ci = (guest >> q->cluster_bits) & (q->l2_entries - 1);
	uint64_t bm, e = q2_l2_get(q, l2, ci, &bm);
	uint64_t h = e & QCOW2_OFFSET_MASK;
	bool comp = e & QCOW2_OFLAG_COMPRESSED;
	bool keep = !discard && !unmap && !comp && h && (e & QCOW2_OFLAG_COPIED) && !q->ext_data;
	if (keep) {
		ret = q2_inplace_ok(q, h);
		if (ret < 0)
			return ret;
		keep = ret == 1;
		ret = 0;
	}
	uint64_t ne, nbm = 0;
	if (discard || (q->version < 3)) {
		ne = 0;
	} else if (q->extl2) {
		ne = keep ? (h | QCOW2_OFLAG_COPIED) : 0;
		nbm = 0xffffffffull << 32;
	} else {
		ne = keep ? (h | QCOW2_OFLAG_COPIED | QCOW2_OFLAG_ZERO) : QCOW2_OFLAG_ZERO;
	}
	if (q->ext_data && !discard && h) {
		ne = e | QCOW2_OFLAG_ZERO;
		if (q->extl2)
			ne = e;
	}
	q2_l2_set(q, l2, ci, ne, nbm);
	q2_cache_mark_dirty(&q->l2c, l2off);
	if (!keep && !q->ext_data) {
		if (comp) {
			uint64_t co, cl;
			q2_compressed_range(q, e, &co, &cl);
			ret = q2_free_later(q, co, cl);
		} else if (h) {
			ret = q2_free_later(q, h, cs);
		}
	}
	q->cbuf_off = ~0ull;
	return ret;
}

int qcow2_zero(struct blk *b, uint64_t off, uint64_t len, bool unmap, bool discard)
{
	struct qcow2 *q = b->q;
	int ret = check_writable(q);
	if (ret)
		return ret;
	uint64_t cs = q->cluster_size, end = off + len;
	uint64_t a = (off + cs - 1) & ~(cs - 1), z = end & ~(cs - 1);
	if (end == q->size)
		z = (end + cs - 1) & ~(cs - 1); /* the last, partial cluster counts as whole */
	if (a >= z) {
		return discard ? 0 : write_zero_bytes(q, off, len);
	}
	if (!discard && a > off) {
		ret = write_zero_bytes(q, off, a - off);
		if (ret)
			return ret;
	}
	for (uint64_t c = a; c < z; c += cs) {
		ret = zero_cluster(q, c, unmap, discard);
		if (ret)
			return ret;
	}
	if (!discard && z < end)
		ret = write_zero_bytes(q, z, end - z);
	return ret;
}

int qcow2_write_precompressed(struct blk *b, const void *cdata, uint64_t clen, uint64_t off)
{
	struct qcow2 *q = b->q;
	uint64_t cs = q->cluster_size;
	if (off % cs || clen == 0 || clen >= cs)
		return -EINVAL;
	if (q->ext_data)
		return -ENOTSUP;
	int ret = check_writable(q);
	if (ret)
		return ret;
	uint64_t coff;
	ret = q2_alloc_bytes(q, clen, &coff);
	if (ret)
		return ret;
	ret = file_pwrite(q->file, cdata, clen, coff);
	if (ret)
		return ret;
	q->data_unsynced = true;
	uint8_t *l2;
	uint64_t l2off;
	uint64_t l1i = off >> (q->cluster_bits + q->l2_bits);
	ret = q2_get_l2(q, l1i, true, &l2, &l2off);
	if (ret)
		return ret;
	uint64_t ci = (off >> q->cluster_bits) & (q->l2_entries - 1);
	uint64_t e = q2_l2_get(q, l2, ci, NULL);
	unsigned x = 62 - (q->cluster_bits - 8);
	uint64_t nsec = ((coff + clen - 1) >> 9) - (coff >> 9);
	q2_l2_set(q, l2, ci, QCOW2_OFLAG_COMPRESSED | (nsec << x) | coff, 0);
	q2_cache_mark_dirty(&q->l2c, l2off);
	if (e & QCOW2_OFLAG_COMPRESSED) {
		uint64_t co, cl;
		q2_compressed_range(q, e, &co, &cl);
		ret = q2_free_later(q, co, cl);
	} else if (e & QCOW2_OFFSET_MASK) {
		ret = q2_free_later(q, e & QCOW2_OFFSET_MASK, cs);
	}
	q->cbuf_off = ~0ull;
	return ret;
}

int qcow2_write_compressed(struct blk *b, const void *buf, uint64_t len, uint64_t off)
{
	struct qcow2 *q = b->q;
	uint64_t cs = q->cluster_size;
	if (off % cs || len > cs || len == 0 || (len < cs && off + len != q->size))
		return -EINVAL;
	if (q->ext_data)
		return -ENOTSUP;
	long clen = blk_compress_cluster(b, buf, len, q->ctmp, cs - 1);
	if (clen == -ENOSPC) {
		/* Incompressible: store it as a normal cluster. */
		uint8_t *pad = NULL;
		const void *src = buf;
		if (len < cs) {
			pad = calloc(1, cs);
			if (!pad)
				return -ENOMEM;
			memcpy(pad, buf, len);
			src = pad;
		}
		struct iovec v = {(void *)src, min_u64(cs, q->size - off)};
		int ret = qcow2_pwritev(b, &v, 1, off, v.iov_len);
		free(pad);
		return ret;
	}
	if (clen < 0)
		return (int)clen;
	return qcow2_write_precompressed(b, q->ctmp, (uint64_t)clen, off);
}

int qcow2_flush(struct blk *b)
{
	struct qcow2 *q = b->q;
	if (b->readonly)
		return 0;
	int ret = q2_flush_meta(q);
	uint64_t fsz;
	if (!ret && !file_size(q->file, &fsz) && fsz < q->file_end)
		ret = file_truncate(q->file, q->file_end);
	if (!ret)
		ret = file_sync(q->file);
	if (!ret && q->ext_data)
		ret = file_sync(&q->data);
	return ret;
}

bool qcow2_needs_write_back(struct blk *b)
{
	struct qcow2 *q = b->q;
	return !b->readonly && (q->l1_dirty || q->nfrees || q2_cache_has_dirty(&q->l2c));
}

int qcow2_write_back(struct blk *b)
{
	return qcow2_needs_write_back(b) ? q2_write_back_meta(b->q) : 0;
}
