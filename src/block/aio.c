/* Asynchronous block I/O: io_uring for raw images; qcow2 runs each request at submission and
 * completes it through an eventfd (the metadata paths are synchronous). */
#include "block/blk_int.h"
#include "block/qcow2.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* qcow2: metadata that requests made dirty reaches the file (without fdatasync) once no
 * request has come for WB_IDLE_NS, and at the latest WB_MAX_NS after the first of them, so
 * that a kill of the process loses no completed write. */
#define WB_IDLE_NS (100 * 1000000ull)
#define WB_MAX_NS  (1000 * 1000000ull)

struct blk_aio {
	unsigned max, inflight;
	int efd;
	bool uring;
	struct io_uring ring;
	unsigned queued; /* SQEs prepared but not submitted */
	/* completed synchronously, waiting for blk_aio_complete */
	struct blk_aio_req **done, **batch;
	unsigned ndone;
	bool signalled;		    /* efd written for the done list and not read since */
	uint64_t wb_first, wb_last; /* CLOCK_MONOTONIC ns: the first and the last request
				     * since the last write-back (first 0: none) */
	bool wb_armed; /* an io_uring timeout (user data &wb_ts) wakes the caller for it */
	struct __kernel_timespec wb_ts;
	bool wb_syncing; /* its pre-flush (an io_uring fdatasync, user data &wb_syncing) runs */
	bool wb_ready;	 /* the pre-flush is done: write back at the next wb_check */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A completion of the write-back's timer or pre-flush (not a request): true when cqe data
 * is one of them. */
static bool wb_cqe(struct blk_aio *a, const void *data)
{
	if (data == &a->wb_ts) {
		a->wb_armed = false;
		return true;
	}
	if (data == &a->wb_syncing) {
		a->wb_syncing = false;
		a->wb_ready = true;
		return true;
	}
	return false;
}

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
			bool wb = wb_cqe(a, io_uring_cqe_get_data(cqe));
			io_uring_cqe_seen(&a->ring, cqe);
			if (!wb)
				a->inflight--;
		}
		/* A write-back timer still pending is cancelled; a pre-flush ends on its own. */
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
		if (wb_cqe(a, r))
			continue;
		int ret = res < 0 ? res : 0;
		if (res >= 0 && (r->op == BLK_AIO_READ || r->op == BLK_AIO_WRITE) &&
		    (uint64_t)res < r->priv[1])
			ret = finish_short(b, r, (uint64_t)res);
		r->priv[2] = (uint64_t)(int64_t)ret;
		a->done[a->ndone++] = r;
	}
}

/* With O_DIRECT and clusters smaller than the alignment, a synchronous write may
 * read-modify-write a block that holds another cluster the ring is writing. */
static bool rmw(const struct blk *b)
{
	return b->q && b->file.direct && b->q->cluster_size < BLK_DIRECT_ALIGN;
}

/* An SQE for the write-back (NULL without a ring or when it is full). */
static struct io_uring_sqe *wb_sqe(struct blk_aio *a)
{
	if (!a->uring)
		return NULL;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&a->ring);
	if (!sqe) {
		io_uring_submit(&a->ring);
		a->queued = 0;
		sqe = io_uring_get_sqe(&a->ring);
	}
	return sqe;
}

/* Submitted at once: the caller may go to sleep without submitting again. */
static void wb_submit(struct blk_aio *a)
{
	a->queued++;
	if (io_uring_submit(&a->ring) >= 0)
		a->queued = 0;
}

/* Wakes the caller (a CQE on the ring's eventfd) ns from now, for the write-back. Without a
 * ring, the write-back waits for the next blk_aio_complete after its time. */
static void wb_arm(struct blk_aio *a, uint64_t ns)
{
	if (a->wb_armed)
		return;
	struct io_uring_sqe *sqe = wb_sqe(a);
	if (!sqe)
		return;
	a->wb_ts = (struct __kernel_timespec){.tv_sec = (long long)(ns / 1000000000ull),
					      .tv_nsec = (long long)(ns % 1000000000ull)};
	io_uring_prep_timeout(sqe, &a->wb_ts, 0, 0);
	io_uring_sqe_set_data(sqe, &a->wb_ts);
	a->wb_armed = true;
	wb_submit(a);
}

static void write_back(struct blk *b)
{
	if (rmw(b))
		drain(b);
	/* A failure leaves the metadata dirty: the next flush writes it, or reports the error. */
	(void)qcow2_write_back(b);
}

/* Writes dirty qcow2 metadata back once its time has come (else makes sure a wakeup is due).
 * Most of the write-back's first fdatasync would go to the data written since the last one,
 * with requests waiting: a pre-flush does that in the kernel first (an fdatasync on the
 * ring), requests go on, and the write-back follows its completion with less to sync. */
static void wb_check(struct blk *b)
{
	struct blk_aio *a = b->aio;
	if (a->wb_ready) {
		a->wb_ready = false;
		write_back(b);
	}
	if (!a->wb_first || a->wb_syncing)
		return;
	uint64_t now = now_ns(), due = min_u64(a->wb_last + WB_IDLE_NS, a->wb_first + WB_MAX_NS);
	if (now < due) {
		wb_arm(a, due - now);
		return;
	}
	a->wb_first = 0;
	if (!qcow2_needs_write_back(b))
		return;
	struct io_uring_sqe *sqe = b->q->file->nosync ? NULL : wb_sqe(a);
	if (!sqe) {
		write_back(b);
		return;
	}
	io_uring_prep_fsync(sqe, b->q->file->fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data(sqe, &a->wb_syncing);
	a->wb_syncing = true;
	wb_submit(a);
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
	 * synchronous writes. A read-modify-write (rmw()) waits.
	 * What requests leave dirty in the metadata cache is written back when they pause
	 * (wb_check, from blk_aio_complete), woken by a timeout on the ring. */
	if (b->q && req->op != BLK_AIO_READ && (req->op != BLK_AIO_WRITE || rmw(b)))
		drain(b);
	req->priv[2] = (uint64_t)(int64_t)run_sync(b, req);
	if (b->q && req->op == BLK_AIO_FLUSH && !req->priv[2]) {
		a->wb_first = 0; /* nothing left to write back */
	} else if (b->q && req->op != BLK_AIO_READ) {
		a->wb_last = now_ns();
		if (!a->wb_first) {
			a->wb_first = a->wb_last;
			wb_arm(a, WB_IDLE_NS);
		}
	}
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
		wb_check(b); /* no timer: only when called after its time */
		a->signalled = false;
		return completed;
	}
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&a->ring, &cqe) == 0) {
		struct blk_aio_req *r = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&a->ring, cqe);
		if (wb_cqe(a, r))
			continue;
		a->inflight--;
		int ret = res < 0 ? res : 0;
		if (res >= 0 && (r->op == BLK_AIO_READ || r->op == BLK_AIO_WRITE) &&
		    (uint64_t)res < r->priv[1])
			ret = finish_short(b, r, (uint64_t)res);
		r->done(r, ret);
		completed++;
	}
	wb_check(b);
	/* Ring callbacks (and the write-back's drain) may have completed more requests. */
	a->signalled = false;
	if (a->ndone)
		signal_done(a);
	return completed;
}
