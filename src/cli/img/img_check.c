/* `cove img check`: metadata consistency, repair with -r, qemu-img's exit codes. */
#include "cli/img/img.h"
#include "cli/img/img_json.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

/* qemu-img check's exit statuses. */
enum {
	CHECK_OK = 0,
	CHECK_FAILED = 1,
	CHECK_CORRUPT = 2,
	CHECK_LEAKS = 3,
	CHECK_UNSUPPORTED = 63,
};

static void dump_human(const struct blk_check_result *r)
{
	if (!(r->corruptions || r->leaks || r->check_errors)) {
		printf("No errors were found on the image.\n");
	} else {
		if (r->first_problem[0])
			fprintf(stderr, "%s\n", r->first_problem);
		if (r->corruptions)
			printf("\n%llu errors were found on the image.\n"
			       "Data may be corrupted, or further writes to the image may "
			       "corrupt it.\n",
			       (unsigned long long)r->corruptions);
		if (r->leaks)
			printf("\n%llu leaked clusters were found on the image.\n"
			       "This means waste of disk space, but no harm to data.\n",
			       (unsigned long long)r->leaks);
		if (r->check_errors)
			printf("\n%llu internal errors have occurred during the check.\n",
			       (unsigned long long)r->check_errors);
	}
	if (r->total_clusters && r->allocated_clusters)
		printf("%llu/%llu = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% compressed "
		       "clusters\n",
		       (unsigned long long)r->allocated_clusters,
		       (unsigned long long)r->total_clusters,
		       (double)r->allocated_clusters * 100.0 / (double)r->total_clusters,
		       (double)r->fragmented_clusters * 100.0 / (double)r->allocated_clusters,
		       (double)r->compressed_clusters * 100.0 / (double)r->allocated_clusters);
	if (r->image_end_offset)
		printf("Image end offset: %llu\n", (unsigned long long)r->image_end_offset);
}

static void dump_json(const char *path, const char *fmt, const struct blk_check_result *r)
{
	struct img_json j;
	img_json_init(&j, stdout);
	img_json_obj_begin(&j, NULL);
	if (r->image_end_offset)
		img_json_u64(&j, "image-end-offset", r->image_end_offset);
	if (r->total_clusters)
		img_json_u64(&j, "total-clusters", r->total_clusters);
	img_json_u64(&j, "check-errors", r->check_errors);
	if (r->leaks)
		img_json_u64(&j, "leaks", r->leaks);
	if (r->leaks_fixed)
		img_json_u64(&j, "leaks-fixed", r->leaks_fixed);
	if (r->corruptions)
		img_json_u64(&j, "corruptions", r->corruptions);
	if (r->corruptions_fixed)
		img_json_u64(&j, "corruptions-fixed", r->corruptions_fixed);
	if (r->allocated_clusters)
		img_json_u64(&j, "allocated-clusters", r->allocated_clusters);
	if (r->fragmented_clusters)
		img_json_u64(&j, "fragmented-clusters", r->fragmented_clusters);
	if (r->compressed_clusters)
		img_json_u64(&j, "compressed-clusters", r->compressed_clusters);
	img_json_str(&j, "filename", path);
	img_json_str(&j, "format", fmt);
	img_json_obj_end(&j);
	img_json_end(&j);
}

int img_cmd_check(int argc, char **argv)
{
	enum { OPT_OUTPUT = 256, OPT_OBJECT, OPT_IMAGE_OPTS };
	static const struct option longopts[] = {{"output", required_argument, NULL, OPT_OUTPUT},
						 {"repair", required_argument, NULL, 'r'},
						 {"force-share", no_argument, NULL, 'U'},
						 {"object", required_argument, NULL, OPT_OBJECT},
						 {"image-opts", no_argument, NULL, OPT_IMAGE_OPTS},
						 {NULL, 0, NULL, 0}};
	const char *fmt = NULL;
	bool json = false, quiet = false;
	unsigned fix = 0;
	int c;

	while ((c = getopt_long(argc, argv, ":f:r:T:qU", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'r':
			if (!strcmp(optarg, "leaks"))
				fix = BLK_CHECK_FIX_LEAKS;
			else if (!strcmp(optarg, "all"))
				fix = BLK_CHECK_FIX_LEAKS | BLK_CHECK_FIX_ERRORS;
			else
				return img_err("Unknown option value for -r (expecting 'leaks' or "
					       "'all'): %s",
					       optarg);
			break;
		case 'T':
		case 'U':
			break;
		case 'q':
			quiet = true;
			break;
		case OPT_OUTPUT:
			if (img_parse_output(optarg, &json))
				return 1;
			break;
		case OPT_OBJECT:
		case OPT_IMAGE_OPTS:
			return img_err("--object and --image-opts are not supported");
		default:
			return img_opt_error(argv, "check");
		}
	}
	if (optind != argc - 1)
		return img_err("Expecting one image file name");
	const char *path = argv[optind];
	enum blk_format format = BLK_FMT_AUTO;
	if (fmt && img_parse_format(fmt, path, &format))
		return 1;

	struct blk_open_opts oo = {
	    .format = format, .readonly = !fix, .no_backing = true, .no_repair = true};
	struct blk *b;
	if (img_open_opts(path, &oo, &b))
		return CHECK_FAILED;
	if (blk_get_format(b) != BLK_FMT_QCOW2) {
		blk_close(b);
		img_err("This image format does not support checks");
		return CHECK_UNSUPPORTED;
	}

	struct blk_check_result res = {0};
	struct cove_err err = {0};
	int r = blk_check(b, fix, &res, &err);
	if (r == -ENOTSUP || r == -ENOSYS) {
		blk_close(b);
		img_err_lib("This image format does not support checks", r, &err);
		return CHECK_UNSUPPORTED;
	}
	if (r == 0 && fix && (res.corruptions_fixed || res.leaks_fixed)) {
		uint64_t lf = res.leaks_fixed, cf = res.corruptions_fixed;
		if (!json && !quiet)
			printf("The following inconsistencies were found and repaired:\n\n"
			       "    %llu leaked clusters\n    %llu corruptions\n\n"
			       "Double checking the fixed image now...\n",
			       (unsigned long long)lf, (unsigned long long)cf);
		struct blk_check_result again = {0};
		r = blk_check(b, 0, &again, &err);
		again.leaks_fixed = lf;
		again.corruptions_fixed = cf;
		res = again;
	}
	blk_close(b);
	if (r == 0 && !quiet) {
		if (json)
			dump_json(path, "qcow2", &res);
		else
			dump_human(&res);
	}
	if (r < 0 || res.check_errors) {
		if (r < 0)
			img_err_lib("Check failed", r, &err);
		else
			img_err("Check failed");
		return CHECK_FAILED;
	}
	if (res.corruptions)
		return CHECK_CORRUPT;
	if (res.leaks)
		return CHECK_LEAKS;
	return CHECK_OK;
}
