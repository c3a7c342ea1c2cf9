/* qcow2: header parsing and validation, header extensions, header rewrite, open and close. */
#include "block/qcow2.h"

#include <zlib.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int qcow2_probe(const uint8_t *buf, size_t len)
{
	return len >= 8 && be32(buf) == QCOW2_MAGIC;
}

static const char *feature_name(const struct qcow2 *q, int type, int bit, const uint8_t *tbl,
				uint32_t tlen, char *out, size_t outlen)
{
	for (uint32_t i = 0; tbl && i + 48 <= tlen; i += 48) {
		if (tbl[i] == type && tbl[i + 1] == bit) {
			size_t n = strnlen((const char *)tbl + i + 2, 46);
			snprintf(out, outlen, "%.*s", (int)n, (const char *)tbl + i + 2);
			for (char *p = out; *p; p++)
				if (*p < 0x20 || *p > 0x7e)
					*p = '?';
			return out;
		}
	}
	return "unknown";
}

static char *dup_str(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);
	if (!s)
		return NULL;
	memcpy(s, p, n);
	s[n] = '\0';
	if (strlen(s) != n) {
		free(s);
		return NULL;
	}
	return s;
}

static int parse_exts(struct qcow2 *q, const uint8_t *hdr, uint64_t start, uint64_t end,
		      struct cove_err *err)
{
	const uint8_t *features = NULL;
	uint32_t flen = 0;
	uint64_t pos = start;
	while (pos + 8 <= end) {
		uint32_t type = be32(hdr + pos), len = be32(hdr + pos + 4);
		pos += 8;
		if (type == QCOW2_EXT_END)
			break;
		if (len > end - pos)
			return cove_err_set(err, -EINVAL,
					    "qcow2: header extension 0x%08x overflows the header "
					    "cluster",
					    type);
		const uint8_t *d = hdr + pos;
		switch (type) {
		case QCOW2_EXT_BACKING_FMT:
			if (len == 0 || len > 31 || q->backing_fmt)
				return cove_err_set(err, -EINVAL,
						    "qcow2: bad backing format extension");
			q->backing_fmt = dup_str(d, len);
			if (!q->backing_fmt)
				return cove_err_set(err, -EINVAL, "qcow2: bad backing format name");
			break;
		case QCOW2_EXT_FEATURES:
			features = d;
			flen = len;
			break;
		case QCOW2_EXT_DATA_FILE:
			if (len == 0 || len > 4095 || q->data_file)
				return cove_err_set(err, -EINVAL, "qcow2: bad data file extension");
			q->data_file = dup_str(d, len);
			if (!q->data_file)
				return cove_err_set(err, -EINVAL, "qcow2: bad data file name");
			break;
		default:
			/* Bitmaps, crypto and unknown extensions: kept as they are for rewrites. */
			if (q->next >= QCOW2_MAX_EXTS)
				return cove_err_set(err, -EINVAL,
						    "qcow2: too many header extensions");
			q->ext[q->next].type = type;
			q->ext[q->next].len = len;
			q->ext[q->next].data = malloc(len ? len : 1);
			if (!q->ext[q->next].data)
				return -ENOMEM;
			memcpy(q->ext[q->next].data, d, len);
			q->next++;
			break;
		}
		uint64_t padded = ((uint64_t)len + 7) & ~7ull;
		if (padded > end - pos)
			break;
		pos += padded;
	}
	uint64_t unknown = q->incompat & ~QCOW2_INCOMPAT_KNOWN;
	if (unknown) {
		int bit = __builtin_ctzll(unknown);
		char name[64];
		return cove_err_set(
		    err, -ENOTSUP, "qcow2: unsupported incompatible feature '%s' (bit %d)",
		    feature_name(q, 0, bit, features, flen, name, sizeof(name)), bit);
	}
	return 0;
}

static int load_tables(struct qcow2 *q, uint64_t fsize, struct cove_err *err)
{
	uint64_t cs = q->cluster_size;
	/* L1 */
	q->l1_alloc = q->l1_size ? q->l1_size : 1;
	q->l1 = calloc(q->l1_alloc, 8);
	if (!q->l1)
		return -ENOMEM;
	if (q->l1_size) {
		int ret = file_pread(q->file, q->l1, (uint64_t)q->l1_size * 8, q->l1_offset);
		if (ret)
			return cove_err_set(err, ret, "qcow2: cannot read the L1 table");
		for (uint32_t i = 0; i < q->l1_size; i++) {
			q->l1[i] = be64toh(q->l1[i]);
			uint64_t o = q->l1[i] & QCOW2_L1_OFFSET_MASK;
			if (o && (o % cs || o > fsize - cs))
				return cove_err_set(
				    err, -EINVAL,
				    "qcow2: L1 entry %u points outside the image or "
				    "is unaligned (0x%llx)",
				    i, (unsigned long long)o);
		}
	}
	/* Refcount table */
	q->rt_entries = (uint64_t)q->rt_clusters * cs / 8;
	q->rt = malloc(q->rt_clusters * cs);
	if (!q->rt)
		return -ENOMEM;
	int ret = file_pread(q->file, q->rt, q->rt_clusters * cs, q->rt_offset);
	if (ret)
		return cove_err_set(err, ret, "qcow2: cannot read the refcount table");
	for (uint64_t i = 0; i < q->rt_entries; i++) {
		q->rt[i] = be64toh(q->rt[i]);
		uint64_t o = q->rt[i] & QCOW2_RT_OFFSET_MASK;
		if (o && ((o >= q->rt_offset && o < q->rt_offset + (uint64_t)q->rt_clusters * cs) ||
			  (q->l1_size && o + cs > q->l1_offset &&
			   o < q->l1_offset + (uint64_t)q->l1_size * 8)))
			return cove_err_set(
			    err, -EINVAL,
			    "qcow2: refcount block %llu overlaps the refcount or L1 table",
			    (unsigned long long)i);
		if (o && (o % cs || o > fsize - cs) && !q->in_check)
			return cove_err_set(err, -EINVAL,
					    "qcow2: refcount block %llu points outside the image "
					    "or is unaligned",
					    (unsigned long long)i);
	}
	return 0;
}

static int in_file(uint64_t off, uint64_t len, uint64_t fsize)
{
	return off <= fsize && len <= fsize - off;
}

/* An external data file the image may name without the user's say-so: a plain file name,
 * which resolves beside the image (no directories, so no absolute path and no ".."). */
static bool data_file_beside(const char *name)
{
	return name[0] && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..");
}

int qcow2_open(struct blk *b, const struct blk_open_opts *opts, int depth, struct cove_err *err)
{
	struct qcow2 *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	b->q = q;
	q->b = b;
	q->file = &b->file;
	b->file.wend = &q->phys_end;
	q->data = b->file;
	q->cbuf_off = ~0ull;
	uint64_t fsize;
	int ret = file_size(q->file, &fsize);
	if (ret)
		return cove_err_set(err, ret, "cannot get the file size");
	uint8_t h[112];
	if (fsize < 72)
		return cove_err_set(err, -EINVAL, "qcow2: file too short for a header");
	memset(h, 0, sizeof(h));
	ret = file_pread(q->file, h, sizeof(h), 0);
	if (ret)
		return cove_err_set(err, ret, "qcow2: cannot read the header");
	if (be32(h) != QCOW2_MAGIC)
		return cove_err_set(err, -EINVAL, "qcow2: bad magic");
	q->version = be32(h + 4);
	if (q->version != 2 && q->version != 3)
		return cove_err_set(err, -ENOTSUP, "qcow2: unsupported version %u", q->version);
	q->backing_offset = be64(h + 8);
	q->backing_len = be32(h + 16);
	q->cluster_bits = be32(h + 20);
	if (q->cluster_bits < 9 || q->cluster_bits > 21)
		return cove_err_set(err, -EINVAL,
				    "qcow2: cluster_bits %u out of range (9..21: 512 B to 2 MiB)",
				    q->cluster_bits);
	uint64_t cs = q->cluster_size = 1ull << q->cluster_bits;
	q->size = be64(h + 24);
	q->crypt = be32(h + 32);
	q->l1_size = be32(h + 36);
	q->l1_offset = be64(h + 40);
	q->rt_offset = be64(h + 48);
	q->rt_clusters = be32(h + 56);
	q->nsnaps = be32(h + 60);
	q->snap_offset = be64(h + 64);
	q->refcount_order = 4;
	q->header_length = 72;
	if (q->version == 3) {
		q->incompat = be64(h + 72);
		q->compat = be64(h + 80);
		q->autoclear = be64(h + 88);
		q->refcount_order = be32(h + 96);
		q->header_length = be32(h + 100);
		if (q->header_length < 104 || q->header_length % 8 || q->header_length > cs)
			return cove_err_set(err, -EINVAL, "qcow2: bad header_length %u",
					    q->header_length);
		if (q->header_length > 104)
			q->compression_type = h[104];
	}
	if (fsize < cs)
		return cove_err_set(err, -EINVAL, "qcow2: file shorter than one cluster");
	if (q->crypt)
		return cove_err_set(
		    err, -ENOTSUP, "qcow2: unsupported feature 'encryption' (method %u)", q->crypt);
	if (q->refcount_order > 6)
		return cove_err_set(err, -EINVAL, "qcow2: refcount_order %u out of range (0..6)",
				    q->refcount_order);
	q->refcount_bits = 1u << q->refcount_order;
	q->rb_entries = cs * 8 / q->refcount_bits;
	q->refcount_max = q->refcount_bits == 64 ? UINT64_MAX : (1ull << q->refcount_bits) - 1;
	q->extl2 = q->incompat & QCOW2_INCOMPAT_EXTL2;
	q->l2_entry_size = q->extl2 ? 16 : 8;
	q->l2_entries = cs / q->l2_entry_size;
	q->l2_bits = __builtin_ctzll(q->l2_entries);
	q->sc_bits = q->extl2 ? q->cluster_bits - 5 : q->cluster_bits;
	q->sc_size = 1ull << q->sc_bits;
	if (q->extl2 && q->cluster_bits < 14)
		return cove_err_set(err, -EINVAL,
				    "qcow2: extended L2 entries need clusters of 16 KiB or more");

	/* Extensions and the feature check (which names unknown incompatible features). */
	uint8_t *hc = malloc(cs);
	if (!hc)
		return -ENOMEM;
	ret = file_pread(q->file, hc, cs, 0);
	if (!ret)
		ret = parse_exts(q, hc, q->header_length, cs, err);
	if (ret) {
		free(hc);
		return ret;
	}
	/* Backing file name */
	if (q->backing_offset) {
		if (q->backing_len == 0 || q->backing_len > QCOW2_MAX_BACKING_NAME ||
		    !in_file(q->backing_offset, q->backing_len, fsize)) {
			free(hc);
			return cove_err_set(err, -EINVAL, "qcow2: bad backing file name location");
		}
		uint8_t name[QCOW2_MAX_BACKING_NAME + 1];
		ret = file_pread(q->file, name, q->backing_len, q->backing_offset);
		if (!ret) {
			q->backing_file = dup_str(name, q->backing_len);
			if (!q->backing_file)
				ret = cove_err_set(err, -EINVAL, "qcow2: bad backing file name");
		}
	}
	free(hc);
	if (ret)
		return ret;

	if (q->incompat & QCOW2_INCOMPAT_COMPRESSION) {
		if (q->header_length <= 104 || q->compression_type == 0)
			return cove_err_set(err, -EINVAL,
					    "qcow2: compression type bit set without a type");
	} else if (q->compression_type != 0) {
		return cove_err_set(err, -EINVAL,
				    "qcow2: compression type %u without the incompatible bit",
				    q->compression_type);
	}
	if (q->compression_type > 1)
		return cove_err_set(
		    err, -ENOTSUP, "qcow2: unsupported compression type %u (known: 0 zlib, 1 zstd)",
		    q->compression_type);
	if (q->version == 2 && q->refcount_order != 4)
		return cove_err_set(err, -EINVAL, "qcow2: version 2 needs 16-bit refcounts");

	/* Structures: aligned, inside the file, bounded. */
	if (q->l1_offset % cs ||
	    (q->l1_size && !in_file(q->l1_offset, (uint64_t)q->l1_size * 8, fsize)))
		return cove_err_set(err, -EINVAL,
				    "qcow2: L1 table offset 0x%llx is unaligned or past the end "
				    "of the file",
				    (unsigned long long)q->l1_offset);
	if ((uint64_t)q->l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return cove_err_set(err, -EFBIG, "qcow2: L1 table too large (%u entries)",
				    q->l1_size);
	uint64_t per_l1 = q->l2_entries * cs;
	uint64_t need_l1 = q->size / per_l1 + (q->size % per_l1 != 0);
	if (q->size > (1ull << 62) || need_l1 > q->l1_size)
		return cove_err_set(
		    err, -EINVAL,
		    "qcow2: virtual size %llu too large for the L1 table (%u entries)",
		    (unsigned long long)q->size, q->l1_size);
	if (!q->rt_offset || q->rt_offset % cs || q->rt_clusters == 0 ||
	    (uint64_t)q->rt_clusters * cs > QCOW2_MAX_RT_BYTES ||
	    !in_file(q->rt_offset, (uint64_t)q->rt_clusters * cs, fsize))
		return cove_err_set(err, -EINVAL,
				    "qcow2: refcount table (0x%llx, %u clusters) is unaligned, too "
				    "large or past the end of the file",
				    (unsigned long long)q->rt_offset, q->rt_clusters);
	if (q->nsnaps > QCOW2_MAX_SNAPSHOTS)
		return cove_err_set(err, -EINVAL, "qcow2: too many snapshots (%u)", q->nsnaps);
	if (q->nsnaps && (q->snap_offset % cs || q->snap_offset == 0 || q->snap_offset >= fsize))
		return cove_err_set(err, -EINVAL, "qcow2: snapshot table offset is invalid");
	if (q->incompat & QCOW2_INCOMPAT_DATA_FILE) {
		if (!q->data_file)
			return cove_err_set(err, -ENOTSUP,
					    "qcow2: external data file without a name is not "
					    "supported");
		q->ext_data = true;
	} else if (q->data_file) {
		free(q->data_file);
		q->data_file = NULL;
	}
	bool readonly = b->readonly;
	if (q->incompat & QCOW2_INCOMPAT_CORRUPT) {
		/* Opened, but writes fail (blk_check with fixes may still repair it). */
	}
	/* Metadata structures must not overlap each other or the header. */
	uint64_t l1_end = q->l1_offset + (uint64_t)q->l1_size * 8;
	uint64_t rt_end = q->rt_offset + (uint64_t)q->rt_clusters * cs;
	if ((q->l1_size && q->l1_offset < cs) || q->rt_offset < cs ||
	    (q->l1_size && q->l1_offset < rt_end && q->rt_offset < l1_end) ||
	    (q->nsnaps && q->snap_offset < cs))
		return cove_err_set(
		    err, -EINVAL, "qcow2: overlapping metadata (header, L1 table, refcount table)");
	ret = load_tables(q, fsize, err);
	if (ret)
		return ret;
	ret = q2_snapshots_read(q, fsize, err);
	if (ret)
		return ret;
	q->file_end = (fsize + cs - 1) & ~(cs - 1);
	q->phys_end = max_u64(q->phys_end, fsize);

	uint64_t cap = opts && opts->cache_bytes ? opts->cache_bytes : QCOW2_DEFAULT_CACHE;
	uint64_t want = q->l1_size ? q->l1_size : 1;
	uint64_t ncl = max_u64(4, min_u64(want, cap / cs));
	uint64_t nrb = max_u64(4, min_u64(q->rt_entries, cap / 4 / cs));
	if (q2_cache_init(&q->l2c, (unsigned)ncl, cs) || q2_cache_init(&q->rbc, (unsigned)nrb, cs))
		return -ENOMEM;
	q->zero_buf = calloc(1, cs);
	q->cbuf = malloc(cs);
	q->ctmp = malloc(2 * cs + 512);
	if (!q->zero_buf || !q->cbuf || !q->ctmp)
		return -ENOMEM;

	if (q->ext_data) {
		bool trust = opts && opts->trust_data_file;
		if (!trust && !data_file_beside(q->data_file))
			return cove_err_set(
			    err, -EPERM,
			    "qcow2: the external data file '%s' is not a plain name "
			    "beside the image (an image could name any host file "
			    "this way); open it only if you trust the image (cove "
			    "img: COVE_TRUST_DATA_FILE=1)",
			    q->data_file);
		char *p = blk_resolve_relative(b->filename, q->data_file);
		if (!p)
			return -ENOMEM;
		struct stat st;
		int fd =
		    file_open_stat(p,
				   (readonly ? O_RDONLY : O_RDWR) |
				       (b->file.direct ? O_DIRECT : 0) | (trust ? 0 : O_NOFOLLOW),
				   &st);
		if (fd < 0) {
			ret = fd;
			if (ret == -ELOOP)
				cove_err_set(err, -EPERM,
					     "qcow2: the external data file '%s' is a symbolic "
					     "link; open it only if you trust the image (cove img: "
					     "COVE_TRUST_DATA_FILE=1)",
					     p);
			else
				cove_err_set(err, ret,
					     "qcow2: cannot open the external data file '%s'", p);
			free(p);
			return ret == -ELOOP ? -EPERM : ret;
		}
		free(p);
		if (!trust && !S_ISREG(st.st_mode)) {
			close(fd);
			return cove_err_set(err, -EPERM,
					    "qcow2: the external data file '%s' is not a regular "
					    "file; open it only if you trust the image (cove img: "
					    "COVE_TRUST_DATA_FILE=1)",
					    q->data_file);
		}
		/* Trusted, it may be a block device; anything else (a FIFO, a character
		 * device) cannot be read at an offset. */
		if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
			close(fd);
			return cove_err_set(err, -EINVAL,
					    "qcow2: the external data file '%s' is not a regular "
					    "file or block device",
					    q->data_file);
		}
		q->data.fd = fd;
		q->data.direct = b->file.direct;
		q->data.wend = NULL;
		q->data.nosync = b->file.nosync;
	}
	b->size = q->size;

	if (!readonly && !(q->incompat & QCOW2_INCOMPAT_CORRUPT)) {
		if (q->incompat & QCOW2_INCOMPAT_DIRTY) {
			if (!(opts && opts->no_repair)) {
				struct blk_check_result r;
				ret = qcow2_check(b, BLK_CHECK_FIX_ERRORS | BLK_CHECK_FIX_LEAKS, &r,
						  err);
				if (ret)
					return cove_err_prefix(err,
							       "qcow2: repairing the dirty image");
				q->incompat &= ~QCOW2_INCOMPAT_DIRTY;
				ret = qcow2_write_header(q);
				if (!ret)
					ret = file_sync(q->file);
				if (ret)
					return cove_err_set(err, ret,
							    "qcow2: cannot clear the dirty bit");
			}
		}
		if (q->autoclear) {
			/* We do not maintain bitmaps or raw-external-data: drop those claims. */
			uint64_t keep = q->autoclear & QCOW2_AUTOCLEAR_RAW_DATA;
			if (keep != q->autoclear) {
				q->autoclear = keep;
				ret = qcow2_write_header(q);
				if (ret)
					return cove_err_set(err, ret,
							    "qcow2: cannot update the header");
			}
		}
	}
	return 0;
}

void qcow2_close(struct blk *b)
{
	struct qcow2 *q = b->q;
	if (!q)
		return;
	if (!b->readonly && q->l2c.e) {
		qcow2_flush(b);
	}
	if (q->ext_data && q->data.fd >= 0 && q->data.fd != b->file.fd)
		close(q->data.fd);
	q2_cache_free(&q->l2c);
	q2_cache_free(&q->rbc);
	free(q->l1);
	free(q->rt);
	free(q->backing_file);
	free(q->backing_fmt);
	free(q->data_file);
	for (unsigned i = 0; i < q->next; i++)
		free(q->ext[i].data);
	q2_snapshots_free(q);
	free(q->frees);
	free(q->zero_buf);
	free(q->cbuf);
	free(q->ctmp);
	q2_compress_free(q);
	free(q);
	b->q = NULL;
}

static const struct {
	uint8_t type, bit;
	const char *name;
} feature_table[] = {
    {0, 0, "dirty bit"},	{0, 1, "corrupt bit"},	       {0, 2, "external data file"},
    {0, 3, "compression type"}, {0, 4, "extended L2 entries"}, {1, 0, "lazy refcounts"},
    {2, 0, "bitmaps"},		{2, 1, "raw external data"},
};

static size_t put_ext(uint8_t *buf, size_t pos, size_t cap, uint32_t type, const void *d,
		      uint32_t len)
{
	size_t padded = ((size_t)len + 7) & ~(size_t)7;
	if (pos + 8 + padded > cap)
		return 0;
	put32(buf + pos, type);
	put32(buf + pos + 4, len);
	memcpy(buf + pos + 8, d, len);
	memset(buf + pos + 8 + len, 0, padded - len);
	return pos + 8 + padded;
}

int qcow2_write_header(struct qcow2 *q)
{
	uint64_t cs = q->cluster_size;
	uint8_t *buf = calloc(1, cs);
	if (!buf)
		return -ENOMEM;
	put32(buf, QCOW2_MAGIC);
	put32(buf + 4, q->version);
	put32(buf + 20, q->cluster_bits);
	put64(buf + 24, q->size);
	put32(buf + 32, q->crypt);
	put32(buf + 36, q->l1_size);
	put64(buf + 40, q->l1_offset);
	put64(buf + 48, q->rt_offset);
	put32(buf + 56, q->rt_clusters);
	put32(buf + 60, q->nsnaps);
	put64(buf + 64, q->nsnaps ? q->snap_offset : 0);
	size_t pos = 72;
	if (q->version == 3) {
		put64(buf + 72, q->incompat);
		put64(buf + 80, q->compat);
		put64(buf + 88, q->autoclear);
		put32(buf + 96, q->refcount_order);
		put32(buf + 100, 112);
		buf[104] = q->compression_type;
		pos = 112;
	}
	size_t p = pos;
	if (q->backing_fmt && q->backing_file)
		p = put_ext(buf, p, cs, QCOW2_EXT_BACKING_FMT, q->backing_fmt,
			    (uint32_t)strlen(q->backing_fmt));
	if (p && q->ext_data && q->data_file)
		p = put_ext(buf, p, cs, QCOW2_EXT_DATA_FILE, q->data_file,
			    (uint32_t)strlen(q->data_file));
	if (p && q->version == 3) {
		uint8_t ft[sizeof(feature_table) / sizeof(feature_table[0]) * 48];
		memset(ft, 0, sizeof(ft));
		for (size_t i = 0; i < sizeof(feature_table) / sizeof(feature_table[0]); i++) {
			ft[i * 48] = feature_table[i].type;
			ft[i * 48 + 1] = feature_table[i].bit;
			memcpy(ft + i * 48 + 2, feature_table[i].name,
			       strlen(feature_table[i].name));
		}
		/* Only write the table when there is room for it and the rest. */
		size_t np = put_ext(buf, p, cs, QCOW2_EXT_FEATURES, ft, (uint32_t)sizeof(ft));
		if (np && np + 8 + (q->backing_file ? strlen(q->backing_file) : 0) <= cs)
			p = np;
	}
	for (unsigned i = 0; p && i < q->next; i++)
		p = put_ext(buf, p, cs, q->ext[i].type, q->ext[i].data, q->ext[i].len);
	if (!p || p + 8 > cs) {
		free(buf);
		return -ENOSPC;
	}
	p += 8; /* end marker (zeroes) */
	if (q->backing_file) {
		size_t bl = strlen(q->backing_file);
		if (p + bl > cs || bl > QCOW2_MAX_BACKING_NAME) {
			free(buf);
			return -ENOSPC;
		}
		memcpy(buf + p, q->backing_file, bl);
		put64(buf + 8, p);
		put32(buf + 16, (uint32_t)bl);
		q->backing_offset = p;
		q->backing_len = (uint32_t)bl;
	} else {
		q->backing_offset = 0;
		q->backing_len = 0;
	}
	q->header_length = q->version == 3 ? 112 : 72;
	int ret = file_pwrite(q->file, buf, cs, 0);
	free(buf);
	return ret;
}

void qcow2_fill_info(struct qcow2 *q, struct blk_info *info)
{
	info->cluster_size = (uint32_t)q->cluster_size;
	info->version = q->version;
	info->refcount_bits = q->refcount_bits;
	info->lazy_refcounts = q->compat & QCOW2_COMPAT_LAZY;
	info->extended_l2 = q->extl2;
	info->corrupt = q->incompat & QCOW2_INCOMPAT_CORRUPT;
	info->dirty = q->incompat & QCOW2_INCOMPAT_DIRTY;
	info->compression = q->compression_type == 1 ? BLK_COMPRESS_ZSTD : BLK_COMPRESS_DEFLATE;
	if (q->backing_file)
		snprintf(info->backing_file, sizeof(info->backing_file), "%s", q->backing_file);
	if (q->backing_fmt)
		snprintf(info->backing_fmt, sizeof(info->backing_fmt), "%s", q->backing_fmt);
	if (q->data_file)
		snprintf(info->data_file, sizeof(info->data_file), "%s", q->data_file);
	info->nb_snapshots = q->nsnaps;
}
