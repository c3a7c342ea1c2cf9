/* `cove img measure`: how large a new image would be, for a size or an existing image. */
#include "cli/img/img.h"
#include "cli/img/img_json.h"

#include <getopt.h>
#include <string.h>

int img_cmd_measure(int argc, char **argv)
{
	enum { OPT_OUTPUT = 256, OPT_SIZE, OPT_OBJECT, OPT_IMAGE_OPTS };
	static const struct option longopts[] = {{"output", required_argument, NULL, OPT_OUTPUT},
						 {"size", required_argument, NULL, OPT_SIZE},
						 {"force-share", no_argument, NULL, 'U'},
						 {"object", required_argument, NULL, OPT_OBJECT},
						 {"image-opts", no_argument, NULL, OPT_IMAGE_OPTS},
						 {NULL, 0, NULL, 0}};
	struct img_opts o = {0};
	const char *fmt = NULL, *out_fmt = "raw";
	bool json = false, has_size = false;
	uint64_t size = 0;
	struct blk *src = NULL;
	int c, ret = 1;

	while ((c = getopt_long(argc, argv, ":hf:O:o:l:U", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'O':
			out_fmt = optarg;
			break;
		case 'o':
			if (img_opts_parse(&o, optarg, ""))
				goto out;
			break;
		case 'U':
			break;
		case 'l':
			img_err("measuring an internal snapshot (-l) is not supported");
			goto out;
		case OPT_OUTPUT:
			if (!strcmp(optarg, "json")) {
				json = true;
			} else if (!strcmp(optarg, "human")) {
				json = false;
			} else {
				img_err("--output must be used with human or json as argument.");
				goto out;
			}
			break;
		case OPT_SIZE:
			if (img_parse_size(optarg, &size) < 0) {
				img_err("Invalid size specified. You may use k, M, G, T, P or E "
					"suffixes for kilobytes, megabytes, gigabytes, terabytes, "
					"petabytes and exabytes.");
				goto out;
			}
			has_size = true;
			break;
		case OPT_OBJECT:
		case OPT_IMAGE_OPTS:
			img_err("--object and --image-opts are not supported");
			goto out;
		default:
			img_opt_error(argv, "measure");
			goto out;
		}
	}
	enum blk_format tfmt;
	if (img_parse_format(out_fmt, "", &tfmt))
		goto out;
	if (o.help) {
		img_opts_help(tfmt);
		ret = 0;
		goto out;
	}
	if (argc - optind > 1) {
		img_err("Expecting at most one image file name");
		goto out;
	}
	const char *path = optind < argc ? argv[optind] : NULL;
	if (has_size && path) {
		img_err("--size N cannot be used together with a filename.");
		goto out;
	}
	if (!has_size && !path) {
		img_err("Either --size N or one filename must be specified.");
		goto out;
	}
	if (path) {
		enum blk_format sfmt = BLK_FMT_AUTO;
		if (fmt && img_parse_format(fmt, path, &sfmt))
			goto out;
		if (img_open(path, sfmt, true, false, &src))
			goto out;
		size = blk_size(src);
	}
	o.c.format = tfmt;
	if (!(o.set & IMG_OPT_SIZE))
		o.c.size = size;
	o.c.size = img_round_sector(o.c.size);
	struct blk_measure m = {0};
	struct cove_err err = {0};
	int r = blk_measure(&o.c, src, &m, &err);
	if (r < 0) {
		img_err_lib(path ? path : "measure", r, &err);
		goto out;
	}
	/* qemu-img reports bitmaps (always 0 here) when both sides are qcow2. */
	bool bitmaps = src && tfmt == BLK_FMT_QCOW2 && blk_get_format(src) == BLK_FMT_QCOW2;
	if (json) {
		struct img_json j;
		img_json_init(&j, stdout);
		img_json_obj_begin(&j, NULL);
		if (bitmaps)
			img_json_u64(&j, "bitmaps", 0);
		img_json_u64(&j, "required", m.required);
		img_json_u64(&j, "fully-allocated", m.fully_allocated);
		img_json_obj_end(&j);
		img_json_end(&j);
	} else {
		printf("required size: %llu\nfully allocated size: %llu\n",
		       (unsigned long long)m.required, (unsigned long long)m.fully_allocated);
		if (bitmaps)
			printf("bitmaps size: 0\n");
	}
	ret = 0;
out:
	blk_close(src);
	img_opts_free(&o);
	return ret;
}
