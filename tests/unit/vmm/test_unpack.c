/* Unit tests of a bzImage booted by PVH: payload decompression (LZ4 legacy above all), the
 * vmlinux laid out in guest RAM, and the fallbacks to the boot protocol. */
#include "vmm/layout.h"
#include "vmm/loader.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "le_put.h"

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* Compressible bytes that differ everywhere (so a misplaced copy shows). */
static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)("kernel"[(i + seed) % 6] + (i >> 9) + seed);
}

/* The LZ4 legacy frame the kernel build writes (lz4 -l): the magic, blocks of at most 8 MiB
 * each after its size, then the decompressed size (size_append). */
static uint8_t *lz4_legacy(const uint8_t *data, size_t n, size_t *clen)
{
	size_t cap = n + n / 200 + 4096;
	uint8_t *c = malloc(cap);
	put32(c, 0x184C2102);
	size_t len = 4;
	for (size_t off = 0; off < n; off += 8 << 20) {
		int in = (int)(n - off < (8u << 20) ? n - off : 8u << 20);
		int k = LZ4_compress_default((const char *)data + off, (char *)c + len + 4, in,
					     (int)(cap - len - 4));
		assert_true(k > 0);
		put32(c + len, (uint32_t)k);
		len += 4 + (size_t)k;
	}
	put32(c + len, (uint32_t)n);
	*clen = len + 4;
	return c;
}

/* DATA compressed as KIND: "gz", "zst", "xz", "lz4", or stored as it is. */
static uint8_t *pack(const char *kind, const uint8_t *data, size_t n, size_t *clen)
{
	if (!strcmp(kind, "lz4"))
		return lz4_legacy(data, n, clen);
	size_t cap = n + n / 2 + 4096;
	uint8_t *c = malloc(cap);
	if (!strcmp(kind, "gz")) {
		z_stream z = {0};
		assert_int_equal(
		    deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
		z.next_in = (Bytef *)data;
		z.avail_in = (uInt)n;
		z.next_out = c;
		z.avail_out = (uInt)cap;
		assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
		*clen = z.total_out;
		deflateEnd(&z);
	} else if (!strcmp(kind, "zst")) {
		*clen = ZSTD_compress(c, cap, data, n, 3);
		assert_false(ZSTD_isError(*clen));
		put32(c + *clen, (uint32_t)n); /* size_append, as for the kernel's zstd */
		*clen += 4;
	} else if (!strcmp(kind, "xz")) {
		*clen = 0;
		assert_int_equal(
		    lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, data, n, c, clen, cap),
		    LZMA_OK);
		put32(c + *clen, (uint32_t)n);
		*clen += 4;
	} else {
		memcpy(c, data, n);
		*clen = n;
	}
	return c;
}

/* A bzImage (2 setup sectors, 4 KiB of "decompressor") with the payload after it. */
#define BZ_SETUP 1024
#define BZ_CODE	 4096
static uint8_t *make_bz(const uint8_t *payload, size_t plen, size_t *len)
{
	*len = BZ_SETUP + BZ_CODE + plen;
	uint8_t *b = calloc(1, *len);
	b[0x1F1] = 1;
	put16(b + 0x1FE, 0xAA55);
	b[0x200] = 0xEB;
	b[0x201] = 0x66;
	memcpy(b + 0x202, "HdrS", 4);
	put16(b + 0x206, 0x020F);
	b[0x211] = 1;
	put32(b + 0x22C, 0x7FFFFFFF);
	b[0x234] = 1;
	put16(b + 0x236, 1);
	put32(b + 0x238, 2047);
	put32(b + 0x248, BZ_CODE);	  /* payload_offset */
	put32(b + 0x24C, (uint32_t)plen); /* payload_length */
	put64(b + 0x258, 0x1000000);
	put32(b + 0x260, 0x200000);
	memcpy(b + BZ_SETUP + BZ_CODE, payload, plen);
	return b;
}

/*
 * A vmlinux-like ELF64: like Linux's, its segments do not keep their file distances in
 * memory (the per-CPU segment), so all but the first move down. PT_LOADs:
 *   A: file 0x1000..0x4000  -> 16 MiB           (holds the PT_NOTE with the PVH entry)
 *   B: file 0x5000..0x6000  -> 16 MiB + 0x3000
 *   C: file 0x6000..0x8000  -> 16 MiB + 0x4000, 0x5000 in memory (the rest zeroed: bss)
 * then 0x800 bytes that no segment covers (Linux appends its relocations there).
 */
#define VM_LEN	 0x8800
#define VM_ENTRY 0x1000040
static uint8_t *make_vmlinux(bool note)
{
	uint8_t *b = calloc(1, VM_LEN);
	memcpy(b,
	       "\x7f"
	       "ELF",
	       4);
	b[4] = 2;
	b[5] = 1;
	b[6] = 1;
	put16(b + 16, 2);
	put16(b + 18, 62);
	put64(b + 32, 64);
	put16(b + 54, 56);
	put16(b + 56, 4);
	static const uint64_t seg[3][4] = {
	    {0x1000, 0x3000, 0x1000000, 0x3000},
	    {0x5000, 0x1000, 0x1003000, 0x1000},
	    {0x6000, 0x2000, 0x1004000, 0x5000},
	};
	for (unsigned i = 0; i < 3; i++) {
		uint8_t *ph = b + 64 + i * 56;
		put32(ph, 1);
		put64(ph + 8, seg[i][0]);
		put64(ph + 24, seg[i][2]);
		put64(ph + 32, seg[i][1]);
		put64(ph + 40, seg[i][3]);
		fill(b + seg[i][0], seg[i][1], i + 1);
	}
	memset(b + 0x8000, 0xEE, 0x800);
	uint8_t *ph = b + 64 + 3 * 56;
	put32(ph, 4);
	put64(ph + 8, 0x1800);
	put64(ph + 32, 24);
	uint8_t *n = b + 0x1800;
	put32(n, 4);
	put32(n + 4, 8);
	put32(n + 8, note ? 18 : 17);
	memcpy(n + 12, "Xen", 4);
	put64(n + 16, VM_ENTRY);
	return b;
}

static uint8_t *make_bz_vmlinux(const char *kind, bool note, size_t *len)
{
	uint8_t *vm = make_vmlinux(note);
	size_t clen;
	uint8_t *c = pack(kind, vm, VM_LEN, &clen);
	uint8_t *b = make_bz(c, clen, len);
	free(c);
	free(vm);
	return b;
}

static struct guest_mem mem64(void)
{
	struct guest_mem mem;
	assert_int_equal(guest_mem_init(&mem, 64 << 20, false), 0);
	return mem;
}

static int load(struct guest_mem *mem, const uint8_t *k, size_t len, enum boot_choice boot,
		const uint8_t *initrd, size_t ilen, struct boot_entry *e, struct boot_report *rep,
		struct cove_err *err)
{
	struct boot_config cfg = {k, len, initrd, ilen, "console=ttyS0", 0xE1230, boot};
	cove_err_clear(err);
	return loader_load(mem, &cfg, e, rep, err);
}

/* Several blocks, a second stream after a repeated magic, trailing bytes, bounds. */
static void lz4_blocks(void **state)
{
	size_t n = (17u << 20) + 1234; /* 3 blocks */
	uint8_t *data = malloc(n);
	fill(data, n, 7);
	size_t clen;
	uint8_t *c = lz4_legacy(data, n, &clen);
	struct kernel_payload p = {c, clen, PAYLOAD_LZ4};
	uint8_t *out;
	size_t olen;
	assert_int_equal(kernel_payload_decompress_alloc(&p, KERNEL_PAYLOAD_MAX, &out, &olen), 0);
	assert_int_equal(olen, n);
	assert_memory_equal(out, data, n);
	kernel_payload_free(out, olen);

	/* exactly enough room, one byte less, and a peek at the start */
	uint8_t *dst = malloc(n);
	assert_int_equal(kernel_payload_decompress(&p, dst, n, &olen), 0);
	assert_int_equal(kernel_payload_decompress(&p, dst, n - 1, &olen), -EFBIG);
	assert_int_equal(olen, n - 1);
	assert_memory_equal(dst, data, n - 1);
	uint8_t head[16384];
	assert_int_equal(kernel_payload_decompress(&p, head, sizeof(head), &olen), -EFBIG);
	assert_int_equal(olen, sizeof(head));
	assert_memory_equal(head, data, sizeof(head));
	assert_int_equal(kernel_payload_decompress_alloc(&p, 1 << 20, &out, &olen), -EFBIG);
	assert_int_equal(olen, 1 << 20);
	assert_memory_equal(out, data, 1 << 20);
	kernel_payload_free(out, olen);

	/* without the trailing size, and with a second stream after a repeated magic */
	p.len = clen - 4;
	assert_int_equal(kernel_payload_decompress(&p, dst, n, &olen), 0);
	assert_int_equal(olen, n);
	size_t c2len;
	uint8_t *c2 = lz4_legacy(data, 4096, &c2len);
	uint8_t *cat = malloc(clen - 4 + c2len);
	memcpy(cat, c, clen - 4);
	memcpy(cat + clen - 4, c2, c2len);
	p = (struct kernel_payload){cat, clen - 4 + c2len, PAYLOAD_LZ4};
	assert_int_equal(kernel_payload_decompress_alloc(&p, KERNEL_PAYLOAD_MAX, &out, &olen), 0);
	assert_int_equal(olen, n + 4096);
	assert_memory_equal(out + n, data, 4096);
	kernel_payload_free(out, olen);
	free(cat);
	free(c2);
	free(dst);
	free(c);
	free(data);
}

static void lz4_damaged(void **state)
{
	size_t n = 9u << 20;
	uint8_t *data = malloc(n);
	fill(data, n, 3);
	size_t clen;
	uint8_t *c = lz4_legacy(data, n, &clen);
	uint8_t *dst = malloc(n);
	size_t olen;
	/* cut inside the second block */
	struct kernel_payload p = {c, clen - 100, PAYLOAD_LZ4};
	assert_int_equal(kernel_payload_decompress(&p, dst, n, &olen), -EINVAL);
	/* cut inside the first block's size field: no block at all */
	p.len = 6;
	assert_int_equal(kernel_payload_decompress(&p, dst, n, &olen), -EINVAL);
	/* a block that ends in the middle of a sequence */
	p.len = clen;
	uint32_t first = get32(c + 4);
	put32(c + 4, 100);
	assert_int_equal(kernel_payload_decompress(&p, dst, n, &olen), -EINVAL);
	put32(c + 4, first);
	assert_int_equal(kernel_payload_decompress(&p, dst, n, &olen), 0);
	/* a block size of 0 or beyond LZ4's bound for 8 MiB ends the stream: here, at once */
	put32(c + 4, 0);
	assert_int_equal(kernel_payload_decompress(&p, dst, n, &olen), -EINVAL);
	put32(c + 4, 9u << 20);
	assert_int_equal(kernel_payload_decompress(&p, dst, n, &olen), -EINVAL);
	/* kinds not read */
	p.kind = PAYLOAD_BZIP2;
	assert_int_equal(kernel_payload_decompress(&p, dst, n, &olen), -ENOTSUP);
	free(dst);
	free(c);
	free(data);
}

static void check_pvh_loaded(struct guest_mem *mem, const struct boot_entry *e,
			     const uint8_t *initrd, size_t ilen)
{
	assert_int_equal(e->mode, BOOT_PVH32);
	assert_int_equal(e->rip, VM_ENTRY);
	assert_int_equal(e->arg, LAYOUT_PVH_INFO);
	uint8_t *vm = make_vmlinux(true);
	/* every segment at its paddr, its tail zeroed */
	assert_memory_equal(guest_mem_ptr(mem, 0x1000000, 0x3000), vm + 0x1000, 0x3000);
	assert_memory_equal(guest_mem_ptr(mem, 0x1003000, 0x1000), vm + 0x5000, 0x1000);
	assert_memory_equal(guest_mem_ptr(mem, 0x1004000, 0x2000), vm + 0x6000, 0x2000);
	uint8_t zero[0x3000] = {0};
	assert_memory_equal(guest_mem_ptr(mem, 0x1006000, 0x3000), zero, 0x3000);
	free(vm);
	/* hvm_start_info: magic, the initrd as module 0, the command line, the RSDP */
	uint8_t *si = guest_mem_ptr(mem, LAYOUT_PVH_INFO, 56);
	assert_int_equal(get32(si), 0x336EC578);
	assert_int_equal(get32(si + 12), ilen ? 1 : 0);
	uint64_t v;
	memcpy(&v, si + 24, 8);
	assert_string_equal((char *)guest_mem_ptr(mem, v, 14), "console=ttyS0");
	memcpy(&v, si + 32, 8);
	assert_int_equal(v, 0xE1230);
	if (ilen) {
		memcpy(&v, si + 16, 8); /* modlist_paddr */
		uint64_t mod[2];
		memcpy(mod, guest_mem_ptr(mem, v, 16), 16);
		assert_int_equal(mod[1], ilen);
		assert_true(mod[0] >= 0x1009000);
		assert_memory_equal(guest_mem_ptr(mem, mod[0], ilen), initrd, ilen);
	}
}

/* Every compression distributions ship: the vmlinux boots by PVH, in place. */
static void bz_to_pvh(void **state)
{
	struct guest_mem mem = mem64();
	uint8_t initrd[3000];
	fill(initrd, sizeof(initrd), 9);
	static const char *const kinds[] = {"lz4", "gz", "zst", "xz"};
	static const enum payload_kind ids[] = {PAYLOAD_LZ4, PAYLOAD_GZIP, PAYLOAD_ZSTD,
						PAYLOAD_XZ};
	for (unsigned k = 0; k < 4; k++) {
		for (unsigned mode = 0; mode < 2; mode++) { /* auto, then pvh */
			guest_mem_clear(&mem);
			size_t len;
			uint8_t *bz = make_bz_vmlinux(kinds[k], true, &len);
			struct boot_entry e;
			struct boot_report rep;
			struct cove_err err = {0};
			if (load(&mem, bz, len, mode ? BOOT_CHOICE_PVH : BOOT_CHOICE_AUTO, initrd,
				 sizeof(initrd), &e, &rep, &err))
				fail_msg("%s: %s", kinds[k], err.msg);
			assert_int_equal(rep.path, BOOT_PATH_PVH_UNPACKED);
			assert_int_equal(rep.payload, ids[k]);
			assert_int_equal(rep.unpacked_len, VM_LEN);
			assert_string_equal(rep.no_pvh, "");
			check_pvh_loaded(&mem, &e, initrd, sizeof(initrd));
			free(bz);
		}
	}
	guest_mem_free(&mem);
}

/* A fallback boots by the boot protocol and says why; --boot pvh refuses with the same why. */
static void expect_fallback(struct guest_mem *mem, const uint8_t *bz, size_t len, const char *why)
{
	struct boot_entry e;
	struct boot_report rep;
	struct cove_err err = {0};
	guest_mem_clear(mem);
	if (load(mem, bz, len, BOOT_CHOICE_AUTO, NULL, 0, &e, &rep, &err))
		fail_msg("auto: %s", err.msg);
	assert_int_equal(e.mode, BOOT_LINUX64);
	assert_int_equal(rep.path, BOOT_PATH_LINUX);
	if (!strstr(rep.no_pvh, why))
		fail_msg("fallback reason '%s' lacks '%s'", rep.no_pvh, why);
	assert_true(load(mem, bz, len, BOOT_CHOICE_PVH, NULL, 0, &e, &rep, &err) < 0);
	if (!strstr(err.msg, "--boot pvh") || !strstr(err.msg, why))
		fail_msg("--boot pvh error '%s' lacks '%s'", err.msg, why);
}

static void fallbacks(void **state)
{
	struct guest_mem mem = mem64();
	size_t len;
	/* a vmlinux without the PVH note (Linux without CONFIG_PVH) */
	uint8_t *bz = make_bz_vmlinux("lz4", false, &len);
	expect_fallback(&mem, bz, len, "no PVH entry note");
	free(bz);
	/* a truncated payload: its length cut, and the file with it */
	bz = make_bz_vmlinux("lz4", true, &len);
	uint32_t plen = get32(bz + 0x24C);
	put32(bz + 0x24C, plen / 2);
	expect_fallback(&mem, bz, BZ_SETUP + BZ_CODE + plen / 2, "damaged or truncated");
	free(bz);
	bz = make_bz_vmlinux("gz", true, &len);
	memset(bz + BZ_SETUP + BZ_CODE + 100, 0x5A, 200);
	expect_fallback(&mem, bz, len, "damaged or truncated");
	free(bz);
	/* a payload that is no ELF file */
	uint8_t text[5000];
	fill(text, sizeof(text), 1);
	size_t clen;
	uint8_t *c = pack("zst", text, sizeof(text), &clen);
	bz = make_bz(c, clen, &len);
	expect_fallback(&mem, bz, len, "not an ELF vmlinux");
	free(bz);
	free(c);
	/* a compression Cove does not read */
	uint8_t bzip2[64] = "BZh91AY&SY";
	bz = make_bz(bzip2, sizeof(bzip2), &len);
	expect_fallback(&mem, bz, len, "bzip2-compressed");
	free(bz);
	/* a payload beyond the end of the file */
	bz = make_bz_vmlinux("lz4", true, &len);
	put32(bz + 0x24C, 1u << 30);
	expect_fallback(&mem, bz, len, "not inside the file");
	free(bz);
	/* segments that overlap in memory */
	uint8_t *vm = make_vmlinux(true);
	put64(vm + 64 + 56 + 24, 0x1002000); /* B over the end of A */
	c = pack("lz4", vm, VM_LEN, &clen);
	bz = make_bz(c, clen, &len);
	expect_fallback(&mem, bz, len, "overlapping segments");
	free(bz);
	free(c);
	free(vm);
	guest_mem_free(&mem);
}

static void boot_choices(void **state)
{
	struct guest_mem mem = mem64();
	size_t len;
	uint8_t *bz = make_bz_vmlinux("lz4", true, &len);
	struct boot_entry e;
	struct boot_report rep;
	struct cove_err err = {0};
	/* --boot linux: the boot protocol, nothing decompressed */
	assert_int_equal(load(&mem, bz, len, BOOT_CHOICE_LINUX, NULL, 0, &e, &rep, &err), 0);
	assert_int_equal(e.mode, BOOT_LINUX64);
	assert_int_equal(rep.path, BOOT_PATH_LINUX);
	assert_int_equal(rep.unpacked_len, 0);
	assert_string_equal(rep.no_pvh, "");
	/* the report is optional */
	assert_int_equal(load(&mem, bz, len, BOOT_CHOICE_AUTO, NULL, 0, &e, NULL, &err), 0);
	assert_int_equal(e.mode, BOOT_PVH32);
	free(bz);
	/* an ELF kernel: PVH by auto and pvh; --boot linux is an error */
	uint8_t *vm = make_vmlinux(true);
	assert_int_equal(load(&mem, vm, VM_LEN, BOOT_CHOICE_PVH, NULL, 0, &e, &rep, &err), 0);
	assert_int_equal(rep.path, BOOT_PATH_PVH);
	assert_int_equal(e.mode, BOOT_PVH32);
	assert_int_equal(load(&mem, vm, VM_LEN, BOOT_CHOICE_LINUX, NULL, 0, &e, &rep, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "--boot linux"));
	free(vm);
	guest_mem_free(&mem);
}

/* Too little RAM for the decompressed vmlinux: --boot pvh says to give more memory. */
static void too_little_ram(void **state)
{
	struct guest_mem mem;
	assert_int_equal(guest_mem_init(&mem, 16 << 20, false), 0);
	size_t len;
	uint8_t *bz = make_bz_vmlinux("xz", true, &len);
	struct boot_entry e;
	struct cove_err err = {0};
	assert_int_equal(load(&mem, bz, len, BOOT_CHOICE_PVH, NULL, 0, &e, NULL, &err), -ENOSPC);
	if (!strstr(err.msg, "give more --memory"))
		fail_msg("'%s'", err.msg);
	free(bz);
	guest_mem_free(&mem);
}

static void names(void **state)
{
	assert_string_equal(kernel_payload_name(PAYLOAD_LZ4), "lz4");
	assert_string_equal(kernel_payload_name(PAYLOAD_XZ), "xz");
	assert_string_equal(kernel_payload_name((enum payload_kind)99), "unknown");
	enum boot_choice b;
	assert_int_equal(boot_choice_parse("pvh", &b), 0);
	assert_int_equal(b, BOOT_CHOICE_PVH);
	assert_int_equal(boot_choice_parse("Linux", &b), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(lz4_blocks),   cmocka_unit_test(lz4_damaged),
	    cmocka_unit_test(bz_to_pvh),    cmocka_unit_test(fallbacks),
	    cmocka_unit_test(boot_choices), cmocka_unit_test(too_little_ram),
	    cmocka_unit_test(names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
