/* Unit tests of the block layer's pieces: refcount packing, descriptors, iovecs, compression,
 * the metadata cache, size estimates, and small images end to end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/qcow2.h"

static char tmpdir[64];

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/cove-blk-unit.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void refcount_widths_roundtrip(void **state)
{
	for (unsigned order = 0; order <= 6; order++) {
		struct qcow2 q = {.refcount_order = order, .refcount_bits = 1u << order};
		uint8_t blk[512];
		memset(blk, 0, sizeof(blk));
		uint64_t n = 512 * 8 / q.refcount_bits;
		uint64_t max = order == 6 ? UINT64_MAX : (1ull << (1u << order)) - 1;
		for (uint64_t i = 0; i < n; i++)
			q2_rc_set_entry(&q, blk, i, (i * 7 + 3) & max);
		for (uint64_t i = 0; i < n; i++)
			assert_int_equal(q2_rc_get_entry(&q, blk, i), (i * 7 + 3) & max);
		/* neighbours are untouched by a set */
		q2_rc_set_entry(&q, blk, 5, max);
		assert_int_equal(q2_rc_get_entry(&q, blk, 4), (4 * 7 + 3) & max);
		assert_int_equal(q2_rc_get_entry(&q, blk, 6), (6 * 7 + 3) & max);
	}
	/* sub-byte widths: bit 0 is the least significant bit (qcow2 spec) */
	struct qcow2 q1 = {.refcount_order = 0, .refcount_bits = 1};
	uint8_t b = 0;
	q2_rc_set_entry(&q1, &b, 0, 1);
	assert_int_equal(b, 1);
	/* 16 bits are big-endian */
	struct qcow2 q16 = {.refcount_order = 4, .refcount_bits = 16};
	uint8_t w[4] = {0};
	q2_rc_set_entry(&q16, w, 1, 0x0102);
	assert_int_equal(w[2], 1);
	assert_int_equal(w[3], 2);
}

static void compressed_descriptor(void **state)
{
	for (unsigned cb = 9; cb <= 21; cb++) {
		struct qcow2 q = {.cluster_bits = cb};
		unsigned x = 62 - (cb - 8);
		uint64_t coff = 0x123456789ull & ((1ull << (x < 40 ? x : 40)) - 1);
		uint64_t clen = (1ull << cb) - 1 < 700 ? (1ull << cb) - 1 : 700;
		uint64_t nsec = ((coff + clen - 1) >> 9) - (coff >> 9);
		uint64_t e = QCOW2_OFLAG_COMPRESSED | (nsec << x) | coff;
		uint64_t o, l;
		q2_compressed_range(&q, e, &o, &l);
		assert_int_equal(o, coff);
		assert_true(l >= clen);
		assert_int_equal((o + l) % 512, 0);
	}
}

static void iov_helpers(void **state)
{
	char a[5] = "abcde", b[3] = "fgh", c[4] = "ijkl";
	struct iovec v[3] = {{a, 5}, {b, 3}, {c, 4}}, out[3];
	uint64_t got;
	assert_int_equal(iov_total(v, 3), 12);
	int n = iov_slice(v, 3, 4, 5, out, 3, &got);
	assert_int_equal(n, 3);
	assert_int_equal(got, 5);
	assert_ptr_equal(out[0].iov_base, a + 4);
	assert_int_equal(out[2].iov_len, 1);
	n = iov_slice(v, 3, 0, 12, out, 2, &got);
	assert_int_equal(n, 2);
	assert_int_equal(got, 8);
	char buf[12];
	iov_to_buf(v, 3, 3, buf, 6);
	assert_memory_equal(buf, "defghi", 6);
	iov_from_buf(v, 3, 6, "XYZ", 3);
	assert_memory_equal(b, "fXY", 3);
	assert_int_equal(c[0], 'Z');
	iov_memset(v, 3, 10, 0, 2);
	assert_int_equal(c[2], 0);
	assert_int_equal(c[3], 0);
}

static void compression_roundtrip(void **state)
{
	uint8_t src[65536], dst[65536], out[65536];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i % 251 < 100 ? i / 97 : 0);
	for (int type = 0; type <= 1; type++) {
		struct qcow2 q = {.compression_type = (uint8_t)type};
		long n = q2_compress(type, src, sizeof(src), dst, sizeof(dst) - 1);
		assert_true(n > 0 && n < 65535);
		/* trailing padding after the stream, as in a sector-rounded read */
		memset(dst + n, 0xaa, 600);
		assert_int_equal(q2_decompress(&q, dst, (size_t)n + 600, out, sizeof(out)), 0);
		assert_memory_equal(src, out, sizeof(src));
		/* truncated or garbage input fails cleanly */
		assert_int_not_equal(q2_decompress(&q, dst, (size_t)n / 2, out, sizeof(out)), 0);
		memset(dst, 0x5a, 200);
		assert_int_not_equal(q2_decompress(&q, dst, 200, out, sizeof(out)), 0);
		q2_compress_free(&q);
	}
	/* incompressible data does not fit */
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)rand();
	assert_true(q2_compress(0, src, sizeof(src), dst, 1000) < 0);
	assert_true(q2_compress(1, src, sizeof(src), dst, 1000) < 0);
}

static void names_parse(void **state)
{
	enum blk_format f;
	assert_int_equal(blk_format_parse("qcow2", &f), 0);
	assert_int_equal(f, BLK_FMT_QCOW2);
	assert_int_equal(blk_format_parse("raw", &f), 0);
	assert_int_equal(blk_format_parse("vmdk", &f), -EINVAL);
	assert_string_equal(blk_format_name(BLK_FMT_QCOW2), "qcow2");
	assert_null(blk_format_name(BLK_FMT_AUTO));
	enum blk_prealloc p;
	assert_int_equal(blk_prealloc_parse("falloc", &p), 0);
	assert_int_equal(p, BLK_PREALLOC_FALLOC);
	assert_int_equal(blk_prealloc_parse("sparse", &p), -EINVAL);
	char *s = blk_resolve_relative("/a/b/img.qcow2", "base.raw");
	assert_string_equal(s, "/a/b/base.raw");
	free(s);
	s = blk_resolve_relative("img.qcow2", "base.raw");
	assert_string_equal(s, "base.raw");
	free(s);
	s = blk_resolve_relative("d/img.qcow2", "/abs/base");
	assert_string_equal(s, "/abs/base");
	free(s);
}

static void prealloc_size_matches_qemu(void **state)
{
	/* figures from qemu-img 7.2 measure --size */
	assert_int_equal(qcow2_prealloc_size(10ull << 30, 4096, 6, false), 10779537408ull);
	assert_int_equal(qcow2_prealloc_size(10ull << 30, 65536, 4, false) - (10ull << 30),
			 1900544ull);
}

static void path_in_tmp(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

static void create_write_read(void **state)
{
	char p[128];
	path_in_tmp(p, sizeof(p), "a.qcow2");
	struct blk_create_opts o = {.format = BLK_FMT_QCOW2, .size = 8 << 20, .cluster_size = 4096};
	struct cove_err err = {0};
	assert_int_equal(blk_create(p, &o, false, &err), 0);
	assert_int_equal(blk_create(p, &o, false, &err), -EEXIST);
	struct blk *b;
	assert_int_equal(blk_open(p, NULL, &b, &err), 0);
	assert_int_equal(blk_get_format(b), BLK_FMT_QCOW2);
	assert_int_equal(blk_size(b), 8 << 20);
	assert_int_equal(blk_cluster_size(b), 4096);
	uint8_t w[10000], r[10000];
	for (size_t i = 0; i < sizeof(w); i++)
		w[i] = (uint8_t)(i * 13);
	assert_int_equal(blk_pwrite(b, w, sizeof(w), 3000), 0);
	assert_int_equal(blk_pread(b, r, sizeof(r), 3000), 0);
	assert_memory_equal(w, r, sizeof(w));
	/* out of range */
	assert_int_equal(blk_pread(b, r, 2, (8 << 20) - 1), -EINVAL);
	/* status: data where written, zero elsewhere */
	struct blk_status st;
	assert_int_equal(blk_block_status(b, 4096, 4096, &st), 0);
	assert_true(st.flags & BLK_STATUS_DATA);
	assert_int_equal(blk_block_status(b, 1 << 20, 4096, &st), 0);
	assert_true(st.flags & BLK_STATUS_ZERO);
	assert_false(st.flags & BLK_STATUS_ALLOCATED);
	/* zeroes and discard */
	assert_int_equal(blk_write_zeroes(b, 4096, 4096, 0), 0);
	assert_int_equal(blk_pread(b, r, 4096, 4096), 0);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(r[i], 0);
	assert_int_equal(blk_discard(b, 8192, 4096), 0);
	assert_int_equal(blk_pread(b, r, 100, 8192), 0);
	assert_int_equal(r[50], 0);
	struct blk_check_result res;
	assert_int_equal(blk_check(b, 0, &res, &err), 0);
	blk_close(b);
	/* a fresh open sees the same and a clean check */
	struct blk_open_opts ro = {.readonly = true};
	assert_int_equal(blk_open(p, &ro, &b, &err), 0);
	assert_int_equal(blk_pread(b, r, 1000, 3000), 0);
	assert_memory_equal(w, r, 1000);
	assert_int_equal(blk_pwrite(b, w, 10, 0), -EROFS);
	assert_int_equal(blk_check(b, 0, &res, &err), 0);
	assert_int_equal(res.corruptions, 0);
	assert_int_equal(res.leaks, 0);
	blk_close(b);
}

/* Shrinking cuts the file; what was past the cut reads as zeroes again, so phys_end (the
 * bound for skipping zero fills) follows it down, and a partial write in a fresh cluster
 * there still reads back with zeroes around it. */
static void shrink_lowers_phys_end(void **state)
{
	char p[128];
	path_in_tmp(p, sizeof(p), "shrink.qcow2");
	struct blk_create_opts o = {.format = BLK_FMT_QCOW2, .size = 4 << 20};
	struct cove_err err = {0};
	assert_int_equal(blk_create(p, &o, true, &err), 0);
	struct blk *b;
	assert_int_equal(blk_open(p, NULL, &b, &err), 0);
	static uint8_t buf[1 << 20];
	memset(buf, 0xa5, sizeof(buf));
	for (uint64_t off = 0; off < (4 << 20); off += sizeof(buf))
		assert_int_equal(blk_pwrite(b, buf, sizeof(buf), off), 0);
	uint64_t before = b->q->phys_end;
	assert_true(before >= 4 << 20);
	assert_int_equal(blk_resize(b, 1 << 20, true, BLK_PREALLOC_OFF, &err), 0);
	assert_true(b->q->file_end < before);
	assert_true(b->q->phys_end <= b->q->file_end);
	assert_int_equal(blk_resize(b, 4 << 20, false, BLK_PREALLOC_OFF, &err), 0);
	assert_int_equal(blk_pwrite(b, "cove", 4, (3 << 20) + 1000), 0);
	uint8_t r[4096];
	assert_int_equal(blk_pread(b, r, sizeof(r), 3 << 20), 0);
	for (size_t i = 0; i < sizeof(r); i++)
		assert_int_equal(r[i], i >= 1000 && i < 1004 ? (uint8_t) "cove"[i - 1000] : 0);
	assert_int_equal(blk_pread(b, r, sizeof(r), (1 << 20) - sizeof(r)), 0);
	assert_int_equal(r[0], 0xa5);
	struct blk_check_result res;
	assert_int_equal(blk_check(b, 0, &res, &err), 0);
	assert_int_equal(res.corruptions + res.leaks, 0);
	blk_close(b);
}

static void open_errors_named(void **state)
{
	char p[128];
	path_in_tmp(p, sizeof(p), "bad.qcow2");
	struct blk_create_opts o = {.format = BLK_FMT_QCOW2, .size = 1 << 20};
	struct cove_err err = {0};
	assert_int_equal(blk_create(p, &o, true, &err), 0);
	FILE *f = fopen(p, "r+b");
	assert_non_null(f);
	uint8_t v[4] = {0, 0, 0, 23}; /* cluster_bits 23 */
	fseek(f, 20, SEEK_SET);
	fwrite(v, 1, 4, f);
	fclose(f);
	struct blk *b;
	assert_int_equal(blk_open(p, NULL, &b, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "cluster_bits"));
	cove_err_clear(&err);
	assert_int_equal(blk_open("/nonexistent/x", NULL, &b, &err), -ENOENT);
	/* invalid create options */
	struct blk_create_opts bad = {
	    .format = BLK_FMT_QCOW2, .size = 1 << 20, .cluster_size = 3000};
	cove_err_clear(&err);
	assert_int_equal(blk_create(p, &bad, true, &err), -EINVAL);
	bad.cluster_size = 4096;
	bad.extended_l2 = true;
	cove_err_clear(&err);
	assert_int_equal(blk_create(p, &bad, true, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "16 KiB"));
}

static void cache_lru(void **state)
{
	char p[128];
	path_in_tmp(p, sizeof(p), "c.raw");
	FILE *f = fopen(p, "w+b");
	assert_non_null(f);
	for (int i = 0; i < 8; i++) {
		uint8_t blk[512];
		memset(blk, i + 1, sizeof(blk));
		fwrite(blk, 1, sizeof(blk), f);
	}
	fflush(f);
	struct blk_file file = {.fd = fileno(f)};
	struct qcow2 q = {.cluster_size = 512, .cluster_bits = 9, .file = &file};
	assert_int_equal(q2_cache_init(&q.l2c, 2, 512), 0);
	assert_int_equal(q2_cache_init(&q.rbc, 2, 512), 0);
	uint8_t *t;
	assert_int_equal(q2_cache_get(&q, &q.rbc, 512, false, &t), 0);
	assert_int_equal(t[0], 2);
	t[0] = 99;
	q2_cache_mark_dirty(&q.rbc, 512);
	assert_int_equal(q2_cache_get(&q, &q.rbc, 1024, false, &t), 0);
	assert_int_equal(t[0], 3);
	/* a third table evicts the least recently used (512), writing it back first */
	assert_int_equal(q2_cache_get(&q, &q.rbc, 1536, false, &t), 0);
	uint8_t c;
	assert_int_equal(pread(fileno(f), &c, 1, 512), 1);
	assert_int_equal(c, 99);
	assert_false(q2_cache_has_dirty(&q.rbc));
	q2_cache_free(&q.l2c);
	q2_cache_free(&q.rbc);
	fclose(f);
}

static void raw_backend(void **state)
{
	char p[128];
	path_in_tmp(p, sizeof(p), "r.img");
	struct blk_create_opts o = {.format = BLK_FMT_RAW, .size = 1 << 20};
	struct cove_err err = {0};
	assert_int_equal(blk_create(p, &o, true, &err), 0);
	struct blk *b;
	assert_int_equal(blk_open(p, NULL, &b, &err), 0);
	assert_int_equal(blk_get_format(b), BLK_FMT_RAW);
	uint8_t w[4096];
	memset(w, 7, sizeof(w));
	assert_int_equal(blk_pwrite(b, w, sizeof(w), 65536), 0);
	struct blk_status st;
	assert_int_equal(blk_block_status(b, 0, 1 << 20, &st), 0);
	assert_true(st.flags & BLK_STATUS_ZERO);
	assert_int_equal(blk_block_status(b, 65536, 4096, &st), 0);
	assert_true(st.flags & BLK_STATUS_DATA);
	assert_int_equal(blk_write_compressed(b, w, 512, 0), -ENOTSUP);
	assert_int_equal(blk_discard(b, 65536, 4096), 0);
	uint8_t r[16];
	assert_int_equal(blk_pread(b, r, sizeof(r), 65536), 0);
	assert_int_equal(r[0], 0);
	struct blk_info info;
	assert_int_equal(blk_get_info(b, &info), 0);
	assert_int_equal(info.virtual_size, 1 << 20);
	assert_int_equal(blk_resize(b, 4096, false, BLK_PREALLOC_OFF, &err), -EBUSY);
	blk_close(b);
	/* O_DIRECT with unaligned buffers goes through bounce buffers */
	struct blk_open_opts d = {.direct = true};
	cove_err_clear(&err);
	if (blk_open(p, &d, &b, &err) == 0) {
		memset(w, 9, sizeof(w));
		assert_int_equal(blk_pwrite(b, w + 1, 1000, 777), 0);
		assert_int_equal(blk_pread(b, r, 10, 1000), 0);
		assert_int_equal(r[0], 9);
		blk_close(b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(refcount_widths_roundtrip),
	    cmocka_unit_test(compressed_descriptor),
	    cmocka_unit_test(iov_helpers),
	    cmocka_unit_test(compression_roundtrip),
	    cmocka_unit_test(names_parse),
	    cmocka_unit_test(prealloc_size_matches_qemu),
	    cmocka_unit_test(create_write_read),
	    cmocka_unit_test(shrink_lowers_phys_end),
	    cmocka_unit_test(open_errors_named),
	    cmocka_unit_test(cache_lru),
	    cmocka_unit_test(raw_backend),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
