/* libFuzzer target: arbitrary bytes opened as a disk image, read, mapped, checked and (on a
 * private copy) repaired and written. Nothing may crash, hang or touch another file. */
#include <cove/block.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int image_fd(const uint8_t *data, size_t size, char *path, size_t plen)
{
	int fd = memfd_create("fuzz-image", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return -1;
	}
	snprintf(path, plen, "/proc/self/fd/%d", fd);
	return fd;
}

static void exercise(struct blk *b, uint64_t seed)
{
	uint64_t size = blk_size(b);
	static uint8_t buf[1 << 16];
	/* reads: the start, a few scattered ranges */
	for (int i = 0; i < 8 && size; i++) {
		uint64_t off = i == 0 ? 0 : (seed * (i + 1) * 2654435761u) % size;
		uint64_t len = sizeof(buf);
		if (len > size - off)
			len = size - off;
		blk_pread(b, buf, len, off);
	}
	/* block status, bounded */
	uint64_t off = 0;
	for (int i = 0; i < 64 && off < size; i++) {
		struct blk_status st;
		if (blk_block_status(b, off, size - off, &st) || !st.len)
			break;
		off += st.len;
	}
	struct blk_info info;
	if (blk_get_info(b, &info) == 0)
		free(info.snapshots);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	int fd = image_fd(data, size, path, sizeof(path));
	if (fd < 0)
		return 0;
	uint64_t seed = size ? data[size / 2] : 0;
	struct blk_open_opts ro = {.readonly = true, .no_backing = true, .cache_bytes = 1 << 20};
	struct blk *b;
	struct cove_err err = {0};
	bool ext_data = false;
	if (blk_open(path, &ro, &b, &err) == 0) {
		exercise(b, seed);
		struct blk_check_result r;
		blk_check(b, 0, &r, &err);
		struct blk_info info;
		if (blk_get_info(b, &info) == 0) {
			ext_data = info.data_file[0] != 0;
			free(info.snapshots);
		}
		blk_close(b);
	}
	/* Read-write on the private copy (never with an external data file: that is another
	 * file, named by the input). */
	struct blk_open_opts rw = {.no_backing = true, .no_repair = true, .cache_bytes = 1 << 20};
	cove_err_clear(&err);
	if (!ext_data && blk_open(path, &rw, &b, &err) == 0) {
		struct blk_info info;
		if (blk_get_info(b, &info) == 0) {
			free(info.snapshots);
			if (!info.data_file[0]) {
				struct blk_check_result r;
				blk_check(b, BLK_CHECK_FIX_LEAKS | BLK_CHECK_FIX_ERRORS, &r, &err);
				uint64_t sz = blk_size(b);
				static uint8_t w[8192];
				memset(w, (int)seed, sizeof(w));
				if (sz >= sizeof(w)) {
					blk_pwrite(b, w, sizeof(w),
						   (seed * 4099) % (sz - sizeof(w) + 1));
					blk_write_zeroes(b, 0, sz < 65536 ? sz : 65536, 0);
					blk_discard(b, sz / 2, sz - sz / 2);
				}
				exercise(b, seed);
			}
		}
		blk_close(b);
	}
	close(fd);
	return 0;
}
