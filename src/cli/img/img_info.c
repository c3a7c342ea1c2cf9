/* `cove img info`: image facts in qemu-img's human and JSON layouts. */
#include "cli/img/img.h"
#include "cli/img/img_json.h"

#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char *compression_name(enum blk_compression c)
{
	return c == BLK_COMPRESS_ZSTD ? "zstd" : "zlib";
}

static void info_human(const char *name, const struct blk_info *in, const char *full_backing)
{
	char size[32], disk[32];
	img_size_str(in->virtual_size, size, sizeof(size));
	img_size_str(in->actual_size, disk, sizeof(disk));
	printf("image: %s\nfile format: %s\nvirtual size: %s (%llu bytes)\ndisk size: %s\n", name,
	       blk_format_name(in->format), size, (unsigned long long)in->virtual_size, disk);
	if (in->format == BLK_FMT_QCOW2 && in->cluster_size)
		printf("cluster_size: %u\n", in->cluster_size);
	if (in->dirty)
		printf("cleanly shut down: no\n");
	if (in->backing_file[0]) {
		printf("backing file: %s", in->backing_file);
		if (strcmp(in->backing_file, full_backing))
			printf(" (actual path: %s)", full_backing);
		printf("\n");
	}
	if (in->backing_fmt[0])
		printf("backing file format: %s\n", in->backing_fmt);
	if (in->nb_snapshots) {
		printf("Snapshot list:\n");
		img_snapshot_header(stdout);
		for (unsigned i = 0; i < in->nb_snapshots; i++)
			img_snapshot_line(stdout, &in->snapshots[i]);
	}
	if (in->format != BLK_FMT_QCOW2)
		return;
	printf("Format specific information:\n    compat: %s\n    compression type: %s\n",
	       in->version == 2 ? "0.10" : "1.1", compression_name(in->compression));
	if (in->version >= 3)
		printf("    lazy refcounts: %s\n", in->lazy_refcounts ? "true" : "false");
	printf("    refcount bits: %u\n", in->refcount_bits);
	if (in->version >= 3) {
		if (in->data_file[0])
			printf("    data file: %s\n    data file raw: false\n", in->data_file);
		printf("    corrupt: %s\n", in->corrupt ? "true" : "false");
		printf("    extended l2: %s\n", in->extended_l2 ? "true" : "false");
	}
}

static void info_json(struct img_json *j, const char *name, const struct blk_info *in,
		      const char *full_backing)
{
	img_json_obj_begin(j, NULL);
	if (in->nb_snapshots) {
		img_json_arr_begin(j, "snapshots");
		for (unsigned i = 0; i < in->nb_snapshots; i++) {
			const struct blk_snapshot_info *s = &in->snapshots[i];
			img_json_obj_begin(j, NULL);
			if (s->icount != UINT64_MAX)
				img_json_u64(j, "icount", s->icount);
			img_json_u64(j, "vm-clock-nsec", s->vm_clock_nsec % 1000000000ULL);
			img_json_str(j, "name", s->name);
			img_json_u64(j, "date-sec", s->date_sec);
			img_json_u64(j, "date-nsec", s->date_nsec);
			img_json_u64(j, "vm-clock-sec", s->vm_clock_nsec / 1000000000ULL);
			img_json_str(j, "id", s->id);
			img_json_u64(j, "vm-state-size", s->vm_state_size);
			img_json_obj_end(j);
		}
		img_json_arr_end(j);
	}
	if (in->backing_fmt[0])
		img_json_str(j, "backing-filename-format", in->backing_fmt);
	img_json_u64(j, "virtual-size", in->virtual_size);
	img_json_str(j, "filename", name);
	if (in->format == BLK_FMT_QCOW2 && in->cluster_size)
		img_json_u64(j, "cluster-size", in->cluster_size);
	img_json_str(j, "format", blk_format_name(in->format));
	img_json_u64(j, "actual-size", in->actual_size);
	if (in->format == BLK_FMT_QCOW2) {
		img_json_obj_begin(j, "format-specific");
		img_json_str(j, "type", "qcow2");
		img_json_obj_begin(j, "data");
		img_json_str(j, "compat", in->version == 2 ? "0.10" : "1.1");
		img_json_str(j, "compression-type", compression_name(in->compression));
		if (in->version >= 3)
			img_json_bool(j, "lazy-refcounts", in->lazy_refcounts);
		img_json_u64(j, "refcount-bits", in->refcount_bits);
		if (in->version >= 3) {
			if (in->data_file[0]) {
				img_json_str(j, "data-file", in->data_file);
				img_json_bool(j, "data-file-raw", false);
			}
			img_json_bool(j, "corrupt", in->corrupt);
			img_json_bool(j, "extended-l2", in->extended_l2);
		}
		img_json_obj_end(j);
		img_json_obj_end(j);
	}
	if (in->backing_file[0]) {
		img_json_str(j, "full-backing-filename", full_backing);
		img_json_str(j, "backing-filename", in->backing_file);
	}
	img_json_bool(j, "dirty-flag", in->dirty);
	img_json_obj_end(j);
}

int img_cmd_info(int argc, char **argv)
{
	enum { OPT_OUTPUT = 256, OPT_CHAIN, OPT_OBJECT, OPT_IMAGE_OPTS };
	static const struct option longopts[] = {{"output", required_argument, NULL, OPT_OUTPUT},
						 {"backing-chain", no_argument, NULL, OPT_CHAIN},
						 {"force-share", no_argument, NULL, 'U'},
						 {"object", required_argument, NULL, OPT_OBJECT},
						 {"image-opts", no_argument, NULL, OPT_IMAGE_OPTS},
						 {NULL, 0, NULL, 0}};
	const char *fmt = NULL;
	bool json = false, chain = false;
	int c;

	while ((c = getopt_long(argc, argv, ":f:hU", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'U':
			break; /* no image locking here: sharing is always allowed */
		case OPT_OUTPUT:
			if (img_parse_output(optarg, &json))
				return 1;
			break;
		case OPT_CHAIN:
			chain = true;
			break;
		case OPT_OBJECT:
		case OPT_IMAGE_OPTS:
			return img_err("--object and --image-opts are not supported");
		default:
			return img_opt_error(argv, "info");
		}
	}
	if (optind != argc - 1)
		return img_err("Expecting one image file name");
	const char *path = argv[optind];
	enum blk_format format = BLK_FMT_AUTO;
	if (fmt && img_parse_format(fmt, path, &format))
		return 1;

	struct blk *top;
	if (img_open(path, format, true, !chain, &top))
		return 1;

	struct img_json j;
	img_json_init(&j, stdout);
	if (json && chain)
		img_json_arr_begin(&j, NULL);
	int ret = 0, n = 0;
	char name[PATH_MAX];
	snprintf(name, sizeof(name), "%s", path);
	for (struct blk *b = top; b; b = chain ? blk_backing(b) : NULL, n++) {
		struct blk_info in = {0};
		int r = blk_get_info(b, &in);
		if (r < 0) {
			ret = img_err_lib(name, r, NULL);
			break;
		}
		char full[PATH_MAX];
		full[0] = '\0';
		if (in.backing_file[0])
			img_backing_path(name, in.backing_file, full, sizeof(full));
		if (json) {
			info_json(&j, name, &in, full);
		} else {
			if (n > 0)
				printf("\n");
			info_human(name, &in, full);
		}
		free(in.snapshots);
		if (n > 256) {
			ret = img_err("backing chain too long");
			break;
		}
		snprintf(name, sizeof(name), "%s", full);
	}
	if (json && chain)
		img_json_arr_end(&j);
	if (json)
		img_json_end(&j);
	blk_close(top);
	return ret;
}
