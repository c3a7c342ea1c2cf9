/* Asynchronous block I/O: stub until the io_uring engine lands. */
#include "block/blk_int.h"

#include <errno.h>

void blk_aio_free(struct blk *b)
{
}
int blk_aio_setup(struct blk *b, unsigned max_in_flight)
{
	return -ENOTSUP;
}
int blk_aio_submit(struct blk *b, struct blk_aio_req *req)
{
	return -ENOTSUP;
}
int blk_aio_flush_submissions(struct blk *b)
{
	return 0;
}
int blk_aio_event_fd(struct blk *b)
{
	return -ENOTSUP;
}
int blk_aio_complete(struct blk *b)
{
	return 0;
}
