/* Stand-ins for the block layer while it is not built: every call fails with -ENOSYS. */
#include <cove/block.h>

#include <errno.h>
#include <string.h>

const char *blk_format_name(enum blk_format fmt)
{
	return fmt == BLK_FMT_RAW ? "raw" : fmt == BLK_FMT_QCOW2 ? "qcow2" : NULL;
}

int blk_format_parse(const char *name, enum blk_format *out)
{
	if (!strcmp(name, "raw"))
		*out = BLK_FMT_RAW;
	else if (!strcmp(name, "qcow2"))
		*out = BLK_FMT_QCOW2;
	else
		return -EINVAL;
	return 0;
}

int blk_prealloc_parse(const char *name, enum blk_prealloc *out)
{
	static const char *const names[] = {"off", "metadata", "falloc", "full"};
	for (int i = 0; i < 4; i++) {
		if (!strcmp(name, names[i])) {
			*out = (enum blk_prealloc)i;
			return 0;
		}
	}
	return -EINVAL;
}

int blk_open(const char *path, const struct blk_open_opts *opts, struct blk **out,
	     struct cove_err *err)
{
	return cove_err_set(err, -ENOSYS, "the block layer is not built yet");
}
void blk_close(struct blk *b)
{
}
uint64_t blk_size(const struct blk *b)
{
	return 0;
}
enum blk_format blk_get_format(const struct blk *b)
{
	return BLK_FMT_AUTO;
}
const char *blk_filename(const struct blk *b)
{
	return "";
}
bool blk_is_readonly(const struct blk *b)
{
	return true;
}
struct blk *blk_backing(const struct blk *b)
{
	return NULL;
}
uint32_t blk_cluster_size(const struct blk *b)
{
	return 512;
}
int blk_pread(struct blk *b, void *buf, uint64_t len, uint64_t offset)
{
	return -ENOSYS;
}
int blk_pwrite(struct blk *b, const void *buf, uint64_t len, uint64_t offset)
{
	return -ENOSYS;
}
int blk_flush(struct blk *b)
{
	return -ENOSYS;
}
int blk_discard(struct blk *b, uint64_t offset, uint64_t len)
{
	return -ENOSYS;
}
int blk_write_zeroes(struct blk *b, uint64_t offset, uint64_t len, unsigned flags)
{
	return -ENOSYS;
}
int blk_write_compressed(struct blk *b, const void *buf, uint64_t len, uint64_t offset)
{
	return -ENOSYS;
}
int blk_block_status(struct blk *b, uint64_t offset, uint64_t len, struct blk_status *st)
{
	return -ENOSYS;
}
int blk_create(const char *path, const struct blk_create_opts *opts, bool overwrite,
	       struct cove_err *err)
{
	return cove_err_set(err, -ENOSYS, "the block layer is not built yet");
}
int blk_get_info(struct blk *b, struct blk_info *info)
{
	return -ENOSYS;
}
int blk_check(struct blk *b, unsigned fix, struct blk_check_result *res, struct cove_err *err)
{
	return -ENOSYS;
}
int blk_resize(struct blk *b, uint64_t new_size, bool shrink, enum blk_prealloc prealloc,
	       struct cove_err *err)
{
	return -ENOSYS;
}
int blk_set_backing(struct blk *b, const char *backing_file, const char *backing_fmt,
		    struct cove_err *err)
{
	return -ENOSYS;
}
int blk_snapshot_list(struct blk *b, struct blk_snapshot_info **out, unsigned *count)
{
	return -ENOSYS;
}
int blk_snapshot_create(struct blk *b, const char *name, struct cove_err *err)
{
	return -ENOSYS;
}
int blk_snapshot_apply(struct blk *b, const char *name_or_id, struct cove_err *err)
{
	return -ENOSYS;
}
int blk_snapshot_delete(struct blk *b, const char *name_or_id, struct cove_err *err)
{
	return -ENOSYS;
}
int blk_amend(struct blk *b, const struct blk_create_opts *opts, struct cove_err *err)
{
	return -ENOSYS;
}
int blk_measure(const struct blk_create_opts *opts, struct blk *src, struct blk_measure *out,
		struct cove_err *err)
{
	return -ENOSYS;
}
int blk_preadv(struct blk *b, const struct iovec *iov, int iovcnt, uint64_t offset)
{
	return -ENOSYS;
}
int blk_pwritev(struct blk *b, const struct iovec *iov, int iovcnt, uint64_t offset)
{
	return -ENOSYS;
}
int blk_aio_setup(struct blk *b, unsigned max_in_flight)
{
	return -ENOSYS;
}
int blk_aio_submit(struct blk *b, struct blk_aio_req *req)
{
	return -ENOSYS;
}
int blk_aio_flush_submissions(struct blk *b)
{
	return -ENOSYS;
}
int blk_aio_event_fd(struct blk *b)
{
	return -1;
}
int blk_aio_complete(struct blk *b)
{
	return -ENOSYS;
}
