/* blkcat: a small tool for the block layer's integration tests.
 *   blkcat cat IMAGE [OUT]          dump the virtual disk (raw) to OUT or stdout
 *   blkcat write IMAGE SEED N        N random writes/discards/zeroes (deterministic by SEED)
 *   blkcat ...                      see usage() */
#include <cove/block.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int usage(void)
{
	fprintf(stderr, "usage: blkcat cat IMAGE [OUT]\n");
	return 2;
}

static int cmd_cat(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	struct blk_open_opts o = {.readonly = true};
	struct blk *b;
	struct cove_err err = {0};
	if (blk_open(argv[2], &o, &b, &err)) {
		fprintf(stderr, "blkcat: %s\n", err.msg);
		return 1;
	}
	int fd = argc > 3 ? open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644) : 1;
	if (fd < 0) {
		perror(argv[3]);
		return 1;
	}
	uint64_t size = blk_size(b), chunk = 4 << 20;
	char *buf = malloc(chunk);
	for (uint64_t off = 0; off < size; off += chunk) {
		uint64_t n = size - off < chunk ? size - off : chunk;
		int ret = blk_pread(b, buf, n, off);
		if (ret) {
			fprintf(stderr, "blkcat: read at %llu: %s\n", (unsigned long long)off,
				strerror(-ret));
			return 1;
		}
		if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n) {
			perror("write");
			return 1;
		}
	}
	if (fd != 1 && ftruncate(fd, (off_t)size))
		return 1;
	free(buf);
	blk_close(b);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "cat"))
		return cmd_cat(argc, argv);
	return usage();
}
