/* `cove img snapshot`: list, create, apply and delete internal snapshots (qcow2). */
#include "cli/img/img.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

enum snap_action { SNAP_NONE, SNAP_LIST, SNAP_CREATE, SNAP_APPLY, SNAP_DELETE };

int img_cmd_snapshot(int argc, char **argv)
{
	enum { OPT_OBJECT = 256, OPT_IMAGE_OPTS };
	static const struct option longopts[] = {{"force-share", no_argument, NULL, 'U'},
						 {"object", required_argument, NULL, OPT_OBJECT},
						 {"image-opts", no_argument, NULL, OPT_IMAGE_OPTS},
						 {NULL, 0, NULL, 0}};
	enum snap_action act = SNAP_NONE;
	const char *name = NULL, *fmt = NULL;
	bool quiet = false;
	int c;

	while ((c = getopt_long(argc, argv, ":hla:c:d:f:qU", longopts, NULL)) != -1) {
		enum snap_action a = SNAP_NONE;
		switch (c) {
		case 'l':
			a = SNAP_LIST;
			break;
		case 'a':
			a = SNAP_APPLY;
			break;
		case 'c':
			a = SNAP_CREATE;
			break;
		case 'd':
			a = SNAP_DELETE;
			break;
		case 'f':
			fmt = optarg;
			continue;
		case 'q':
			quiet = true;
			continue;
		case 'U':
			continue;
		default:
			return img_opt_error(argv, "snapshot");
		}
		if (act != SNAP_NONE)
			return img_err("Cannot mix '-l', '-a', '-c', '-d'");
		act = a;
		name = a == SNAP_LIST ? NULL : optarg;
	}
	if (act == SNAP_NONE)
		return img_err("Expecting one of -l, -a NAME, -c NAME, -d NAME");
	if (optind != argc - 1)
		return img_err("Expecting one image file name");
	const char *path = argv[optind];
	enum blk_format format = BLK_FMT_AUTO;
	if (fmt && img_parse_format(fmt, path, &format))
		return 1;
	if (name && (!name[0] || strlen(name) >= sizeof(((struct blk_snapshot_info *)0)->name)))
		return img_err("Invalid snapshot name '%s'", name);

	struct blk *b;
	if (img_open(path, format, act == SNAP_LIST, true, &b))
		return 1;
	struct cove_err err = {0};
	int r = 0, ret = 1;
	switch (act) {
	case SNAP_LIST: {
		struct blk_snapshot_info *list = NULL;
		unsigned n = 0;
		if (blk_get_format(b) != BLK_FMT_QCOW2)
			break; /* no snapshots: print nothing, as qemu-img */
		r = blk_snapshot_list(b, &list, &n);
		if (r < 0) {
			img_err_lib(path, r, NULL);
			goto out;
		}
		if (n && !quiet) {
			printf("Snapshot list:\n");
			img_snapshot_header(stdout);
			for (unsigned i = 0; i < n; i++)
				img_snapshot_line(stdout, &list[i]);
		}
		free(list);
		break;
	}
	case SNAP_CREATE:
		r = blk_snapshot_create(b, name, &err);
		if (r < 0) {
			img_err("Could not create snapshot '%s': %s", name,
				err.code ? err.msg : strerror(-r));
			goto out;
		}
		break;
	case SNAP_APPLY:
		r = blk_snapshot_apply(b, name, &err);
		if (r < 0) {
			img_err("Could not apply snapshot '%s': %s", name,
				err.code ? err.msg : strerror(-r));
			goto out;
		}
		break;
	case SNAP_DELETE:
		r = blk_snapshot_delete(b, name, &err);
		if (r < 0) {
			img_err("Could not delete snapshot '%s': %s", name,
				err.code ? err.msg : strerror(-r));
			goto out;
		}
		break;
	case SNAP_NONE:
		break;
	}
	if (act != SNAP_LIST && (r = blk_flush(b)) < 0) {
		img_err_lib(path, r, NULL);
		goto out;
	}
	ret = 0;
out:
	blk_close(b);
	return ret;
}
