/* virtio-balloon (virtio 1.2 §5.5): the host's target (num_pages), inflated pages given back to
 * the host (MADV_DONTNEED), deflate-on-OOM offered on request, and the driver's memory
 * statistics refreshed by handing its buffer back every polling interval (§5.5.6.3). */
#include "devices/devutil.h"
#include "devices/virtio/virtio_devices.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define BALLOON_F_STATS_VQ	 (1ULL << 1)
#define BALLOON_F_DEFLATE_ON_OOM (1ULL << 2)
#define INFLATEQ		 0
#define DEFLATEQ		 1
#define STATSQ			 2
#define PAGE			 4096ULL

struct vballoon {
	uint32_t num_pages; /* the host's target */
	uint32_t actual;    /* what the driver says it holds */
	uint64_t inflated, deflated;
	uint64_t stats[VIRTIO_BALLOON_NSTATS]; /* by tag (VIRTIO_BALLOON_S_*) */
	uint32_t stats_seen;		       /* bit per tag reported */
	uint64_t stats_reports;		       /* buffers the driver filled */
	bool stats_held; /* the driver's stats buffer is ours until the next poll */
	uint16_t stats_head;
	uint32_t interval_s; /* polling interval (0: the driver's first report only) */
	int timer_fd;	     /* fires every interval: the buffer goes back to the driver */
	/* The inflate queue's first chain is done up to page number infl_pos (the budget cut it
	 * short; it went back to the ring). Not saved: after a restore the chain is done from
	 * its start again, which gives the same result. */
	uint64_t infl_pos;
	unsigned infl_budget; /* page numbers left for this turn */
	struct virtq_chain chain;
};

/* Gives an inflate list's pages back to the host, at most infl_budget page numbers a turn:
 * a driver may name millions in one chain, and the I/O thread serves every device. */
static uint32_t inflate_one(struct virtio_pci *vp, const struct virtq_chain *c)
{
	struct vballoon *b = vp->dev;
	uint64_t n = c->out_len / 4;
	if (b->infl_pos > n) /* not the chain we stopped in: the driver changed the ring */
		b->infl_pos = 0;
	while (b->infl_pos < n) {
		if (!b->infl_budget)
			return VIRTIO_SERVE_YIELD;
		uint32_t pfn[256];
		uint64_t k = n - b->infl_pos;
		if (k > 256)
			k = 256;
		if (k > b->infl_budget)
			k = b->infl_budget;
		/* A batch at a time: one walk of the segments per batch, not per page number. */
		virtq_chain_read(c, 4 * b->infl_pos, pfn, 4 * k);
		for (uint64_t i = 0; i < k; i++) {
			void *p = guest_mem_ptr(vp->mem, (uint64_t)pfn[i] * PAGE, PAGE);
			if (!p) /* not RAM: ignore (the driver is wrong, nothing to free) */
				continue;
			madvise(p, PAGE, MADV_DONTNEED);
			b->inflated++;
		}
		b->infl_pos += k;
		b->infl_budget -= (unsigned)k;
	}
	b->infl_pos = 0;
	return 0;
}

static uint32_t deflate_one(struct virtio_pci *vp, const struct virtq_chain *c)
{
	struct vballoon *b = vp->dev;
	b->deflated += c->out_len / 4; /* pages come back on first touch */
	return 0;
}

static void stats_take(struct virtio_pci *vp, struct vballoon *b)
{
	struct virtq *vq = &vp->vq[STATSQ];
	const char *why;
	for (int i = 0; i < 8; i++) {
		int r = virtq_pop(vq, &b->chain, &why);
		if (r < 0) {
			virtio_pci_needs_reset(vp, why);
			return;
		}
		if (r == 0)
			break;
		/* Tagged entries: le16 tag, le64 value (10 bytes, packed). */
		for (uint64_t off = 0; off + 10 <= b->chain.out_len && off < 10 * 64; off += 10) {
			uint8_t e[10];
			virtq_chain_read(&b->chain, off, e, 10);
			uint16_t tag = (uint16_t)(e[0] | e[1] << 8);
			uint64_t val;
			memcpy(&val, e + 2, 8);
			if (tag < VIRTIO_BALLOON_NSTATS) {
				b->stats[tag] = val;
				b->stats_seen |= 1u << tag;
			}
		}
		b->stats_reports++;
		if (b->stats_held) /* a newer buffer: give the old one back */
			virtq_push(vq, b->stats_head, 0);
		b->stats_head = b->chain.head;
		b->stats_held = true;
	}
	virtq_enable_notify(vq);
}

static void balloon_notify(struct virtio_pci *vp, unsigned q)
{
	struct vballoon *b = vp->dev;
	if (q == INFLATEQ) {
		b->infl_budget = VIRTIO_BALLOON_PAGES_PER_TURN;
		virtio_pci_serve(vp, q, &b->chain, inflate_one);
	} else if (q == DEFLATEQ) {
		virtio_pci_serve(vp, q, &b->chain, deflate_one);
	} else if (q == STATSQ) {
		stats_take(vp, b);
	}
}

static void balloon_cfg_read(struct virtio_pci *vp, unsigned off, void *data, unsigned len)
{
	struct vballoon *b = vp->dev;
	uint8_t c[8];
	memcpy(c, &b->num_pages, 4);
	memcpy(c + 4, &b->actual, 4);
	if (off + len <= sizeof(c))
		memcpy(data, &c[off], len);
}

static void balloon_cfg_write(struct virtio_pci *vp, unsigned off, const void *data, unsigned len)
{
	struct vballoon *b = vp->dev;
	if (off == 4 && len == 4)
		memcpy(&b->actual, data, 4);
}

/* Hands the held statistics buffer back: the driver refills it and adds it again. */
static void stats_request(struct virtio_pci *vp, struct vballoon *b)
{
	struct virtq *vq = &vp->vq[STATSQ];
	if (!b->stats_held || !vq->enabled || !(vp->status & VIRTIO_STATUS_DRIVER_OK) ||
	    (vp->status & VIRTIO_STATUS_NEEDS_RESET))
		return;
	b->stats_held = false;
	virtq_push(vq, b->stats_head, 0);
	if (virtq_should_notify(vq))
		virtio_pci_notify_queue(vp, STATSQ);
}

static void arm_timer(struct vballoon *b, bool now)
{
	struct itimerspec its = {.it_interval = {(time_t)b->interval_s, 0},
				 .it_value = {(time_t)b->interval_s, 0}};
	if (now && b->interval_s)
		its.it_value = (struct timespec){0, 1};
	if (b->timer_fd >= 0)
		timerfd_settime(b->timer_fd, 0, &its, NULL);
}

static void balloon_backend_ready(struct virtio_pci *vp)
{
	struct vballoon *b = vp->dev;
	uint64_t n;
	if (read(b->timer_fd, &n, sizeof(n)) == sizeof(n))
		stats_request(vp, b);
	virtio_pci_watch_backend(vp);
}

static int balloon_backend_fd(struct virtio_pci *vp)
{
	return ((struct vballoon *)vp->dev)->timer_fd;
}

static void balloon_reset(struct virtio_pci *vp)
{
	struct vballoon *b = vp->dev;
	if (!b)
		return;
	/* A new driver starts with every page its own: the device holds none. */
	b->stats_held = false;
	b->actual = 0;
	b->infl_pos = 0;
}

#define BALLOON_STATE_V 2

static int balloon_save(struct virtio_pci *vp, struct state_buf *buf)
{
	struct vballoon *b = vp->dev;
	struct state_w w = {buf, 0};
	sw_u16(&w, BALLOON_STATE_V);
	sw_u32(&w, b->num_pages);
	sw_u32(&w, b->actual);
	sw_u8(&w, b->stats_held);
	sw_u16(&w, b->stats_head);
	sw_u32(&w, b->stats_seen);
	sw_u64(&w, b->stats_reports);
	for (int i = 0; i < VIRTIO_BALLOON_NSTATS; i++)
		sw_u64(&w, b->stats[i]);
	return w.err;
}

static int balloon_restore(struct virtio_pci *vp, struct state_r *r)
{
	struct vballoon *b = vp->dev, n = *b;
	if (sr_u16(r) != BALLOON_STATE_V)
		return -EINVAL;
	n.num_pages = sr_u32(r);
	n.actual = sr_u32(r);
	n.stats_held = sr_u8(r);
	n.stats_head = sr_u16(r);
	n.stats_seen = sr_u32(r);
	n.stats_reports = sr_u64(r);
	for (int i = 0; i < VIRTIO_BALLOON_NSTATS; i++)
		n.stats[i] = sr_u64(r);
	/* A held buffer must be an entry of the statistics queue the transport restored. */
	if (!sr_done(r) ||
	    (n.stats_held && (!vp->vq[STATSQ].enabled || n.stats_head >= vp->vq[STATSQ].size)))
		return -EINVAL;
	n.infl_pos = 0; /* the restored ring's inflate chains start from the beginning */
	memcpy(b, &n, offsetof(struct vballoon, chain));
	return 0;
}

static void balloon_destroy(struct virtio_pci *vp)
{
	struct vballoon *b = vp->dev;
	if (b->inflated || b->deflated || b->stats_seen)
		log_info("virtio-balloon: %llu pages inflated, %llu deflated, %u held; stats: "
			 "free %llu KiB, total %llu KiB, available %llu KiB",
			 (unsigned long long)b->inflated, (unsigned long long)b->deflated,
			 b->actual, (unsigned long long)(b->stats[VIRTIO_BALLOON_S_MEMFREE] >> 10),
			 (unsigned long long)(b->stats[VIRTIO_BALLOON_S_MEMTOT] >> 10),
			 (unsigned long long)(b->stats[VIRTIO_BALLOON_S_AVAIL] >> 10));
	if (b->timer_fd >= 0)
		close(b->timer_fd);
	free(b);
}

static const struct virtio_dev_ops balloon_ops = {
    .notify = balloon_notify,
    .cfg_read = balloon_cfg_read,
    .cfg_write = balloon_cfg_write,
    .reset = balloon_reset,
    .save = balloon_save,
    .restore = balloon_restore,
    .destroy = balloon_destroy,
    .backend_fd = balloon_backend_fd,
    .backend_ready = balloon_backend_ready,
};

/* The one check of a balloon's size, against the guest's RAM (then amount_mib * 256 pages
 * fits 32 bits too). Returns 0 or -EINVAL with err set. */
static int check_amount(const struct guest_mem *mem, uint32_t amount_mib, struct cove_err *err)
{
	uint64_t ram_mib = (mem->low_size + mem->high_size) >> 20;
	if (amount_mib > ram_mib)
		return cove_err_set(err, -EINVAL,
				    "balloon amount_mib %u: more than the guest's %llu MiB",
				    amount_mib, (unsigned long long)ram_mib);
	if (amount_mib > UINT32_MAX / 256)
		return cove_err_set(err, -EINVAL, "balloon amount_mib %u: too large", amount_mib);
	return 0;
}

int virtio_balloon_set_target(struct virtio_pci *vp, uint32_t amount_mib, struct cove_err *err)
{
	int r = check_amount(vp->mem, amount_mib, err);
	if (r)
		return r;
	uint32_t pages = amount_mib * 256;
	pthread_mutex_lock(&vp->lock);
	struct vballoon *b = vp->dev;
	if (b->num_pages != pages) {
		b->num_pages = pages;
		if (vp->status & VIRTIO_STATUS_DRIVER_OK)
			virtio_pci_config_changed(vp);
	}
	pthread_mutex_unlock(&vp->lock);
	return 0;
}

int virtio_balloon_set_interval(struct virtio_pci *vp, uint32_t seconds)
{
	pthread_mutex_lock(&vp->lock);
	struct vballoon *b = vp->dev;
	int ret = 0;
	if (!b->interval_s != !seconds) {
		ret = -EPERM; /* statistics are switched on or off at boot only (as Firecracker) */
	} else {
		b->interval_s = seconds;
		arm_timer(b, true); /* the first refresh at once */
	}
	pthread_mutex_unlock(&vp->lock);
	return ret;
}

void virtio_balloon_info(struct virtio_pci *vp, struct virtio_balloon_info *out)
{
	pthread_mutex_lock(&vp->lock);
	struct vballoon *b = vp->dev;
	*out = (struct virtio_balloon_info){
	    .target_pages = b->num_pages,
	    .actual_pages = b->actual,
	    .interval_s = b->interval_s,
	    .stats_seen = b->stats_seen,
	    .stats_reports = b->stats_reports,
	    .deflate_on_oom = virtio_has(vp, BALLOON_F_DEFLATE_ON_OOM),
	    .inflated = b->inflated,
	    .deflated = b->deflated,
	};
	memcpy(out->stats, b->stats, sizeof(out->stats));
	pthread_mutex_unlock(&vp->lock);
}

struct virtio_pci *virtio_balloon_new(const struct virtio_balloon_opts *o,
				      const struct guest_mem *mem, struct irq_chip *chip,
				      struct cove_err *err)
{
	struct vballoon *b = calloc(1, sizeof(*b));
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	if (!b || !vp) {
		free(b);
		free(vp);
		cove_err_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	if (check_amount(mem, o->amount_mib, err)) {
		free(b);
		free(vp);
		return NULL;
	}
	b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (b->timer_fd < 0) {
		cove_err_set(err, -errno, "timerfd: %s", strerror(errno));
		free(b);
		free(vp);
		return NULL;
	}
	b->num_pages = o->amount_mib * 256;
	b->interval_s = o->stats_interval_s;
	arm_timer(b, false);
	struct virtio_pci_config cfg = {
	    .name = "virtio-balloon",
	    .device_id = 5,
	    .class_code = 0x00FF00,
	    .features = BALLOON_F_STATS_VQ | (o->deflate_on_oom ? BALLOON_F_DEFLATE_ON_OOM : 0),
	    .nqueues = 3,
	    .qmax = 128,
	    .ops = &balloon_ops,
	    .dev = b,
	    .mem = mem,
	    .chip = chip,
	};
	virtio_pci_init(vp, &cfg);
	return vp;
}
