/* virtio-blk (virtio 1.2 §5.2) over a raw image: read, write, flush, discard, write-zeroes, id. */
#include "devices/devutil.h"
#include "devices/virtio/ratelimit.h"
#include "devices/virtio/virtio_devices.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
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

#define SECTOR	  512ULL
#define SEG_MAX	  (VIRTQ_MAX_SEGS - 2)
#define AIO_SLOTS 32  /* requests in flight per disk through io_uring */
#define AIO_SEGS  256 /* segments per request then (seg_max says so) */

/* One request in flight through io_uring. */
struct aio_req {
	bool busy;
	bool write, flush;
	uint16_t head, q;
	uint32_t gen; /* the device's reset generation when submitted */
	uint32_t len;
	uint8_t *status; /* the status byte in guest RAM */
	struct iovec iov[AIO_SEGS];
};
#define MAX_DZ_SECTORS (1u << 22) /* 2 GiB per discard / write-zeroes segment */
#define MAX_DZ_SEGS    32

struct vblk {
	int fd;
	uint64_t size; /* bytes */
	bool readonly;
	char id[21];
	struct virtq_chain chain;
	struct iovec iov[VIRTQ_MAX_SEGS];
	uint64_t reqs, bytes_read, bytes_written, throttled;
	struct rate_limiter rl;
	int timer_fd; /* wakes the device when its rate limit allows more (-1: no limit) */
	bool timer_watched;
	/* io_uring engine (when it could be set up): completions signal aio_efd. */
	bool uring;
	struct io_uring ring;
	int aio_efd;
	struct aio_req *aio;
	unsigned inflight;
	uint32_t gen;
	bool stalled;	/* a request waits for a free slot */
	unsigned cur_q; /* the queue being served */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

static bool range_ok(struct vblk *b, uint64_t sector, uint64_t len)
{
	if (sector > UINT64_MAX / SECTOR)
		return false;
	uint64_t off = sector * SECTOR;
	return off <= b->size && len <= b->size - off;
}

static int do_rw(struct vblk *b, bool write, uint64_t off, int n)
{
	/* Whole request, retried on short transfers. */
	struct iovec *iov = b->iov;
	while (n > 0) {
		ssize_t r =
		    write ? pwritev(b->fd, iov, n, (off_t)off) : preadv(b->fd, iov, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		off += (uint64_t)r;
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

static uint8_t do_dz(struct vblk *b, const struct virtq_chain *c, bool zeroes)
{
	if (b->readonly)
		return BLK_S_IOERR;
	uint64_t n = (c->out_len - sizeof(struct blk_hdr)) / 16;
	if (n == 0 || n > MAX_DZ_SEGS || (c->out_len - sizeof(struct blk_hdr)) % 16)
		return BLK_S_UNSUPP;
	for (uint64_t i = 0; i < n; i++) {
		uint8_t seg[16];
		virtq_chain_read(c, sizeof(struct blk_hdr) + 16 * i, seg, 16);
		uint64_t sector;
		uint32_t num, flags;
		memcpy(&sector, seg, 8);
		memcpy(&num, seg + 8, 4);
		memcpy(&flags, seg + 12, 4);
		if (num > MAX_DZ_SECTORS || !range_ok(b, sector, num * SECTOR))
			return BLK_S_IOERR;
		if ((flags & ~1u) || (!zeroes && flags))
			return BLK_S_UNSUPP;
		int mode = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE;
		if (zeroes && !(flags & 1))
			mode = FALLOC_FL_KEEP_SIZE | FALLOC_FL_ZERO_RANGE;
		if (num &&
		    fallocate(b->fd, mode, (off_t)(sector * SECTOR), (off_t)(num * SECTOR))) {
			if (!zeroes)
				continue; /* discard is a hint */
			/* No fallocate mode here: write zeroes. */
			static const uint8_t zero[65536];
			uint64_t off = sector * SECTOR, left = num * SECTOR;
			while (left) {
				size_t k = left < sizeof(zero) ? (size_t)left : sizeof(zero);
				ssize_t w = pwrite(b->fd, zero, k, (off_t)off);
				if (w <= 0)
					return BLK_S_IOERR;
				off += (uint64_t)w;
				left -= (uint64_t)w;
			}
		}
	}
	return BLK_S_OK;
}

/* Starts a read, write or flush through io_uring; its completion uses the chain. Returns 0,
 * -EAGAIN (no slot or no submission entry: retry later) or -EIO (the chain cannot be
 * described in AIO_SEGS segments). */
static int aio_submit(struct vblk *b, const struct virtq_chain *c, bool wr, bool flush,
		      uint64_t len, uint64_t off, uint64_t data_in)
{
	unsigned i = 0;
	while (i < AIO_SLOTS && b->aio[i].busy)
		i++;
	if (i == AIO_SLOTS)
		return -EAGAIN;
	struct aio_req *r = &b->aio[i];
	struct iovec st;
	if (virtq_chain_slice(c, true, data_in, 1, &st, 1) != 1)
		return -EIO;
	int n = 0;
	if (!flush) {
		n = virtq_chain_slice(c, !wr, wr ? sizeof(struct blk_hdr) : 0, len, r->iov,
				      AIO_SEGS);
		if (n <= 0)
			return -EIO;
	}
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
	if (!sqe)
		return -EAGAIN;
	if (flush)
		io_uring_prep_fsync(sqe, b->fd, IORING_FSYNC_DATASYNC);
	else if (wr)
		io_uring_prep_writev(sqe, b->fd, r->iov, (unsigned)n, off);
	else
		io_uring_prep_readv(sqe, b->fd, r->iov, (unsigned)n, off);
	io_uring_sqe_set_data64(sqe, i);
	/* Field by field: r->iov already holds the segments. */
	r->busy = true;
	r->write = wr;
	r->flush = flush;
	r->head = c->head;
	r->q = (uint16_t)b->cur_q;
	r->gen = b->gen;
	r->len = (uint32_t)len;
	r->status = st.iov_base;
	if (io_uring_submit(&b->ring) < 0) {
		r->busy = false;
		return -EIO;
	}
	b->inflight++;
	if (wr)
		b->bytes_written += len;
	else
		b->bytes_read += len;
	return 0;
}

/* Serves one request; returns the bytes written into the chain (status included). */
static uint32_t serve(struct vblk *b, struct virtio_pci *vp, const struct virtq_chain *c)
{
	struct blk_hdr h;
	if (c->in_len < 1)
		return 0; /* nowhere to put a status: drop it (the driver broke the rules) */
	uint64_t data_in = c->in_len - 1; /* the status byte is the last writable byte */
	uint8_t st = BLK_S_OK;
	uint32_t written = 0;
	if (virtq_chain_read(c, 0, &h, sizeof(h)) != sizeof(h)) {
		st = BLK_S_IOERR;
		goto out;
	}
	uint64_t data_out = c->out_len - sizeof(h);
	bool async =
	    b->uring && (h.type == BLK_T_IN || h.type == BLK_T_OUT || h.type == BLK_T_FLUSH);
	if (async && b->inflight == AIO_SLOTS) {
		b->stalled = true; /* a completion serves the queues again */
		return VIRTIO_SERVE_RETRY;
	}
	if (b->timer_fd >= 0 && ratelimit_active(&b->rl)) {
		uint64_t bytes = h.type == BLK_T_OUT ? data_out : h.type == BLK_T_IN ? data_in : 0;
		uint64_t wait;
		if (!ratelimit_take(&b->rl, bytes, now_ns(), &wait)) {
			struct itimerspec its = {.it_value = {(time_t)(wait / 1000000000ULL),
							      (long)(wait % 1000000000ULL)}};
			timerfd_settime(b->timer_fd, 0, &its, NULL);
			b->throttled++;
			return VIRTIO_SERVE_RETRY;
		}
	}
	b->reqs++;
	switch (h.type) {
	case BLK_T_IN:
	case BLK_T_OUT: {
		bool wr = h.type == BLK_T_OUT;
		uint64_t len = wr ? data_out : data_in;
		if (wr && b->readonly) {
			st = BLK_S_IOERR;
			break;
		}
		if (len % SECTOR || !range_ok(b, h.sector, len)) {
			st = BLK_S_IOERR;
			break;
		}
		if (async && len) {
			int r = aio_submit(b, c, wr, false, len, h.sector * SECTOR, data_in);
			if (r == 0)
				return VIRTIO_SERVE_ASYNC;
			if (r == -EAGAIN) {
				b->stalled = true;
				return VIRTIO_SERVE_RETRY;
			}
			st = BLK_S_IOERR;
			break;
		}
		int n = virtq_chain_slice(c, !wr, wr ? sizeof(h) : 0, len, b->iov, VIRTQ_MAX_SEGS);
		if (len && (n <= 0 || do_rw(b, wr, h.sector * SECTOR, n))) {
			st = BLK_S_IOERR;
			break;
		}
		if (wr) {
			b->bytes_written += len;
		} else {
			b->bytes_read += len;
			written = (uint32_t)len;
		}
		break;
	}
	case BLK_T_FLUSH:
		if (async && !b->readonly) {
			int r = aio_submit(b, c, false, true, 0, 0, data_in);
			if (r == 0)
				return VIRTIO_SERVE_ASYNC;
			if (r == -EAGAIN) {
				b->stalled = true;
				return VIRTIO_SERVE_RETRY;
			}
		}
		if (!b->readonly && fdatasync(b->fd))
			st = BLK_S_IOERR;
		break;
	case BLK_T_GET_ID: {
		char id[20] = {0};
		memcpy(id, b->id, strnlen(b->id, sizeof(id)));
		written = (uint32_t)virtq_chain_write(c, 0, id, data_in < 20 ? data_in : 20);
		break;
	}
	case BLK_T_DISCARD:
	case BLK_T_WRITE_ZEROES:
		st = virtio_has(vp, h.type == BLK_T_DISCARD ? BLK_F_DISCARD : BLK_F_WRITE_ZEROES)
			 ? do_dz(b, c, h.type == BLK_T_WRITE_ZEROES)
			 : BLK_S_UNSUPP;
		break;
	default:
		st = BLK_S_UNSUPP;
	}
out:
	virtq_chain_write(c, data_in, &st, 1);
	return written + 1;
}

static uint32_t blk_serve(struct virtio_pci *vp, const struct virtq_chain *c)
{
	return serve(vp->dev, vp, c);
}

static void blk_notify(struct virtio_pci *vp, unsigned q)
{
	struct vblk *b = vp->dev;
	b->cur_q = q;
	virtio_pci_serve(vp, q, &b->chain, blk_serve);
}

/* Finished io_uring requests: status byte, used ring, interrupt. */
static void aio_complete(struct virtio_pci *vp, struct vblk *b)
{
	bool done[VIRTIO_MAX_QUEUES] = {false};
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&b->ring, &cqe) == 0) {
		uint64_t i = io_uring_cqe_get_data64(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&b->ring, cqe);
		if (i >= AIO_SLOTS || !b->aio[i].busy)
			continue;
		struct aio_req *r = &b->aio[i];
		r->busy = false;
		b->inflight--;
		if (r->gen != b->gen || r->q >= vp->nqueues)
			continue; /* the driver reset the device meanwhile: nothing to report */
		bool ok = r->flush ? res == 0 : res >= 0 && (uint32_t)res == r->len;
		*r->status = ok ? BLK_S_OK : BLK_S_IOERR;
		virtq_push(&vp->vq[r->q], r->head, (r->write || r->flush ? 0 : r->len) + 1);
		done[r->q] = true;
	}
	for (unsigned q = 0; q < vp->nqueues; q++)
		if (done[q] && virtq_should_notify(&vp->vq[q]))
			virtio_pci_notify_queue(vp, q);
}

/* io_uring completions or the rate limit's timer: finish what is done, serve again. */
static void blk_backend_ready(struct virtio_pci *vp)
{
	struct vblk *b = vp->dev;
	uint64_t n;
	bool again = false;
	if (b->timer_fd >= 0 && read(b->timer_fd, &n, sizeof(n)) == sizeof(n))
		again = true;
	if (b->uring) {
		if (read(b->aio_efd, &n, sizeof(n)) < 0)
			n = 0;
		aio_complete(vp, b);
		again |= b->stalled;
		b->stalled = false;
	}
	virtio_pci_watch_backend(vp);
	for (unsigned q = 0; again && q < vp->nqueues; q++) {
		if (vp->vq[q].enabled && (vp->status & VIRTIO_STATUS_DRIVER_OK) &&
		    !(vp->status & VIRTIO_STATUS_NEEDS_RESET)) {
			b->cur_q = q;
			virtio_pci_serve(vp, q, &b->chain, blk_serve);
		}
	}
}

static int blk_backend_fd(struct virtio_pci *vp)
{
	struct vblk *b = vp->dev;
	return b->uring ? b->aio_efd : b->timer_fd;
}

static void blk_activate(struct virtio_pci *vp)
{
	struct vblk *b = vp->dev;
	/* With io_uring the eventfd is the backend fd: the timer joins the epoll here. */
	if (b->uring && b->timer_fd >= 0 && !b->timer_watched && vp->io_epfd >= 0) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = vp->io_tag};
		b->timer_watched = epoll_ctl(vp->io_epfd, EPOLL_CTL_ADD, b->timer_fd, &ev) == 0;
	}
}

static void blk_reset(struct virtio_pci *vp)
{
	struct vblk *b = vp->dev;
	if (b)
		b->gen++; /* requests still in flight complete into nothing */
}

void virtio_blk_set_limits(struct virtio_pci *vp, uint64_t bps, uint64_t iops)
{
	struct vblk *b = vp->dev;
	pthread_mutex_lock(&vp->lock);
	ratelimit_set(&b->rl, bps, iops, now_ns());
	pthread_mutex_unlock(&vp->lock);
}

static void blk_cfg_read(struct virtio_pci *vp, unsigned off, void *data, unsigned len)
{
	struct vblk *b = vp->dev;
	uint8_t c[64] = {0};
	uint64_t cap = b->size / SECTOR;
	uint32_t size_max = 1u << 20, seg_max = b->uring ? AIO_SEGS : SEG_MAX, blk_size = 512;
	uint16_t nq = (uint16_t)vp->nqueues;
	uint32_t max_dz = MAX_DZ_SECTORS, dz_segs = MAX_DZ_SEGS, align = 1;
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

static int blk_save(struct virtio_pci *vp, struct state_buf *buf)
{
	struct vblk *b = vp->dev;
	struct state_w w = {buf, 0};
	sw_u64(&w, b->size);
	sw_u8(&w, b->readonly);
	sw_bytes(&w, b->id, 20);
	return w.err;
}

static int blk_restore(struct virtio_pci *vp, struct state_r *r)
{
	struct vblk *b = vp->dev;
	uint64_t size = sr_u64(r);
	bool ro = sr_u8(r);
	char id[20];
	sr_bytes(r, id, 20);
	if (r->bad || size != b->size || ro != b->readonly)
		return -EINVAL;
	memcpy(b->id, id, 20);
	return 0;
}

static void blk_destroy(struct virtio_pci *vp)
{
	struct vblk *b = vp->dev;
	if (b->uring) {
		/* Wait for what is in flight (file I/O always completes), then tear down. */
		while (b->inflight) {
			struct io_uring_cqe *cqe;
			if (io_uring_wait_cqe(&b->ring, &cqe))
				break;
			uint64_t i = io_uring_cqe_get_data64(cqe);
			io_uring_cqe_seen(&b->ring, cqe);
			if (i < AIO_SLOTS && b->aio[i].busy) {
				b->aio[i].busy = false;
				b->inflight--;
			}
		}
		io_uring_queue_exit(&b->ring);
		close(b->aio_efd);
	}
	free(b->aio);
	if (b->fd >= 0)
		close(b->fd);
	if (b->timer_fd >= 0)
		close(b->timer_fd);
	if (b->throttled)
		log_info("virtio-blk: throttled %llu times by its rate limit",
			 (unsigned long long)b->throttled);
	free(b);
}

static const struct virtio_dev_ops blk_limited_ops = {
    .notify = blk_notify,
    .cfg_read = blk_cfg_read,
    .reset = blk_reset,
    .activate = blk_activate,
    .save = blk_save,
    .restore = blk_restore,
    .destroy = blk_destroy,
    .backend_fd = blk_backend_fd,
    .backend_ready = blk_backend_ready,
};

static const struct virtio_dev_ops blk_ops = {
    .notify = blk_notify,
    .reset = blk_reset,
    .cfg_read = blk_cfg_read,
    .save = blk_save,
    .restore = blk_restore,
    .destroy = blk_destroy,
};

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
	b->timer_fd = -1;
	/* A limit set at start gets its timer; without one the device has no timer at all
	 * (virtio_blk_set_limits then changes rates only of disks started with a limit). */
	if (o->bps || o->iops) {
		b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (b->timer_fd < 0) {
			cove_err_set(err, -errno, "timerfd: %s", strerror(errno));
			free(b);
			free(vp);
			return NULL;
		}
		ratelimit_set(&b->rl, o->bps, o->iops, now_ns());
	}
	int flags = (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (o->direct ? O_DIRECT : 0);
	b->fd = open(o->path, flags);
	struct stat st;
	if (b->fd < 0 || fstat(b->fd, &st) < 0) {
		cove_err_set(err, -errno, "disk %s: %s", o->path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		cove_err_set(err, -EINVAL, "disk %s: not a file or block device", o->path);
		goto fail;
	}
	b->size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size & ~(SECTOR - 1)
				      : (uint64_t)lseek(b->fd, 0, SEEK_END);
	b->readonly = o->readonly;
	/* The io_uring engine; without it (old kernel, seccomp) requests run synchronously. */
	if (!o->sync_io) {
		b->aio = calloc(AIO_SLOTS, sizeof(*b->aio));
		b->aio_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (b->aio && b->aio_efd >= 0 &&
		    io_uring_queue_init(2 * AIO_SLOTS, &b->ring, 0) == 0) {
			if (io_uring_register_eventfd(&b->ring, b->aio_efd) == 0) {
				b->uring = true;
			} else {
				io_uring_queue_exit(&b->ring);
			}
		}
		if (!b->uring) {
			log_info("disk %s: io_uring unavailable, synchronous I/O", o->path);
			if (b->aio_efd >= 0)
				close(b->aio_efd);
			free(b->aio);
			b->aio = NULL;
		}
	}
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
	    .ops = b->timer_fd >= 0 || b->uring ? &blk_limited_ops : &blk_ops,
	    .dev = b,
	    .mem = mem,
	    .chip = chip,
	};
	virtio_pci_init(vp, &cfg);
	return vp;
fail:
	if (b->fd >= 0)
		close(b->fd);
	if (b->timer_fd >= 0)
		close(b->timer_fd);
	free(b);
	free(vp);
	return NULL;
}
