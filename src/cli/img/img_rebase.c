/* `cove img rebase` (change the backing file, keeping the content) and `cove img commit`. */
#include "cli/img/img.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define RB_CHUNK (1u << 20)

/* Reads [off, off+n) of b, or zeroes (b NULL, or past its end). */
static int read_or_zero(struct blk *b, uint8_t *buf, uint64_t n, uint64_t off)
{
	uint64_t size = b ? blk_size(b) : 0;
	if (off >= size) {
		memset(buf, 0, n);
		return 0;
	}
	uint64_t have = size - off < n ? size - off : n;
	memset(buf + have, 0, n - have);
	return blk_pread(b, buf, have, off);
}

/*
 * Copies into top the ranges it does not allocate where the old backing (old) and the new
 * one (nb) differ, so that top reads the same once it points at nb.
 */
static int copy_differences(struct blk *top, struct blk *old, struct blk *nb,
			    struct img_progress *prog, const char **where)
{
	uint64_t size = blk_size(top);
	uint32_t gran = blk_cluster_size(top);
	if (gran < 512 || gran > RB_CHUNK)
		gran = 65536;
	uint8_t *a = img_alloc(RB_CHUNK), *b = img_alloc(RB_CHUNK);
	int r = 0;
	if (!a || !b) {
		r = -ENOMEM;
		goto out;
	}
	for (uint64_t off = 0; off < size;) {
		struct blk_status st = {0};
		*where = "image";
		if ((r = blk_block_status(top, off, size - off, &st)) < 0)
			goto out;
		uint64_t n = st.len && st.len <= size - off ? st.len : size - off;
		if (st.flags & BLK_STATUS_ALLOCATED) {
			off += n;
			continue;
		}
		if (n > RB_CHUNK)
			n = RB_CHUNK;
		*where = "old backing file";
		if ((r = read_or_zero(old, a, n, off)) < 0)
			goto out;
		*where = "new backing file";
		if ((r = read_or_zero(nb, b, n, off)) < 0)
			goto out;
		*where = "image";
		for (uint64_t i = 0; i < n;) {
			uint64_t g = n - i < gran ? n - i : gran;
			if (!memcmp(a + i, b + i, g)) {
				i += g;
				continue;
			}
			uint64_t j = i + g;
			while (j < n) {
				uint64_t h = n - j < gran ? n - j : gran;
				if (!memcmp(a + j, b + j, h))
					break;
				j += h;
			}
			if ((r = blk_pwrite(top, a + i, j - i, off + i)) < 0)
				goto out;
			i = j;
		}
		off += n;
		img_progress_update(prog, off, size);
	}
out:
	free(a);
	free(b);
	return r;
}

int img_cmd_rebase(int argc, char **argv)
{
	enum { OPT_OBJECT = 256, OPT_IMAGE_OPTS };
	static const struct option longopts[] = {{"force-share", no_argument, NULL, 'U'},
						 {"object", required_argument, NULL, OPT_OBJECT},
						 {"image-opts", no_argument, NULL, OPT_IMAGE_OPTS},
						 {NULL, 0, NULL, 0}};
	const char *fmt = NULL, *backing = NULL, *bfmt = NULL;
	bool unsafe = false, quiet = false, progress = false;
	int c;

	while ((c = getopt_long(argc, argv, ":hf:F:b:upt:T:qU", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'F':
			bfmt = optarg;
			break;
		case 'b':
			backing = optarg;
			break;
		case 'u':
			unsafe = true;
			break;
		case 'p':
			progress = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 't':
		case 'T':
		case 'U':
			break;
		default:
			return img_opt_error(argv, "rebase");
		}
	}
	if (quiet)
		progress = false;
	if (optind != argc - 1)
		return img_err("Expecting one image file name");
	if (!backing)
		return img_err("Must specify backing file (-b)");
	const char *path = argv[optind];
	enum blk_format format = BLK_FMT_AUTO, nbf = BLK_FMT_AUTO;
	if (fmt && img_parse_format(fmt, path, &format))
		return 1;
	if (backing[0] && !bfmt)
		return img_err("Could not change the backing file to '%s': backing format must "
			       "be specified",
			       backing);
	if (bfmt && img_parse_format(bfmt, backing, &nbf))
		return 1;

	struct blk *top = NULL, *nb = NULL;
	int ret = 1, r;
	struct cove_err err = {0};
	if (img_open(path, format, false, unsafe, &top))
		goto out;
	if (blk_get_format(top) != BLK_FMT_QCOW2) {
		img_err("%s: only qcow2 images have a backing file", path);
		goto out;
	}
	if (!unsafe) {
		if (backing[0]) {
			char full[PATH_MAX];
			img_backing_path(path, backing, full, sizeof(full));
			if (img_open(full, nbf, true, false, &nb))
				goto out;
		}
		struct img_progress prog;
		img_progress_init(&prog, progress);
		const char *where = "image";
		r = copy_differences(top, blk_backing(top), nb, &prog, &where);
		if (r < 0) {
			if (progress)
				fputc('\n', stderr);
			img_err_lib(where, r, NULL);
			goto out;
		}
		img_progress_end(&prog);
	}
	r = blk_set_backing(top, backing[0] ? backing : NULL, backing[0] ? bfmt : NULL, &err);
	if (r == 0)
		r = blk_flush(top);
	if (r < 0) {
		img_err_lib(backing[0] ? "Could not change the backing file"
				       : "Could not remove the backing file",
			    r, &err);
		goto out;
	}
	ret = 0;
out:
	blk_close(nb);
	blk_close(top);
	return ret;
}

/* Copies what top allocates into base. */
static int commit_data(struct blk *top, struct blk *base, struct img_progress *prog,
		       const char **where)
{
	uint64_t size = blk_size(top);
	uint8_t *buf = img_alloc(RB_CHUNK);
	int r = 0;
	if (!buf)
		return -ENOMEM;
	for (uint64_t off = 0; off < size;) {
		struct blk_status st = {0};
		*where = "image";
		if ((r = blk_block_status(top, off, size - off, &st)) < 0)
			break;
		uint64_t n = st.len && st.len <= size - off ? st.len : size - off;
		if (!(st.flags & BLK_STATUS_ALLOCATED)) {
			off += n;
			continue;
		}
		if (n > RB_CHUNK)
			n = RB_CHUNK;
		*where = "backing file";
		if ((st.flags & BLK_STATUS_ZERO) && !(st.flags & BLK_STATUS_DATA)) {
			r = blk_write_zeroes(base, off, n, 0);
		} else {
			*where = "image";
			if ((r = blk_pread(top, buf, n, off)) < 0)
				break;
			*where = "backing file";
			r = blk_pwrite(base, buf, n, off);
		}
		if (r < 0)
			break;
		off += n;
		img_progress_update(prog, off, size);
	}
	free(buf);
	return r;
}

int img_cmd_commit(int argc, char **argv)
{
	enum { OPT_OBJECT = 256, OPT_IMAGE_OPTS };
	static const struct option longopts[] = {{"object", required_argument, NULL, OPT_OBJECT},
						 {"image-opts", no_argument, NULL, OPT_IMAGE_OPTS},
						 {NULL, 0, NULL, 0}};
	const char *fmt = NULL;
	bool quiet = false, progress = false, keep = false;
	int c;

	while ((c = getopt_long(argc, argv, ":hf:t:b:dpqr:", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'd':
			keep = true;
			break;
		case 'p':
			progress = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 't':
		case 'r':
			break;
		case 'b':
			return img_err("commit into a base other than the backing file (-b) is not "
				       "supported");
		default:
			return img_opt_error(argv, "commit");
		}
	}
	if (quiet)
		progress = false;
	if (optind != argc - 1)
		return img_err("Expecting one image file name");
	const char *path = argv[optind];
	enum blk_format format = BLK_FMT_AUTO;
	if (fmt && img_parse_format(fmt, path, &format))
		return 1;

	struct blk *top = NULL, *base = NULL;
	int ret = 1, r;
	/* Read-write from the start unless -d: a top image that cannot be emptied fails
	 * before anything is written to the backing file (as in qemu-img). */
	if (img_open(path, format, keep, true, &top))
		goto out;
	struct blk_info info = {0};
	if ((r = blk_get_info(top, &info)) < 0) {
		img_err_lib(path, r, NULL);
		goto out;
	}
	free(info.snapshots);
	if (!keep && info.corrupt) {
		img_err("Could not open '%s': qcow2: Image is corrupt; cannot be opened read/write",
			path);
		goto out;
	}
	if (!info.backing_file[0]) {
		img_err("Image does not have a backing file");
		goto out;
	}
	char full[PATH_MAX];
	enum blk_format bf = BLK_FMT_AUTO;
	img_backing_path(path, info.backing_file, full, sizeof(full));
	if (info.backing_fmt[0] && blk_format_parse(info.backing_fmt, &bf) < 0)
		bf = BLK_FMT_AUTO;
	if (img_open(full, bf, false, false, &base))
		goto out;
	if (blk_size(base) < blk_size(top)) {
		struct cove_err err = {0};
		r = blk_resize(base, blk_size(top), false, BLK_PREALLOC_OFF, &err);
		if (r < 0) {
			img_err_lib("growing the backing file", r, &err);
			goto out;
		}
	}
	struct img_progress prog;
	img_progress_init(&prog, progress);
	const char *where = "image";
	r = commit_data(top, base, &prog, &where);
	if (r == 0) {
		where = "backing file";
		r = blk_flush(base);
	}
	if (r < 0) {
		if (progress)
			fputc('\n', stderr);
		img_err_lib(where, r, NULL);
		goto out;
	}
	img_progress_end(&prog);
	if (!keep) {
		/* Empty the top image: its data now lives in the backing file. */
		uint64_t size = blk_size(top);
		r = size ? blk_discard(top, 0, size) : 0;
		if (r == 0)
			r = blk_flush(top);
		if (r < 0) {
			/* As qemu-img: the data is in the backing file already, but the top
			 * image still holds its copy, so this is not a clean commit. */
			img_err("Could not empty %s: %s", path, strerror(-r));
			goto out;
		}
	}
	if (!quiet)
		printf("Image committed.\n");
	ret = 0;
out:
	blk_close(base);
	blk_close(top);
	return ret;
}
