/* Asynchronous block I/O: io_uring for raw images; qcow2 runs each request at submission and
 * completes it through an eventfd (the metadata paths are synchronous). */
#include "block/blk_int.h"
#include "block/qcow2.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct blk_aio {
	unsigned max, inflight;
	int efd;
	bool uring;
	struct io_uring ring;
	unsigned queued; /* SQEs prepared but not submitted */
	/* completed synchronously, waiting for blk_aio_complete */
	struct blk_aio_req **done, **batch;
	unsigned ndone;
	bool signalled; /* efd written for the done list and not read since */
};

void blk_aio_free(struct blk *b)
{
	struct blk_aio *a = b->aio;
	if (!a)
		return;
	if (a->uring) {
		/* Drain what is in flight: the buffers belong to the caller. */
		if (a->queued)
			io_uring_submit(&a->ring);
		while (a->inflight > a->ndone) {
			struct io_uring_cqe *cqe;
			if (io_uring_wait_cqe(&a->ring, &cqe))
				break;
			io_uring_cqe_seen(&a->ring, cqe);
			a->inflight--;
		}
		io_uring_queue_exit(&a->ring);
	}
	if (a->efd >= 0)
		close(a->efd);
	free(a->done);
	free(a->batch);
	free(a);
	b->aio = NULL;
}

int blk_aio_setup(struct blk *b, unsigned max_in_flight)
{
	if (b->aio)
		return -EBUSY;
	if (max_in_flight == 0 || max_in_flight > 4096)
		return -EINVAL;
	struct blk_aio *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->max = max_in_flight;
	a->done = calloc(max_in_flight, sizeof(*a->done));
	a->batch = calloc(max_in_flight, sizeof(*a->batch));
	a->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!a->done || !a->batch || a->efd < 0) {
		int ret = a->efd < 0 ? -errno : -ENOMEM;
		if (a->efd >= 0)
			close(a->efd);
		free(a->done);
		free(a->batch);
		free(a);
		return ret;
	}
	if (io_uring_queue_init(max_in_flight, &a->ring, 0) == 0) {
		if (io_uring_register_eventfd(&a->ring, a->efd) == 0)
			a->uring = true;
		else
			io_uring_queue_exit(&a->ring);
	}
	b->aio = a;
	return 0;
}

static int run_sync(struct blk *b, struct blk_aio_req *r)
{
	switch (r->op) {
	case BLK_AIO_READ:
		return blk_preadv(b, r->iov, r->iovcnt, r->offset);
	case BLK_AIO_WRITE:
		return blk_pwritev(b, r->iov, r->iovcnt, r->offset);
	case BLK_AIO_FLUSH:
		return blk_flush(b);
	case BLK_AIO_DISCARD:
		return blk_discard(b, r->offset, r->len);
	case BLK_AIO_WRITE_ZEROES:
		return blk_write_zeroes(b, r->offset, r->len, r->flags);
	}
	return -EINVAL;
}

static int finish_short(struct blk *b, struct blk_aio_req *r, uint64_t done);

/* Wakes the caller's event loop for the done list: one eventfd write until it is read,
 * not one per request. */
static void signal_done(struct blk_aio *a)
{
	if (a->signalled)
		return;
	uint64_t one = 1;
	if (write(a->efd, &one, sizeof(one)) == sizeof(one) || errno == EAGAIN)
		a->signalled = true;
}

/* Waits for every request in the ring; their results wait in the done list. Zeroes,
 * discards and flushes run only with nothing of the image's data in flight: they free
 * clusters, punch the file, or promise that earlier writes are on disk. */
static void drain(struct blk *b)
{
	struct blk_aio *a = b->aio;
	if (!a->uring)
		return;
	if (a->queued) {
		io_uring_submit(&a->ring);
		a->queued = 0;
	}
	while (a->inflight > a->ndone) {
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&a->ring, &cqe))
			break;
		struct blk_aio_req *r = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&a->ring, cqe);
		int ret = res < 0 ? res : 0;
		if (res >= 0 && (r->op == BLK_AIO_READ || r->op == BLK_AIO_WRITE) &&
		    (uint64_t)res < r->priv[1])
			ret = finish_short(b, r, (uint64_t)res);
		r->priv[2] = (uint64_t)(int64_t)ret;
		a->done[a->ndone++] = r;
	}
}

/* O_DIRECT through the ring needs aligned buffers, lengths and offsets (else: bounce, sync). */
static bool dio_ok(const struct blk_aio_req *r, uint64_t len)
{
	if (r->offset % BLK_DIRECT_ALIGN || len % BLK_DIRECT_ALIGN)
		return false;
	for (int i = 0; i < r->iovcnt; i++)
		if ((uintptr_t)r->iov[i].iov_base % BLK_DIRECT_ALIGN ||
		    r->iov[i].iov_len % BLK_DIRECT_ALIGN)
			return false;
	return true;
}

int blk_aio_submit(struct blk *b, struct blk_aio_req *req)
{
	struct blk_aio *a = b->aio;
	if (!a)
		return -EINVAL;
	if (a->inflight >= a->max)
		return -EAGAIN;
	bool rw = req->op == BLK_AIO_READ || req->op == BLK_AIO_WRITE;
	/* Which requests go through the ring: raw reads, raw O_DIRECT writes, flushes; for
	 * qcow2, reads and O_DIRECT writes of data already in place (one contiguous extent). */
	bool ring = false;
	int fd = b->file.fd;
	uint64_t host = req->offset, len = 0;
	if (rw) {
		len = iov_total(req->iov, req->iovcnt);
		if (req->iovcnt <= 0 || req->offset > b->size || len > b->size - req->offset)
			return -EINVAL;
		if (req->op == BLK_AIO_WRITE && b->readonly)
			return -EROFS;
	}
	if (a->uring && rw && req->iovcnt <= 1024 && len && (!b->file.direct || dio_ok(req, len))) {
		bool wr = req->op == BLK_AIO_WRITE;
		if (!b->q) {
			ring = !wr || b->file.direct;
		} else if (!wr || b->file.direct) {
			ring = qcow2_fast_extent(b, req->offset, len, wr, &host) == 1;
			fd = b->q->data.fd;
			/* Clusters smaller than the alignment may sit anywhere in the file. */
			if (b->file.direct && host % BLK_DIRECT_ALIGN)
				ring = false;
		}
	} else if (a->uring && req->op == BLK_AIO_FLUSH && !b->q && !b->file.nosync) {
		ring = true;
	}
	if (ring) {
		req->priv[0] = host;
		req->priv[1] = len;
		struct io_uring_sqe *sqe = io_uring_get_sqe(&a->ring);
		if (!sqe) {
			io_uring_submit(&a->ring);
			a->queued = 0;
			sqe = io_uring_get_sqe(&a->ring);
			if (!sqe)
				return -EAGAIN;
		}
		if (req->op == BLK_AIO_READ)
			io_uring_prep_readv(sqe, fd, req->iov, (unsigned)req->iovcnt, host);
		else if (req->op == BLK_AIO_WRITE)
			io_uring_prep_writev(sqe, fd, req->iov, (unsigned)req->iovcnt, host);
		else
			io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data(sqe, req);
		a->queued++;
		a->inflight++;
		return 0;
	}
	/* Reads and writes run beside what is in flight (as any two requests in flight may
	 * overlap). They free no cluster that the ring could be using: the ring only touches
	 * allocated clusters, and a write frees the clusters it replaces only at the next
	 * flush (q2_free_later), which drains. Allocation takes free clusters, and its
	 * ordering (data synced before the L2 entries that point to it) concerns only the
	 * synchronous writes.
	 * With O_DIRECT and clusters smaller than the alignment, a synchronous write may
	 * read-modify-write a block that holds another cluster the ring is writing: it waits. */
	bool rmw = b->q && b->file.direct && b->q->cluster_size < BLK_DIRECT_ALIGN;
	if (b->q && req->op != BLK_AIO_READ && (req->op != BLK_AIO_WRITE || rmw))
		drain(b);
	req->priv[2] = (uint64_t)(int64_t)run_sync(b, req);
	a->done[a->ndone++] = req;
	a->inflight++;
	signal_done(a);
	return 0;
}

int blk_aio_flush_submissions(struct blk *b)
{
	struct blk_aio *a = b->aio;
	if (!a || !a->uring || !a->queued)
		return 0;
	int ret = io_uring_submit(&a->ring);
	if (ret < 0)
		return ret;
	a->queued = 0;
	return 0;
}

int blk_aio_event_fd(struct blk *b)
{
	return b->aio ? b->aio->efd : -EINVAL;
}

/* A short read or write: finish the rest synchronously (rare: EOF, signals). */
static int finish_short(struct blk *b, struct blk_aio_req *r, uint64_t done)
{
	uint64_t total = r->priv[1];
	struct iovec v[1024];
	uint64_t got;
	const struct blk_file *f = b->q ? &b->q->data : &b->file;
	int n = iov_slice(r->iov, r->iovcnt, done, total - done, v, 1024, &got);
	return r->op == BLK_AIO_READ ? file_preadv(f, v, n, r->priv[0] + done)
				     : file_pwritev(f, v, n, r->priv[0] + done);
}

int blk_aio_complete(struct blk *b)
{
	struct blk_aio *a = b->aio;
	if (!a)
		return 0;
	uint64_t cnt;
	if (read(a->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		return -errno;
	/* The done list is emptied below; what callbacks add meanwhile is emptied too. */
	a->signalled = true;
	int completed = 0;
	/* Synchronously completed requests first; done() may submit more. */
	while (a->ndone) {
		unsigned n = a->ndone;
		struct blk_aio_req **batch = a->batch;
		memcpy(batch, a->done, n * sizeof(*batch));
		a->ndone = 0;
		a->inflight -= n;
		for (unsigned i = 0; i < n; i++) {
			batch[i]->done(batch[i], (int)(int64_t)batch[i]->priv[2]);
			completed++;
		}
	}
	if (!a->uring) {
		a->signalled = false;
		return completed;
	}
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&a->ring, &cqe) == 0) {
		struct blk_aio_req *r = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&a->ring, cqe);
		a->inflight--;
		int ret = res < 0 ? res : 0;
		if (res >= 0 && (r->op == BLK_AIO_READ || r->op == BLK_AIO_WRITE) &&
		    (uint64_t)res < r->priv[1])
			ret = finish_short(b, r, (uint64_t)res);
		r->done(r, ret);
		completed++;
	}
	/* Ring callbacks may have completed more requests synchronously. */
	a->signalled = false;
	if (a->ndone)
		signal_done(a);
	return completed;
}
