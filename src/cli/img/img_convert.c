/* `cove img convert`: options, target creation and commit; the copy is img_convert_pipe.c. */
#include "cli/img/img_convert.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct conv_args {
	const char *src_fmt, *dst_fmt, *backing, *backing_fmt;
	struct img_opts opts;
	bool compress, no_create, progress, quiet, out_of_order;
	bool direct, unsafe; /* -t: O_DIRECT target; no sync at the end (qemu-img's default) */
	uint64_t sparse;
	unsigned workers;
};

static int parse_args(int argc, char **argv, struct conv_args *a)
{
	enum { OPT_TARGET_ZERO = 256, OPT_OBJECT, OPT_IMAGE_OPTS, OPT_SALVAGE, OPT_BITMAPS };
	static const struct option longopts[] = {
	    {"force-share", no_argument, NULL, 'U'},
	    {"object", required_argument, NULL, OPT_OBJECT},
	    {"image-opts", no_argument, NULL, OPT_IMAGE_OPTS},
	    {"target-image-opts", no_argument, NULL, OPT_IMAGE_OPTS},
	    {"target-is-zero", no_argument, NULL, OPT_TARGET_ZERO},
	    {"salvage", no_argument, NULL, OPT_SALVAGE},
	    {"bitmaps", no_argument, NULL, OPT_BITMAPS},
	    {NULL, 0, NULL, 0}};
	int c;
	char *end;
	unsigned long v;

	while ((c = getopt_long(argc, argv, ":hf:O:B:CcF:o:l:S:pt:T:qnm:WUr:", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'f':
			a->src_fmt = optarg;
			break;
		case 'O':
			a->dst_fmt = optarg;
			break;
		case 'B':
			a->backing = optarg;
			break;
		case 'F':
			a->backing_fmt = optarg;
			break;
		case 'c':
			a->compress = true;
			break;
		case 'o':
			if (img_opts_parse(&a->opts, optarg, ""))
				return 1;
			break;
		case 'S': {
			uint64_t s;
			if (img_parse_size(optarg, &s) < 0 || s % 512 || s > CONV_MAX_SPARSE)
				return img_err(
				    "Invalid buffer size for sparse output specified. "
				    "Valid sizes are multiples of 512 up to %u. Select 0 "
				    "to disable sparse detection (fully allocates output).",
				    CONV_MAX_SPARSE);
			a->sparse = s;
			break;
		}
		case 'p':
			a->progress = true;
			break;
		case 'q':
			a->quiet = true;
			break;
		case 'n':
			a->no_create = true;
			break;
		case 'm':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || v < 1 || v > CONV_MAX_WORKERS)
				return img_err("Invalid number of coroutines. Allowed number of "
					       "coroutines is between 1 and %d",
					       CONV_MAX_WORKERS);
			a->workers = (unsigned)v;
			break;
		case 'W':
			a->out_of_order = true;
			break;
		case 't':
			if (img_parse_cache(optarg, &a->direct, &a->unsafe))
				return 1;
			break;
		case 'T': { /* the source is read through the page cache whatever -T says */
			bool direct, unsafe;
			if (img_parse_cache(optarg, &direct, &unsafe))
				return 1;
			break;
		}
		case 'C':
		case 'U':
		case 'r':
			break;
		case 'l':
			return img_err("converting from an internal snapshot (-l) is not "
				       "supported");
		case OPT_OBJECT:
		case OPT_IMAGE_OPTS:
		case OPT_TARGET_ZERO:
		case OPT_SALVAGE:
		case OPT_BITMAPS:
			return img_err("option '%s' is not supported", argv[optind - 1]);
		default:
			return img_opt_error(argv, "convert");
		}
	}
	return 0;
}

int img_cmd_convert(int argc, char **argv)
{
	struct conv_args a = {.sparse = 4096, .workers = 8};
	struct conv cv = {0};
	struct blk *src = NULL, *dst = NULL;
	char tmp[PATH_MAX] = "";
	int ret = 1;

	img_conv_init(&cv);
	if (parse_args(argc, argv, &a))
		goto out;
	if (a.quiet)
		a.progress = false;
	if (argc - optind != 2) {
		img_err(argc - optind < 2 ? "Expecting a source and a target file name"
					  : "only one source image is supported");
		goto out;
	}
	const char *src_path = argv[optind], *dst_path = argv[optind + 1];
	enum blk_format sfmt = BLK_FMT_AUTO, dfmt = BLK_FMT_RAW;
	if (a.src_fmt && img_parse_format(a.src_fmt, src_path, &sfmt))
		goto out;
	if (a.dst_fmt && img_parse_format(a.dst_fmt, dst_path, &dfmt))
		goto out;
	if (a.opts.help) {
		img_opts_help(dfmt);
		ret = 0;
		goto out;
	}
	if (a.backing && (a.opts.set & IMG_OPT_BACKING)) {
		img_err("-B and -o backing_file cannot be used together");
		goto out;
	}
	if (a.backing) {
		a.opts.c.backing_file = a.backing;
		a.opts.set |= IMG_OPT_BACKING;
	}
	if (a.backing_fmt) {
		a.opts.c.backing_fmt = a.backing_fmt;
		a.opts.set |= IMG_OPT_BACKING_FMT;
	}
	const char *bfile = a.opts.c.backing_file;
	if (bfile && !a.opts.c.backing_fmt) {
		img_err("Use of backing file requires explicit backing format");
		goto out;
	}
	if (dfmt == BLK_FMT_RAW && (a.compress || bfile)) {
		img_err(a.compress ? "Compression not supported for this file format"
				   : "The raw format has no backing file");
		goto out;
	}
	if (a.compress && a.opts.c.prealloc != BLK_PREALLOC_OFF) {
		img_err("Compression and preallocation not supported at the same time");
		goto out;
	}
	if (a.no_create && (a.opts.set || bfile)) {
		img_err("-n and -o/-B cannot be used together");
		goto out;
	}

	/* With -B the source's unallocated ranges are left to the target's backing file. */
	cv.skip_unallocated = bfile != NULL;
	if (img_open(src_path, sfmt, true, false, &src))
		goto out;
	sfmt = blk_get_format(src);
	cv.src = src;
	cv.size = blk_size(src);

	if (a.no_create) {
		struct blk_open_opts no = {.format = a.dst_fmt ? dfmt : BLK_FMT_AUTO,
					   .direct = a.direct,
					   .unsafe = a.unsafe};
		if (img_open_opts(dst_path, &no, &dst))
			goto out;
		if (blk_size(dst) < cv.size) {
			img_err("Target image is smaller than the source (%llu < %llu bytes)",
				(unsigned long long)blk_size(dst), (unsigned long long)cv.size);
			goto out;
		}
		dfmt = blk_get_format(dst);
		if (a.compress && dfmt != BLK_FMT_QCOW2) {
			img_err("Compression not supported for this file format");
			goto out;
		}
	} else {
		struct blk_create_opts co = a.opts.c;
		co.format = dfmt;
		co.size = img_round_sector(cv.size);
		if (dfmt == BLK_FMT_RAW && (a.opts.set & ~(IMG_OPT_SIZE | IMG_OPT_PREALLOC))) {
			img_err("%s: this option is not supported by the raw format", dst_path);
			goto out;
		}
		if (img_tmp_begin(dst_path, tmp, sizeof(tmp))) {
			tmp[0] = '\0';
			goto out;
		}
		struct cove_err err = {0};
		int r = blk_create_new(tmp, &co, &err);
		if (r < 0) {
			img_err_lib(dst_path, r, &err);
			goto out;
		}
		/* No syncs while the file is still private: img_tmp_commit syncs it once,
		 * before the rename that makes it visible. */
		struct blk_open_opts oo = {
		    .format = dfmt, .direct = a.direct, .no_backing = true, .unsafe = true};
		cove_err_clear(&err);
		r = blk_open(tmp, &oo, &dst, &err);
		if (r < 0) {
			img_err_lib(dst_path, r, &err);
			goto out;
		}
		if (blk_size(dst) < cv.size) {
			img_err("%s: the new image is smaller than the source", dst_path);
			goto out;
		}
		/* Early writeback shortens the sync at the end; -t unsafe has none, and an
		 * O_DIRECT target (-t none, directsync) leaves nothing dirty to write back. */
		if (!a.unsafe && !a.direct)
			cv.wb_fd = open(tmp, O_RDONLY | O_CLOEXEC);
	}
	cv.dst = dst;
	cv.compress = a.compress;
	cv.sparse = a.sparse;
	cv.zero_init = !a.no_create && !bfile;
	cv.zero_flags = bfile || (a.no_create && blk_backing(dst)) ? 0 : BLK_ZERO_MAY_UNMAP;
	cv.in_order = !a.out_of_order || a.compress;
	if (a.compress) {
		cv.unit_len = blk_cluster_size(dst);
		if (cv.unit_len < 512 || cv.unit_len > (2u << 20)) {
			img_err("%s: unexpected cluster size %u", dst_path, cv.unit_len);
			goto out;
		}
		cv.precompress = img_conv_precompress_works(dst, cv.unit_len);
	} else {
		cv.unit_len = (uint32_t)a.sparse;
		/* Whole clusters: the zeroes around data are in the buffer already, and a full
		 * cluster write spares the target a partial-cluster fill. */
		uint32_t cl = blk_cluster_size(dst);
		if (cv.unit_len && dfmt == BLK_FMT_QCOW2 && cl > cv.unit_len && cl <= CONV_CHUNK)
			cv.unit_len = cl;
	}
	if (img_conv_setup(&cv, a.workers, src_path, sfmt))
		goto out_stop;
	img_conv_writeback_start(&cv);

	struct img_progress prog;
	img_progress_init(&prog, a.progress);
	const char *where = "target";
	int r = img_conv_run(&cv, &prog, &where);
	if (r == 0) {
		r = blk_flush(dst);
		where = "target";
	}
	if (r < 0) {
		if (a.progress)
			fputc('\n', stderr);
		img_err("error while %s: %s",
			where[0] == 's' ? "reading the source" : "writing the target",
			strerror(-r));
		goto out_stop;
	}
	img_progress_end(&prog);
	ret = 0;
out_stop:
	img_conv_stop(&cv);
out:
	img_conv_free(&cv);
	if (cv.wb_fd >= 0)
		close(cv.wb_fd);
	blk_close(src);
	blk_close(dst);
	if (tmp[0]) {
		if (ret == 0) {
			int cr = img_tmp_commit(tmp, dst_path, !a.unsafe);
			if (cr < 0) {
				img_err("%s: %s", dst_path, strerror(-cr));
				img_tmp_abort(tmp);
				ret = 1;
			}
		} else {
			img_tmp_abort(tmp);
		}
	}
	img_opts_free(&a.opts);
	return ret;
}
