/* qcow2 internals: on-disk constants, the in-memory image state and the functions its files share.
 */
#ifndef COVE_BLOCK_QCOW2_H
#define COVE_BLOCK_QCOW2_H

#include "block/blk_int.h"

#include <endian.h>
#include <stdbool.h>
#include <stdint.h>

#define QCOW2_MAGIC 0x514649fbu

#define QCOW2_INCOMPAT_DIRTY	   (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT	   (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE   (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2	   (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN	   0x1full
#define QCOW2_COMPAT_LAZY	   (1ull << 0)
#define QCOW2_AUTOCLEAR_BITMAPS	   (1ull << 0)
#define QCOW2_AUTOCLEAR_RAW_DATA   (1ull << 1)

#define QCOW2_EXT_END	      0x00000000u
#define QCOW2_EXT_BACKING_FMT 0xe2792acau
#define QCOW2_EXT_FEATURES    0x6803f857u
#define QCOW2_EXT_BITMAPS     0x23852875u
#define QCOW2_EXT_CRYPTO      0x0537be77u
#define QCOW2_EXT_DATA_FILE   0x44415441u

#define QCOW2_OFLAG_COPIED     (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO       (1ull << 0)
#define QCOW2_OFFSET_MASK      0x00fffffffffffe00ull
#define QCOW2_L1_OFFSET_MASK   0x00fffffffffffe00ull
#define QCOW2_RT_OFFSET_MASK   0xfffffffffffffe00ull

#define QCOW2_MAX_L1_BYTES     (32u << 20) /* as QEMU */
#define QCOW2_MAX_RT_BYTES     (8u << 20)
#define QCOW2_MAX_SNAPSHOTS    65536
#define QCOW2_MAX_SNAPTABLE    (64u << 20)
#define QCOW2_DEFAULT_CACHE    (32u << 20)
#define QCOW2_MAX_BACKING_NAME 1023
#define QCOW2_MAX_EXTS	       64

/* One guest cluster (or subcluster, with extended L2) as the read path sees it. */
enum q2_kind {
	Q2_UNALLOC,
	Q2_ZERO,
	Q2_ZERO_ALLOC,	  /* reads as zero, host cluster preallocated */
	Q2_UNALLOC_ALLOC, /* extended L2: unallocated subcluster of an allocated cluster */
	Q2_DATA,
	Q2_COMPRESSED,
};

struct q2_cache_ent {
	uint64_t off; /* host offset of the table; 0 = empty slot */
	uint8_t *data;
	uint64_t lru;
	bool dirty;
};

struct q2_cache {
	unsigned n;
	uint64_t tick;
	unsigned last;
	struct q2_cache_ent *e;
};

struct q2_ext {
	uint32_t type;
	uint32_t len;
	uint8_t *data;
};

struct q2_snap {
	uint64_t l1_offset;
	uint32_t l1_size;
	char *id;
	char *name;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t vm_state_size;
	uint64_t disk_size;
	uint64_t icount;
	uint32_t extra_len; /* as read; extra bytes past the known 24 are kept */
	uint8_t *extra;
};

struct q2_free {
	uint64_t off;
	uint64_t len;
};

struct qcow2 {
	struct blk *b;
	struct blk_file *file; /* metadata file (= &b->file) */
	struct blk_file data;  /* data clusters: b->file or the external data file */
	bool ext_data;
	uint32_t version;
	unsigned cluster_bits;
	uint64_t cluster_size;
	uint64_t size;
	uint32_t crypt;
	uint64_t l1_offset;
	uint32_t l1_size;
	uint64_t *l1; /* host order, l1_alloc entries (>= l1_size) */
	uint32_t l1_alloc;
	uint64_t rt_offset;
	uint32_t rt_clusters;
	uint64_t *rt; /* host order */
	uint64_t rt_entries;
	unsigned refcount_order, refcount_bits;
	uint64_t rb_entries; /* refcounts per block */
	uint64_t refcount_max;
	uint64_t incompat, compat, autoclear;
	uint32_t header_length;
	uint8_t compression_type;
	bool extl2;
	unsigned l2_entry_size; /* 8 or 16 */
	uint64_t l2_entries;
	unsigned l2_bits;
	uint64_t sc_size; /* subcluster size (= cluster size without extended L2) */
	unsigned sc_bits;
	uint64_t backing_offset;
	uint32_t backing_len;
	char *backing_file;
	char *backing_fmt;
	char *data_file;
	unsigned next;
	struct q2_ext ext[QCOW2_MAX_EXTS];
	unsigned nsnaps;
	struct q2_snap *snaps;
	uint64_t snap_offset;
	uint64_t file_end; /* bytes: end of the highest cluster in use or the file length */
	uint64_t phys_end; /* bytes: nothing was ever written at or past this offset */
	uint64_t free_hint;
	struct q2_cache l2c, rbc;
	bool l1_dirty;
	uint32_t l1_dlo, l1_dhi; /* dirty range of L1 entries */
	bool data_unsynced;
	bool tables_unsynced; /* L2 or L1 tables (or refcount decrements) written since the last
			       * sync of the file */
	struct q2_free *frees;
	size_t nfrees, cfrees;
	uint64_t comp_next; /* next free byte for packed compressed data, 0 = none */
	uint8_t *zero_buf;  /* cluster_size zeroes */
	uint8_t *cbuf;	    /* decompressed cluster cache */
	uint64_t cbuf_off;  /* host offset of the cached compressed cluster, or ~0 */
	uint8_t *ctmp;	    /* compressed bytes scratch (2 clusters) */
	bool dirty_bit_set; /* we set the dirty bit (lazy refcounts) */
	void *zdctx;	    /* ZSTD_DCtx, made on first use */
	struct z_stream_s *zs;
	bool zinit;
	bool in_check;
};

static inline uint64_t be64(const void *p)
{
	uint64_t v;
	__builtin_memcpy(&v, p, 8);
	return be64toh(v);
}
static inline uint32_t be32(const void *p)
{
	uint32_t v;
	__builtin_memcpy(&v, p, 4);
	return be32toh(v);
}
static inline uint16_t be16(const void *p)
{
	uint16_t v;
	__builtin_memcpy(&v, p, 2);
	return be16toh(v);
}
static inline void put64(void *p, uint64_t v)
{
	v = htobe64(v);
	__builtin_memcpy(p, &v, 8);
}
static inline void put32(void *p, uint32_t v)
{
	v = htobe32(v);
	__builtin_memcpy(p, &v, 4);
}
static inline void put16(void *p, uint16_t v)
{
	v = htobe16(v);
	__builtin_memcpy(p, &v, 2);
}

/* qcow2_open.c */
int qcow2_open(struct blk *b, const struct blk_open_opts *opts, int depth, struct cove_err *err);
void qcow2_close(struct blk *b);
int qcow2_write_header(struct qcow2 *q);
int qcow2_probe(const uint8_t *buf, size_t len);
void qcow2_fill_info(struct qcow2 *q, struct blk_info *info);

/* qcow2_cache.c */
int q2_cache_init(struct q2_cache *c, unsigned n, uint64_t cluster_size);
void q2_cache_free(struct q2_cache *c);
/* Returns the table at host offset off (read from disk unless fresh: then zeroed). */
int q2_cache_get(struct qcow2 *q, struct q2_cache *c, uint64_t off, bool fresh, uint8_t **out);
void q2_cache_mark_dirty(struct q2_cache *c, uint64_t off);
void q2_cache_drop(struct q2_cache *c, uint64_t off);
int q2_cache_write_dirty(struct qcow2 *q, struct q2_cache *c, bool *wrote);
bool q2_cache_has_dirty(const struct q2_cache *c);

/* qcow2_refcount.c */
int q2_refcount_get(struct qcow2 *q, uint64_t cluster, uint64_t *out);
/* Adds delta to the refcount of every cluster that [off, off+len) touches. */
int q2_refcount_update(struct qcow2 *q, uint64_t off, uint64_t len, int64_t delta);
/* Allocates up to n contiguous clusters (at least one); *got says how many. */
int q2_alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *off, uint64_t *got);
int q2_alloc_bytes(struct qcow2 *q, uint64_t len, uint64_t *off);
/* Queues a refcount decrement for after the L2/L1 tables that drop the reference are on disk. */
int q2_free_later(struct qcow2 *q, uint64_t off, uint64_t len);
int q2_flush_meta(struct qcow2 *q);
/* q2_flush_meta without the final sync: the tables reach the page cache (see write_tables). */
int q2_write_back_meta(struct qcow2 *q);
/* Removes refcount blocks that count nothing but themselves from the refcount table (after a
 * shrink), so the file can be cut after the last cluster in use. */
int q2_drop_unused_refblocks(struct qcow2 *q);
/* Writes dirty refcount blocks and syncs, so that L2 tables may follow. */
int q2_before_l2_write(struct qcow2 *q);
uint64_t q2_rc_get_entry(const struct qcow2 *q, const uint8_t *blk, uint64_t i);
void q2_rc_set_entry(const struct qcow2 *q, uint8_t *blk, uint64_t i, uint64_t v);
int q2_write_rt(struct qcow2 *q, uint64_t lo, uint64_t hi);

/* qcow2_map.c, qcow2_write.c */
int q2_map(struct qcow2 *q, uint64_t pos, uint64_t maxlen, enum q2_kind *kind, uint64_t *host,
	   uint64_t *run);
int q2_pread(struct qcow2 *q, void *buf, uint64_t len, uint64_t off);
/* 1: host cluster h may be written in place (refcount one, not metadata); 0: needs COW;
 * -EIO: the image is corrupt there. */
int q2_inplace_ok(struct qcow2 *q, uint64_t h);
int qcow2_preadv(struct blk *b, const struct iovec *iov, int iovcnt, uint64_t off, uint64_t len);
int qcow2_pwritev(struct blk *b, const struct iovec *iov, int iovcnt, uint64_t off, uint64_t len);
int qcow2_zero(struct blk *b, uint64_t off, uint64_t len, bool unmap, bool discard);
int qcow2_block_status(struct blk *b, uint64_t off, uint64_t len, struct blk_status *st);
int qcow2_write_compressed(struct blk *b, const void *buf, uint64_t len, uint64_t off);
int qcow2_write_precompressed(struct blk *b, const void *cdata, uint64_t clen, uint64_t off);
int qcow2_flush(struct blk *b);
/* Writes dirty metadata to the file, ordered as a flush, but without the final fdatasync: a
 * kill of the process then loses no completed write; a power cut still may (until a flush). */
int qcow2_write_back(struct blk *b);
/* Whether qcow2_write_back has anything to write (L1/L2 tables, deferred frees). */
bool qcow2_needs_write_back(struct blk *b);
/* 1 when [off, off+len) is one contiguous run of data clusters in this image (and, for a write,
 * may be written in place): *host is where it lies in the data file. 0 otherwise. */
int qcow2_fast_extent(struct blk *b, uint64_t off, uint64_t len, bool write, uint64_t *host);
/* L2 access: table of guest offset off (NULL when unallocated, unless alloc). */
int q2_get_l2(struct qcow2 *q, uint64_t l1i, bool alloc, uint8_t **l2, uint64_t *l2off);
uint64_t q2_l2_get(const struct qcow2 *q, const uint8_t *l2, uint64_t i, uint64_t *bitmap);
void q2_l2_set(const struct qcow2 *q, uint8_t *l2, uint64_t i, uint64_t e, uint64_t bitmap);
void q2_compressed_range(const struct qcow2 *q, uint64_t e, uint64_t *off, uint64_t *len);
int q2_set_l1(struct qcow2 *q, uint64_t i, uint64_t v);
int q2_write_l1(struct qcow2 *q);

/* qcow2_compress.c */
int q2_decompress(struct qcow2 *q, const void *src, size_t slen, void *dst, size_t dlen);
void q2_compress_free(struct qcow2 *q);
/* Returns the compressed length, or -ENOSPC when it does not fit in dcap. */
long q2_compress(int type, const void *src, size_t slen, void *dst, size_t dcap);

/* qcow2_snapshot.c */
int q2_snapshots_read(struct qcow2 *q, uint64_t filesize, struct cove_err *err);
void q2_snapshots_free(struct qcow2 *q);
int q2_tree_refcount(struct qcow2 *q, const uint64_t *l1, uint32_t l1_size, int64_t delta);
int q2_fix_copied(struct qcow2 *q);

/* qcow2_check.c */
int qcow2_check(struct blk *b, unsigned fix, struct blk_check_result *res, struct cove_err *err);
int q2_rebuild_refcounts(struct qcow2 *q, unsigned new_order, struct cove_err *err);

/* qcow2_create.c */
int qcow2_create_file(struct blk_file *f, const struct blk_create_opts *o, uint64_t size,
		      struct cove_err *err);
int qcow2_resize(struct blk *b, uint64_t size, bool shrink, enum blk_prealloc pa,
		 struct cove_err *err);
int qcow2_preallocate(struct qcow2 *q, uint64_t from, uint64_t to, enum blk_prealloc pa);
int qcow2_amend(struct blk *b, const struct blk_create_opts *o, struct cove_err *err);
int qcow2_set_backing(struct blk *b, const char *file, const char *fmt, struct cove_err *err);
uint64_t qcow2_prealloc_size(uint64_t size, uint64_t cs, unsigned rorder, bool extl2);

#endif
