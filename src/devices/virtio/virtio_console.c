/* virtio-console (virtio 1.2 §5.3), one port (hvc0): its host side is a Unix socket that
 * one client at a time connects to, or a file that receives the guest's output. */
#include "devices/virtio/virtio_devices.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define RXQ 0
#define TXQ 1

struct vcon {
	int listen_fd; /* Unix socket, or -1 */
	int client_fd; /* connected client, or -1 */
	int out_fd;    /* file output (file= mode), or -1 */
	bool rx_waiting;
	char path[108];
	struct virtq_chain chain;
	uint8_t buf[4096];
	uint64_t rx_bytes, tx_bytes;
};

static void watch_client(struct virtio_pci *vp, struct vcon *c, int op)
{
	if (vp->io_epfd < 0 || c->client_fd < 0)
		return;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = vp->io_tag};
	epoll_ctl(vp->io_epfd, op, c->client_fd, &ev);
}

static void drop_client(struct virtio_pci *vp, struct vcon *c)
{
	if (c->client_fd < 0)
		return;
	if (vp->io_epfd >= 0)
		epoll_ctl(vp->io_epfd, EPOLL_CTL_DEL, c->client_fd, NULL);
	close(c->client_fd);
	c->client_fd = -1;
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

static uint32_t tx_one(struct virtio_pci *vp, const struct virtq_chain *ch)
{
	struct vcon *c = vp->dev;
	int fd = c->client_fd >= 0 ? c->client_fd : c->out_fd;
	if (fd >= 0 && ch->nout && writev(fd, ch->iov, (int)ch->nout) > 0)
		c->tx_bytes += ch->out_len;
	return 0;
}

static void con_notify(struct virtio_pci *vp, unsigned q)
{
	struct vcon *c = vp->dev;
	if (q == TXQ)
		virtio_pci_serve(vp, TXQ, &c->chain, tx_one);
	else if (q == RXQ && c->rx_waiting) {
		c->rx_waiting = false;
		rx(vp, c);
	}
}

/* The listening socket is readable (a client) or the client is (input). */
static void con_backend_ready(struct virtio_pci *vp)
{
	struct vcon *c = vp->dev;
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0) {
		drop_client(vp, c); /* one client at a time: the newest wins */
		c->client_fd = fd;
		c->rx_waiting = false;
		watch_client(vp, c, EPOLL_CTL_ADD);
	}
	virtio_pci_watch_backend(vp);
	if (!c->rx_waiting)
		rx(vp, c);
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
}

static void con_reset(struct virtio_pci *vp)
{
	struct vcon *c = vp->dev;
	if (c)
		c->rx_waiting = true;
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
	if (c->client_fd >= 0)
		close(c->client_fd);
	if (c->listen_fd >= 0) {
		close(c->listen_fd);
		unlink(c->path);
	}
	if (c->out_fd >= 0)
		close(c->out_fd);
	free(c);
}

static const struct virtio_dev_ops con_ops = {
    .notify = con_notify,
    .cfg_read = con_cfg_read,
    .reset = con_reset,
    .activate = con_activate,
    .destroy = con_destroy,
};

static const struct virtio_dev_ops con_uds_ops = {
    .notify = con_notify,
    .cfg_read = con_cfg_read,
    .reset = con_reset,
    .activate = con_activate,
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
	free(c);
	free(vp);
	return NULL;
}
