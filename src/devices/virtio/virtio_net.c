/* virtio-net (virtio 1.2 §5.1) over a tap device (or any fd that passes whole frames with the
 * vnet header, such as a socketpair in tests): offloads, mergeable receive buffers, MAC, and
 * token-bucket limits on both directions that can change at run time. */
#include "devices/devutil.h"
#include "devices/virtio/ratelimit.h"
#include "devices/virtio/virtio_devices.h"
#include "net/tap.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NET_F_CSUM	 (1ULL << 0)
#define NET_F_GUEST_CSUM (1ULL << 1)
#define NET_F_MAC	 (1ULL << 5)
#define NET_F_GUEST_TSO4 (1ULL << 7)
#define NET_F_GUEST_TSO6 (1ULL << 8)
#define NET_F_GUEST_ECN	 (1ULL << 9)
#define NET_F_HOST_TSO4	 (1ULL << 11)
#define NET_F_HOST_TSO6	 (1ULL << 12)
#define NET_F_HOST_ECN	 (1ULL << 13)
#define NET_F_MRG_RXBUF	 (1ULL << 15)
#define NET_F_STATUS	 (1ULL << 16)

#define RXQ	  0
#define TXQ	  1
#define FRAME_MAX (65536 + TAP_VNET_HDR_LEN + 14)
#define MAX_BUFS  64 /* receive buffers one frame may span */
#define BURST	  64 /* frames per wakeup before yielding */

struct vnet {
	int tap;
	uint8_t mac[6];
	bool rx_waiting; /* a frame waits for receive buffers: the tap is not watched */
	size_t pending;	 /* its length (0: none) */
	struct virtq_chain chain;
	struct iovec iov[VIRTQ_MAX_SEGS];
	uint16_t heads[MAX_BUFS];
	uint32_t lens[MAX_BUFS];
	uint8_t frame[FRAME_MAX];
	uint64_t rx_frames, tx_frames, rx_dropped, tx_dropped, throttled;
	struct rate_limiter rl_tx; /* guest to host */
	struct rate_limiter rl_rx; /* host to guest */
	bool rx_throttled;	   /* the pending frame waits for rl_rx: the tap is not watched */
	bool pending_paid;	   /* the pending frame has taken its rl_rx tokens */
	int timer_fd;		   /* wakes both directions when a limit allows more */
	uint64_t timer_deadline;   /* when it fires (0: not armed) */
	bool timer_watched;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Wakes the I/O thread in wait_ns (or keeps an earlier wake-up). */
static void throttle(struct vnet *n, uint64_t wait_ns)
{
	uint64_t at = now_ns() + wait_ns;
	if (n->timer_deadline && n->timer_deadline <= at)
		return;
	n->timer_deadline = at;
	struct itimerspec its = {
	    .it_value = {(time_t)(wait_ns / 1000000000ULL), (long)(wait_ns % 1000000000ULL)}};
	if (!wait_ns)
		its.it_value.tv_nsec = 1;
	timerfd_settime(n->timer_fd, 0, &its, NULL);
	n->throttled++;
}

/* Puts the pending frame into one (or, with MRG_RXBUF, several) receive chains.
 * Returns 1 done (delivered or dropped), 0 no buffers yet (keep it), -1 broken driver. */
static int deliver(struct virtio_pci *vp, struct vnet *n)
{
	struct virtq *vq = &vp->vq[RXQ];
	bool mrg = virtio_has(vp, NET_F_MRG_RXBUF);
	size_t off = 0, len = n->pending;
	unsigned nb = 0;
	uint8_t *nbuf_at[2] = {NULL, NULL}; /* where num_buffers' two bytes landed */
	const char *why;
	while (off < len) {
		int r = virtq_pop(vq, &n->chain, &why);
		if (r < 0) {
			virtio_pci_needs_reset(vp, why);
			return -1;
		}
		if (r == 0) {
			/* Not enough buffers: give back what we took, wait for more. */
			vq->last_avail = (uint16_t)(vq->last_avail - nb);
			return 0;
		}
		if (nb == 0) {
			struct iovec b[2];
			int k = virtq_chain_slice(&n->chain, true, 10, 1, b, 1);
			int l = virtq_chain_slice(&n->chain, true, 11, 1, b + 1, 1);
			if (k != 1 || l != 1) { /* smaller than a header: not a usable buffer */
				vq->last_avail = (uint16_t)(vq->last_avail - 1);
				virtio_pci_needs_reset(vp,
						       "receive buffer smaller than the header");
				return -1;
			}
			nbuf_at[0] = b[0].iov_base;
			nbuf_at[1] = b[1].iov_base;
		}
		uint64_t room = n->chain.in_len;
		uint64_t take = len - off < room ? len - off : room;
		virtq_chain_write(&n->chain, 0, n->frame + off, take);
		n->heads[nb] = n->chain.head;
		n->lens[nb] = (uint32_t)take;
		nb++;
		off += take;
		if (off < len && (!mrg || nb == MAX_BUFS)) {
			/* Bigger than the driver's buffers: drop it, the buffers go back. */
			vq->last_avail = (uint16_t)(vq->last_avail - nb);
			n->rx_dropped++;
			n->pending = 0;
			return 1;
		}
	}
	*nbuf_at[0] = (uint8_t)nb;
	*nbuf_at[1] = (uint8_t)(nb >> 8);
	for (unsigned i = 0; i < nb; i++)
		virtq_push(vq, n->heads[i], n->lens[i]);
	n->rx_frames++;
	n->pending = 0;
	return 1;
}

/* Reads frames from the tap into the guest until either side runs dry. */
static void rx(struct virtio_pci *vp, struct vnet *n)
{
	struct virtq *vq = &vp->vq[RXQ];
	bool any = false;
	if (!vq->enabled || !(vp->status & VIRTIO_STATUS_DRIVER_OK) ||
	    (vp->status & VIRTIO_STATUS_NEEDS_RESET)) {
		n->rx_waiting = true;
		return;
	}
	for (int i = 0; i < BURST; i++) {
		if (!n->pending) {
			ssize_t r = read(n->tap, n->frame, sizeof(n->frame));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= TAP_VNET_HDR_LEN)
				break; /* EAGAIN (or a runt): nothing more now */
			n->pending = (size_t)r;
			n->pending_paid = false;
		}
		uint64_t wait;
		if (!n->pending_paid &&
		    !ratelimit_take(&n->rl_rx, n->pending - TAP_VNET_HDR_LEN, now_ns(), &wait)) {
			/* Over the receive limit: the frame waits, and so does the tap. */
			n->rx_throttled = true;
			throttle(n, wait);
			goto out;
		}
		n->pending_paid = true;
		int d = deliver(vp, n);
		if (d < 0)
			return;
		if (d == 0) {
			/* Wait for the driver: it kicks the receive queue when it adds buffers. */
			if (virtq_enable_notify(vq))
				continue;
			n->rx_waiting = true;
			goto out;
		}
		any = true;
	}
	virtio_pci_watch_backend(vp);
out:
	if (any && virtq_should_notify(vq))
		virtio_pci_notify_queue(vp, RXQ);
}

static uint32_t tx_one(struct virtio_pci *vp, const struct virtq_chain *c)
{
	struct vnet *n = vp->dev;
	if (c->out_len < TAP_VNET_HDR_LEN || c->out_len > FRAME_MAX) {
		n->tx_dropped++;
		return 0;
	}
	uint64_t wait;
	if (!ratelimit_take(&n->rl_tx, c->out_len - TAP_VNET_HDR_LEN, now_ns(), &wait)) {
		throttle(n, wait);
		return VIRTIO_SERVE_RETRY;
	}
	if (writev(n->tap, c->iov, (int)c->nout) < 0)
		n->tx_dropped++;
	else
		n->tx_frames++;
	return 0;
}

static void tx(struct virtio_pci *vp, struct vnet *n)
{
	virtio_pci_serve(vp, TXQ, &n->chain, tx_one);
}

static void net_notify(struct virtio_pci *vp, unsigned q)
{
	struct vnet *n = vp->dev;
	if (q == TXQ) {
		tx(vp, n);
	} else if (q == RXQ && n->rx_waiting) {
		n->rx_waiting = false;
		rx(vp, n);
	}
}

static void net_backend_ready(struct virtio_pci *vp)
{
	struct vnet *n = vp->dev;
	uint64_t cnt;
	/* The tap or the rate limits' timer: try both directions. */
	if (read(n->timer_fd, &cnt, sizeof(cnt)) == sizeof(cnt)) {
		n->timer_deadline = 0;
		n->rx_throttled = false;
		if (vp->vq[TXQ].enabled && (vp->status & VIRTIO_STATUS_DRIVER_OK) &&
		    !(vp->status & VIRTIO_STATUS_NEEDS_RESET))
			tx(vp, n);
	}
	if (!n->rx_waiting && !n->rx_throttled)
		rx(vp, n);
}

static void set_dir(struct rate_limiter *rl, uint64_t bps, uint64_t pps, uint64_t now)
{
	if (bps == VIRTIO_NET_KEEP && pps == VIRTIO_NET_KEEP)
		return; /* untouched: the buckets keep their tokens */
	if (bps == VIRTIO_NET_KEEP)
		bps = rl->bytes.rate;
	if (pps == VIRTIO_NET_KEEP)
		pps = rl->ops.rate;
	ratelimit_set(rl, bps, pps, now);
}

void virtio_net_set_limits(struct virtio_pci *vp, const struct virtio_net_limits *l)
{
	pthread_mutex_lock(&vp->lock);
	struct vnet *n = vp->dev;
	uint64_t now = now_ns();
	set_dir(&n->rl_tx, l->tx_bps, l->tx_pps, now);
	set_dir(&n->rl_rx, l->rx_bps, l->rx_pps, now);
	/* Whatever waits for a bucket is tried again at once under the new limits. */
	n->timer_deadline = 0;
	throttle(n, 0);
	pthread_mutex_unlock(&vp->lock);
}

void virtio_net_get_limits(struct virtio_pci *vp, struct virtio_net_limits *l)
{
	pthread_mutex_lock(&vp->lock);
	struct vnet *n = vp->dev;
	*l = (struct virtio_net_limits){n->rl_rx.bytes.rate, n->rl_rx.ops.rate, n->rl_tx.bytes.rate,
					n->rl_tx.ops.rate};
	pthread_mutex_unlock(&vp->lock);
}

static int net_backend_fd(struct virtio_pci *vp)
{
	return ((struct vnet *)vp->dev)->tap;
}

static void net_activate(struct virtio_pci *vp)
{
	struct vnet *n = vp->dev;
	unsigned f = 0;
	if (virtio_has(vp, NET_F_GUEST_CSUM)) {
		f |= TUN_F_CSUM;
		if (virtio_has(vp, NET_F_GUEST_TSO4))
			f |= TUN_F_TSO4;
		if (virtio_has(vp, NET_F_GUEST_TSO6))
			f |= TUN_F_TSO6;
		if (virtio_has(vp, NET_F_GUEST_ECN))
			f |= TUN_F_TSO_ECN;
	}
	tap_set_offload(n->tap, f); /* fails on a socket: no offloads, nothing to do */
	if (!n->timer_watched && vp->io_epfd >= 0) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = vp->io_tag};
		n->timer_watched = epoll_ctl(vp->io_epfd, EPOLL_CTL_ADD, n->timer_fd, &ev) == 0;
	}
	n->rx_waiting = false;
	rx(vp, n);
}

static void net_reset(struct virtio_pci *vp)
{
	struct vnet *n = vp->dev;
	if (!n)
		return;
	n->pending = 0;
	n->rx_throttled = false;
	n->rx_waiting = true; /* re-armed at DRIVER_OK */
}

static void net_cfg_read(struct virtio_pci *vp, unsigned off, void *data, unsigned len)
{
	struct vnet *n = vp->dev;
	uint8_t c[12] = {0};
	memcpy(c, n->mac, 6);
	c[6] = 1; /* VIRTIO_NET_S_LINK_UP */
	c[8] = 1; /* max_virtqueue_pairs */
	if (off + len <= sizeof(c))
		memcpy(data, &c[off], len);
}

#define NET_STATE_V 2

static int net_save(struct virtio_pci *vp, struct state_buf *buf)
{
	struct vnet *n = vp->dev;
	struct state_w w = {buf, 0};
	sw_u16(&w, NET_STATE_V);
	sw_bytes(&w, n->mac, 6);
	/* A frame read from the tap but not yet in the guest's buffers goes with the state. */
	sw_u32(&w, (uint32_t)n->pending);
	sw_bytes(&w, n->frame, n->pending);
	sw_u8(&w, n->pending_paid);
	return w.err;
}

static int net_restore(struct virtio_pci *vp, struct state_r *r)
{
	struct vnet *n = vp->dev;
	uint8_t mac[6];
	if (sr_u16(r) != NET_STATE_V)
		return -EINVAL;
	sr_bytes(r, mac, 6);
	uint32_t pending = sr_u32(r);
	if (r->bad || (pending && pending <= TAP_VNET_HDR_LEN) || pending > sizeof(n->frame))
		return -EINVAL;
	const uint8_t *frame = sr_take(r, pending);
	bool paid = sr_u8(r);
	if (!sr_done(r))
		return -EINVAL;
	memcpy(n->mac, mac, 6);
	memcpy(n->frame, frame, pending);
	n->pending = pending;
	n->pending_paid = paid;
	n->rx_waiting = false;
	n->rx_throttled = false;
	return 0;
}

static void net_destroy(struct virtio_pci *vp)
{
	struct vnet *n = vp->dev;
	if (n->tap >= 0)
		close(n->tap);
	if (n->timer_fd >= 0)
		close(n->timer_fd);
	free(n);
}

static const struct virtio_dev_ops net_ops = {
    .notify = net_notify,
    .cfg_read = net_cfg_read,
    .reset = net_reset,
    .activate = net_activate,
    .save = net_save,
    .restore = net_restore,
    .destroy = net_destroy,
    .backend_fd = net_backend_fd,
    .backend_ready = net_backend_ready,
};

struct virtio_pci *virtio_net_new_fd(const struct virtio_net_opts *o, int fd,
				     const struct guest_mem *mem, struct irq_chip *chip,
				     struct cove_err *err)
{
	struct vnet *n = calloc(1, sizeof(*n));
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	if (!n || !vp) {
		free(n);
		free(vp);
		close(fd);
		cove_err_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	/* The timer exists even without limits, so that limits can be set at run time. */
	n->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (n->timer_fd < 0) {
		cove_err_set(err, -errno, "timerfd: %s", strerror(errno));
		free(n);
		free(vp);
		close(fd);
		return NULL;
	}
	uint64_t now = now_ns();
	ratelimit_set(&n->rl_tx, o->bps, o->pps, now);
	ratelimit_set(&n->rl_rx, o->rx_bps, o->rx_pps, now);
	n->tap = fd;
	memcpy(n->mac, o->mac, 6);
	struct virtio_pci_config cfg = {
	    .name = "virtio-net",
	    .device_id = 1,
	    .class_code = 0x020000,
	    .features = NET_F_CSUM | NET_F_GUEST_CSUM | NET_F_MAC | NET_F_GUEST_TSO4 |
			NET_F_GUEST_TSO6 | NET_F_GUEST_ECN | NET_F_HOST_TSO4 | NET_F_HOST_TSO6 |
			NET_F_HOST_ECN | NET_F_MRG_RXBUF | NET_F_STATUS,
	    .nqueues = 2,
	    .qmax = 256,
	    .ops = &net_ops,
	    .dev = n,
	    .mem = mem,
	    .chip = chip,
	};
	virtio_pci_init(vp, &cfg);
	return vp;
}

struct virtio_pci *virtio_net_new(const struct virtio_net_opts *o, const struct guest_mem *mem,
				  struct irq_chip *chip, struct cove_err *err)
{
	int fd = tap_open(o->tap, err);
	if (fd < 0)
		return NULL;
	return virtio_net_new_fd(o, fd, mem, chip, err);
}
