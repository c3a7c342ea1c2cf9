/* `cove img resize`: grow an image, or shrink it with --shrink. */
#include "cli/img/img.h"

#include <getopt.h>
#include <string.h>

int img_cmd_resize(int argc, char **argv)
{
	enum { OPT_PREALLOC = 256, OPT_SHRINK, OPT_OBJECT, OPT_IMAGE_OPTS };
	static const struct option longopts[] = {
	    {"preallocation", required_argument, NULL, OPT_PREALLOC},
	    {"shrink", no_argument, NULL, OPT_SHRINK},
	    {"object", required_argument, NULL, OPT_OBJECT},
	    {"image-opts", no_argument, NULL, OPT_IMAGE_OPTS},
	    {NULL, 0, NULL, 0}};
	const char *fmt = NULL;
	bool quiet = false, shrink = false;
	enum blk_prealloc prealloc = BLK_PREALLOC_OFF;
	int c;

	/* The size comes last and may start with '-': take it before getopt sees it. */
	if (argc < 3)
		return img_err("Expecting image file name and size");
	const char *size_arg = argv[argc - 1];
	argc--;
	while ((c = getopt_long(argc, argv, ":hf:qt:", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 't':
			break;
		case OPT_PREALLOC:
			if (blk_prealloc_parse(optarg, &prealloc) < 0)
				return img_err("Invalid preallocation mode '%s'", optarg);
			break;
		case OPT_SHRINK:
			shrink = true;
			break;
		case OPT_OBJECT:
		case OPT_IMAGE_OPTS:
			return img_err("--object and --image-opts are not supported");
		default:
			return img_opt_error(argv, "resize");
		}
	}
	if (optind != argc - 1)
		return img_err("Expecting image file name and size");
	const char *path = argv[optind];
	int sign = 0;
	if (size_arg[0] == '+' || size_arg[0] == '-') {
		sign = size_arg[0] == '+' ? 1 : -1;
		size_arg++;
	}
	uint64_t n;
	if (img_parse_size(size_arg, &n) < 0)
		return img_err("Invalid image size specified. You may use k, M, G, T, P or E "
			       "suffixes for kilobytes, megabytes, gigabytes, terabytes, petabytes "
			       "and exabytes.");
	enum blk_format format = BLK_FMT_AUTO;
	if (fmt && img_parse_format(fmt, path, &format))
		return 1;

	struct blk *b;
	if (img_open(path, format, false, true, &b))
		return 1;
	uint64_t cur = blk_size(b), target = n;
	int ret = 1;
	if (sign > 0) {
		if (n > (uint64_t)INT64_MAX - cur) {
			img_err("Image size must be less than 8 EiB!");
			goto out;
		}
		target = cur + n;
	} else if (sign < 0) {
		if (n >= cur) {
			img_err("New image size must be positive");
			goto out;
		}
		target = cur - n;
	}
	if (target == 0) {
		img_err("New image size must be positive");
		goto out;
	}
	if (target % 512 && blk_get_format(b) == BLK_FMT_QCOW2) {
		img_err("The new size must be a multiple of 512");
		goto out;
	}
	if (target < cur && !shrink) {
		img_err("Use the --shrink option to perform a shrink operation.");
		fprintf(stderr, "cove img: warning: Shrinking an image will delete all data "
				"beyond the shrunken image's end. Before performing such an "
				"operation, make sure there is no important data there.\n");
		goto out;
	}
	if (target < cur && prealloc != BLK_PREALLOC_OFF) {
		img_err("Preallocation can only be used for growing images");
		goto out;
	}
	struct cove_err err = {0};
	int r = blk_resize(b, target, shrink, prealloc, &err);
	if (r == 0)
		r = blk_flush(b);
	if (r < 0) {
		img_err_lib(path, r, &err);
		goto out;
	}
	if (!quiet)
		printf("Image resized.\n");
	ret = 0;
out:
	blk_close(b);
	return ret;
}
