/* virtio-net (virtio 1.2 §5.1) over a tap device (or any fd that passes whole frames with the
 * vnet header, such as a socketpair in tests): offloads, mergeable receive buffers, MAC, a
 * control queue, several queue pairs (one tap queue each), and token-bucket limits on both
 * directions, shared by the pairs, that can change at run time. */
#include "devices/devutil.h"
#include "devices/virtio/ratelimit.h"
#include "devices/virtio/virtio_devices.h"
#include "devices/virtio/virtio_net_ctrl.h"
#include "net/tap.h"
#include "util/log.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <stdio.h>
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

#define RXQ(p)	  (2u * (p)) /* receiveq of pair p; its transmitq follows */
#define TXQ(p)	  (2u * (p) + 1)
#define FRAME_MAX (65536 + TAP_VNET_HDR_LEN + 14)
#define MAX_BUFS  64 /* receive buffers one frame may span */
#define BURST	  64 /* frames per wakeup before yielding */

/* One queue pair and its tap queue. */
struct vnet_pair {
	int tap;
	bool rx_waiting;   /* waits for receive buffers (or a live queue): the tap is not watched */
	bool rx_throttled; /* the pending frame waits for rl_rx: the tap is not watched */
	bool pending_paid; /* the pending frame has taken its rl_rx tokens */
	size_t pending;	   /* length of a frame read from the tap, not yet in the guest (0: none) */
	uint64_t rx_frames, tx_frames;
	uint8_t frame[FRAME_MAX];
};

struct vnet {
	unsigned npairs;  /* max_virtqueue_pairs */
	unsigned active;  /* pairs in use: 1 after reset, then what VQ_PAIRS_SET says */
	unsigned tx_pair; /* the pair tx() is serving (for tx_one) */
	struct vnet_pair *pair;
	int pair_ep; /* with several pairs, an epoll over their taps: the device's backend fd */
	uint8_t mac[6];
	struct virtq_chain chain;
	struct virtq_chain ctrl_chain; /* apart: a command that switches pairs on reads frames */
	uint16_t heads[MAX_BUFS];
	uint32_t lens[MAX_BUFS];
	uint64_t rx_dropped, tx_dropped, throttled, ctrl_errors;
	struct rate_limiter rl_tx; /* guest to host, all pairs together */
	struct rate_limiter rl_rx; /* host to guest, all pairs together */
	int timer_fd;		   /* wakes both directions when a limit allows more */
	uint64_t timer_deadline;   /* when it fires (0: not armed) */
	bool timer_watched;
};

/* Wakes the I/O thread in wait_ns (or keeps an earlier wake-up). */
static void throttle(struct vnet *n, uint64_t wait_ns)
{
	uint64_t at = devclock_mono_ns() + wait_ns;
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

/* Pairs the driver may use: all of them with VIRTIO_NET_F_MQ, else the first. */
static unsigned usable_pairs(const struct virtio_pci *vp, const struct vnet *n)
{
	return virtio_has(vp, VIRTIO_NET_F_MQ) ? n->npairs : 1;
}

/* The control queue comes after the data queues the driver may use (§5.1.2). */
static unsigned ctrl_queue(const struct virtio_pci *vp, const struct vnet *n)
{
	return 2 * usable_pairs(vp, n);
}

/* Watches pair p's tap again (one-shot): the I/O thread calls backend_ready once it is
 * readable. With one pair the tap is the backend fd itself, so that path costs what it did
 * before pairs existed. */
static void watch_pair(struct virtio_pci *vp, struct vnet *n, unsigned p)
{
	if (n->pair_ep < 0) {
		virtio_pci_watch_backend(vp);
		return;
	}
	struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u32 = p};
	epoll_ctl(n->pair_ep, EPOLL_CTL_MOD, n->pair[p].tap, &ev);
}

/* Puts pair p's pending frame into one (or, with MRG_RXBUF, several) receive chains.
 * Returns 1 done (delivered or dropped), 0 no buffers yet (keep it), -1 broken driver. */
static int deliver(struct virtio_pci *vp, struct vnet *n, unsigned p)
{
	struct vnet_pair *pr = &n->pair[p];
	struct virtq *vq = &vp->vq[RXQ(p)];
	bool mrg = virtio_has(vp, NET_F_MRG_RXBUF);
	size_t off = 0, len = pr->pending;
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
		virtq_chain_write(&n->chain, 0, pr->frame + off, take);
		n->heads[nb] = n->chain.head;
		n->lens[nb] = (uint32_t)take;
		nb++;
		off += take;
		if (off < len && (!mrg || nb == MAX_BUFS)) {
			/* Bigger than the driver's buffers: drop it, the buffers go back. */
			vq->last_avail = (uint16_t)(vq->last_avail - nb);
			n->rx_dropped++;
			pr->pending = 0;
			return 1;
		}
	}
	*nbuf_at[0] = (uint8_t)nb;
	*nbuf_at[1] = (uint8_t)(nb >> 8);
	for (unsigned i = 0; i < nb; i++)
		virtq_push(vq, n->heads[i], n->lens[i]);
	pr->rx_frames++;
	pr->pending = 0;
	return 1;
}

/* Reads frames from pair p's tap queue into its receive queue until either side runs dry. */
static void rx(struct virtio_pci *vp, struct vnet *n, unsigned p)
{
	struct vnet_pair *pr = &n->pair[p];
	struct virtq *vq = &vp->vq[RXQ(p)];
	bool any = false;
	if (p >= n->active || !vq->enabled || !(vp->status & VIRTIO_STATUS_DRIVER_OK) ||
	    (vp->status & VIRTIO_STATUS_NEEDS_RESET)) {
		pr->rx_waiting = true;
		return;
	}
	for (int i = 0; i < BURST; i++) {
		if (!pr->pending) {
			ssize_t r = read(pr->tap, pr->frame, sizeof(pr->frame));
			if (r < 0 && errno == EINTR)
				continue;
			if (r == 0 || (r < 0 && errno != EAGAIN)) {
				/* A tap deleted under us, a queue the kernel detached, a socket's
				 * peer gone: poll says so for ever, so stop watching (a receive
				 * kick tries again). */
				log_warn("%s: pair %u: tap read: %s; not read until the next kick",
					 vp->name, p, r ? strerror(errno) : "end of file");
				pr->rx_waiting = true;
				goto out;
			}
			if (r <= TAP_VNET_HDR_LEN)
				break; /* EAGAIN (or a runt): nothing more now */
			pr->pending = (size_t)r;
			pr->pending_paid = false;
		}
		uint64_t wait;
		/* Unlimited (the usual case): no clock read per frame. */
		if (!pr->pending_paid && ratelimit_active(&n->rl_rx) &&
		    !ratelimit_take(&n->rl_rx, pr->pending - TAP_VNET_HDR_LEN, devclock_mono_ns(),
				    &wait)) {
			/* Over the receive limit: the frame waits, and so does the tap. */
			pr->rx_throttled = true;
			throttle(n, wait);
			goto out;
		}
		pr->pending_paid = true;
		int d = deliver(vp, n, p);
		if (d < 0)
			return;
		if (d == 0) {
			/* Wait for the driver: it kicks the receive queue when it adds buffers. */
			if (virtq_enable_notify(vq))
				continue;
			pr->rx_waiting = true;
			goto out;
		}
		any = true;
	}
	watch_pair(vp, n, p);
out:
	if (any && virtq_should_notify(vq))
		virtio_pci_notify_queue(vp, RXQ(p));
}

static uint32_t tx_one(struct virtio_pci *vp, const struct virtq_chain *c)
{
	struct vnet *n = vp->dev;
	struct vnet_pair *pr = &n->pair[n->tx_pair];
	if (c->out_len < TAP_VNET_HDR_LEN || c->out_len > FRAME_MAX) {
		n->tx_dropped++;
		return 0;
	}
	uint64_t wait;
	if (ratelimit_active(&n->rl_tx) &&
	    !ratelimit_take(&n->rl_tx, c->out_len - TAP_VNET_HDR_LEN, devclock_mono_ns(), &wait)) {
		throttle(n, wait);
		return VIRTIO_SERVE_RETRY;
	}
	/* A pair the driver has not switched on has no tap queue attached (the kernel refuses
	 * writes there): its frames leave through the first pair's. */
	int fd = n->tx_pair < n->active ? pr->tap : n->pair[0].tap;
	if (writev(fd, c->iov, (int)c->nout) < 0)
		n->tx_dropped++;
	else
		pr->tx_frames++;
	return 0;
}

static void tx(struct virtio_pci *vp, struct vnet *n, unsigned p)
{
	n->tx_pair = p;
	virtio_pci_serve(vp, TXQ(p), &n->chain, tx_one);
}

/* Switches pairs [active, k) on or [k, active) off. A pair switched off loses the frame it
 * held (the kernel drops what its tap queue held too) and is no longer steered to. A pair
 * switched on starts reading its tap queue at once (start_rx), or waits for a kick of its
 * receive queue (a restore, whose frames must not be read over). */
static void set_pairs(struct virtio_pci *vp, struct vnet *n, unsigned k, bool start_rx)
{
	unsigned old = n->active;
	for (unsigned p = k; p < old; p++) {
		struct vnet_pair *pr = &n->pair[p];
		if (pr->pending)
			n->rx_dropped++;
		pr->pending = 0;
		pr->rx_waiting = true;
		pr->rx_throttled = false;
		if (n->pair_ep >= 0) {
			struct epoll_event ev = {.events = 0, .data.u32 = p};
			epoll_ctl(n->pair_ep, EPOLL_CTL_MOD, pr->tap, &ev);
		}
		tap_set_queue(pr->tap, false); /* -ENOTTY on a socket: nothing to detach */
	}
	for (unsigned p = old; p < k; p++)
		tap_set_queue(n->pair[p].tap, true);
	n->active = k;
	for (unsigned p = old; p < k; p++) {
		n->pair[p].rx_waiting = !start_rx;
		if (start_rx)
			rx(vp, n, p);
	}
}

static uint32_t ctrl_one(struct virtio_pci *vp, const struct virtq_chain *c)
{
	struct vnet *n = vp->dev;
	struct vnet_ctrl_cmd cmd;
	int r = vnet_ctrl_parse(c, vp->guest_features, (uint16_t)n->npairs, &cmd);
	if (r < 0) {
		virtio_pci_needs_reset(vp, "control command without a writable ack byte");
		return 0;
	}
	if (r == VIRTIO_NET_OK && cmd.class == VIRTIO_NET_CTRL_MQ)
		set_pairs(vp, n, cmd.pairs, true);
	if (r != VIRTIO_NET_OK) {
		n->ctrl_errors++;
		log_debug("%s: control class %u command %u refused", vp->name, cmd.class,
			  cmd.command);
	}
	uint8_t ack = (uint8_t)r;
	return (uint32_t)virtq_chain_write(c, 0, &ack, 1);
}

static void net_notify(struct virtio_pci *vp, unsigned q)
{
	struct vnet *n = vp->dev;
	if (q == ctrl_queue(vp, n)) {
		virtio_pci_serve(vp, q, &n->ctrl_chain, ctrl_one);
		return;
	}
	unsigned p = q / 2;
	if (p >= usable_pairs(vp, n))
		return;
	if (q & 1) {
		tx(vp, n, p);
	} else if (n->pair[p].rx_waiting) {
		n->pair[p].rx_waiting = false;
		rx(vp, n, p);
	}
}

static void net_backend_ready(struct virtio_pci *vp)
{
	struct vnet *n = vp->dev;
	uint64_t cnt;
	/* The taps or the rate limits' timer: try both directions. The timer is read only while
	 * armed (throttle() sets the deadline), so an unlimited NIC makes no extra system call
	 * per wakeup. */
	bool timer = n->timer_deadline && read(n->timer_fd, &cnt, sizeof(cnt)) == sizeof(cnt);
	if (timer) {
		n->timer_deadline = 0;
		for (unsigned p = 0; p < n->npairs; p++)
			n->pair[p].rx_throttled = false;
		if ((vp->status & VIRTIO_STATUS_DRIVER_OK) &&
		    !(vp->status & VIRTIO_STATUS_NEEDS_RESET))
			for (unsigned p = 0; p < usable_pairs(vp, n); p++)
				if (vp->vq[TXQ(p)].enabled)
					tx(vp, n, p);
	}
	if (n->pair_ep < 0) {
		if (!n->pair[0].rx_waiting && !n->pair[0].rx_throttled)
			rx(vp, n, 0);
		return;
	}
	bool ready[VIRTIO_NET_MAX_PAIRS] = {false};
	struct epoll_event ev[VIRTIO_NET_MAX_PAIRS];
	int k = epoll_wait(n->pair_ep, ev, VIRTIO_NET_MAX_PAIRS, 0);
	for (int i = 0; i < k; i++)
		if (ev[i].data.u32 < n->npairs)
			ready[ev[i].data.u32] = true;
	for (unsigned p = 0; p < n->active; p++)
		if ((ready[p] || timer) && !n->pair[p].rx_waiting && !n->pair[p].rx_throttled)
			rx(vp, n, p);
	virtio_pci_watch_backend(vp); /* the pairs' epoll itself, one-shot in the I/O thread's */
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
	uint64_t now = devclock_mono_ns();
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
	struct vnet *n = vp->dev;
	return n->pair_ep >= 0 ? n->pair_ep : n->pair[0].tap;
}

/* The offloads the driver accepts, on the tap (one setting for all its queues). */
static void apply_offloads(struct virtio_pci *vp, struct vnet *n)
{
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
	tap_set_offload(n->pair[0].tap, f); /* fails on a socket: no offloads, nothing to do */
}

static void net_activate(struct virtio_pci *vp)
{
	struct vnet *n = vp->dev;
	apply_offloads(vp, n);
	if (!n->timer_watched && vp->io_epfd >= 0) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = vp->io_tag};
		n->timer_watched = epoll_ctl(vp->io_epfd, EPOLL_CTL_ADD, n->timer_fd, &ev) == 0;
	}
	for (unsigned p = 0; p < n->active; p++) {
		n->pair[p].rx_waiting = false;
		rx(vp, n, p);
	}
}

static void net_reset(struct virtio_pci *vp)
{
	struct vnet *n = vp->dev;
	if (!n)
		return;
	set_pairs(vp, n, 1,
		  false); /* §5.1.6.5.5: after reset only the first pair carries traffic */
	n->pair[0].pending = 0;
	n->pair[0].rx_throttled = false;
	n->pair[0].rx_waiting = true; /* re-armed at DRIVER_OK */
}

static void net_cfg_read(struct virtio_pci *vp, unsigned off, void *data, unsigned len)
{
	struct vnet *n = vp->dev;
	uint8_t c[12] = {0};
	memcpy(c, n->mac, 6);
	c[6] = 1;		   /* VIRTIO_NET_S_LINK_UP */
	c[8] = (uint8_t)n->npairs; /* max_virtqueue_pairs (le16, at most 16) */
	if (off + len <= sizeof(c))
		memcpy(data, &c[off], len);
}

#define NET_STATE_V 3 /* 3: queue pairs */

static int net_save(struct virtio_pci *vp, struct state_buf *buf)
{
	struct vnet *n = vp->dev;
	struct state_w w = {buf, 0};
	sw_u16(&w, NET_STATE_V);
	sw_bytes(&w, n->mac, 6);
	sw_u16(&w, (uint16_t)n->npairs);
	sw_u16(&w, (uint16_t)n->active);
	/* A frame read from a tap but not yet in the guest's buffers goes with the state. */
	for (unsigned p = 0; p < n->npairs; p++) {
		const struct vnet_pair *pr = &n->pair[p];
		sw_u32(&w, (uint32_t)pr->pending);
		sw_bytes(&w, pr->frame, pr->pending);
		sw_u8(&w, pr->pending_paid);
	}
	return w.err;
}

static int net_restore(struct virtio_pci *vp, struct state_r *r)
{
	struct vnet *n = vp->dev;
	uint8_t mac[6];
	if (sr_u16(r) != NET_STATE_V)
		return -EINVAL;
	sr_bytes(r, mac, 6);
	unsigned npairs = sr_u16(r), active = sr_u16(r);
	if (r->bad || npairs != n->npairs || active < 1 || active > usable_pairs(vp, n))
		return -EINVAL;
	uint32_t pending[VIRTIO_NET_MAX_PAIRS];
	const uint8_t *frame[VIRTIO_NET_MAX_PAIRS];
	bool paid[VIRTIO_NET_MAX_PAIRS];
	for (unsigned p = 0; p < npairs; p++) {
		pending[p] = sr_u32(r);
		if (r->bad || (pending[p] && pending[p] <= TAP_VNET_HDR_LEN) ||
		    pending[p] > FRAME_MAX || (pending[p] && p >= active))
			return -EINVAL;
		frame[p] = sr_take(r, pending[p]);
		paid[p] = sr_u8(r);
	}
	if (!sr_done(r))
		return -EINVAL;
	memcpy(n->mac, mac, 6);
	set_pairs(vp, n, 1, false);
	set_pairs(vp, n, active, false);
	for (unsigned p = 0; p < npairs; p++) {
		struct vnet_pair *pr = &n->pair[p];
		memcpy(pr->frame, frame[p], pending[p]);
		pr->pending = pending[p];
		pr->pending_paid = paid[p];
		/* The transport kicks every live queue next: a receive kick delivers what waits
		 * and watches the tap again. */
		pr->rx_waiting = true;
		pr->rx_throttled = false;
	}
	if (vp->status & VIRTIO_STATUS_DRIVER_OK)
		apply_offloads(vp, n);
	return 0;
}

static void net_destroy(struct virtio_pci *vp)
{
	struct vnet *n = vp->dev;
	if (n->npairs > 1) {
		char per[VIRTIO_NET_MAX_PAIRS * 48] = "";
		size_t o = 0;
		for (unsigned p = 0; p < n->npairs && o < sizeof(per); p++)
			o += (size_t)snprintf(per + o, sizeof(per) - o, " %llu/%llu",
					      (unsigned long long)n->pair[p].rx_frames,
					      (unsigned long long)n->pair[p].tx_frames);
		log_info("%s: %u queue pairs, %u in use; frames received/sent per pair:%s",
			 vp->name, n->npairs, n->active, per);
	}
	if (n->rx_dropped || n->tx_dropped || n->throttled || n->ctrl_errors)
		log_info(
		    "%s: frames dropped: %llu received, %llu sent; waited for a rate limit %llu "
		    "times; control commands refused: %llu",
		    vp->name, (unsigned long long)n->rx_dropped, (unsigned long long)n->tx_dropped,
		    (unsigned long long)n->throttled, (unsigned long long)n->ctrl_errors);
	for (unsigned p = 0; p < n->npairs; p++)
		if (n->pair[p].tap >= 0)
			close(n->pair[p].tap);
	if (n->pair_ep >= 0)
		close(n->pair_ep);
	if (n->timer_fd >= 0)
		close(n->timer_fd);
	free(n->pair);
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

/* The host side: taps, the pairs' epoll, the timer. Takes the fds (closed on failure). */
static struct vnet *vnet_new(const struct virtio_net_opts *o, const int *fds, unsigned nfds,
			     struct cove_err *err)
{
	struct vnet *n = calloc(1, sizeof(*n));
	struct vnet_pair *pair = calloc(nfds, sizeof(*pair));
	if (!n || !pair) {
		free(n);
		free(pair);
		for (unsigned p = 0; p < nfds; p++)
			close(fds[p]);
		cove_err_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	n->pair = pair;
	n->npairs = nfds;
	n->active = nfds; /* every tap queue starts attached; the first reset leaves one */
	n->pair_ep = -1;
	for (unsigned p = 0; p < nfds; p++)
		n->pair[p].tap = fds[p];
	/* The timer exists even without limits, so that limits can be set at run time. */
	n->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (n->timer_fd < 0) {
		cove_err_set(err, -errno, "timerfd: %s", strerror(errno));
		goto fail;
	}
	if (nfds > 1) {
		n->pair_ep = epoll_create1(EPOLL_CLOEXEC);
		if (n->pair_ep < 0) {
			cove_err_set(err, -errno, "epoll: %s", strerror(errno));
			goto fail;
		}
		for (unsigned p = 0; p < nfds; p++) {
			struct epoll_event ev = {.events = 0, .data.u32 = p};
			if (epoll_ctl(n->pair_ep, EPOLL_CTL_ADD, fds[p], &ev) < 0) {
				cove_err_set(err, -errno, "epoll: %s", strerror(errno));
				goto fail;
			}
		}
	}
	uint64_t now = devclock_mono_ns();
	ratelimit_set(&n->rl_tx, o->bps, o->pps, now);
	ratelimit_set(&n->rl_rx, o->rx_bps, o->rx_pps, now);
	memcpy(n->mac, o->mac, 6);
	return n;
fail:
	for (unsigned p = 0; p < nfds; p++)
		close(fds[p]);
	if (n->timer_fd >= 0)
		close(n->timer_fd);
	if (n->pair_ep >= 0)
		close(n->pair_ep);
	free(pair);
	free(n);
	return NULL;
}

struct virtio_pci *virtio_net_new_fds(const struct virtio_net_opts *o, const int *fds,
				      unsigned nfds, const struct guest_mem *mem,
				      struct irq_chip *chip, struct cove_err *err)
{
	if (nfds < 1 || nfds > VIRTIO_NET_MAX_PAIRS) {
		for (unsigned p = 0; p < nfds; p++)
			close(fds[p]);
		cove_err_set(err, -EINVAL, "virtio-net: %u queue pairs, expected 1 to %d", nfds,
			     VIRTIO_NET_MAX_PAIRS);
		return NULL;
	}
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	if (!vp) {
		for (unsigned p = 0; p < nfds; p++)
			close(fds[p]);
		cove_err_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	struct vnet *n = vnet_new(o, fds, nfds, err);
	if (!n) {
		free(vp);
		return NULL;
	}
	struct virtio_pci_config cfg = {
	    .name = "virtio-net",
	    .device_id = 1,
	    .class_code = 0x020000,
	    .features = NET_F_CSUM | NET_F_GUEST_CSUM | NET_F_MAC | NET_F_GUEST_TSO4 |
			NET_F_GUEST_TSO6 | NET_F_GUEST_ECN | NET_F_HOST_TSO4 | NET_F_HOST_TSO6 |
			NET_F_HOST_ECN | NET_F_MRG_RXBUF | NET_F_STATUS | VIRTIO_NET_F_CTRL_VQ |
			(nfds > 1 ? VIRTIO_NET_F_MQ : 0),
	    .nqueues = 2 * nfds + 1,
	    .qmax = 256,
	    .ops = &net_ops,
	    .dev = n,
	    .mem = mem,
	    .chip = chip,
	};
	virtio_pci_init(vp, &cfg); /* its reset detaches every tap queue but the first */
	return vp;
}

struct virtio_pci *virtio_net_new_fd(const struct virtio_net_opts *o, int fd,
				     const struct guest_mem *mem, struct irq_chip *chip,
				     struct cove_err *err)
{
	return virtio_net_new_fds(o, &fd, 1, mem, chip, err);
}

struct virtio_pci *virtio_net_new(const struct virtio_net_opts *o, const struct guest_mem *mem,
				  struct irq_chip *chip, struct cove_err *err)
{
	int fds[VIRTIO_NET_MAX_PAIRS];
	unsigned nq = o->queues ? o->queues : 1;
	if (nq > VIRTIO_NET_MAX_PAIRS) {
		cove_err_set(err, -EINVAL, "net: queues=%u, at most %d", nq, VIRTIO_NET_MAX_PAIRS);
		return NULL;
	}
	if (tap_open_queues(o->tap, nq, fds, err) < 0)
		return NULL;
	return virtio_net_new_fds(o, fds, nq, mem, chip, err);
}
