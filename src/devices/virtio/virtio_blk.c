/* virtio-blk (virtio 1.2 §5.2) over the block layer: read, write, flush, discard, write-zeroes,
 * get-id on raw and qcow2 images, through blk_aio_* (or the synchronous calls with aio=sync). */
#include "devices/devutil.h"
#include "devices/virtio/ratelimit.h"
#include "devices/virtio/virtio_devices.h"
#include "util/log.h"

#include <cove/block.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define BLK_F_SIZE_MAX	   (1ULL << 1)
#define BLK_F_SEG_MAX	   (1ULL << 2)
#define BLK_F_RO	   (1ULL << 5)
#define BLK_F_BLK_SIZE	   (1ULL << 6)
#define BLK_F_FLUSH	   (1ULL << 9)
#define BLK_F_MQ	   (1ULL << 12)
#define BLK_F_DISCARD	   (1ULL << 13)
#define BLK_F_WRITE_ZEROES (1ULL << 14)

#define BLK_T_IN	   0
#define BLK_T_OUT	   1
#define BLK_T_FLUSH	   4
#define BLK_T_GET_ID	   8
#define BLK_T_DISCARD	   11
#define BLK_T_WRITE_ZEROES 13

#define BLK_S_OK     0
#define BLK_S_IOERR  1
#define BLK_S_UNSUPP 2

#define SECTOR	       512ULL
#define AIO_SLOTS      32	  /* requests in flight per disk */
#define AIO_SEGS       256	  /* data segments per request (seg_max says so) */
#define MAX_DZ_SECTORS (1u << 22) /* 2 GiB per discard / write-zeroes */
#define STATE_VERSION  2

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

/* One request: in flight through blk_aio_*, or run at once with aio=sync. */
struct vblk_req {
	struct blk_aio_req aio; /* first: done() gets the request back from it */
	struct vblk *b;
	bool busy;
	uint8_t type; /* BLK_T_* */
	uint16_t head, q;
	uint32_t gen;	 /* the device's reset generation when started */
	uint32_t used;	 /* bytes written into the chain on success (status excluded) */
	uint64_t bytes;	 /* data bytes, for the counters */
	uint8_t *status; /* the status byte in guest RAM */
	uint8_t *bounce; /* sector 0 of a guarded write (allocated on first use) */
	struct iovec iov[AIO_SEGS + 1];
};

struct vblk {
	struct virtio_pci *vp;
	struct blk *blk;
	uint64_t size; /* bytes */
	bool readonly;
	bool aio;    /* blk_aio_* (else aio=sync) */
	bool guard0; /* probed as raw and writable: sector 0 must stay raw */
	bool guard_logged;
	enum blk_format fmt;
	char id[21];
	struct virtq_chain chain;
	struct vblk_req *req; /* AIO_SLOTS of them (one with aio=sync) */
	unsigned nreq, inflight;
	uint32_t gen;
	bool stalled;		/* a request waits for a free slot */
	unsigned cur_q;		/* the queue being served */
	uint32_t done_queues;	/* queues with used entries not yet signalled */
	struct rate_limiter rl; /* unlimited unless bps/iops; its rates are what stats show */
	int timer_fd;		/* wakes the device when its rate limit allows more */
	bool timer_armed;	/* set until the timer's expiry is read: no read on other wakeups */
	bool timer_watched;
	struct virtio_blk_stats st;
};

static bool range_ok(const struct vblk *b, uint64_t sector, uint64_t len)
{
	if (sector > UINT64_MAX / SECTOR)
		return false;
	uint64_t off = sector * SECTOR;
	return off <= b->size && len <= b->size - off;
}

static void account(struct vblk *b, const struct vblk_req *r, bool ok)
{
	struct virtio_blk_stats *s = &b->st;
	if (!ok) {
		s->errors++;
		return;
	}
	switch (r->type) {
	case BLK_T_IN:
		s->rd_reqs++;
		s->rd_bytes += r->bytes;
		break;
	case BLK_T_OUT:
		s->wr_reqs++;
		s->wr_bytes += r->bytes;
		break;
	case BLK_T_FLUSH:
		s->fl_reqs++;
		break;
	case BLK_T_DISCARD:
		s->discard_reqs++;
		break;
	case BLK_T_WRITE_ZEROES:
		s->wz_reqs++;
		break;
	}
}

/* A request's result: counters and status byte; returns the used length. */
static uint32_t finish(struct vblk *b, struct vblk_req *r, int ret)
{
	/* Discard is a hint: a file system that cannot punch holes still answers OK. */
	if (r->type == BLK_T_DISCARD && (ret == -ENOTSUP || ret == -EOPNOTSUPP))
		ret = 0;
	account(b, r, ret == 0);
	*r->status = ret == 0 ? BLK_S_OK : BLK_S_IOERR;
	return (ret == 0 ? r->used : 0) + 1;
}

/* blk_aio_complete's callback (I/O thread, vp->lock held). */
static void req_done(struct blk_aio_req *a, int ret)
{
	struct vblk_req *r = (struct vblk_req *)a;
	struct vblk *b = r->b;
	struct virtio_pci *vp = b->vp;
	r->busy = false;
	b->inflight--;
	if (r->gen != b->gen || r->q >= vp->nqueues) {
		account(b, r, ret == 0); /* the driver reset the device meanwhile */
		return;
	}
	uint32_t len = finish(b, r, ret);
	virtq_push(&vp->vq[r->q], r->head, len);
	b->done_queues |= 1u << r->q;
}

/* One interrupt per queue for everything completed since the last call. */
static void signal_done(struct virtio_pci *vp, struct vblk *b)
{
	for (unsigned q = 0; q < vp->nqueues; q++)
		if ((b->done_queues & (1u << q)) && virtq_should_notify(&vp->vq[q]))
			virtio_pci_notify_queue(vp, q);
	b->done_queues = 0;
}

static struct vblk_req *free_slot(struct vblk *b)
{
	for (unsigned i = 0; i < b->nreq; i++)
		if (!b->req[i].busy)
			return &b->req[i];
	return NULL;
}

/* Starts r (its aio fields filled): returns ASYNC, RETRY (no room: later) or a used length. */
static uint32_t start(struct vblk *b, struct vblk_req *r, const struct virtq_chain *c)
{
	r->head = c->head;
	r->q = (uint16_t)b->cur_q;
	r->gen = b->gen;
	if (!b->aio) {
		struct blk_aio_req *a = &r->aio;
		int ret;
		switch (a->op) {
		case BLK_AIO_READ:
			ret = blk_preadv(b->blk, a->iov, a->iovcnt, a->offset);
			break;
		case BLK_AIO_WRITE:
			ret = blk_pwritev(b->blk, a->iov, a->iovcnt, a->offset);
			break;
		case BLK_AIO_FLUSH:
			ret = blk_flush(b->blk);
			break;
		case BLK_AIO_DISCARD:
			ret = blk_discard(b->blk, a->offset, a->len);
			break;
		default:
			ret = blk_write_zeroes(b->blk, a->offset, a->len, a->flags);
			break;
		}
		return finish(b, r, ret);
	}
	r->aio.done = req_done;
	int ret = blk_aio_submit(b->blk, &r->aio);
	if (ret == -EAGAIN) {
		b->stalled = true; /* a completion serves the queues again */
		return VIRTIO_SERVE_RETRY;
	}
	if (ret)
		return finish(b, r, ret);
	r->busy = true;
	b->inflight++;
	return VIRTIO_SERVE_ASYNC;
}

/* A write of sector 0 to a probed raw image: the sector goes through a copy the guest cannot
 * change after the check, and is refused if it would make the image probe as another format
 * (QEMU restricts the same writes). Returns the iov count, 0 when refused, -1 on failure. */
static int guard_sector0(struct vblk *b, struct vblk_req *r, const struct virtq_chain *c,
			 uint64_t len)
{
	if (!r->bounce && posix_memalign((void **)&r->bounce, 4096, SECTOR))
		return -1;
	if (virtq_chain_read(c, sizeof(struct blk_hdr), r->bounce, SECTOR) != SECTOR)
		return -1;
	if (!blk_probe_is_raw(r->bounce, SECTOR)) {
		if (!b->guard_logged)
			log_warn("virtio-blk %s: the guest wrote an image header to sector 0 of a "
				 "disk probed as raw; refused (give format=raw to allow it)",
				 b->id);
		b->guard_logged = true;
		return 0;
	}
	r->iov[0] = (struct iovec){r->bounce, SECTOR};
	if (len == SECTOR)
		return 1;
	int n = virtq_chain_slice(c, false, sizeof(struct blk_hdr) + SECTOR, len - SECTOR,
				  r->iov + 1, AIO_SEGS);
	return n > 0 ? n + 1 : -1;
}

/* Read or write: the data segments of the chain at sector. */
static uint32_t serve_rw(struct vblk *b, struct vblk_req *r, const struct virtq_chain *c,
			 const struct blk_hdr *h, uint64_t data_in)
{
	bool wr = h->type == BLK_T_OUT;
	uint64_t len = wr ? c->out_len - sizeof(*h) : data_in;
	/* A used length is 32 bits: chains that reuse guest RAM cannot add up to more. */
	if ((wr && b->readonly) || len % SECTOR || len >= UINT32_MAX ||
	    !range_ok(b, h->sector, len))
		return finish(b, r, -EIO);
	r->bytes = len;
	r->used = wr ? 0 : (uint32_t)len;
	if (!len)
		return finish(b, r, 0);
	int n;
	if (wr && b->guard0 && h->sector == 0) {
		n = guard_sector0(b, r, c, len);
		if (n == 0)
			return finish(b, r, -EPERM);
	} else {
		n = virtq_chain_slice(c, !wr, wr ? sizeof(*h) : 0, len, r->iov, AIO_SEGS);
	}
	if (n <= 0)
		return finish(b, r, -EIO);
	r->aio = (struct blk_aio_req){
	    .op = wr ? BLK_AIO_WRITE : BLK_AIO_READ,
	    .iov = r->iov,
	    .iovcnt = n,
	    .offset = h->sector * SECTOR,
	};
	return start(b, r, c);
}

/* Discard / write-zeroes: one segment (max_discard_seg and max_write_zeroes_seg are 1). */
static uint32_t serve_dz(struct vblk *b, struct vblk_req *r, const struct virtq_chain *c,
			 bool zeroes)
{
	if (b->readonly)
		return finish(b, r, -EROFS);
	uint8_t seg[16];
	if (c->out_len - sizeof(struct blk_hdr) != sizeof(seg) ||
	    virtq_chain_read(c, sizeof(struct blk_hdr), seg, sizeof(seg)) != sizeof(seg)) {
		account(b, r, false);
		*r->status = BLK_S_UNSUPP;
		return 1;
	}
	uint64_t sector;
	uint32_t num, flags;
	memcpy(&sector, seg, 8);
	memcpy(&num, seg + 8, 4);
	memcpy(&flags, seg + 12, 4);
	if ((flags & ~1u) || (!zeroes && flags)) {
		account(b, r, false);
		*r->status = BLK_S_UNSUPP;
		return 1;
	}
	if (num > MAX_DZ_SECTORS || !range_ok(b, sector, num * SECTOR))
		return finish(b, r, -EIO);
	if (!num)
		return finish(b, r, 0);
	r->aio = (struct blk_aio_req){
	    .op = zeroes ? BLK_AIO_WRITE_ZEROES : BLK_AIO_DISCARD,
	    .offset = sector * SECTOR,
	    .len = num * SECTOR,
	    .flags = (flags & 1) ? BLK_ZERO_MAY_UNMAP : 0,
	};
	return start(b, r, c);
}

/* Whether the rate limit lets the request through now; else arms the timer. */
static bool admit(struct vblk *b, uint64_t bytes)
{
	if (!ratelimit_active(&b->rl))
		return true;
	uint64_t wait;
	if (ratelimit_take(&b->rl, bytes, devclock_mono_ns(), &wait))
		return true;
	struct itimerspec its = {
	    .it_value = {(time_t)(wait / 1000000000ULL), (long)(wait % 1000000000ULL)}};
	timerfd_settime(b->timer_fd, 0, &its, NULL);
	b->timer_armed = true;
	b->st.throttled++;
	return false;
}

/* Serves one request; returns the bytes written into the chain (status included), or
 * VIRTIO_SERVE_ASYNC / VIRTIO_SERVE_RETRY. */
static uint32_t serve(struct vblk *b, struct virtio_pci *vp, const struct virtq_chain *c)
{
	if (c->in_len < 1)
		return 0; /* nowhere to put a status: drop it (the driver broke the rules) */
	uint64_t data_in = c->in_len - 1; /* the status byte is the last writable byte */
	struct vblk_req *r = free_slot(b);
	if (!r) {
		b->stalled = true; /* a completion serves the queues again */
		return VIRTIO_SERVE_RETRY;
	}
	struct iovec st;
	if (virtq_chain_slice(c, true, data_in, 1, &st, 1) != 1)
		return 0;
	struct blk_hdr h;
	r->b = b;
	r->status = st.iov_base;
	r->bytes = r->used = 0;
	r->type = 0xFF; /* not counted as a read if the header is short */
	if (virtq_chain_read(c, 0, &h, sizeof(h)) != sizeof(h))
		return finish(b, r, -EIO);
	r->type = (uint8_t)(h.type < 0xFF ? h.type : 0xFF);
	uint64_t bytes = h.type == BLK_T_OUT  ? c->out_len - sizeof(h)
			 : h.type == BLK_T_IN ? data_in
					      : 0;
	if (!admit(b, bytes))
		return VIRTIO_SERVE_RETRY;
	switch (h.type) {
	case BLK_T_IN:
	case BLK_T_OUT:
		return serve_rw(b, r, c, &h, data_in);
	case BLK_T_FLUSH:
		r->aio = (struct blk_aio_req){.op = BLK_AIO_FLUSH};
		return start(b, r, c);
	case BLK_T_GET_ID: {
		char id[20] = {0};
		memcpy(id, b->id, strnlen(b->id, sizeof(id)));
		*r->status = BLK_S_OK;
		return (uint32_t)virtq_chain_write(c, 0, id, data_in < 20 ? data_in : 20) + 1;
	}
	case BLK_T_DISCARD:
	case BLK_T_WRITE_ZEROES:
		if (virtio_has(vp, h.type == BLK_T_DISCARD ? BLK_F_DISCARD : BLK_F_WRITE_ZEROES))
			return serve_dz(b, r, c, h.type == BLK_T_WRITE_ZEROES);
		break;
	}
	account(b, r, false);
	*r->status = BLK_S_UNSUPP;
	return 1;
}

static uint32_t blk_serve(struct virtio_pci *vp, const struct virtq_chain *c)
{
	return serve(vp->dev, vp, c);
}

static void serve_queue(struct virtio_pci *vp, struct vblk *b, unsigned q)
{
	b->cur_q = q;
	virtio_pci_serve(vp, q, &b->chain, blk_serve);
}

static void blk_notify(struct virtio_pci *vp, unsigned q)
{
	struct vblk *b = vp->dev;
	serve_queue(vp, b, q);
	if (b->aio)
		blk_aio_flush_submissions(b->blk); /* one io_uring_enter for the batch */
}

/* Completions or the rate limit's timer: finish what is done, serve again. */
static void blk_backend_ready(struct virtio_pci *vp)
{
	struct vblk *b = vp->dev;
	uint64_t n;
	bool again = false;
	if (b->timer_armed && read(b->timer_fd, &n, sizeof(n)) == sizeof(n)) {
		again = true;
		b->timer_armed = false;
	}
	if (b->aio) {
		blk_aio_complete(b->blk);
		signal_done(vp, b);
		again |= b->stalled;
		b->stalled = false;
	}
	virtio_pci_watch_backend(vp);
	if (!again || !(vp->status & VIRTIO_STATUS_DRIVER_OK) ||
	    (vp->status & VIRTIO_STATUS_NEEDS_RESET))
		return;
	for (unsigned q = 0; q < vp->nqueues; q++)
		if (vp->vq[q].enabled)
			serve_queue(vp, b, q);
	if (b->aio)
		blk_aio_flush_submissions(b->blk);
}

static int blk_backend_fd(struct virtio_pci *vp)
{
	struct vblk *b = vp->dev;
	return b->aio ? blk_aio_event_fd(b->blk) : b->timer_fd;
}

static void blk_activate(struct virtio_pci *vp)
{
	struct vblk *b = vp->dev;
	/* With blk_aio the event fd is the backend fd: the timer joins the epoll here. */
	if (b->aio && !b->timer_watched && vp->io_epfd >= 0) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = vp->io_tag};
		b->timer_watched = epoll_ctl(vp->io_epfd, EPOLL_CTL_ADD, b->timer_fd, &ev) == 0;
	}
}

static void blk_reset(struct virtio_pci *vp)
{
	struct vblk *b = vp->dev;
	if (!b)
		return;
	b->gen++; /* requests still in flight complete into nothing (the transport waits) */
	b->stalled = false;
	b->done_queues = 0;
}

/* Takes completions until nothing is in flight, waiting up to ms for them: only then has the
 * kernel stopped writing the requests' buffers. Those of the current generation land in
 * their rings, with one interrupt per queue. */
static int blk_drain(struct virtio_pci *vp, unsigned ms)
{
	struct vblk *b = vp->dev;
	if (!b->aio)
		return 0; /* aio=sync: every request ends before the lock is released */
	blk_aio_flush_submissions(b->blk);
	blk_aio_complete(b->blk);
	uint64_t end = devclock_mono_ns() + ms * 1000000ULL;
	while (b->inflight) {
		uint64_t now = devclock_mono_ns();
		if (now >= end)
			break;
		struct pollfd p = {.fd = blk_aio_event_fd(b->blk), .events = POLLIN};
		if (poll(&p, 1, (int)((end - now + 999999) / 1000000)) < 0 && errno != EINTR)
			break;
		blk_aio_complete(b->blk);
	}
	signal_done(vp, b);
	if (b->inflight && ms)
		log_debug("virtio-blk %s: %u requests still in flight after %u ms", b->id,
			  b->inflight, ms);
	return b->inflight ? -EBUSY : 0;
}

void virtio_blk_set_limits(struct virtio_pci *vp, uint64_t bps, uint64_t iops)
{
	struct vblk *b = vp->dev;
	pthread_mutex_lock(&vp->lock);
	ratelimit_set(&b->rl, bps, iops, devclock_mono_ns());
	/* Requests held back by the old limits are looked at again now. */
	struct itimerspec its = {.it_value = {0, 1}};
	timerfd_settime(b->timer_fd, 0, &its, NULL);
	b->timer_armed = true;
	pthread_mutex_unlock(&vp->lock);
}

static void blk_cfg_read(struct virtio_pci *vp, unsigned off, void *data, unsigned len)
{
	struct vblk *b = vp->dev;
	uint8_t c[64] = {0};
	uint64_t cap = b->size / SECTOR;
	uint32_t size_max = 1u << 20, seg_max = AIO_SEGS, blk_size = 512;
	uint16_t nq = (uint16_t)vp->nqueues;
	uint32_t max_dz = MAX_DZ_SECTORS, dz_segs = 1, align = 1;
	memcpy(&c[0], &cap, 8);
	memcpy(&c[8], &size_max, 4);
	memcpy(&c[12], &seg_max, 4);
	memcpy(&c[20], &blk_size, 4);
	memcpy(&c[34], &nq, 2);
	memcpy(&c[36], &max_dz, 4);
	memcpy(&c[40], &dz_segs, 4);
	memcpy(&c[44], &align, 4);
	memcpy(&c[48], &max_dz, 4);
	memcpy(&c[52], &dz_segs, 4);
	c[56] = 1;
	if (off + len <= sizeof(c))
		memcpy(data, &c[off], len);
}

/* Saved: what the disk is (checked on restore), its id, its limits and counters. */
static int blk_save(struct virtio_pci *vp, struct state_buf *buf)
{
	struct vblk *b = vp->dev;
	struct state_w w = {buf, 0};
	const struct virtio_blk_stats *s = &b->st;
	sw_u8(&w, STATE_VERSION);
	sw_u64(&w, b->size);
	sw_u8(&w, b->readonly);
	sw_u8(&w, (uint8_t)b->fmt);
	sw_bytes(&w, b->id, 20);
	sw_u64(&w, b->rl.bytes.rate);
	sw_u64(&w, b->rl.ops.rate);
	const uint64_t cnt[] = {s->rd_reqs,	 s->rd_bytes, s->wr_reqs, s->wr_bytes, s->fl_reqs,
				s->discard_reqs, s->wz_reqs,  s->errors,  s->throttled};
	for (size_t i = 0; i < sizeof(cnt) / sizeof(cnt[0]); i++)
		sw_u64(&w, cnt[i]);
	return w.err;
}

static int blk_restore(struct virtio_pci *vp, struct state_r *r)
{
	struct vblk *b = vp->dev;
	uint8_t ver = sr_u8(r);
	uint64_t size = sr_u64(r);
	bool ro = sr_u8(r);
	uint8_t fmt = sr_u8(r);
	char id[20];
	sr_bytes(r, id, 20);
	uint64_t bps = sr_u64(r), iops = sr_u64(r);
	uint64_t cnt[9];
	for (size_t i = 0; i < 9; i++)
		cnt[i] = sr_u64(r);
	if (r->bad || ver != STATE_VERSION || size != b->size || ro != b->readonly ||
	    fmt != (uint8_t)b->fmt)
		return -EINVAL;
	memcpy(b->id, id, 20);
	ratelimit_set(&b->rl, bps, iops,
		      devclock_mono_ns()); /* may refuse a rate: rl says what holds */
	struct virtio_blk_stats *s = &b->st;
	uint64_t *dst[] = {&s->rd_reqs,	     &s->rd_bytes, &s->wr_reqs, &s->wr_bytes, &s->fl_reqs,
			   &s->discard_reqs, &s->wz_reqs,  &s->errors,	&s->throttled};
	for (size_t i = 0; i < 9; i++)
		*dst[i] = cnt[i];
	return 0;
}

static void blk_destroy(struct virtio_pci *vp)
{
	struct vblk *b = vp->dev;
	/* blk_close waits for what is in flight (the buffers are guest RAM, still mapped). */
	blk_close(b->blk);
	for (unsigned i = 0; i < b->nreq; i++)
		free(b->req[i].bounce);
	free(b->req);
	if (b->timer_fd >= 0)
		close(b->timer_fd);
	if (b->st.throttled)
		log_info("virtio-blk %s: throttled %llu times by its rate limit", b->id,
			 (unsigned long long)b->st.throttled);
	free(b);
}

static const struct virtio_dev_ops blk_ops = {
    .notify = blk_notify,
    .cfg_read = blk_cfg_read,
    .reset = blk_reset,
    .activate = blk_activate,
    .drain = blk_drain,
    .save = blk_save,
    .restore = blk_restore,
    .destroy = blk_destroy,
    .backend_fd = blk_backend_fd,
    .backend_ready = blk_backend_ready,
};

int virtio_blk_stats(struct virtio_pci *vp, struct virtio_blk_stats *out)
{
	if (!vp || vp->ops != &blk_ops)
		return -ENODEV;
	struct vblk *b = vp->dev;
	pthread_mutex_lock(&vp->lock);
	*out = b->st;
	out->bps = b->rl.bytes.rate;
	out->iops = b->rl.ops.rate;
	memcpy(out->id, b->id, sizeof(out->id));
	pthread_mutex_unlock(&vp->lock);
	return 0;
}

/* Opens the image through the block layer and sets up its I/O. Returns 0 or -errno. */
static int open_disk(struct vblk *b, const struct virtio_disk_opts *o, struct cove_err *err)
{
	struct blk_open_opts bo = {
	    .format = o->format, .readonly = o->readonly, .direct = o->direct};
	int ret = blk_open(o->path, &bo, &b->blk, err);
	if (ret)
		return ret;
	b->fmt = blk_get_format(b->blk);
	b->size = blk_size(b->blk) & ~(SECTOR - 1);
	b->readonly = o->readonly;
	struct blk_info info;
	if (!o->readonly && blk_get_info(b->blk, &info) == 0) {
		if (info.corrupt)
			log_warn(
			    "disk %s: the image is marked corrupt: the guest's writes will fail "
			    "(repair it with cove img check -r all)",
			    o->path);
		free(info.snapshots);
	}
	b->guard0 = o->format == BLK_FMT_AUTO && b->fmt == BLK_FMT_RAW && !o->readonly;
	if (b->guard0)
		log_warn("disk %s: no format given and the image probed as raw; the guest may not "
			 "write an image header to its sector 0 (give format=raw to lift this)",
			 o->path);
	/* The asynchronous engine; without it (aio=sync, or no io_uring and no eventfd) requests
	 * run synchronously. */
	b->aio = !o->sync_io && blk_aio_setup(b->blk, AIO_SLOTS) == 0;
	if (!o->sync_io && !b->aio)
		log_info("disk %s: asynchronous I/O unavailable, synchronous I/O", o->path);
	b->nreq = b->aio ? AIO_SLOTS : 1;
	b->req = calloc(b->nreq, sizeof(*b->req));
	if (!b->req)
		return cove_err_set(err, -ENOMEM, "out of memory");
	return 0;
}

struct virtio_pci *virtio_blk_new(const struct virtio_disk_opts *o, const struct guest_mem *mem,
				  struct irq_chip *chip, struct cove_err *err)
{
	struct vblk *b = calloc(1, sizeof(*b));
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	if (!b || !vp) {
		free(b);
		free(vp);
		cove_err_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	b->vp = vp;
	/* Every disk has its timer, so that limits can be set at run time too. */
	b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (b->timer_fd < 0) {
		cove_err_set(err, -errno, "timerfd: %s", strerror(errno));
		goto fail;
	}
	ratelimit_set(&b->rl, o->bps, o->iops, devclock_mono_ns());
	if (open_disk(b, o, err))
		goto fail;
	snprintf(b->id, sizeof(b->id), "%s", o->id);
	uint64_t feat = BLK_F_SIZE_MAX | BLK_F_SEG_MAX | BLK_F_BLK_SIZE | BLK_F_FLUSH;
	if (o->readonly)
		feat |= BLK_F_RO;
	else
		feat |= BLK_F_DISCARD | BLK_F_WRITE_ZEROES;
	if (o->queues > 1)
		feat |= BLK_F_MQ;
	struct virtio_pci_config cfg = {
	    .name = "virtio-blk",
	    .device_id = 2,
	    .class_code = 0x018000,
	    .features = feat,
	    .nqueues = o->queues ? o->queues : 1,
	    .qmax = 256,
	    .ops = &blk_ops,
	    .dev = b,
	    .mem = mem,
	    .chip = chip,
	};
	virtio_pci_init(vp, &cfg);
	return vp;
fail:
	blk_close(b->blk);
	free(b->req);
	if (b->timer_fd >= 0)
		close(b->timer_fd);
	free(b);
	free(vp);
	return NULL;
}
