/* Unit tests of the kernel-image parsers: good headers accepted, bad ones rejected. */
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

/* A minimal valid bzImage: 2 setup sectors plus 4 KiB of kernel. */
#define BZ_LEN (1024 + 4096)
static uint8_t *make_bz(void)
{
	uint8_t *b = calloc(1, BZ_LEN);
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
	put64(b + 0x258, 0x1000000);
	put32(b + 0x260, 0x200000);
	return b;
}

static void bz_good(void **state)
{
	uint8_t *b = make_bz();
	struct bzimage_info bi;
	struct cove_err err = {0};
	assert_int_equal(kernel_detect(b, BZ_LEN), KERNEL_BZIMAGE);
	assert_int_equal(bzimage_parse(b, BZ_LEN, &bi, &err), 0);
	assert_int_equal(bi.setup_size, 1024);
	assert_int_equal(bi.kernel_size, 4096);
	assert_int_equal(bi.cmdline_size, 2047);
	assert_int_equal(bi.init_size, 0x200000);
	assert_int_equal(bi.hdr_end, 0x268);
	free(b);
}

static void expect_bz_error(uint8_t *b, size_t len, const char *needle)
{
	struct bzimage_info bi;
	struct cove_err err = {0};
	assert_true(bzimage_parse(b, len, &bi, &err) < 0);
	if (!strstr(err.msg, needle))
		fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

static void bz_bad(void **state)
{
	uint8_t *b = make_bz();
	expect_bz_error(b, 0x300, "truncated");
	expect_bz_error(b, 0x100, "not a bzImage");
	b[0x1F1] = 20; /* setup beyond the file */
	expect_bz_error(b, BZ_LEN, "truncated");
	b[0x1F1] = 1;
	put16(b + 0x206, 0x0204);
	expect_bz_error(b, BZ_LEN, "too old");
	put16(b + 0x206, 0x020F);
	put16(b + 0x236, 0);
	expect_bz_error(b, BZ_LEN, "64-bit");
	put16(b + 0x236, 1);
	b[0x211] = 0;
	expect_bz_error(b, BZ_LEN, "loaded high");
	b[0x211] = 1;
	memcpy(b + 0x202, "HdrX", 4);
	expect_bz_error(b, BZ_LEN, "not a bzImage");
	memcpy(b + 0x202, "HdrS", 4);
	put16(b + 0x1FE, 0);
	expect_bz_error(b, BZ_LEN, "not a bzImage");
	free(b);
}

/* A minimal ELF32 or ELF64 PVH kernel: one PT_LOAD at 1 MiB and a PT_NOTE. */
#define ELF_LEN 4096
static uint8_t *make_elf(bool is64, unsigned descsz)
{
	uint8_t *b = calloc(1, ELF_LEN);
	memcpy(b,
	       "\x7f"
	       "ELF",
	       4);
	b[4] = is64 ? 2 : 1;
	b[5] = 1;
	b[6] = 1;
	put16(b + 16, 2);
	put16(b + 18, is64 ? 62 : 3);
	size_t phoff = is64 ? 64 : 52, phsz = is64 ? 56 : 32;
	if (is64) {
		put64(b + 32, phoff);
		put16(b + 54, (uint16_t)phsz);
		put16(b + 56, 2);
	} else {
		put32(b + 28, (uint32_t)phoff);
		put16(b + 42, (uint16_t)phsz);
		put16(b + 44, 2);
	}
	uint8_t *ph = b + phoff;
	/* PT_LOAD: file 0x400..0x800 at 1 MiB, 8 KiB in memory. */
	put32(ph, 1);
	if (is64) {
		put64(ph + 8, 0x400);
		put64(ph + 24, 0x100000);
		put64(ph + 32, 0x400);
		put64(ph + 40, 0x2000);
	} else {
		put32(ph + 4, 0x400);
		put32(ph + 12, 0x100000);
		put32(ph + 16, 0x400);
		put32(ph + 20, 0x2000);
	}
	/* PT_NOTE at 0x200: an unrelated note, then Xen type 18. */
	ph += phsz;
	put32(ph, 4);
	uint8_t *n = b + 0x200;
	put32(n, 4);
	put32(n + 4, 4);
	put32(n + 8, 1);
	memcpy(n + 12, "GNU", 4);
	n += 20;
	put32(n, 4);
	put32(n + 4, descsz);
	put32(n + 8, 18);
	memcpy(n + 12, "Xen", 4);
	if (descsz == 8)
		put64(n + 16, 0x100040);
	else
		put32(n + 16, 0x100040);
	uint64_t notelen = 20 + 16 + descsz;
	if (is64) {
		put64(ph + 8, 0x200);
		put64(ph + 32, notelen);
	} else {
		put32(ph + 4, 0x200);
		put32(ph + 16, (uint32_t)notelen);
	}
	return b;
}

static void elf_good(void **state)
{
	bool kinds[] = {false, true};
	for (unsigned k = 0; k < 2; k++) {
		for (unsigned d = 4; d <= 8; d += 4) {
			uint8_t *b = make_elf(kinds[k], d);
			struct pvh_info pi;
			struct cove_err err = {0};
			assert_int_equal(kernel_detect(b, ELF_LEN), KERNEL_ELF);
			if (pvh_parse(b, ELF_LEN, &pi, &err))
				fail_msg("%s", err.msg);
			assert_int_equal(pi.entry, 0x100040);
			assert_int_equal(pi.nseg, 1);
			assert_int_equal(pi.start, 0x100000);
			assert_int_equal(pi.end, 0x102000);
			free(b);
		}
	}
}

static void expect_elf_error(uint8_t *b, size_t len, const char *needle)
{
	struct pvh_info pi;
	struct cove_err err = {0};
	assert_true(pvh_parse(b, len, &pi, &err) < 0);
	if (!strstr(err.msg, needle))
		fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

static void elf_bad(void **state)
{
	uint8_t *b = make_elf(true, 8);
	expect_elf_error(b, 40, "truncated");
	expect_elf_error(b, 0x300, "beyond"); /* the segment's file bytes are cut off */
	b[5] = 2;
	expect_elf_error(b, ELF_LEN, "little-endian");
	b[5] = 1;
	put16(b + 16, 3);
	expect_elf_error(b, ELF_LEN, "not an executable");
	put16(b + 16, 2);
	put16(b + 18, 40);
	expect_elf_error(b, ELF_LEN, "not for x86");
	put16(b + 18, 62);
	put16(b + 54, 32);
	expect_elf_error(b, ELF_LEN, "program headers");
	put16(b + 54, 56);
	put64(b + 32, ELF_LEN - 10);
	expect_elf_error(b, ELF_LEN, "beyond the end");
	put64(b + 32, UINT64_MAX - 8); /* overflow */
	expect_elf_error(b, ELF_LEN, "beyond the end");
	put64(b + 32, 64);
	/* filesz above memsz */
	put64(b + 64 + 32, 0x4000);
	expect_elf_error(b, ELF_LEN, "beyond");
	put64(b + 64 + 32, 0x400);
	/* segment wrapping around */
	put64(b + 64 + 24, UINT64_MAX - 0x100);
	expect_elf_error(b, ELF_LEN, "below 4 GiB");
	put64(b + 64 + 24, 0x100000);
	/* note with a huge descsz */
	put32(b + 0x200 + 20 + 4, 0xFFFFFFF0);
	expect_elf_error(b, ELF_LEN, "note");
	put32(b + 0x200 + 20 + 4, 8);
	/* no Xen note */
	put32(b + 0x200 + 20 + 8, 17);
	expect_elf_error(b, ELF_LEN, "no PVH entry note");
	put32(b + 0x200 + 20 + 8, 18);
	/* entry above 4 GiB */
	put64(b + 0x200 + 36, 1ULL << 33);
	expect_elf_error(b, ELF_LEN, "above 4 GiB");
	free(b);
}

/* kernel_find_marker: a bzImage whose payload (after 100 bytes of decompressor) is DATA
 * compressed as KIND ("gz", "zst", "xz", "lz4", or anything else: stored as it is). */
static uint8_t *make_bz_payload(const char *kind, const uint8_t *data, size_t n, size_t *len)
{
	size_t cap = n + n / 2 + 4096;
	uint8_t *c = malloc(cap);
	size_t clen = 0;
	if (!strcmp(kind, "gz")) {
		z_stream z = {0};
		assert_int_equal(
		    deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
		z.next_in = (Bytef *)data;
		z.avail_in = (uInt)n;
		z.next_out = c;
		z.avail_out = (uInt)cap;
		assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
		clen = z.total_out;
		deflateEnd(&z);
	} else if (!strcmp(kind, "zst")) {
		clen = ZSTD_compress(c, cap, data, n, 3);
		assert_false(ZSTD_isError(clen));
	} else if (!strcmp(kind, "xz")) {
		assert_int_equal(
		    lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, data, n, c, &clen, cap),
		    LZMA_OK);
	} else if (!strcmp(kind, "lz4")) { /* legacy frame: magic, then sized 8 MiB blocks */
		put32(c, 0x184C2102);
		clen = 4;
		for (size_t off = 0; off < n; off += 8 << 20) {
			int in = (int)(n - off < (8u << 20) ? n - off : 8u << 20);
			int k = LZ4_compress_default((const char *)data + off, (char *)c + clen + 4,
						     in, (int)(cap - clen - 4));
			assert_true(k > 0);
			put32(c + clen, (uint32_t)k);
			clen += 4 + (size_t)k;
		}
		put32(c + clen, (uint32_t)n); /* the kernel build appends the size */
		clen += 4;
	} else {
		memcpy(c, data, n);
		clen = n;
	}
	uint8_t *b = make_bz();
	*len = BZ_LEN + clen;
	b = realloc(b, *len);
	memcpy(b + BZ_LEN, c, clen);
	put32(b + 0x248, 4096);		  /* payload_offset: after the 4 KiB "kernel" */
	put32(b + 0x24C, (uint32_t)clen); /* payload_length */
	free(c);
	return b;
}

static void find_marker(void **state)
{
	const char *marker = "pvm-guest: ";
	size_t n = 3 << 20;
	uint8_t *data = malloc(n);
	for (size_t i = 0; i < n; i++) /* compressible, but never the marker by chance */
		data[i] = (uint8_t)("abcdefgh"[(i * 7) % 8] + (i >> 16) % 3);
	const char *kinds[] = {"gz", "zst", "xz", "lz4"};
	for (unsigned k = 0; k < 4; k++) {
		size_t len;
		uint8_t *b = make_bz_payload(kinds[k], data, n, &len);
		assert_int_equal(kernel_find_marker(b, len, marker), 0);
		free(b);
		/* a marker 1 MiB into the payload */
		memcpy(data + (1 << 20) - 5, marker, strlen(marker));
		b = make_bz_payload(kinds[k], data, n, &len);
		if (kernel_find_marker(b, len, marker) != 1)
			fail_msg("%s: marker not found", kinds[k]);
		/* a damaged payload is an error, not a crash or a false answer */
		memset(b + BZ_LEN + len / 4 - BZ_LEN / 4, 0x5A, 64);
		int r = kernel_find_marker(b, len, marker);
		/* LZ4's legacy frame has no checksum: damage may go unseen, never crash */
		if (r != -EINVAL && r != 1 && !(r == 0 && !strcmp(kinds[k], "lz4")))
			fail_msg("%s: damaged payload gave %d", kinds[k], r);
		free(b);
		memset(data + (1 << 20) - 5, 'a', strlen(marker));
	}
	size_t len;
	uint8_t *b = make_bz_payload("stored", data, 4096, &len);
	assert_int_equal(kernel_find_marker(b, len, marker), -ENOTSUP);
	put32(b + 0x24C, 1u << 30); /* payload_length beyond the file */
	assert_int_equal(kernel_find_marker(b, len, marker), -EINVAL);
	/* a setup header the loader refuses (boot protocol 2.04): not read further */
	put32(b + 0x24C, 4096);
	put16(b + 0x206, 0x0204);
	assert_int_equal(kernel_find_marker(b, len, marker), -EINVAL);
	free(b);
	/* an ELF or a bzImage holding the marker uncompressed: found without decompression */
	uint8_t elf[256] = {0x7F, 'E', 'L', 'F'};
	memcpy(elf + 100, marker, strlen(marker));
	assert_int_equal(kernel_find_marker(elf, sizeof(elf), marker), 1);
	assert_int_equal(kernel_find_marker(elf, 99, marker), 0);
	free(data);
}

static void detect(void **state)
{
	uint8_t junk[600] = {0};
	assert_int_equal(kernel_detect(junk, sizeof(junk)), KERNEL_UNKNOWN);
	assert_int_equal(kernel_detect(junk, 0), KERNEL_UNKNOWN);
}

static void initrd_placement(void **state)
{
	uint64_t a;
	assert_int_equal(initrd_place(0x1800, 0x200000, 0x1000000, &a), 0);
	assert_int_equal(a, 0x1000000 - 0x2000); /* page aligned down */
	assert_int_equal(initrd_place(0x1000000, 0x200000, 0x1000000, &a), -ENOSPC);
	assert_int_equal(initrd_place(UINT64_MAX, 0, 0x1000000, &a), -ENOSPC);
	assert_int_equal(initrd_place(0, 0, 0x1000000, &a), -ENOSPC);
}

/* Loading into real (small) guest memory writes boot_params and the PVH start info. */
static void load_both(void **state)
{
	struct guest_mem mem;
	assert_int_equal(guest_mem_init(&mem, 32 << 20, false), 0);
	uint8_t *bz = make_bz();
	uint8_t initrd[100];
	memset(initrd, 0xAB, sizeof(initrd));
	/* An RSDP address other than the usual 0xE0000, so that a dropped field shows. */
	const uint64_t rsdp = 0xE1230;
	struct boot_config cfg = {bz, BZ_LEN, initrd, sizeof(initrd), "console=ttyS0", rsdp, 0};
	struct boot_entry e;
	struct cove_err err = {0};
	if (loader_load(&mem, &cfg, &e, NULL, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(e.mode, BOOT_LINUX64);
	assert_int_equal(e.rip, LAYOUT_KERNEL + 0x200);
	uint8_t *bp = guest_mem_ptr(&mem, LAYOUT_ZERO_PAGE, 4096);
	uint32_t rd, rdsz, cmd;
	memcpy(&rd, bp + 0x218, 4);
	memcpy(&rdsz, bp + 0x21C, 4);
	memcpy(&cmd, bp + 0x228, 4);
	assert_int_equal(rdsz, sizeof(initrd));
	assert_true(rd + rdsz <= (32 << 20) && rd >= 0x1000000 + 0x200000);
	assert_memory_equal(guest_mem_ptr(&mem, rd, rdsz), initrd, sizeof(initrd));
	assert_string_equal((char *)guest_mem_ptr(&mem, cmd, 14), "console=ttyS0");
	assert_int_equal(bp[0x210], 0xFF);
	assert_true(bp[0x1E8] >= 3);
	uint64_t bp_rsdp;
	memcpy(&bp_rsdp, bp + 0x70, 8); /* boot_params.acpi_rsdp_addr */
	assert_int_equal(bp_rsdp, rsdp);

	/* A command line longer than cmdline_size is refused. */
	char longline[3000];
	memset(longline, 'x', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = 0;
	cfg.cmdline = longline;
	cove_err_clear(&err);
	assert_int_equal(loader_load(&mem, &cfg, &e, NULL, &err), -E2BIG);
	free(bz);

	uint8_t *elf = make_elf(false, 4);
	cfg = (struct boot_config){elf, ELF_LEN, initrd, sizeof(initrd), "pvh", rsdp, 0};
	cove_err_clear(&err);
	if (loader_load(&mem, &cfg, &e, NULL, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(e.mode, BOOT_PVH32);
	assert_int_equal(e.rip, 0x100040);
	uint32_t *si = guest_mem_ptr(&mem, LAYOUT_PVH_INFO, 56);
	assert_int_equal(si[0], 0x336EC578);
	assert_int_equal(si[1], 1);
	assert_int_equal(si[3], 1); /* one module */
	uint64_t si_rsdp;
	memcpy(&si_rsdp, (uint8_t *)si + 32, 8); /* hvm_start_info.rsdp_paddr */
	assert_int_equal(si_rsdp, rsdp);

	/* An initrd that cannot fit is refused with a message. */
	cfg.initrd_len = 40 << 20;
	cfg.initrd = calloc(1, cfg.initrd_len);
	cove_err_clear(&err);
	assert_int_equal(loader_load(&mem, &cfg, &e, NULL, &err), -ENOSPC);
	assert_non_null(strstr(err.msg, "too big"));
	free((void *)cfg.initrd);
	free(elf);

	uint8_t junk[1000] = {1, 2, 3};
	cfg = (struct boot_config){junk, sizeof(junk), NULL, 0, NULL, 0, 0};
	cove_err_clear(&err);
	assert_int_equal(loader_load(&mem, &cfg, &e, NULL, &err), -ENOEXEC);
	guest_mem_free(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(bz_good),	 cmocka_unit_test(bz_bad),
	    cmocka_unit_test(elf_good),	 cmocka_unit_test(elf_bad),
	    cmocka_unit_test(detect),	 cmocka_unit_test(initrd_placement),
	    cmocka_unit_test(load_both), cmocka_unit_test(find_marker),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
