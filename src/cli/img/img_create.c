/* `cove img create` and `cove img amend`: new images and option changes. */
#include "cli/img/img.h"

#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static int check_raw_opts(const struct img_opts *o, const char *path)
{
	unsigned qcow2_only = IMG_OPT_CLUSTER | IMG_OPT_COMPRESSION | IMG_OPT_BACKING |
			      IMG_OPT_BACKING_FMT | IMG_OPT_LAZY | IMG_OPT_EXTL2 | IMG_OPT_REFBITS |
			      IMG_OPT_COMPAT | IMG_OPT_DATA_FILE;
	if (o->set & qcow2_only)
		return img_err("%s: this option is not supported by the raw format (try -f qcow2)",
			       path);
	if (o->c.prealloc == BLK_PREALLOC_METADATA)
		return img_err("%s: preallocation=metadata is not supported by the raw format",
			       path);
	return 0;
}

/* Builds the image under a temporary name beside path (removed if a signal ends us) and
 * renames it into place once synced: an existing file at path stays as it was until then,
 * and stays untouched if anything fails. Returns 0, or 1 after an error message. */
static int create_image(const char *path, const struct blk_create_opts *c)
{
	char tmp[PATH_MAX];
	if (img_tmp_begin(path, tmp, sizeof(tmp)))
		return 1;
	struct cove_err err = {0};
	int r = blk_create_new(tmp, c, &err);
	if (r < 0) {
		img_tmp_abort(tmp);
		if (err.msg[0] && !strstr(err.msg, tmp))
			return img_err_lib(path, r, &err);
		return img_err("%s: Could not create '%s': %s", path, path, strerror(-r));
	}
	r = img_tmp_commit(tmp, path, true);
	if (r < 0) {
		img_tmp_abort(tmp);
		return img_err("%s: %s", path, strerror(-r));
	}
	return 0;
}

int img_cmd_create(int argc, char **argv)
{
	static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
						 {"object", required_argument, NULL, 'O'},
						 {NULL, 0, NULL, 0}};
	struct img_opts o = {0};
	const char *fmt = "raw", *backing = NULL, *backing_fmt = NULL;
	bool quiet = false, unsafe = false;
	int c, ret = 1;

	while ((c = getopt_long(argc, argv, ":f:o:b:F:uqe6", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'o':
			if (img_opts_parse(&o, optarg, ""))
				goto out;
			break;
		case 'b':
			backing = optarg;
			break;
		case 'F':
			backing_fmt = optarg;
			break;
		case 'u':
			unsafe = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'e':
		case '6':
			img_err("options -e and -6 were removed (use -o compat=...)");
			goto out;
		default:
			img_opt_error(argv, "create");
			goto out;
		}
	}
	enum blk_format format;
	if (img_parse_format(fmt, "", &format))
		goto out;
	if (o.help) {
		img_opts_help(format);
		ret = 0;
		goto out;
	}
	if (optind >= argc) {
		img_err("Expecting image file name");
		goto out;
	}
	const char *path = argv[optind++];
	if (optind < argc) {
		if (img_parse_size(argv[optind], &o.c.size) < 0) {
			img_err("Invalid image size specified. You may use k, M, G, T, P or E "
				"suffixes for kilobytes, megabytes, gigabytes, terabytes, "
				"petabytes and exabytes.");
			goto out;
		}
		o.set |= IMG_OPT_SIZE;
		optind++;
	}
	if (optind < argc) {
		img_err("Unexpected argument: %s", argv[optind]);
		goto out;
	}
	o.c.format = format;
	if (backing)
		o.c.backing_file = backing;
	if (backing_fmt)
		o.c.backing_fmt = backing_fmt;
	if (format == BLK_FMT_RAW) {
		if (check_raw_opts(&o, path) || (backing && img_err("%s: the raw format has no "
								    "backing file",
								    path)))
			goto out;
	}
	if (o.c.backing_file && !o.c.backing_file[0])
		o.c.backing_file = NULL;
	if (o.c.backing_fmt &&
	    (!o.c.backing_file || blk_format_parse(o.c.backing_fmt, &(enum blk_format){0}) < 0)) {
		if (!o.c.backing_file)
			img_err("%s: a backing format needs a backing file", path);
		else
			img_err("%s: Unknown backing format '%s'", path, o.c.backing_fmt);
		goto out;
	}
	if (o.c.backing_file && !o.c.backing_fmt) {
		img_err("%s: Backing file specified without backing format (add -F raw|qcow2)",
			path);
		goto out;
	}
	if (o.c.backing_file && !unsafe) {
		/* The backing file must open; it also gives the size when none was given. */
		char bpath[PATH_MAX];
		struct blk *bb;
		enum blk_format bf = BLK_FMT_AUTO;
		blk_format_parse(o.c.backing_fmt, &bf);
		img_backing_path(path, o.c.backing_file, bpath, sizeof(bpath));
		if (img_open(bpath, bf, true, false, &bb))
			goto out;
		if (!(o.set & IMG_OPT_SIZE))
			o.c.size = blk_size(bb);
		blk_close(bb);
	} else if (!(o.set & IMG_OPT_SIZE)) {
		img_err("%s: Image creation needs a size parameter", path);
		goto out;
	}
	if (!quiet) {
		char desc[8192];
		img_opts_describe(&o.c, desc, sizeof(desc));
		printf("Formatting '%s', %s\n", path, desc);
		fflush(stdout);
	}
	o.c.size = img_round_sector(o.c.size);
	ret = create_image(path, &o.c);
out:
	img_opts_free(&o);
	return ret;
}

int img_cmd_amend(int argc, char **argv)
{
	static const struct option longopts[] = {{"force", no_argument, NULL, 'F'},
						 {NULL, 0, NULL, 0}};
	struct img_opts o = {0};
	const char *fmt = NULL;
	bool quiet = false, progress = false;
	int c, ret = 1;
	struct blk *b = NULL;

	while ((c = getopt_long(argc, argv, ":f:o:pqt:", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'o':
			if (img_opts_parse(&o, optarg, ""))
				goto out;
			break;
		case 'p':
			progress = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 't':
		case 'F':
			break;
		default:
			img_opt_error(argv, "amend");
			goto out;
		}
	}
	(void)quiet;
	(void)progress;
	enum blk_format format = BLK_FMT_AUTO;
	if (fmt && img_parse_format(fmt, "", &format))
		goto out;
	if (o.help) {
		img_opts_help(format == BLK_FMT_AUTO ? BLK_FMT_QCOW2 : format);
		ret = 0;
		goto out;
	}
	if (!o.set) {
		img_err("Must specify options (-o)");
		goto out;
	}
	if (optind != argc - 1) {
		img_err("Expecting one image file name");
		goto out;
	}
	const char *path = argv[optind];
	if (img_open(path, format, false, true, &b))
		goto out;
	if (blk_get_format(b) != BLK_FMT_QCOW2) {
		img_err("Format driver 'raw' does not support option amendment");
		goto out;
	}
	if (o.set & (IMG_OPT_CLUSTER | IMG_OPT_PREALLOC | IMG_OPT_EXTL2 | IMG_OPT_COMPRESSION |
		     IMG_OPT_DATA_FILE)) {
		img_err("%s: changing cluster_size, preallocation, extended_l2, "
			"compression_type or data_file is not supported by amend",
			path);
		goto out;
	}
	struct blk_info info = {0};
	int r = blk_get_info(b, &info);
	if (r < 0) {
		img_err_lib(path, r, NULL);
		goto out;
	}
	free(info.snapshots);
	/* Start from the image's current options; the user's -o overrides them. */
	struct blk_create_opts cur = {
	    .format = BLK_FMT_QCOW2,
	    .size = info.virtual_size,
	    .cluster_size = info.cluster_size,
	    .refcount_bits = info.refcount_bits,
	    .compat_v2 = info.version == 2,
	    .lazy_refcounts = info.lazy_refcounts,
	    .extended_l2 = info.extended_l2,
	    .compression = info.compression,
	    .backing_file = info.backing_file[0] ? info.backing_file : NULL,
	    .backing_fmt = info.backing_fmt[0] ? info.backing_fmt : NULL,
	};
	if (o.set & IMG_OPT_SIZE)
		cur.size = o.c.size;
	if (o.set & IMG_OPT_REFBITS)
		cur.refcount_bits = o.c.refcount_bits;
	if (o.set & IMG_OPT_COMPAT)
		cur.compat_v2 = o.c.compat_v2;
	if (o.set & IMG_OPT_LAZY)
		cur.lazy_refcounts = o.c.lazy_refcounts;
	if (o.set & IMG_OPT_BACKING)
		cur.backing_file = o.c.backing_file[0] ? o.c.backing_file : NULL;
	if (o.set & IMG_OPT_BACKING_FMT)
		cur.backing_fmt = o.c.backing_fmt;
	if (cur.compat_v2 && cur.lazy_refcounts) {
		img_err("%s: Lazy refcounts only supported with compatibility level 1.1 and "
			"above (use compat=1.1 or greater)",
			path);
		goto out;
	}
	struct cove_err err = {0};
	r = blk_amend(b, &cur, &err);
	if (r < 0) {
		img_err_lib(path, r, &err);
		goto out;
	}
	r = blk_flush(b);
	if (r < 0) {
		img_err_lib(path, r, NULL);
		goto out;
	}
	ret = 0;
out:
	blk_close(b);
	img_opts_free(&o);
	return ret;
}
