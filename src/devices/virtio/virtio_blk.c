/* virtio-blk (virtio 1.2 §5.2) over a raw image: read, write, flush, discard, write-zeroes, id. */
#include "devices/devutil.h"
#include "devices/virtio/ratelimit.h"
#include "devices/virtio/virtio_devices.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

#define SECTOR	       512ULL
#define SEG_MAX	       (VIRTQ_MAX_SEGS - 2)
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
	virtio_pci_serve(vp, q, &b->chain, blk_serve);
}

/* The rate limit's timer: serve every queue again. */
static void blk_backend_ready(struct virtio_pci *vp)
{
	struct vblk *b = vp->dev;
	uint64_t n;
	if (read(b->timer_fd, &n, sizeof(n)) < 0)
		n = 0;
	virtio_pci_watch_backend(vp);
	for (unsigned q = 0; q < vp->nqueues; q++)
		if (vp->vq[q].enabled && (vp->status & VIRTIO_STATUS_DRIVER_OK) &&
		    !(vp->status & VIRTIO_STATUS_NEEDS_RESET))
			virtio_pci_serve(vp, q, &b->chain, blk_serve);
}

static int blk_backend_fd(struct virtio_pci *vp)
{
	return ((struct vblk *)vp->dev)->timer_fd;
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
	uint32_t size_max = 1u << 20, seg_max = SEG_MAX, blk_size = 512;
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
    .save = blk_save,
    .restore = blk_restore,
    .destroy = blk_destroy,
    .backend_fd = blk_backend_fd,
    .backend_ready = blk_backend_ready,
};

static const struct virtio_dev_ops blk_ops = {
    .notify = blk_notify,
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
	    .ops = b->timer_fd >= 0 ? &blk_limited_ops : &blk_ops,
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
