/* virtio-console (virtio 1.2 §5.3), one port (hvc0): its host side is a Unix socket that
 * one client at a time connects to, or a file that receives the guest's output. A peer that
 * takes part of the output holds the transmit queue until it takes the rest, for a bounded
 * time: one that takes nothing for longer loses the output until it reads again. */
#include "devices/devutil.h"
#include "devices/virtio/virtio_devices.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#define RXQ 0
#define TXQ 1

struct vcon {
	int listen_fd; /* Unix socket, or -1 */
	int client_fd; /* connected client, or -1 */
	int out_fd;    /* file output (file= mode), or -1 */
	bool rx_waiting;
	/* Transmit backpressure: the peer took tx_off bytes of the chain at the head of the
	 * transmit queue (it went back to the ring). With tx_blocked the rest waits for EPOLLOUT
	 * and no further chain is taken. tx_discard: that chain's peer is gone, finish it
	 * unsent; tx_wake: serve the transmit queue on the way out (a block ended). */
	bool tx_blocked, tx_discard, tx_wake;
	bool out_watched; /* out_fd is in the I/O thread's epoll */
	bool out_failed;  /* the file refused output (logged once) */
	uint64_t tx_off;
	/* The bound on backpressure: stall_since is when the peer last took none of the pending
	 * output with no progress since (devclock_mono_ns(); 0: not stalled). Once that lasts
	 * drop_after_ns, tx_dropping: chains are used at once, unsent, until the peer takes data
	 * again. drop_mark is tx_dropped when that began. */
	uint64_t drop_after_ns, stall_since, drop_mark;
	bool tx_dropping;
	int timer_fd;	    /* wakes a stalled queue when drop_after_ns passes */
	bool timer_watched; /* in the I/O thread's epoll */
	bool timer_armed;   /* set until its expiry is read */
	char path[108];
	struct virtq_chain chain, txchain;
	struct iovec iov[VIRTQ_MAX_SEGS];
	uint8_t buf[4096];
	uint64_t rx_bytes, tx_bytes, tx_dropped;
};

/* The client's one-shot watch: input while the driver has receive buffers, output while the
 * peer holds the transmit queue back. With neither it stays disarmed. */
static void watch_client(struct virtio_pci *vp, struct vcon *c, int op)
{
	if (vp->io_epfd < 0 || c->client_fd < 0)
		return;
	uint32_t want = (c->rx_waiting ? 0 : EPOLLIN) | (c->tx_blocked ? EPOLLOUT : 0);
	if (!want && op == EPOLL_CTL_MOD)
		return;
	struct epoll_event ev = {.events = want | EPOLLONESHOT, .data.ptr = vp->io_tag};
	epoll_ctl(vp->io_epfd, op, c->client_fd, &ev);
}

/* The peer is gone with part of the head chain unsent: that chain is finished unsent (the
 * rest of it is not for the next client) and the transmit queue moves again. */
static void tx_peer_gone(struct vcon *c)
{
	if (!c->tx_blocked && !c->tx_off)
		return;
	c->tx_discard = c->tx_off > 0;
	c->tx_off = 0;
	c->tx_blocked = false;
	c->tx_wake = true;
}

static void drop_client(struct virtio_pci *vp, struct vcon *c)
{
	if (c->client_fd < 0)
		return;
	if (vp->io_epfd >= 0)
		epoll_ctl(vp->io_epfd, EPOLL_CTL_DEL, c->client_fd, NULL);
	close(c->client_fd);
	c->client_fd = -1;
	tx_peer_gone(c);
	c->stall_since = 0; /* the next client starts with a clean slate */
	c->tx_dropping = false;
}

/* Host → guest: bytes from the client into receive buffers. */
static void rx(struct virtio_pci *vp, struct vcon *c)
{
	struct virtq *vq = &vp->vq[RXQ];
	bool any = false;
	if (c->client_fd < 0)
		return;
	if (!vq->enabled || !(vp->status & VIRTIO_STATUS_DRIVER_OK) ||
	    (vp->status & VIRTIO_STATUS_NEEDS_RESET)) {
		c->rx_waiting = true;
		return;
	}
	for (int i = 0; i < 64; i++) {
		if (!virtq_has_avail(vq) && !virtq_enable_notify(vq)) {
			c->rx_waiting = true; /* the driver's next receive kick resumes */
			goto out;
		}
		const char *why;
		int r = virtq_pop(vq, &c->chain, &why);
		if (r < 0) {
			virtio_pci_needs_reset(vp, why);
			return;
		}
		if (r == 0)
			continue;
		size_t room = c->chain.in_len < sizeof(c->buf) ? c->chain.in_len : sizeof(c->buf);
		ssize_t n = room ? read(c->client_fd, c->buf, room) : 0;
		if (n <= 0) {
			virtq_unpop(vq);
			if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				drop_client(vp, c);
				goto out;
			}
			break;
		}
		virtq_chain_write(&c->chain, 0, c->buf, (uint64_t)n);
		virtq_push(vq, c->chain.head, (uint32_t)n);
		c->rx_bytes += (uint64_t)n;
		any = true;
	}
	watch_client(vp, c, EPOLL_CTL_MOD);
out:
	if (any && virtq_should_notify(vq))
		virtio_pci_notify_queue(vp, RXQ);
}

/* Waits for out_fd to take more (a pipe or terminal given as file=). Returns 0, or -errno
 * when it cannot be watched (then the rest is dropped). */
static int watch_out(struct virtio_pci *vp, struct vcon *c)
{
	if (vp->io_epfd < 0)
		return -ENOTSUP;
	struct epoll_event ev = {.events = EPOLLOUT | EPOLLONESHOT, .data.ptr = vp->io_tag};
	if (epoll_ctl(vp->io_epfd, c->out_watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->out_fd, &ev))
		return -errno;
	c->out_watched = true;
	return 0;
}

/* Writes what is left of chain ch (from tx_off) to the peer. Returns the bytes written, 0
 * when the peer takes nothing now, or -errno. */
static ssize_t tx_write(struct vcon *c, int fd, const struct virtq_chain *ch)
{
	int n = virtq_chain_slice(ch, false, c->tx_off, ch->out_len - c->tx_off, c->iov,
				  VIRTQ_MAX_SEGS);
	if (n <= 0)
		return -EINVAL;
	ssize_t w;
	do {
		if (fd == c->client_fd) /* no SIGPIPE when the client has gone */
			w = sendmsg(fd,
				    &(struct msghdr){.msg_iov = c->iov, .msg_iovlen = (size_t)n},
				    MSG_NOSIGNAL | MSG_DONTWAIT);
		else
			w = writev(fd, c->iov, n);
	} while (w < 0 && errno == EINTR);
	if (w < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	return w ? w : -EIO;
}

/* Wakes the device after ns (from the I/O thread or a vCPU's notification, vp->lock held). */
static void arm_timer(struct virtio_pci *vp, struct vcon *c, uint64_t ns)
{
	if (!c->timer_watched && vp->io_epfd >= 0) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = vp->io_tag};
		c->timer_watched = epoll_ctl(vp->io_epfd, EPOLL_CTL_ADD, c->timer_fd, &ev) == 0;
	}
	struct itimerspec its = {
	    .it_value = {(time_t)(ns / 1000000000ULL), (long)(ns % 1000000000ULL)}};
	if (!ns)
		its.it_value.tv_nsec = 1; /* 0 would disarm it */
	if (!timerfd_settime(c->timer_fd, 0, &its, NULL))
		c->timer_armed = true;
}

/* The peer took none of the pending output. Returns true when it has taken nothing for
 * drop_after_ns (or is being dropped already): the caller drops the rest of the chain. Else
 * the timer is set for when that time is up. */
static bool tx_stalled(struct virtio_pci *vp, struct vcon *c, bool client)
{
	if (c->tx_dropping)
		return true;
	uint64_t now = devclock_mono_ns();
	if (!c->stall_since)
		c->stall_since = now;
	uint64_t waited = now - c->stall_since;
	if (waited < c->drop_after_ns) {
		arm_timer(vp, c, c->drop_after_ns - waited);
		return false;
	}
	c->stall_since = 0;
	c->tx_dropping = true;
	c->drop_mark = c->tx_dropped;
	uint64_t ms = c->drop_after_ns / 1000000;
	unsigned long long n = ms % 1000 ? ms : ms / 1000;
	const char *unit = ms % 1000 ? "ms" : "s";
	if (client)
		log_warn("hvc: client not reading for %llu %s; dropping console output until it "
			 "reads",
			 n, unit);
	else
		log_warn("hvc: output file not read for %llu %s; dropping console output until "
			 "it is",
			 n, unit);
	return true;
}

/* Guest → host: one transmit chain to the peer, counting what it really took. What the peer
 * cannot take now stays in the chain, which goes back to the ring until the peer is
 * writable (backpressure: nothing after it is taken meanwhile), unless the peer has taken
 * nothing for drop_after_ns: then it is dropped, and so is every chain after it that the peer
 * does not take at once, until it takes one. */
static uint32_t tx_one(struct virtio_pci *vp, const struct virtq_chain *ch)
{
	struct vcon *c = vp->dev;
	int fd = c->client_fd >= 0 ? c->client_fd : c->out_fd;
	if (c->tx_off > ch->out_len) /* not the chain we stopped in: the driver changed it */
		c->tx_off = 0;
	if (c->tx_discard || fd < 0) {
		c->tx_dropped += ch->out_len - c->tx_off;
		c->tx_discard = false;
		c->tx_off = 0;
		return 0;
	}
	while (c->tx_off < ch->out_len) {
		ssize_t w = tx_write(c, fd, ch);
		if (w > 0) {
			if (c->tx_dropping) {
				c->tx_dropping = false;
				log_info("hvc: %s again; %llu bytes of console output dropped",
					 fd == c->client_fd ? "client reading" : "output file read",
					 (unsigned long long)(c->tx_dropped - c->drop_mark));
			}
			c->stall_since = 0;
			c->tx_off += (uint64_t)w;
			c->tx_bytes += (uint64_t)w;
			continue;
		}
		if (w == 0 && tx_stalled(vp, c, fd == c->client_fd)) {
			c->tx_dropped += ch->out_len - c->tx_off;
			break;
		}
		if (w == 0) {
			c->tx_blocked = true;
			if (fd == c->client_fd) {
				watch_client(vp, c, EPOLL_CTL_MOD);
				return VIRTIO_SERVE_RETRY;
			}
			int r = watch_out(vp, c);
			if (!r)
				return VIRTIO_SERVE_RETRY;
			c->tx_blocked = false;
			w = r;
		}
		/* The peer failed: a client is dropped, a file loses this output. */
		c->tx_dropped += ch->out_len - c->tx_off;
		if (fd == c->client_fd) {
			log_debug("%s: client: %s; dropped", vp->name, strerror((int)-w));
			c->tx_off = 0; /* nothing of it is owed to the next client */
			drop_client(vp, c);
		} else if (!c->out_failed) {
			log_warn("%s: output file: %s; the guest's console output is lost",
				 vp->name, strerror((int)-w));
			c->out_failed = true;
		}
		break;
	}
	c->tx_off = 0;
	return 0;
}

/* Serves the transmit queue if the device is live and the peer not full. */
static void tx(struct virtio_pci *vp, struct vcon *c)
{
	c->tx_wake = false;
	if (c->tx_blocked || !vp->vq[TXQ].enabled || !(vp->status & VIRTIO_STATUS_DRIVER_OK) ||
	    (vp->status & VIRTIO_STATUS_NEEDS_RESET))
		return;
	virtio_pci_serve(vp, TXQ, &c->txchain, tx_one);
}

static void con_notify(struct virtio_pci *vp, unsigned q)
{
	struct vcon *c = vp->dev;
	if (q == TXQ)
		c->tx_wake = true;
	else if (q == RXQ && c->rx_waiting) {
		c->rx_waiting = false;
		rx(vp, c);
	}
	if (c->tx_wake)
		tx(vp, c);
}

/* The listening socket is readable (a client), the client is (input) or writable, or the
 * output file is writable. */
static void con_backend_ready(struct virtio_pci *vp)
{
	struct vcon *c = vp->dev;
	uint64_t ticks;
	if (c->timer_armed && read(c->timer_fd, &ticks, sizeof(ticks)) == sizeof(ticks))
		c->timer_armed = false; /* a stalled queue is retried below */
	if (c->listen_fd >= 0) {
		int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			drop_client(vp, c); /* one client at a time: the newest wins */
			c->client_fd = fd;
			c->rx_waiting = false;
			watch_client(vp, c, EPOLL_CTL_ADD);
		}
		virtio_pci_watch_backend(vp);
	}
	if (c->tx_blocked) { /* try the rest again: it blocks (and re-arms) or goes out */
		c->tx_blocked = false;
		c->tx_wake = true;
	}
	if (!c->rx_waiting)
		rx(vp, c);
	if (c->tx_wake)
		tx(vp, c);
}

static int con_backend_fd(struct virtio_pci *vp)
{
	return ((struct vcon *)vp->dev)->listen_fd;
}

static void con_activate(struct virtio_pci *vp)
{
	struct vcon *c = vp->dev;
	c->rx_waiting = false;
	rx(vp, c);
	if (c->tx_wake) /* rx dropped a client that held the queue */
		tx(vp, c);
}

static void con_reset(struct virtio_pci *vp)
{
	struct vcon *c = vp->dev;
	if (!c)
		return;
	c->rx_waiting = true;
	/* The driver's chains are gone: what the peer did not take of them too. A peer that
	 * is being dropped stays so until it takes data. */
	c->tx_blocked = c->tx_discard = c->tx_wake = false;
	c->tx_off = 0;
	c->stall_since = 0;
}

static void con_cfg_read(struct virtio_pci *vp, unsigned off, void *data, unsigned len)
{
	uint8_t cfg[12] = {80, 0, 25, 0}; /* cols, rows; max_nr_ports 1; emerg_wr */
	cfg[4] = 1;
	if (off + len <= sizeof(cfg))
		memcpy(data, &cfg[off], len);
}

static void con_destroy(struct virtio_pci *vp)
{
	struct vcon *c = vp->dev;
	if (c->rx_bytes || c->tx_bytes || c->tx_dropped)
		log_info("%s: %llu bytes to the guest, %llu from it delivered, %llu dropped (no "
			 "peer, it failed, or it did not read in time)",
			 vp->name, (unsigned long long)c->rx_bytes, (unsigned long long)c->tx_bytes,
			 (unsigned long long)c->tx_dropped);
	if (c->client_fd >= 0)
		close(c->client_fd);
	if (c->listen_fd >= 0) {
		close(c->listen_fd);
		unlink(c->path);
	}
	if (c->out_fd >= 0)
		close(c->out_fd);
	close(c->timer_fd);
	free(c);
}

/* The state is the transport's (connections do not survive); the restored rings owe no peer
 * the rest of a chain. */
static int con_restore(struct virtio_pci *vp, struct state_r *r)
{
	struct vcon *c = vp->dev;
	if (!sr_done(r))
		return -EINVAL;
	c->tx_blocked = c->tx_discard = c->tx_wake = false;
	c->tx_off = 0;
	c->stall_since = 0;
	return 0;
}

/* file=: no fd to watch from the start, but a pipe or terminal that fills up is watched for
 * EPOLLOUT, which comes back through backend_ready. */
static const struct virtio_dev_ops con_ops = {
    .notify = con_notify,
    .cfg_read = con_cfg_read,
    .reset = con_reset,
    .activate = con_activate,
    .restore = con_restore,
    .destroy = con_destroy,
    .backend_ready = con_backend_ready,
};

static const struct virtio_dev_ops con_uds_ops = {
    .notify = con_notify,
    .cfg_read = con_cfg_read,
    .reset = con_reset,
    .activate = con_activate,
    .restore = con_restore,
    .destroy = con_destroy,
    .backend_fd = con_backend_fd,
    .backend_ready = con_backend_ready,
};

struct virtio_pci *virtio_console_new(const struct virtio_opts *o, const struct guest_mem *mem,
				      struct irq_chip *chip, struct cove_err *err)
{
	struct vcon *c = calloc(1, sizeof(*c));
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	if (!c || !vp) {
		free(c);
		free(vp);
		cove_err_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	c->listen_fd = c->client_fd = c->out_fd = -1;
	c->drop_after_ns =
	    (o->hvc_drop_after_ms ? o->hvc_drop_after_ms : VIRTIO_HVC_DROP_AFTER_MS) * 1000000ULL;
	c->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (c->timer_fd < 0) {
		cove_err_set(err, -errno, "hvc: timerfd: %s", strerror(errno));
		goto fail;
	}
	if (o->hvc_uds) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		if (strlen(o->hvc_uds) >= sizeof(sa.sun_path)) {
			cove_err_set(err, -ENAMETOOLONG, "hvc uds %s: path too long", o->hvc_uds);
			goto fail;
		}
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", o->hvc_uds);
		snprintf(c->path, sizeof(c->path), "%s", o->hvc_uds);
		c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->listen_fd < 0 || bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
		    listen(c->listen_fd, 1)) {
			cove_err_set(err, -errno, "hvc uds %s: %s", o->hvc_uds, strerror(errno));
			if (c->listen_fd >= 0)
				close(c->listen_fd);
			goto fail;
		}
	} else if (o->hvc_file) {
		c->out_fd = open(o->hvc_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (c->out_fd < 0) {
			cove_err_set(err, -errno, "hvc file %s: %s", o->hvc_file, strerror(errno));
			goto fail;
		}
		/* A pipe or terminal that fills up must not block the I/O thread: it is watched
		 * for EPOLLOUT instead (a regular file never says EAGAIN). */
		int fl = fcntl(c->out_fd, F_GETFL);
		if (fl >= 0)
			fcntl(c->out_fd, F_SETFL, fl | O_NONBLOCK);
	}
	struct virtio_pci_config cfg = {
	    .name = "virtio-console",
	    .device_id = 3,
	    .class_code = 0x078000,
	    .features = 1ULL << 0, /* VIRTIO_CONSOLE_F_SIZE */
	    .nqueues = 2,
	    .qmax = 64,
	    .ops = c->listen_fd >= 0 ? &con_uds_ops : &con_ops,
	    .dev = c,
	    .mem = mem,
	    .chip = chip,
	};
	virtio_pci_init(vp, &cfg);
	return vp;
fail:
	if (c->timer_fd >= 0)
		close(c->timer_fd);
	free(c);
	free(vp);
	return NULL;
}
