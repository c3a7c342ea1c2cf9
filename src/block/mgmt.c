/* Image management: create, resize, backing, amend, measure. */
#include "block/qcow2.h"

#include <errno.h>

int blk_create(const char *path, const struct blk_create_opts *opts, bool overwrite,
	       struct cove_err *err)
{
	return cove_err_set(err, -ENOTSUP, "create is not implemented yet");
}

int blk_resize(struct blk *b, uint64_t new_size, bool shrink, enum blk_prealloc prealloc,
	       struct cove_err *err)
{
	return cove_err_set(err, -ENOTSUP, "resize is not implemented yet");
}

int blk_set_backing(struct blk *b, const char *backing_file, const char *backing_fmt,
		    struct cove_err *err)
{
	return cove_err_set(err, -ENOTSUP, "not implemented yet");
}

int blk_amend(struct blk *b, const struct blk_create_opts *opts, struct cove_err *err)
{
	return cove_err_set(err, -ENOTSUP, "amend is not implemented yet");
}

int blk_measure(const struct blk_create_opts *opts, struct blk *src, struct blk_measure *out,
		struct cove_err *err)
{
	return cove_err_set(err, -ENOTSUP, "measure is not implemented yet");
}
