/* `cove img compare`: are two images' contents the same? Exit 0 same, 1 differ, 2 error. */
#include "cli/img/img.h"
#include "util/zero.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define CMP_CHUNK (2u << 20)

enum { CMP_SAME = 0, CMP_DIFFER = 1, CMP_ERROR = 2 };

static bool known_zero(const struct blk_status *st)
{
	return (st->flags & BLK_STATUS_ZERO) && !(st->flags & BLK_STATUS_DATA);
}

static bool allocated(const struct blk_status *st)
{
	return st->flags & (BLK_STATUS_ALLOCATED | BLK_STATUS_DATA);
}

/* Offset of the first differing byte, rounded down to its 512-byte sector as qemu-img. */
static uint64_t first_diff(const uint8_t *a, const uint8_t *b, uint64_t n)
{
	uint64_t i = 0;
	while (i + 512 <= n && !memcmp(a + i, b + i, 512))
		i += 512;
	return i;
}

/* Checks that [off, end) of b reads as zero. Returns 0, 1 (offset in *where) or -errno. */
static int tail_is_zero(struct blk *b, uint8_t *buf, uint64_t off, uint64_t end, uint64_t *where)
{
	while (off < end) {
		struct blk_status st = {0};
		int r = blk_block_status(b, off, end - off, &st);
		if (r < 0)
			return r;
		uint64_t n = st.len && st.len <= end - off ? st.len : end - off;
		if (known_zero(&st)) {
			off += n;
			continue;
		}
		if (n > CMP_CHUNK)
			n = CMP_CHUNK;
		r = blk_pread(b, buf, n, off);
		if (r < 0)
			return r;
		if (!mem_is_zero(buf, n)) {
			uint64_t i = 0;
			while (i + 512 <= n && mem_is_zero(buf + i, 512))
				i += 512;
			*where = off + i;
			return 1;
		}
		off += n;
	}
	return 0;
}

int img_cmd_compare(int argc, char **argv)
{
	enum { OPT_OBJECT = 256, OPT_IMAGE_OPTS };
	static const struct option longopts[] = {{"force-share", no_argument, NULL, 'U'},
						 {"object", required_argument, NULL, OPT_OBJECT},
						 {"image-opts", no_argument, NULL, OPT_IMAGE_OPTS},
						 {NULL, 0, NULL, 0}};
	const char *fmt1 = NULL, *fmt2 = NULL;
	bool strict = false, quiet = false, progress = false;
	int c;

	while ((c = getopt_long(argc, argv, ":hf:F:T:pqsU", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt1 = optarg;
			break;
		case 'F':
			fmt2 = optarg;
			break;
		case 'p':
			progress = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 's':
			strict = true;
			break;
		case 'T':
		case 'U':
			break;
		default:
			img_opt_error(argv, "compare");
			return CMP_ERROR;
		}
	}
	if (quiet)
		progress = false;
	if (argc - optind != 2) {
		img_err("Expecting two image file names");
		return CMP_ERROR;
	}
	const char *p1 = argv[optind], *p2 = argv[optind + 1];
	enum blk_format f1 = BLK_FMT_AUTO, f2 = BLK_FMT_AUTO;
	if ((fmt1 && img_parse_format(fmt1, p1, &f1)) || (fmt2 && img_parse_format(fmt2, p2, &f2)))
		return CMP_ERROR;

	struct blk *b1 = NULL, *b2 = NULL;
	uint8_t *buf1 = NULL, *buf2 = NULL;
	int ret = CMP_ERROR, r = 0;
	if (img_open(p1, f1, true, false, &b1) || img_open(p2, f2, true, false, &b2))
		goto out;
	buf1 = img_alloc(CMP_CHUNK);
	buf2 = img_alloc(CMP_CHUNK);
	if (!buf1 || !buf2) {
		img_err("out of memory");
		goto out;
	}
	uint64_t s1 = blk_size(b1), s2 = blk_size(b2);
	uint64_t common = s1 < s2 ? s1 : s2, total = s1 > s2 ? s1 : s2;
	struct img_progress prog;
	img_progress_init(&prog, progress);
	const char *which = p1;

	for (uint64_t off = 0; off < common;) {
		struct blk_status st1 = {0}, st2 = {0};
		which = p1;
		if ((r = blk_block_status(b1, off, common - off, &st1)) < 0)
			goto io_error;
		which = p2;
		if ((r = blk_block_status(b2, off, common - off, &st2)) < 0)
			goto io_error;
		uint64_t n = common - off;
		if (st1.len && st1.len < n)
			n = st1.len;
		if (st2.len && st2.len < n)
			n = st2.len;
		if (strict && allocated(&st1) != allocated(&st2)) {
			img_progress_end(&prog);
			if (!quiet)
				printf("Strict mode: Offset %llu block status mismatch!\n",
				       (unsigned long long)off);
			ret = CMP_DIFFER;
			goto out;
		}
		if (known_zero(&st1) && known_zero(&st2)) {
			off += n;
			continue;
		}
		if (n > CMP_CHUNK)
			n = CMP_CHUNK;
		which = p1;
		if ((r = blk_pread(b1, buf1, n, off)) < 0)
			goto io_error;
		which = p2;
		if ((r = blk_pread(b2, buf2, n, off)) < 0)
			goto io_error;
		if (memcmp(buf1, buf2, n)) {
			img_progress_end(&prog);
			if (!quiet)
				printf("Content mismatch at offset %llu!\n",
				       (unsigned long long)(off + first_diff(buf1, buf2, n)));
			ret = CMP_DIFFER;
			goto out;
		}
		off += n;
		img_progress_update(&prog, off, total);
	}
	if (s1 != s2) {
		if (strict) {
			img_progress_end(&prog);
			if (!quiet)
				printf("Strict mode: Image size mismatch!\n");
			ret = CMP_DIFFER;
			goto out;
		}
		if (!quiet)
			printf("Warning: Image size mismatch!\n");
		struct blk *big = s1 > s2 ? b1 : b2;
		uint64_t where = 0;
		which = s1 > s2 ? p1 : p2;
		r = tail_is_zero(big, buf1, common, total, &where);
		if (r < 0)
			goto io_error;
		if (r == 1) {
			img_progress_end(&prog);
			if (!quiet)
				printf("Content mismatch at offset %llu!\n",
				       (unsigned long long)where);
			ret = CMP_DIFFER;
			goto out;
		}
	}
	img_progress_end(&prog);
	if (!quiet)
		printf("Images are identical.\n");
	ret = CMP_SAME;
	goto out;
io_error:
	img_err_lib(which, r, NULL);
	ret = CMP_ERROR;
out:
	free(buf1);
	free(buf2);
	blk_close(b1);
	blk_close(b2);
	return ret;
}
