/* `cove img map`: where each range of the virtual disk lives, as qemu-img map prints it. */
#include "cli/img/img.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

struct map_entry {
	uint64_t start, length, offset;
	int depth;
	bool present, zero, data, has_offset;
	const char *filename;
};

/*
 * Status of [off, off+len) through the chain: the first layer that allocates the range
 * gives the answer; a range no layer allocates reads as zero and is not present.
 */
static int chain_status(struct blk *top, uint64_t off, uint64_t len, struct map_entry *e)
{
	int depth = 0;
	struct blk *b = top;
	for (;;) {
		struct blk_status st = {0};
		int r = blk_block_status(b, off, len, &st);
		if (r < 0)
			return r;
		if (st.len == 0 || st.len > len)
			st.len = len;
		bool raw = blk_get_format(b) == BLK_FMT_RAW;
		struct blk *next = blk_backing(b);
		if ((st.flags & BLK_STATUS_ALLOCATED) || raw || !next || off >= blk_size(next)) {
			bool alloc = (st.flags & BLK_STATUS_ALLOCATED) || raw;
			e->start = off;
			e->length = st.len;
			e->depth = depth;
			e->present = alloc;
			e->data = alloc && (st.flags & BLK_STATUS_DATA);
			e->zero = !alloc || (st.flags & BLK_STATUS_ZERO);
			e->has_offset = alloc && (st.flags & BLK_STATUS_OFFSET);
			e->offset = e->has_offset ? st.file_offset : 0;
			e->filename = !e->has_offset ? NULL
				      : st.file_name ? st.file_name
						     : blk_filename(b);
			if (!alloc && next && off >= blk_size(next))
				e->depth = depth + 1;
			return 0;
		}
		len = st.len;
		b = next;
		if (++depth > 1024)
			return -ELOOP;
	}
}

static bool mergeable(const struct map_entry *a, const struct map_entry *b)
{
	if (a->length == 0)
		return false;
	if (a->zero != b->zero || a->data != b->data || a->depth != b->depth ||
	    a->present != b->present || a->has_offset != b->has_offset ||
	    !a->filename != !b->filename)
		return false;
	if (a->filename && strcmp(a->filename, b->filename))
		return false;
	return !a->has_offset || a->offset + a->length == b->offset;
}

static int dump(const struct map_entry *e, bool json, bool last)
{
	if (json) {
		printf("{ \"start\": %llu, \"length\": %llu, \"depth\": %d, \"present\": %s, "
		       "\"zero\": %s, \"data\": %s",
		       (unsigned long long)e->start, (unsigned long long)e->length, e->depth,
		       e->present ? "true" : "false", e->zero ? "true" : "false",
		       e->data ? "true" : "false");
		if (e->has_offset)
			printf(", \"offset\": %llu", (unsigned long long)e->offset);
		putchar('}');
		if (!last)
			puts(",");
		return 0;
	}
	if (e->data && !e->has_offset) {
		fflush(stdout);
		img_err("File contains external, encrypted or compressed clusters.");
		return -EINVAL;
	}
	if (e->data && !e->zero) {
		char a[24], b[24], c[24];
		/* %#x prints 0 without the 0x, as qemu-img does. */
		snprintf(a, sizeof(a), "%#llx", (unsigned long long)e->start);
		snprintf(b, sizeof(b), "%#llx", (unsigned long long)e->length);
		snprintf(c, sizeof(c), "%#llx", (unsigned long long)e->offset);
		printf("%-16s%-16s%-16s%s\n", a, b, c, e->filename ? e->filename : "");
	}
	return 0;
}

int img_cmd_map(int argc, char **argv)
{
	enum { OPT_OUTPUT = 256, OPT_START, OPT_MAXLEN, OPT_OBJECT, OPT_IMAGE_OPTS };
	static const struct option longopts[] = {
	    {"output", required_argument, NULL, OPT_OUTPUT},
	    {"force-share", no_argument, NULL, 'U'},
	    {"start-offset", required_argument, NULL, OPT_START},
	    {"max-length", required_argument, NULL, OPT_MAXLEN},
	    {"object", required_argument, NULL, OPT_OBJECT},
	    {"image-opts", no_argument, NULL, OPT_IMAGE_OPTS},
	    {NULL, 0, NULL, 0}};
	const char *fmt = NULL;
	bool json = false;
	uint64_t start = 0, maxlen = UINT64_MAX;
	int c;

	while ((c = getopt_long(argc, argv, ":hf:U", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'U':
			break;
		case OPT_OUTPUT:
			if (img_parse_output(optarg, &json))
				return 1;
			break;
		case OPT_START:
			if (img_parse_size(optarg, &start) < 0)
				return img_err("Invalid start offset specified! You may use k, M, "
					       "G, T, P or E suffixes for ");
			break;
		case OPT_MAXLEN:
			if (img_parse_size(optarg, &maxlen) < 0)
				return img_err("Invalid length specified! You may use k, M, G, T, "
					       "P or E suffixes for ");
			break;
		case OPT_OBJECT:
		case OPT_IMAGE_OPTS:
			return img_err("--object and --image-opts are not supported");
		default:
			return img_opt_error(argv, "map");
		}
	}
	if (optind != argc - 1)
		return img_err("Expecting one image file name");
	const char *path = argv[optind];
	enum blk_format format = BLK_FMT_AUTO;
	if (fmt && img_parse_format(fmt, path, &format))
		return 1;
	struct blk *b;
	if (img_open(path, format, true, false, &b))
		return 1;

	uint64_t size = blk_size(b);
	uint64_t end = start < size ? (maxlen < size - start ? start + maxlen : size) : start;
	int ret = 0;
	if (json)
		putchar('[');
	else
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
	struct map_entry cur = {0}, next;
	for (uint64_t off = start; off < end; off += next.length) {
		int r = chain_status(b, off, end - off, &next);
		if (r < 0) {
			fflush(stdout);
			ret = img_err_lib(path, r, NULL);
			goto out;
		}
		if (mergeable(&cur, &next)) {
			cur.length += next.length;
			continue;
		}
		if (cur.length && dump(&cur, json, false) < 0) {
			ret = 1;
			goto out;
		}
		cur = next;
	}
	if (!cur.length && start >= end) {
		/* Nothing to map: qemu-img prints one empty, absent extent. */
		cur.start = start;
		if (json)
			dump(&cur, json, true);
	} else if (cur.length && dump(&cur, json, true) < 0) {
		ret = 1;
		goto out;
	}
	if (json)
		printf("]\n");
out:
	blk_close(b);
	return ret;
}
