/* qcow2: the internal snapshot table (read, write) and snapshot create, apply and delete. */
#include "block/qcow2.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void q2_snapshots_free(struct qcow2 *q)
{
	for (unsigned i = 0; q->snaps && i < q->nsnaps; i++) {
		free(q->snaps[i].id);
		free(q->snaps[i].name);
		free(q->snaps[i].extra);
	}
	free(q->snaps);
	q->snaps = NULL;
}

int q2_snapshots_read(struct qcow2 *q, uint64_t fsize, struct cove_err *err)
{
	if (!q->nsnaps)
		return 0;
	q->snaps = calloc(q->nsnaps, sizeof(*q->snaps));
	if (!q->snaps)
		return -ENOMEM;
	uint64_t pos = q->snap_offset;
	uint8_t h[40];
	for (unsigned i = 0; i < q->nsnaps; i++) {
		struct q2_snap *s = &q->snaps[i];
		if (pos - q->snap_offset > QCOW2_MAX_SNAPTABLE || pos + 40 > fsize)
			return cove_err_set(err, -EINVAL,
					    "qcow2: snapshot table runs past the file");
		int ret = file_pread(q->file, h, 40, pos);
		if (ret)
			return cove_err_set(err, ret, "qcow2: cannot read the snapshot table");
		s->l1_offset = be64(h);
		s->l1_size = be32(h + 8);
		uint16_t idlen = be16(h + 12), namelen = be16(h + 14);
		s->date_sec = be32(h + 16);
		s->date_nsec = be32(h + 20);
		s->vm_clock_nsec = be64(h + 24);
		s->vm_state_size = be32(h + 32);
		s->extra_len = be32(h + 36);
		s->icount = ~0ull;
		s->disk_size = q->size;
		if (s->extra_len > 1024)
			return cove_err_set(err, -EINVAL,
					    "qcow2: snapshot %u: extra data too large", i);
		if (s->l1_offset % q->cluster_size ||
		    (uint64_t)s->l1_size * 8 > QCOW2_MAX_L1_BYTES || s->l1_offset > fsize ||
		    (uint64_t)s->l1_size * 8 > fsize - s->l1_offset)
			return cove_err_set(err, -EINVAL,
					    "qcow2: snapshot %u: L1 table invalid or past the end",
					    i);
		uint64_t total = 40 + (uint64_t)s->extra_len + idlen + namelen;
		if (pos + total > fsize)
			return cove_err_set(err, -EINVAL,
					    "qcow2: snapshot table runs past the file");
		uint8_t *buf = malloc(total);
		if (!buf)
			return -ENOMEM;
		ret = file_pread(q->file, buf, total, pos);
		if (ret) {
			free(buf);
			return ret;
		}
		s->extra = malloc(s->extra_len ? s->extra_len : 1);
		s->id = malloc(idlen + 1u);
		s->name = malloc(namelen + 1u);
		if (!s->extra || !s->id || !s->name) {
			free(buf);
			return -ENOMEM;
		}
		memcpy(s->extra, buf + 40, s->extra_len);
		memcpy(s->id, buf + 40 + s->extra_len, idlen);
		s->id[idlen] = 0;
		memcpy(s->name, buf + 40 + s->extra_len + idlen, namelen);
		s->name[namelen] = 0;
		free(buf);
		if (s->extra_len >= 8)
			s->vm_state_size = be64(s->extra);
		if (s->extra_len >= 16)
			s->disk_size = be64(s->extra + 8);
		if (s->extra_len >= 24)
			s->icount = be64(s->extra + 16);
		pos += (total + 7) & ~7ull;
	}
	return 0;
}

/* Serializes the snapshot table; returns its length. */
static uint64_t table_bytes(const struct qcow2 *q, const struct q2_snap *s, unsigned n,
			    uint8_t *out)
{
	uint64_t pos = 0;
	for (unsigned i = 0; i < n; i++) {
		uint32_t extra = s[i].extra_len < 24 ? 24 : s[i].extra_len;
		size_t idl = strlen(s[i].id), nl = strlen(s[i].name);
		uint64_t total = 40 + extra + idl + nl;
		if (out) {
			uint8_t *p = out + pos;
			memset(p, 0, (total + 7) & ~7ull);
			put64(p, s[i].l1_offset);
			put32(p + 8, s[i].l1_size);
			put16(p + 12, (uint16_t)idl);
			put16(p + 14, (uint16_t)nl);
			put32(p + 16, s[i].date_sec);
			put32(p + 20, s[i].date_nsec);
			put64(p + 24, s[i].vm_clock_nsec);
			put32(p + 32,
			      s[i].vm_state_size > UINT32_MAX ? 0 : (uint32_t)s[i].vm_state_size);
			put32(p + 36, extra);
			if (s[i].extra_len > 24)
				memcpy(p + 40, s[i].extra, s[i].extra_len);
			put64(p + 40, s[i].vm_state_size);
			put64(p + 48, s[i].disk_size);
			put64(p + 56, s[i].icount);
			memcpy(p + 40 + extra, s[i].id, idl);
			memcpy(p + 40 + extra + idl, s[i].name, nl);
		}
		pos += (total + 7) & ~7ull;
	}
	return pos;
}

/* Writes a new snapshot table for (s, n), switches the header to it, frees the old one. */
static int write_table(struct qcow2 *q, struct q2_snap *s, unsigned n)
{
	uint64_t cs = q->cluster_size;
	uint64_t len = table_bytes(q, s, n, NULL);
	uint64_t off = 0, old = q->snap_offset,
		 oldlen = q->nsnaps ? table_bytes(q, q->snaps, q->nsnaps, NULL) : 0;
	int ret;
	if (len) {
		uint64_t ncl = (len + cs - 1) / cs, got;
		ret = q2_alloc_clusters(q, ncl, &off, &got);
		if (ret)
			return ret;
		if (got != ncl) {
			/* Not contiguous: give it back and take fresh clusters at the end. */
			ret = q2_refcount_update(q, off, got * cs, -1);
			if (ret)
				return ret;
			uint64_t save = q->free_hint;
			q->free_hint = q->file_end / cs;
			ret = q2_alloc_clusters(q, ncl, &off, &got);
			if (!ret && got != ncl)
				ret = -ENOSPC;
			if (save < q->free_hint)
				q->free_hint = save;
			if (ret)
				return ret;
		}
		uint8_t *buf = calloc(1, ncl * cs);
		if (!buf)
			return -ENOMEM;
		table_bytes(q, s, n, buf);
		ret = file_pwrite(q->file, buf, ncl * cs, off);
		free(buf);
		if (ret)
			return ret;
	}
	ret = q2_flush_meta(q);
	if (!ret)
		ret = file_sync(q->file);
	if (ret)
		return ret;
	unsigned oldn = q->nsnaps;
	q->nsnaps = n;
	q->snap_offset = off;
	ret = qcow2_write_header(q);
	if (!ret)
		ret = file_sync(q->file);
	if (ret)
		return ret;
	if (oldn && old)
		ret = q2_refcount_update(q, old, (oldlen + cs - 1) / cs * cs, -1);
	return ret;
}

/* Adds delta to the refcount of every L2 table and data cluster reachable from l1. */
int q2_tree_refcount(struct qcow2 *q, const uint64_t *l1, uint32_t l1_size, int64_t delta)
{
	uint64_t cs = q->cluster_size;
	uint8_t *tmp = malloc(cs);
	if (!tmp)
		return -ENOMEM;
	int ret = 0;
	for (uint32_t i = 0; i < l1_size && !ret; i++) {
		uint64_t l2off = l1[i] & QCOW2_L1_OFFSET_MASK;
		if (!l2off)
			continue;
		uint8_t *l2;
		ret = q2_cache_get(q, &q->l2c, l2off, false, &l2);
		if (ret)
			break;
		memcpy(tmp, l2, cs);
		for (uint64_t j = 0; j < q->l2_entries && !ret; j++) {
			uint64_t e = q2_l2_get(q, tmp, j, NULL);
			if (e & QCOW2_OFLAG_COMPRESSED) {
				uint64_t co, cl;
				q2_compressed_range(q, e, &co, &cl);
				ret = q2_refcount_update(q, co, cl, delta);
			} else if ((e & QCOW2_OFFSET_MASK) && !q->ext_data) {
				ret = q2_refcount_update(q, e & QCOW2_OFFSET_MASK, cs, delta);
			}
		}
		if (!ret)
			ret = q2_refcount_update(q, l2off, cs, delta);
	}
	free(tmp);
	return ret;
}

/* Sets the COPIED flags of the active tables from the refcounts (exactly one → set). */
int q2_fix_copied(struct qcow2 *q)
{
	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t l2off = q->l1[i] & QCOW2_L1_OFFSET_MASK;
		if (!l2off)
			continue;
		uint64_t rc;
		int ret = q2_refcount_get(q, l2off >> q->cluster_bits, &rc);
		if (ret)
			return ret;
		uint64_t ne = l2off | (rc == 1 ? QCOW2_OFLAG_COPIED : 0);
		if (ne != q->l1[i])
			q2_set_l1(q, i, ne);
		uint8_t *l2;
		ret = q2_cache_get(q, &q->l2c, l2off, false, &l2);
		if (ret)
			return ret;
		bool dirty = false;
		for (uint64_t j = 0; j < q->l2_entries; j++) {
			uint64_t bm, e = q2_l2_get(q, l2, j, &bm);
			uint64_t h = e & QCOW2_OFFSET_MASK;
			if ((e & QCOW2_OFLAG_COMPRESSED) || q->ext_data)
				continue;
			uint64_t want = 0;
			if (h) {
				ret = q2_refcount_get(q, h >> q->cluster_bits, &rc);
				if (ret)
					return ret;
				want = rc == 1 ? QCOW2_OFLAG_COPIED : 0;
			}
			if ((e & QCOW2_OFLAG_COPIED) != want) {
				q2_l2_set(q, l2, j, (e & ~QCOW2_OFLAG_COPIED) | want, bm);
				dirty = true;
			}
			/* refcount_get may have evicted this table */
			ret = q2_cache_get(q, &q->l2c, l2off, false, &l2);
			if (ret)
				return ret;
		}
		if (dirty)
			q2_cache_mark_dirty(&q->l2c, l2off);
	}
	return 0;
}

static int find_snap(const struct qcow2 *q, const char *key)
{
	for (unsigned i = 0; i < q->nsnaps; i++)
		if (!strcmp(q->snaps[i].id, key))
			return (int)i;
	for (unsigned i = 0; i < q->nsnaps; i++)
		if (!strcmp(q->snaps[i].name, key))
			return (int)i;
	return -1;
}

int blk_snapshot_list(struct blk *b, struct blk_snapshot_info **out, unsigned *count)
{
	*out = NULL;
	*count = 0;
	if (!b->q)
		return 0;
	struct qcow2 *q = b->q;
	if (!q->nsnaps)
		return 0;
	struct blk_snapshot_info *v = calloc(q->nsnaps, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (unsigned i = 0; i < q->nsnaps; i++) {
		struct q2_snap *s = &q->snaps[i];
		snprintf(v[i].id, sizeof(v[i].id), "%s", s->id);
		snprintf(v[i].name, sizeof(v[i].name), "%s", s->name);
		v[i].vm_state_size = s->vm_state_size;
		v[i].disk_size = s->disk_size;
		v[i].date_sec = s->date_sec;
		v[i].date_nsec = s->date_nsec;
		v[i].vm_clock_nsec = s->vm_clock_nsec;
		v[i].icount = s->icount;
	}
	*out = v;
	*count = q->nsnaps;
	return 0;
}

static int writable(struct blk *b, struct cove_err *err)
{
	if (!b->q)
		return cove_err_set(err, -ENOTSUP, "%s: snapshots need a qcow2 image", b->filename);
	if (b->readonly || (b->q->incompat & QCOW2_INCOMPAT_CORRUPT))
		return cove_err_set(err, -EROFS, "%s: image is read-only", b->filename);
	if (b->q->ext_data)
		return cove_err_set(err, -ENOTSUP,
				    "%s: internal snapshots are not possible with an external data "
				    "file",
				    b->filename);
	return 0;
}

int blk_snapshot_create(struct blk *b, const char *name, struct cove_err *err)
{
	int ret = writable(b, err);
	if (ret)
		return ret;
	struct qcow2 *q = b->q;
	if (!name || !*name || strlen(name) > 255)
		return cove_err_set(err, -EINVAL, "snapshot name must be 1 to 255 bytes");
	if (find_snap(q, name) >= 0)
		return cove_err_set(err, -EEXIST, "snapshot '%s' already exists", name);
	if (q->nsnaps >= QCOW2_MAX_SNAPSHOTS)
		return cove_err_set(err, -ENOSPC, "too many snapshots");
	uint64_t cs = q->cluster_size;
	ret = q2_flush_meta(q);
	/* 1. refcounts of everything the active L1 reaches, +1 */
	if (!ret)
		ret = q2_tree_refcount(q, q->l1, q->l1_size, 1);
	/* 2. a copy of the L1 table */
	uint64_t l1off = 0, got;
	uint64_t l1cl = ((uint64_t)q->l1_size * 8 + cs - 1) / cs;
	if (!ret && l1cl) {
		ret = q2_alloc_clusters(q, l1cl, &l1off, &got);
		if (!ret && got != l1cl) {
			q2_refcount_update(q, l1off, got * cs, -1);
			q->free_hint = q->file_end / cs;
			ret = q2_alloc_clusters(q, l1cl, &l1off, &got);
			if (!ret && got != l1cl)
				ret = -ENOSPC;
		}
		if (!ret) {
			uint64_t *be = calloc(l1cl, cs);
			if (!be) {
				ret = -ENOMEM;
			} else {
				for (uint32_t i = 0; i < q->l1_size; i++)
					be[i] = htobe64(q->l1[i]);
				ret = file_pwrite(q->file, be, l1cl * cs, l1off);
				free(be);
			}
		}
	}
	if (!ret)
		ret = q2_flush_meta(q);
	/* 3. COPIED flags now clear wherever refcounts went to two */
	if (!ret)
		ret = q2_fix_copied(q);
	if (!ret)
		ret = q2_flush_meta(q);
	if (ret)
		return cove_err_set(err, ret, "snapshot '%s': cannot update the image", name);
	/* 4. the table */
	struct q2_snap *ns = calloc(q->nsnaps + 1u, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	if (q->nsnaps) /* q->snaps is NULL with no snapshots */
		memcpy(ns, q->snaps, q->nsnaps * sizeof(*ns));
	struct q2_snap *s = &ns[q->nsnaps];
	unsigned maxid = 0;
	for (unsigned i = 0; i < q->nsnaps; i++) {
		unsigned v = (unsigned)strtoul(q->snaps[i].id, NULL, 10);
		if (v > maxid)
			maxid = v;
	}
	char idbuf[16];
	snprintf(idbuf, sizeof(idbuf), "%u", maxid + 1);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	s->l1_offset = l1off;
	s->l1_size = q->l1_size;
	s->id = strdup(idbuf);
	s->name = strdup(name);
	s->date_sec = (uint32_t)ts.tv_sec;
	s->date_nsec = (uint32_t)ts.tv_nsec;
	s->disk_size = q->size;
	s->icount = ~0ull;
	s->extra_len = 24;
	s->extra = calloc(1, 24);
	if (!s->id || !s->name || !s->extra) {
		free(s->id);
		free(s->name);
		free(s->extra);
		free(ns);
		return -ENOMEM;
	}
	ret = write_table(q, ns, q->nsnaps + 1);
	if (ret) {
		free(s->id);
		free(s->name);
		free(s->extra);
		free(ns);
		return cove_err_set(err, ret, "snapshot '%s': cannot write the snapshot table",
				    name);
	}
	free(q->snaps);
	q->snaps = ns;
	return q2_flush_meta(q);
}

int blk_snapshot_delete(struct blk *b, const char *key, struct cove_err *err)
{
	int ret = writable(b, err);
	if (ret)
		return ret;
	struct qcow2 *q = b->q;
	int idx = find_snap(q, key);
	if (idx < 0)
		return cove_err_set(err, -ENOENT, "snapshot '%s' not found", key);
	struct q2_snap victim = q->snaps[idx];
	ret = q2_flush_meta(q);
	if (ret)
		return ret;
	struct q2_snap *ns = calloc(q->nsnaps, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	unsigned n = 0;
	for (unsigned i = 0; i < q->nsnaps; i++)
		if ((int)i != idx)
			ns[n++] = q->snaps[i];
	ret = write_table(q, ns, n);
	if (ret) {
		free(ns);
		return cove_err_set(err, ret, "cannot write the snapshot table");
	}
	free(q->snaps);
	q->snaps = ns;
	/* Drop the snapshot's references (its L1 copy, its L2 tables and their clusters). */
	uint64_t *l1 = calloc(victim.l1_size ? victim.l1_size : 1, 8);
	if (!l1)
		return -ENOMEM;
	ret = file_pread(q->file, l1, (uint64_t)victim.l1_size * 8, victim.l1_offset);
	for (uint32_t i = 0; i < victim.l1_size; i++)
		l1[i] = be64toh(l1[i]);
	if (!ret)
		ret = q2_tree_refcount(q, l1, victim.l1_size, -1);
	free(l1);
	if (!ret && victim.l1_size)
		ret = q2_refcount_update(q, victim.l1_offset,
					 ((uint64_t)victim.l1_size * 8 + q->cluster_size - 1) &
					     ~(q->cluster_size - 1),
					 -1);
	if (!ret)
		ret = q2_fix_copied(q);
	if (!ret)
		ret = q2_flush_meta(q);
	free(victim.id);
	free(victim.name);
	free(victim.extra);
	if (ret)
		return cove_err_set(err, ret, "snapshot '%s': cannot update refcounts", key);
	return 0;
}

int blk_snapshot_apply(struct blk *b, const char *key, struct cove_err *err)
{
	int ret = writable(b, err);
	if (ret)
		return ret;
	struct qcow2 *q = b->q;
	int idx = find_snap(q, key);
	if (idx < 0)
		return cove_err_set(err, -ENOENT, "snapshot '%s' not found", key);
	struct q2_snap *s = &q->snaps[idx];
	uint64_t cs = q->cluster_size;
	ret = q2_flush_meta(q);
	if (ret)
		return ret;
	uint32_t n = s->l1_size;
	uint64_t *sl1 = calloc(n ? n : 1, 8);
	if (!sl1)
		return -ENOMEM;
	ret = file_pread(q->file, sl1, (uint64_t)n * 8, s->l1_offset);
	for (uint32_t i = 0; i < n; i++)
		sl1[i] = be64toh(sl1[i]);
	/* The snapshot's tree gains a reference (the active L1). */
	if (!ret)
		ret = q2_tree_refcount(q, sl1, n, 1);
	if (!ret)
		ret = q2_flush_meta(q);
	if (ret) {
		free(sl1);
		return cove_err_set(err, ret, "cannot apply snapshot '%s'", key);
	}
	uint64_t *old = q->l1;
	uint32_t oldn = q->l1_size;
	/* The active L1 must be large enough; allocate a new one if not. */
	uint64_t l1off = q->l1_offset;
	uint64_t need = ((uint64_t)n * 8 + cs - 1) / cs, have = ((uint64_t)oldn * 8 + cs - 1) / cs;
	if (need > have || !oldn) {
		uint64_t got;
		q->free_hint = q->file_end / cs;
		ret = q2_alloc_clusters(q, need, &l1off, &got);
		if (!ret && got != need)
			ret = -ENOSPC;
	}
	uint64_t *be = NULL;
	if (!ret) {
		be = calloc(max_u64(need, have) ? max_u64(need, have) : 1, cs);
		if (!be)
			ret = -ENOMEM;
	}
	if (!ret) {
		for (uint32_t i = 0; i < n; i++)
			be[i] = htobe64(sl1[i]);
		ret = file_pwrite(q->file, be, max_u64(need, have) * cs, l1off);
	}
	free(be);
	if (!ret)
		ret = file_sync(q->file);
	if (ret) {
		free(sl1);
		return cove_err_set(err, ret, "cannot apply snapshot '%s'", key);
	}
	uint64_t old_l1off = q->l1_offset;
	q->l1 = sl1;
	q->l1_size = n;
	q->l1_alloc = n ? n : 1;
	q->l1_offset = l1off;
	q->size = s->disk_size;
	b->size = q->size;
	ret = qcow2_write_header(q);
	if (!ret)
		ret = file_sync(q->file);
	/* The old active tree loses its reference. */
	if (!ret)
		ret = q2_tree_refcount(q, old, oldn, -1);
	if (!ret && l1off != old_l1off && oldn)
		ret = q2_refcount_update(q, old_l1off, have * cs, -1);
	free(old);
	if (!ret)
		ret = q2_fix_copied(q);
	if (!ret)
		ret = q2_flush_meta(q);
	q->cbuf_off = ~0ull;
	if (ret)
		return cove_err_set(err, ret, "cannot apply snapshot '%s'", key);
	return 0;
}
