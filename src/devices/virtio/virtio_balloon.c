/* virtio-balloon (virtio 1.2 §5.5): inflated pages are given back to the host (MADV_DONTNEED),
 * deflate-on-OOM is offered, and the driver's memory statistics are kept. */
#include "devices/devutil.h"
#include "devices/virtio/virtio_devices.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define BALLOON_F_STATS_VQ	 (1ULL << 1)
#define BALLOON_F_DEFLATE_ON_OOM (1ULL << 2)
#define INFLATEQ		 0
#define DEFLATEQ		 1
#define STATSQ			 2
#define PAGE			 4096ULL
#define NSTATS			 16

struct vballoon {
	uint32_t num_pages; /* the host's target */
	uint32_t actual;    /* what the driver says it holds */
	uint64_t inflated, deflated;
	uint64_t stats[NSTATS]; /* by tag (VIRTIO_BALLOON_S_*) */
	uint32_t stats_seen;	/* bit per tag reported */
	bool stats_held;	/* the driver's stats buffer is ours until we ask again */
	uint16_t stats_head;
	struct virtq_chain chain;
};

static uint32_t inflate_one(struct virtio_pci *vp, const struct virtq_chain *c)
{
	struct vballoon *b = vp->dev;
	for (uint64_t off = 0; off + 4 <= c->out_len; off += 4) {
		uint32_t pfn;
		virtq_chain_read(c, off, &pfn, 4);
		void *p = guest_mem_ptr(vp->mem, (uint64_t)pfn * PAGE, PAGE);
		if (!p) /* not RAM: ignore (the driver is wrong, nothing to free) */
			continue;
		madvise(p, PAGE, MADV_DONTNEED);
		b->inflated++;
	}
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
			if (tag < NSTATS) {
				b->stats[tag] = val;
				b->stats_seen |= 1u << tag;
			}
		}
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
	if (q == INFLATEQ)
		virtio_pci_serve(vp, q, &b->chain, inflate_one);
	else if (q == DEFLATEQ)
		virtio_pci_serve(vp, q, &b->chain, deflate_one);
	else if (q == STATSQ)
		stats_take(vp, b);
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

static void balloon_reset(struct virtio_pci *vp)
{
	struct vballoon *b = vp->dev;
	if (b)
		b->stats_held = false;
}

static int balloon_save(struct virtio_pci *vp, struct state_buf *buf)
{
	struct vballoon *b = vp->dev;
	struct state_w w = {buf, 0};
	sw_u32(&w, b->num_pages);
	sw_u32(&w, b->actual);
	sw_u8(&w, b->stats_held);
	sw_u16(&w, b->stats_head);
	sw_u32(&w, b->stats_seen);
	for (int i = 0; i < NSTATS; i++)
		sw_u64(&w, b->stats[i]);
	return w.err;
}

static int balloon_restore(struct virtio_pci *vp, struct state_r *r)
{
	struct vballoon *b = vp->dev;
	b->num_pages = sr_u32(r);
	b->actual = sr_u32(r);
	b->stats_held = sr_u8(r);
	b->stats_head = sr_u16(r);
	b->stats_seen = sr_u32(r);
	for (int i = 0; i < NSTATS; i++)
		b->stats[i] = sr_u64(r);
	return r->bad ? -EINVAL : 0;
}

static void balloon_destroy(struct virtio_pci *vp)
{
	struct vballoon *b = vp->dev;
	if (b->inflated || b->deflated || b->stats_seen)
		log_info("virtio-balloon: %llu pages inflated, %llu deflated, %u held; stats: "
			 "free %llu KiB, total %llu KiB, available %llu KiB",
			 (unsigned long long)b->inflated, (unsigned long long)b->deflated,
			 b->actual, (unsigned long long)(b->stats[4] >> 10),
			 (unsigned long long)(b->stats[5] >> 10),
			 (unsigned long long)(b->stats[8] >> 10));
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
};

void virtio_balloon_set_target(struct virtio_pci *vp, uint32_t pages)
{
	pthread_mutex_lock(&vp->lock);
	((struct vballoon *)vp->dev)->num_pages = pages;
	virtio_pci_config_changed(vp);
	pthread_mutex_unlock(&vp->lock);
}

struct virtio_pci *virtio_balloon_new(uint32_t target_pages, const struct guest_mem *mem,
				      struct irq_chip *chip, struct cove_err *err)
{
	struct vballoon *b = calloc(1, sizeof(*b));
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	if (!b || !vp) {
		free(b);
		free(vp);
		cove_err_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	b->num_pages = target_pages;
	struct virtio_pci_config cfg = {
	    .name = "virtio-balloon",
	    .device_id = 5,
	    .class_code = 0x00FF00,
	    .features = BALLOON_F_STATS_VQ | BALLOON_F_DEFLATE_ON_OOM,
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
