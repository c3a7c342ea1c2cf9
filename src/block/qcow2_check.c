/* qcow2: consistency check and repair (refcounts rebuilt from L1/L2 tables, snapshots, metadata).
 */
#include "block/qcow2.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_MAX_CLUSTERS   (1ull << 27)
#define CHECK_MAX_L2_ENTRIES (1ull << 31) /* bounds the work a hostile image can ask for */

struct ck {
	struct qcow2 *q;
	struct blk_check_result *res;
	uint32_t *refs;
	uint64_t n; /* clusters covered by refs */
	uint64_t l2_walks;
	uint64_t unfixable;
	uint8_t *l2buf;
	bool fix_errors;
};

static void problem(struct ck *k, bool leak, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(struct ck *k, bool leak, const char *fmt, ...)
{
	if (leak)
		k->res->leaks++;
	else
		k->res->corruptions++;
	if (k->res->first_problem[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(k->res->first_problem, sizeof(k->res->first_problem), fmt, ap);
	va_end(ap);
}

static void inc(struct ck *k, uint64_t off, uint64_t len, const char *what)
{
	if (!len)
		return;
	uint64_t first = off >> k->q->cluster_bits, last = (off + len - 1) >> k->q->cluster_bits;
	for (uint64_t c = first; c <= last; c++) {
		if (c >= k->n) {
			problem(k, false, "%s at 0x%llx is past the end of the file", what,
				(unsigned long long)(c << k->q->cluster_bits));
			k->unfixable++;
			return;
		}
		if (k->refs[c] != UINT32_MAX)
			k->refs[c]++;
	}
}

/* Walks one L1 table (active or a snapshot's). */
static int walk_l1(struct ck *k, uint64_t *l1, uint32_t l1_size, bool active)
{
	struct qcow2 *q = k->q;
	uint64_t cs = q->cluster_size;
	for (uint32_t i = 0; i < l1_size; i++) {
		uint64_t l2off = l1[i] & QCOW2_L1_OFFSET_MASK;
		if (!l2off)
			continue;
		if (l2off % cs || (l2off >> q->cluster_bits) >= k->n) {
			problem(k, false,
				"L1 entry %u: L2 table offset 0x%llx unaligned or past the "
				"end",
				i, (unsigned long long)l2off);
			k->unfixable++;
			continue;
		}
		inc(k, l2off, cs, "L2 table");
		if (++k->l2_walks > CHECK_MAX_L2_ENTRIES / q->l2_entries) {
			k->res->check_errors++;
			return -EFBIG;
		}
		int ret = file_pread(q->file, k->l2buf, cs, l2off);
		if (ret) {
			k->res->check_errors++;
			return ret;
		}
		/* Where the next cluster would be if it followed the last one; like qemu-img, the
		 * run starts afresh in each L2 table. */
		uint64_t next = 0;
		for (uint64_t j = 0; j < q->l2_entries; j++) {
			uint64_t bm, e = q2_l2_get(q, k->l2buf, j, &bm);
			uint64_t guest = (((uint64_t)i << q->l2_bits) + j) << q->cluster_bits;
			if (e & QCOW2_OFLAG_COMPRESSED) {
				if (q->ext_data) {
					problem(k, false,
						"compressed cluster with an external data file");
					k->unfixable++;
					continue;
				}
				uint64_t co, cl;
				q2_compressed_range(q, e, &co, &cl);
				inc(k, co, cl, "compressed cluster");
				if (active) {
					/* Always fragmented, as qemu-img counts them: a compressed
					 * cluster shares its sectors with its neighbours, so
					 * reading the next one re-reads a sector. */
					k->res->compressed_clusters++;
					k->res->allocated_clusters++;
					k->res->fragmented_clusters++;
				}
				continue;
			}
			uint64_t h = e & QCOW2_OFFSET_MASK;
			if (!h && !(q->ext_data && (e & QCOW2_OFLAG_COPIED)))
				continue;
			if (h % cs) {
				problem(k, false,
					"L2 entry for guest offset 0x%llx: cluster 0x%llx is "
					"not aligned",
					(unsigned long long)guest, (unsigned long long)h);
				k->unfixable++;
				continue;
			}
			if (active) {
				k->res->allocated_clusters++;
				if (next && h != next)
					k->res->fragmented_clusters++;
				next = h + cs;
			}
			if (!q->ext_data)
				inc(k, h, cs, "data cluster");
		}
	}
	return 0;
}

static uint64_t snap_table_len(struct qcow2 *q)
{
	uint64_t pos = 0;
	for (unsigned i = 0; i < q->nsnaps; i++) {
		struct q2_snap *s = &q->snaps[i];
		pos += (40 + (uint64_t)s->extra_len + strlen(s->id) + strlen(s->name) + 7) & ~7ull;
	}
	return pos;
}

/* Counts every reference in the image into k->refs. */
static int count_refs(struct ck *k)
{
	struct qcow2 *q = k->q;
	uint64_t cs = q->cluster_size;
	inc(k, 0, cs, "header");
	if (q->l1_size)
		inc(k, q->l1_offset, (uint64_t)q->l1_size * 8, "L1 table");
	inc(k, q->rt_offset, (uint64_t)q->rt_clusters * cs, "refcount table");
	for (uint64_t i = 0; i < q->rt_entries; i++) {
		uint64_t o = q->rt[i] & QCOW2_RT_OFFSET_MASK;
		if (!o)
			continue;
		if (o % cs) {
			problem(k, false, "refcount block %llu is not aligned",
				(unsigned long long)i);
			k->unfixable++;
			continue;
		}
		inc(k, o, cs, "refcount block");
	}
	if (q->nsnaps)
		inc(k, q->snap_offset, snap_table_len(q), "snapshot table");
	int ret = walk_l1(k, q->l1, q->l1_size, true);
	for (unsigned s = 0; !ret && s < q->nsnaps; s++) {
		struct q2_snap *sn = &q->snaps[s];
		if (!sn->l1_size)
			continue;
		inc(k, sn->l1_offset, (uint64_t)sn->l1_size * 8, "snapshot L1 table");
		uint64_t *l1 = malloc((uint64_t)sn->l1_size * 8);
		if (!l1)
			return -ENOMEM;
		ret = file_pread(q->file, l1, (uint64_t)sn->l1_size * 8, sn->l1_offset);
		for (uint32_t i = 0; i < sn->l1_size; i++)
			l1[i] = be64toh(l1[i]);
		if (!ret)
			ret = walk_l1(k, l1, sn->l1_size, false);
		free(l1);
	}
	return ret;
}

/* Compares refs with the refcounts on disk; counts leaks and corruptions. */
static int compare(struct ck *k, bool fix_flags)
{
	struct qcow2 *q = k->q;
	uint64_t cs = q->cluster_size, last_used = 1;
	for (uint64_t c = 0; c < k->n; c++) {
		uint64_t disk;
		int ret = q2_refcount_get(q, c, &disk);
		if (ret) {
			k->res->check_errors++;
			return ret;
		}
		uint64_t want = k->refs[c];
		/* The image ends after the last cluster in use by either count, leaked ones
		 * included (as qemu-img reports it). */
		if (want || disk)
			last_used = c + 1;
		if (want > q->refcount_max) {
			problem(k, false, "cluster %llu: %llu references overflow %u-bit refcounts",
				(unsigned long long)c, (unsigned long long)want, q->refcount_bits);
			k->unfixable++;
		} else if (disk < want) {
			problem(k, false, "ERROR cluster %llu refcount=%llu reference=%llu",
				(unsigned long long)c, (unsigned long long)disk,
				(unsigned long long)want);
		} else if (disk > want) {
			problem(k, true, "Leaked cluster %llu refcount=%llu reference=%llu",
				(unsigned long long)c, (unsigned long long)disk,
				(unsigned long long)want);
		}
	}
	k->res->image_end_offset = last_used * cs;
	/* COPIED flags of the active tables (only meaningful when refcounts are right). */
	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t l2off = q->l1[i] & QCOW2_L1_OFFSET_MASK;
		if (!l2off || l2off % cs || (l2off >> q->cluster_bits) >= k->n)
			continue;
		uint64_t rc;
		int ret = q2_refcount_get(q, l2off >> q->cluster_bits, &rc);
		if (ret)
			return ret;
		bool want = rc == 1;
		if (want != !!(q->l1[i] & QCOW2_OFLAG_COPIED)) {
			if (!fix_flags)
				problem(k, false, "L1 entry %u: COPIED flag wrong (refcount %llu)",
					i, (unsigned long long)rc);
		}
		ret = file_pread(q->file, k->l2buf, cs, l2off);
		if (ret)
			return ret;
		for (uint64_t j = 0; j < q->l2_entries && !q->ext_data; j++) {
			uint64_t e = q2_l2_get(q, k->l2buf, j, NULL);
			uint64_t h = e & QCOW2_OFFSET_MASK;
			if (e & QCOW2_OFLAG_COMPRESSED) {
				if ((e & QCOW2_OFLAG_COPIED) && !fix_flags)
					problem(k, false,
						"compressed cluster with the COPIED flag");
				continue;
			}
			if (!h || h % cs || (h >> q->cluster_bits) >= k->n)
				continue;
			ret = q2_refcount_get(q, h >> q->cluster_bits, &rc);
			if (ret)
				return ret;
			if ((rc == 1) != !!(e & QCOW2_OFLAG_COPIED) && !fix_flags)
				problem(k, false,
					"cluster 0x%llx: COPIED flag wrong (refcount %llu)",
					(unsigned long long)h, (unsigned long long)rc);
		}
	}
	return 0;
}

/* Writes a new refcount table and blocks (width 1 << order) at the end of the file from refs. */
static int rebuild(struct qcow2 *q, uint32_t *refs, uint64_t n, unsigned order)
{
	uint64_t cs = q->cluster_size;
	/* The old refcount table and blocks are not referenced once the new ones are in place. */
	for (uint64_t c = q->rt_offset / cs; c < q->rt_offset / cs + q->rt_clusters && c < n; c++)
		if (refs[c])
			refs[c]--;
	for (uint64_t i = 0; i < q->rt_entries; i++) {
		uint64_t o = q->rt[i] & QCOW2_RT_OFFSET_MASK;
		if (o && o % cs == 0 && o / cs < n && refs[o / cs])
			refs[o / cs]--;
	}
	uint64_t rbe = cs * 8 / (1u << order);
	uint64_t maxv = order == 6 ? UINT64_MAX : (1ull << (1u << order)) - 1;
	for (uint64_t c = 0; c < n; c++)
		if (refs[c] > maxv)
			return -ERANGE;
	uint64_t start = max_u64(n, q->file_end / cs), nb = 1, tc = 1;
	for (;;) {
		uint64_t total = start + tc + nb;
		uint64_t b2 = (total + rbe - 1) / rbe, t2 = (b2 * 8 + cs - 1) / cs;
		if (b2 <= nb && t2 <= tc)
			break;
		nb = max_u64(nb, b2);
		tc = max_u64(tc, t2);
	}
	if (tc * cs > QCOW2_MAX_RT_BYTES)
		return -EFBIG;
	uint64_t total = start + tc + nb;
	uint8_t *blocks = calloc(nb, cs);
	uint64_t *rt = calloc(tc * cs / 8, 8);
	uint64_t *rtbe = calloc(tc * cs / 8, 8);
	int ret = 0;
	if (!blocks || !rt || !rtbe) {
		ret = -ENOMEM;
		goto out;
	}
	struct qcow2 tmp = *q;
	tmp.refcount_order = order;
	tmp.refcount_bits = 1u << order;
	for (uint64_t c = 0; c < total; c++) {
		uint64_t v = c < n ? refs[c] : (c >= start ? 1 : 0);
		if (v)
			q2_rc_set_entry(&tmp, blocks + (c / rbe) * cs, c % rbe, v);
	}
	for (uint64_t i = 0; i < nb; i++) {
		rt[i] = (start + tc + i) * cs;
		rtbe[i] = htobe64(rt[i]);
	}
	ret = file_pwrite(q->file, rtbe, tc * cs, start * cs);
	if (!ret)
		ret = file_pwrite(q->file, blocks, nb * cs, (start + tc) * cs);
	if (!ret)
		ret = file_sync(q->file);
	if (ret)
		goto out;
	/* Switch over: the cached refcount blocks describe the old structure. */
	for (unsigned i = 0; i < q->rbc.n; i++) {
		q->rbc.e[i].off = 0;
		q->rbc.e[i].dirty = false;
	}
	free(q->rt);
	q->rt = rt;
	rt = NULL;
	q->rt_entries = tc * cs / 8;
	q->rt_offset = start * cs;
	q->rt_clusters = (uint32_t)tc;
	q->refcount_order = order;
	q->refcount_bits = 1u << order;
	q->rb_entries = rbe;
	q->refcount_max = maxv;
	q->file_end = max_u64(q->file_end, total * cs);
	q->free_hint = 0;
	q->comp_next = 0;
	ret = qcow2_write_header(q);
	if (!ret)
		ret = file_sync(q->file);
out:
	free(blocks);
	free(rt);
	free(rtbe);
	return ret;
}

static int ck_init(struct ck *k, struct qcow2 *q, struct blk_check_result *res)
{
	memset(k, 0, sizeof(*k));
	k->q = q;
	k->res = res;
	uint64_t fsize;
	int ret = file_size(q->file, &fsize);
	if (ret)
		return ret;
	k->n = max_u64((fsize + q->cluster_size - 1) >> q->cluster_bits,
		       q->file_end >> q->cluster_bits);
	if (k->n > CHECK_MAX_CLUSTERS)
		return -EFBIG;
	k->refs = calloc(k->n ? k->n : 1, sizeof(uint32_t));
	k->l2buf = malloc(q->cluster_size);
	if (!k->refs || !k->l2buf)
		return -ENOMEM;
	return 0;
}

static void ck_free(struct ck *k)
{
	free(k->refs);
	free(k->l2buf);
}

int q2_rebuild_refcounts(struct qcow2 *q, unsigned new_order, struct cove_err *err)
{
	struct blk_check_result res;
	memset(&res, 0, sizeof(res));
	struct ck k;
	int ret = q2_flush_meta(q);
	if (!ret)
		ret = ck_init(&k, q, &res);
	if (!ret) {
		ret = count_refs(&k);
		if (!ret && k.unfixable)
			ret = -EUCLEAN;
		if (!ret)
			ret = rebuild(q, k.refs, k.n, new_order);
		ck_free(&k);
	}
	if (ret == -EUCLEAN)
		return cove_err_set(err, ret, "qcow2: the image has errors: %s", res.first_problem);
	if (ret == -ERANGE)
		return cove_err_set(err, ret, "qcow2: some refcounts do not fit in %u bits",
				    1u << new_order);
	if (ret)
		return cove_err_set(err, ret, "qcow2: cannot rebuild the refcounts");
	return 0;
}

static int check_once(struct qcow2 *q, struct blk_check_result *res, struct ck *k)
{
	int ret = ck_init(k, q, res);
	if (!ret)
		ret = count_refs(k);
	if (!ret)
		ret = compare(k, false);
	return ret;
}

int qcow2_check(struct blk *b, unsigned fix, struct blk_check_result *res, struct cove_err *err)
{
	struct qcow2 *q = b->q;
	memset(res, 0, sizeof(*res));
	int ret = 0;
	if (!b->readonly)
		ret = q2_flush_meta(q);
	if (ret)
		return cove_err_set(err, ret, "qcow2: flush before check failed");
	res->total_clusters = (q->size + q->cluster_size - 1) >> q->cluster_bits;
	struct ck k;
	ret = check_once(q, res, &k);
	if (ret == -EFBIG && !k.refs) {
		ck_free(&k);
		return cove_err_set(err, ret, "qcow2: image too large to check");
	}
	if (ret) {
		ck_free(&k);
		return cove_err_set(err, ret, "qcow2: check failed: %s", strerror(-ret));
	}
	bool need = ((fix & BLK_CHECK_FIX_LEAKS) && res->leaks) ||
		    ((fix & BLK_CHECK_FIX_ERRORS) && res->corruptions);
	if (!need && !b->readonly && (fix & BLK_CHECK_FIX_ERRORS) && !res->corruptions &&
	    (q->incompat & QCOW2_INCOMPAT_CORRUPT)) {
		/* Nothing wrong after all: the image may be written again. */
		q->incompat &= ~QCOW2_INCOMPAT_CORRUPT;
		ret = qcow2_write_header(q);
		if (!ret)
			ret = file_sync(q->file);
		ck_free(&k);
		return ret ? cove_err_set(err, ret, "qcow2: cannot clear the corrupt bit") : 0;
	}
	if (!need || b->readonly) {
		ck_free(&k);
		return 0;
	}
	uint64_t c0 = res->corruptions, l0 = res->leaks;
	if (!res->corruptions || !(fix & BLK_CHECK_FIX_ERRORS)) {
		/* Leaks only: lower those refcounts in place (corruptions stay for -r all). */
		for (uint64_t c = 0; c < k.n && !ret; c++) {
			uint64_t disk;
			ret = q2_refcount_get(q, c, &disk);
			if (!ret && disk > k.refs[c])
				ret = q2_refcount_update(q, c << q->cluster_bits, 1,
							 -(int64_t)(disk - k.refs[c]));
		}
	} else if (k.unfixable) {
		ck_free(&k);
		return 0;
	} else {
		ret = rebuild(q, k.refs, k.n, q->refcount_order);
	}
	ck_free(&k);
	if (!ret)
		ret = q2_fix_copied(q);
	if (!ret)
		ret = q2_flush_meta(q);
	if (!ret && (q->incompat & QCOW2_INCOMPAT_CORRUPT)) {
		q->incompat &= ~QCOW2_INCOMPAT_CORRUPT;
		ret = qcow2_write_header(q);
	}
	if (ret)
		return cove_err_set(err, ret, "qcow2: repair failed: %s", strerror(-ret));
	/* Double-check the result. */
	struct blk_check_result after;
	memset(&after, 0, sizeof(after));
	ret = check_once(q, &after, &k);
	ck_free(&k);
	if (ret)
		return cove_err_set(err, ret, "qcow2: check after repair failed");
	after.corruptions_fixed =
	    c0 > after.corruptions && (fix & BLK_CHECK_FIX_ERRORS) ? c0 - after.corruptions : 0;
	after.leaks_fixed = l0 > after.leaks ? l0 - after.leaks : 0;
	after.total_clusters = res->total_clusters;
	if (!after.first_problem[0])
		snprintf(after.first_problem, sizeof(after.first_problem), "%s",
			 res->first_problem);
	*res = after;
	return 0;
}
