/* virtio-vsock (virtio 1.2 §5.10) with Firecracker's host side: the host reaches the guest's
 * port N by connecting to the Unix socket PATH and sending "CONNECT N\n" (answered with
 * "OK <host port>\n"); the guest reaches host port N through the Unix socket PATH_N. */
#include "devices/devutil.h"
#include "devices/virtio/virtio_devices.h"
#include "util/log.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define RXQ	  0
#define TXQ	  1
#define EVQ	  2
#define HOST_CID  2
#define HDR	  44
#define MAX_CONN  64
#define BUF_ALLOC (256u << 10)
#define MAX_PKT	  (64u << 10)
#define RX_BUDGET 256 /* packets one rx_pump puts out before it lets the others run */
/* Space freed in a connection's buffer since the guest last heard fwd_cnt that earns it a
 * CREDIT_UPDATE. */
#define CREDIT_STEP (BUF_ALLOC / 4)
/* RSTs for packets of no connection, waiting for receive buffers; when full, the transmit
 * queue waits too (each of its packets may need one). */
#define NRST 32

/* SHUTDOWN flags (§5.10.6.6), cumulative: what the sender of the packet will do no more. */
#define SHUT_F_RCV  1 /* VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE */
#define SHUT_F_SEND 2 /* VIRTIO_VSOCK_SHUTDOWN_F_SEND */
#define SHUT_F_BOTH (SHUT_F_RCV | SHUT_F_SEND)

/* Control packets a connection owes the guest: flags, so that repeats coalesce and none is
 * lost while the driver has no receive buffer. */
#define OWE_REQUEST  1
#define OWE_RESPONSE 2
#define OWE_CREDIT   4

enum {
	OP_REQUEST = 1,
	OP_RESPONSE,
	OP_RST,
	OP_SHUTDOWN,
	OP_RW,
	OP_CREDIT_UPDATE,
	OP_CREDIT_REQUEST
};
/* C_RST_DUE: the host socket is closed; the slot stays until the RST has gone to the guest. */
enum conn_state { C_FREE = 0, C_CONNECT_LINE, C_REQUEST_SENT, C_OPEN, C_RST_DUE };

struct conn {
	enum conn_state state;
	int fd;
	uint32_t host_port, guest_port;
	uint32_t peer_buf_alloc, peer_fwd_cnt; /* the guest's receive credit */
	uint32_t tx_cnt;		       /* bytes we sent the guest */
	uint32_t fwd_cnt;		       /* bytes from the guest we passed on */
	uint32_t fwd_told;		       /* fwd_cnt as the guest last heard it */
	uint32_t host_shut;  /* SHUTDOWN flags the guest has from us (the host end's state) */
	uint32_t shut_due;   /* SHUTDOWN flags still to send, after the data read before them */
	uint32_t guest_shut; /* SHUTDOWN flags the guest sent */
	unsigned owe;	     /* OWE_* */
	char line[32];
	unsigned line_len;
};

/* A packet for the guest, made and sent at once (c, when not NULL, is live). */
struct pkt {
	uint32_t src_port, dst_port;
	uint16_t op;
	struct conn *c;
	uint32_t flags;
};

struct vvsock {
	uint64_t cid;
	char path[108];
	int listen_fd;
	uint32_t next_port;
	struct conn conn[MAX_CONN];
	struct {
		uint32_t host_port, guest_port;
	} rst[NRST]; /* RSTs for packets of no connection, oldest at rst_head */
	unsigned rst_head, nrst;
	bool tx_stalled;    /* the transmit queue waits for room in rst[] */
	unsigned next_conn; /* where rx_pump looks first for data: connections take turns */
	bool rx_waiting;
	bool reset_pending; /* a restore dropped the connections: the driver is not told yet */
	struct virtq_chain chain;
	uint8_t buf[MAX_PKT];
};

static void put_hdr(uint8_t *h, uint64_t src_cid, uint64_t dst_cid, uint32_t sp, uint32_t dp,
		    uint32_t len, uint16_t op, uint32_t flags, const struct conn *c)
{
	memset(h, 0, HDR);
	memcpy(h, &src_cid, 8);
	memcpy(h + 8, &dst_cid, 8);
	memcpy(h + 16, &sp, 4);
	memcpy(h + 20, &dp, 4);
	memcpy(h + 24, &len, 4);
	uint16_t type = 1; /* STREAM */
	memcpy(h + 28, &type, 2);
	memcpy(h + 30, &op, 2);
	memcpy(h + 32, &flags, 4);
	uint32_t ba = BUF_ALLOC, fc = c ? c->fwd_cnt : 0;
	memcpy(h + 36, &ba, 4);
	memcpy(h + 40, &fc, 4);
}

/* Arms fd's one-shot watch: events EPOLLIN to read it, 0 for its hang-up only (EPOLLHUP and
 * EPOLLERR always count), for a socket at end of file that would otherwise wake us forever. */
static void watch(struct virtio_pci *vp, int fd, int op, uint32_t events)
{
	if (vp->io_epfd < 0 || fd < 0)
		return;
	struct epoll_event ev = {.events = events | EPOLLONESHOT, .data.ptr = vp->io_tag};
	epoll_ctl(vp->io_epfd, op, fd, &ev);
}

static void conn_close(struct virtio_pci *vp, struct conn *c)
{
	if (c->fd >= 0) {
		if (vp->io_epfd >= 0)
			epoll_ctl(vp->io_epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Ends c with a RST to the guest: the host socket closes now, the slot once the RST has gone. */
static void conn_kill(struct virtio_pci *vp, struct conn *c)
{
	if (c->fd >= 0) {
		if (vp->io_epfd >= 0)
			epoll_ctl(vp->io_epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->state = C_RST_DUE;
	c->owe = 0;
	c->shut_due = 0;
}

static struct conn *conn_new(struct vvsock *s)
{
	for (int i = 0; i < MAX_CONN; i++)
		if (s->conn[i].state == C_FREE)
			return &s->conn[i];
	return NULL;
}

static struct conn *conn_find(struct vvsock *s, uint32_t host_port, uint32_t guest_port)
{
	for (int i = 0; i < MAX_CONN; i++)
		if (s->conn[i].state != C_FREE && s->conn[i].state != C_CONNECT_LINE &&
		    s->conn[i].host_port == host_port && s->conn[i].guest_port == guest_port)
			return &s->conn[i];
	return NULL;
}

/* A RST for a packet of no connection. tx_one makes sure there is room (one per packet). */
static void orphan_rst(struct vvsock *s, uint32_t host_port, uint32_t guest_port)
{
	log_debug("vsock: RST to guest port %u from host port %u (no connection)", guest_port,
		  host_port);
	if (s->nrst == NRST)
		return;
	unsigned i = (s->rst_head + s->nrst++) % NRST;
	s->rst[i].host_port = host_port;
	s->rst[i].guest_port = guest_port;
}

/* Bytes the guest can take on c now (§5.10.6.3.1): its buf_alloc less what is in flight. A
 * fwd_cnt ahead of what we sent, or a buf_alloc that shrank below it, gives nothing. */
static uint32_t credit(const struct conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
	return in_flight < c->peer_buf_alloc ? c->peer_buf_alloc - in_flight : 0;
}

/* fwd_cnt moved: a CREDIT_UPDATE once the guest's idea of our free space is CREDIT_STEP off. */
static void credit_check(struct conn *c)
{
	if (c->fwd_cnt - c->fwd_told >= CREDIT_STEP)
		c->owe |= OWE_CREDIT;
}

/* Whether c's host socket is read for the guest: not once either side ended that direction. */
static bool conn_reads(const struct conn *c)
{
	return c->state == C_OPEN && !((c->host_shut | c->shut_due) & SHUT_F_SEND) &&
	       !(c->guest_shut & SHUT_F_RCV);
}

/* Whether c may have a packet for the guest: a RST or control packet it owes, a SHUTDOWN, or
 * data it has credit for. */
static bool conn_has_work(const struct conn *c)
{
	if (c->state == C_RST_DUE || c->owe)
		return true;
	return c->state == C_OPEN && (c->shut_due || (conn_reads(c) && credit(c)));
}

/* Whether the host end of fd is gone both ways (closed, not only shut for writing). */
static bool host_gone(int fd)
{
	struct pollfd p = {.fd = fd};
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

/* c's host end was closed (both directions) or shut for writing: the guest learns it by a
 * SHUTDOWN once the data read before has gone out (rx_pump sends it in turn). */
static void host_ended(struct virtio_pci *vp, struct conn *c)
{
	bool gone = host_gone(c->fd);
	c->shut_due = (gone ? SHUT_F_BOTH : SHUT_F_SEND) & ~c->host_shut;
	if (!gone) /* a half-close: wait for the hang-up, not for input (EOF stays readable) */
		watch(vp, c->fd, EPOLL_CTL_MOD, 0);
}

/* Reads host data for the guest on c into s->buf, at most room bytes and its credit. Returns
 * true with *len bytes; false with nothing now (the socket is watched again), at end of file
 * (a SHUTDOWN is due) or after a read error (a RST is due). */
static bool conn_read(struct virtio_pci *vp, struct vvsock *s, struct conn *c, uint64_t room,
		      uint32_t *len)
{
	uint32_t want = credit(c);
	if (want > room)
		want = (uint32_t)room;
	if (want > MAX_PKT - HDR)
		want = MAX_PKT - HDR;
	if (!want) /* a buffer with room for a header only takes control packets */
		return false;
	ssize_t r = recv(c->fd, s->buf + HDR, want, MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		watch(vp, c->fd, EPOLL_CTL_MOD, EPOLLIN);
		return false;
	}
	if (r > 0) {
		*len = (uint32_t)r;
		return true;
	}
	if (r < 0) { /* ECONNRESET: the host end closed on data it had not read */
		log_debug("vsock: host port %u: %s", c->host_port, strerror(errno));
		conn_kill(vp, c);
	} else {
		host_ended(vp, c); /* end of file, after everything before it went out */
	}
	return false;
}

/*
 * Takes the next packet from the connections for a receive buffer with room bytes of payload:
 * per connection, a RST or the control packet it owes, else a SHUTDOWN that is due or data
 * read from the host socket (never more than room or the guest's credit), else a credit
 * update. Connections take turns. Returns false when none has anything now.
 */
static bool conn_next(struct virtio_pci *vp, struct vvsock *s, uint64_t room, struct pkt *p,
		      uint32_t *len)
{
	for (unsigned k = 0; k < MAX_CONN; k++) {
		unsigned i = (s->next_conn + k) % MAX_CONN;
		struct conn *c = &s->conn[i];
		if (!conn_has_work(c))
			continue;
		uint16_t op = 0;
		if (c->state == C_RST_DUE) {
			op = OP_RST;
		} else if (c->owe & OWE_REQUEST) {
			op = OP_REQUEST;
			c->owe &= ~OWE_REQUEST;
		} else if (c->owe & OWE_RESPONSE) {
			op = OP_RESPONSE;
			c->owe &= ~OWE_RESPONSE;
		} else if (c->state == C_OPEN && !c->shut_due && conn_reads(c) && credit(c)) {
			if (conn_read(vp, s, c, room, len))
				op = OP_RW;
			else if (c->state == C_RST_DUE)
				op = OP_RST;
		}
		uint32_t flags = 0;
		if (!op && c->state == C_OPEN && c->shut_due) {
			op = OP_SHUTDOWN;
			flags = c->host_shut | c->shut_due;
		}
		if (!op && (c->owe & OWE_CREDIT))
			op = OP_CREDIT_UPDATE; /* data would have told the guest as much */
		if (!op)
			continue;
		s->next_conn = i + 1;
		*p = (struct pkt){c->host_port, c->guest_port, op, c, flags};
		return true;
	}
	return false;
}

/* A SHUTDOWN went out on c: once the host end is gone both ways, nothing is left to do with
 * the connection (the guest's RST finds none, which is fine: §5.10.6.6). */
static void shut_sent(struct virtio_pci *vp, struct conn *c)
{
	c->host_shut |= c->shut_due;
	c->shut_due = 0;
	if (c->host_shut == SHUT_F_BOTH)
		conn_close(vp, c);
}

/* Packet p (payload len) is in the guest's buffer: its connection's books. */
static void pkt_sent(struct virtio_pci *vp, const struct pkt *p, uint32_t len)
{
	struct conn *c = p->c;
	if (!c)
		return;
	c->fwd_told = c->fwd_cnt; /* every header carries it */
	c->owe &= ~OWE_CREDIT;
	if (p->op == OP_RW)
		c->tx_cnt += len;
	else if (p->op == OP_SHUTDOWN && c->shut_due)
		shut_sent(vp, c);
	else if (p->op == OP_RST)
		conn_close(vp, c);
}

/*
 * Fills receive buffers: RSTs for packets of no connection first, then the connections' RSTs,
 * control packets, SHUTDOWNs and data, each packet cut to the buffer at hand and to the
 * guest's credit, so any amount of data crosses in buffers of any size. With no buffer left
 * the sockets are not read (nor watched) until the driver adds buffers: nothing is lost and
 * nothing spins.
 */
static void rx_pump(struct virtio_pci *vp, struct vvsock *s)
{
	struct virtq *vq = &vp->vq[RXQ];
	bool any = false;
	const char *why;
	if (!vq->enabled || !(vp->status & VIRTIO_STATUS_DRIVER_OK) ||
	    (vp->status & VIRTIO_STATUS_NEEDS_RESET)) {
		s->rx_waiting = true;
		return;
	}
	for (unsigned budget = RX_BUDGET;; budget--) {
		bool work = s->nrst > 0;
		for (int i = 0; i < MAX_CONN && !work; i++)
			work = conn_has_work(&s->conn[i]);
		if (!work)
			break;
		if (!budget) { /* come back through the queue's kick eventfd */
			uint64_t one = 1;
			if (vp->kick_fd[RXQ] >= 0 && write(vp->kick_fd[RXQ], &one, sizeof(one)) < 0)
				log_debug("vsock: cannot requeue the receive queue");
			break;
		}
		int r = virtq_pop(vq, &s->chain, &why);
		if (r == 0 && virtq_enable_notify(vq))
			r = virtq_pop(vq, &s->chain, &why);
		if (r < 0) {
			virtio_pci_needs_reset(vp, why);
			return;
		}
		if (r == 0) { /* the driver's next kick of the receive queue brings us back */
			s->rx_waiting = true;
			break;
		}
		if (s->chain.in_len < HDR) {
			virtq_unpop(vq);
			virtio_pci_needs_reset(vp, "vsock receive buffer smaller than a header");
			return;
		}
		struct pkt p;
		uint32_t len = 0;
		if (s->nrst) {
			p = (struct pkt){s->rst[s->rst_head].host_port,
					 s->rst[s->rst_head].guest_port, OP_RST, NULL, 0};
			s->rst_head = (s->rst_head + 1) % NRST;
			s->nrst--;
		} else if (!conn_next(vp, s, s->chain.in_len - HDR, &p, &len)) {
			/* Nothing to read after all: the buffer stays the driver's. */
			virtq_unpop(vq);
			break;
		}
		put_hdr(s->buf, HOST_CID, s->cid, p.src_port, p.dst_port, len, p.op, p.flags, p.c);
		virtq_chain_write(&s->chain, 0, s->buf, HDR + (uint64_t)len);
		virtq_push(vq, s->chain.head, HDR + len);
		pkt_sent(vp, &p, len);
		any = true;
	}
	if (any && virtq_should_notify(vq))
		virtio_pci_notify_queue(vp, RXQ);
}

static int connect_path(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* Writes block at most 100 ms (a peer that stops reading loses its connection). */
	struct timeval tv = {0, 100000};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One packet from the guest. */
static uint32_t tx_one(struct virtio_pci *vp, const struct virtq_chain *ch)
{
	struct vvsock *s = vp->dev;
	if (s->nrst == NRST) { /* no room for the RST this packet may need: later */
		s->tx_stalled = true;
		return VIRTIO_SERVE_RETRY;
	}
	uint8_t h[HDR];
	if (virtq_chain_read(ch, 0, h, HDR) != HDR)
		return 0;
	uint64_t src_cid, dst_cid;
	uint32_t sp, dp, len, flags, ba, fc;
	uint16_t type, op;
	memcpy(&src_cid, h, 8);
	memcpy(&dst_cid, h + 8, 8);
	memcpy(&sp, h + 16, 4);
	memcpy(&dp, h + 20, 4);
	memcpy(&len, h + 24, 4);
	memcpy(&type, h + 28, 2);
	memcpy(&op, h + 30, 2);
	memcpy(&flags, h + 32, 4);
	memcpy(&ba, h + 36, 4);
	memcpy(&fc, h + 40, 4);
	log_debug("vsock: from guest port %u to host port %u: op %u len %u", sp, dp, op, len);
	if (src_cid != s->cid || dst_cid != HOST_CID || type != 1)
		return 0; /* not for us: dropped (the spec allows a RST; nothing to reset) */
	struct conn *c = conn_find(s, dp, sp);
	if (c && c->state == C_RST_DUE) {
		/* Our RST is on its way; the guest's own RST crossing it ends the matter. */
		if (op == OP_RST)
			conn_close(vp, c);
		return 0;
	}
	if (c) {
		c->peer_buf_alloc = ba;
		c->peer_fwd_cnt = fc;
	}
	switch (op) {
	case OP_REQUEST: {
		if (c) {
			conn_kill(vp, c);
			break;
		}
		char path[140];
		snprintf(path, sizeof(path), "%s_%u", s->path, dp);
		struct conn *n = conn_new(s);
		int fd = n ? connect_path(path) : -1;
		if (fd < 0) {
			orphan_rst(s, dp, sp);
			break;
		}
		*n = (struct conn){.state = C_OPEN,
				   .fd = fd,
				   .host_port = dp,
				   .guest_port = sp,
				   .peer_buf_alloc = ba,
				   .peer_fwd_cnt = fc,
				   .owe = OWE_RESPONSE};
		watch(vp, fd, EPOLL_CTL_ADD, EPOLLIN);
		break;
	}
	case OP_RESPONSE:
		if (c && c->state == C_REQUEST_SENT) {
			char ok[32];
			int k = snprintf(ok, sizeof(ok), "OK %u\n", c->host_port);
			if (write(c->fd, ok, (size_t)k) != k) {
				conn_kill(vp, c);
				break;
			}
			c->state = C_OPEN;
			c->owe &= ~OWE_REQUEST;
			watch(vp, c->fd, EPOLL_CTL_MOD, EPOLLIN);
		}
		break;
	case OP_RW:
		if (!c) {
			orphan_rst(s, dp, sp);
			break;
		}
		if (c->state != C_OPEN || len != ch->out_len - HDR || len > BUF_ALLOC) {
			conn_kill(vp, c);
			break;
		}
		for (unsigned i = 0, off = 0; i < ch->nout && len; i++) {
			/* The payload may start inside the header's descriptor. */
			size_t l = ch->iov[i].iov_len;
			uint8_t *b = ch->iov[i].iov_base;
			if (off + l <= HDR) {
				off += (unsigned)l;
				continue;
			}
			size_t skip = off < HDR ? HDR - off : 0;
			off += (unsigned)l;
			if (send(c->fd, b + skip, l - skip, MSG_NOSIGNAL) != (ssize_t)(l - skip)) {
				conn_kill(vp, c);
				return 0;
			}
		}
		c->fwd_cnt += len;
		credit_check(c);
		break;
	case OP_CREDIT_REQUEST:
		if (c && c->state == C_OPEN)
			c->owe |= OWE_CREDIT;
		break;
	case OP_CREDIT_UPDATE:
		break;
	case OP_SHUTDOWN:
		if (!c)
			break;
		c->guest_shut |= flags & SHUT_F_BOTH;
		if (c->state != C_OPEN || c->guest_shut == SHUT_F_BOTH) {
			/* A full close: we answer with a RST (§5.10.6.6). What the guest sent is
			 * with the host already; the host reads it, then end of file. */
			conn_kill(vp, c);
			break;
		}
		/* A half-close: the host sees the end of the direction the guest ended. */
		if (c->guest_shut & SHUT_F_SEND)
			shutdown(c->fd, SHUT_WR);
		if (c->guest_shut & SHUT_F_RCV) {
			shutdown(c->fd, SHUT_RD); /* the host's writes fail from now on */
			watch(vp, c->fd, EPOLL_CTL_MOD, 0);
		}
		break;
	case OP_RST:
		if (c)
			conn_close(vp, c);
		break;
	default:
		if (c)
			conn_kill(vp, c);
		else
			orphan_rst(s, dp, sp);
	}
	return 0;
}

/* A host connection on PATH: reads "CONNECT N\n", then asks the guest. */
static void connect_line(struct virtio_pci *vp, struct vvsock *s, struct conn *c)
{
	ssize_t r = recv(c->fd, c->line + c->line_len, sizeof(c->line) - 1 - c->line_len,
			 MSG_DONTWAIT | MSG_PEEK);
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		conn_close(vp, c);
		return;
	}
	if (r < 0) {
		watch(vp, c->fd, EPOLL_CTL_MOD, EPOLLIN);
		return;
	}
	/* Take bytes up to the newline only: what follows is the stream's data. */
	char *nl = memchr(c->line + c->line_len, '\n', (size_t)r);
	size_t take = nl ? (size_t)(nl - (c->line + c->line_len)) + 1 : (size_t)r;
	if (recv(c->fd, c->line + c->line_len, take, MSG_DONTWAIT) != (ssize_t)take) {
		conn_close(vp, c);
		return;
	}
	c->line_len += (unsigned)take;
	c->line[c->line_len] = 0;
	if (!nl) {
		if (c->line_len >= sizeof(c->line) - 1)
			conn_close(vp, c);
		else
			watch(vp, c->fd, EPOLL_CTL_MOD, EPOLLIN);
		return;
	}
	unsigned port;
	char tail;
	if (sscanf(c->line, "CONNECT %u%c", &port, &tail) != 2 || tail != '\n') {
		conn_close(vp, c);
		return;
	}
	c->guest_port = port;
	c->host_port = s->next_port++;
	c->state = C_REQUEST_SENT;
	c->peer_buf_alloc = 0;
	c->owe = OWE_REQUEST;
}

/* Tells the driver its connections are gone (§5.10.6.7, a TRANSPORT_RESET event) once it has
 * an event buffer; served from the I/O thread, after the restore has set the MSI routes. */
static void post_transport_reset(struct virtio_pci *vp, struct vvsock *s)
{
	struct virtq *evq = &vp->vq[EVQ];
	const char *why;
	int r = virtq_pop(evq, &s->chain, &why);
	if (r < 0) {
		virtio_pci_needs_reset(vp, why);
		return;
	}
	if (r == 0)
		return;	 /* no buffer yet: the driver's next kick of the event queue sends it */
	uint32_t id = 0; /* VIRTIO_VSOCK_EVENT_TRANSPORT_RESET */
	virtq_push(evq, s->chain.head, (uint32_t)virtq_chain_write(&s->chain, 0, &id, 4));
	s->reset_pending = false;
	if (virtq_should_notify(evq))
		virtio_pci_notify_queue(vp, EVQ);
}

/* Fills receive buffers; a transmit queue that waited for room for its RSTs goes on if the
 * buffers took some. */
static void pump(struct virtio_pci *vp, struct vvsock *s)
{
	rx_pump(vp, s);
	if (s->tx_stalled && s->nrst < NRST && vp->vq[TXQ].enabled &&
	    (vp->status & VIRTIO_STATUS_DRIVER_OK) && !(vp->status & VIRTIO_STATUS_NEEDS_RESET)) {
		s->tx_stalled = false;
		virtio_pci_serve(vp, TXQ, &s->chain, tx_one);
		rx_pump(vp, s);
	}
}

static void vsock_notify(struct virtio_pci *vp, unsigned q)
{
	struct vvsock *s = vp->dev;
	if (q == TXQ) {
		virtio_pci_serve(vp, TXQ, &s->chain, tx_one);
		pump(vp, s);
	} else if (q == RXQ) {
		s->rx_waiting = false;
		pump(vp, s);
	} else if (q == EVQ && s->reset_pending) {
		/* The event queue only ever gets transport resets from us, after a restore. */
		post_transport_reset(vp, s);
	}
}

static void vsock_backend_ready(struct virtio_pci *vp)
{
	struct vvsock *s = vp->dev;
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0) {
		struct conn *c = conn_new(s);
		if (!c) {
			close(fd);
		} else {
			struct timeval tv = {0, 100000};
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
			*c = (struct conn){.state = C_CONNECT_LINE, .fd = fd};
			watch(vp, fd, EPOLL_CTL_ADD, EPOLLIN);
		}
	}
	virtio_pci_watch_backend(vp);
	for (int i = 0; i < MAX_CONN; i++) {
		struct conn *c = &s->conn[i];
		if (c->state == C_CONNECT_LINE)
			connect_line(vp, s, c);
		/* A socket that is not read any more is watched for its hang-up only: has the
		 * host closed it? */
		else if (c->state == C_OPEN && !conn_reads(c) && !(c->shut_due & SHUT_F_RCV) &&
			 !(c->host_shut & SHUT_F_RCV) && host_gone(c->fd))
			c->shut_due = SHUT_F_BOTH & ~c->host_shut;
	}
	pump(vp, s);
}

static int vsock_backend_fd(struct virtio_pci *vp)
{
	return ((struct vvsock *)vp->dev)->listen_fd;
}

static void vsock_reset(struct virtio_pci *vp)
{
	struct vvsock *s = vp->dev;
	if (!s)
		return;
	for (int i = 0; i < MAX_CONN; i++)
		if (s->conn[i].state != C_FREE)
			conn_close(vp, &s->conn[i]);
	s->nrst = s->rst_head = 0;
	s->tx_stalled = false;
	s->reset_pending = false; /* the driver starts over anyway */
}

static void vsock_cfg_read(struct virtio_pci *vp, unsigned off, void *data, unsigned len)
{
	struct vvsock *s = vp->dev;
	uint8_t c[8];
	memcpy(c, &s->cid, 8);
	if (off + len <= sizeof(c))
		memcpy(data, &c[off], len);
}

static int vsock_save(struct virtio_pci *vp, struct state_buf *buf)
{
	struct vvsock *s = vp->dev;
	struct state_w w = {buf, 0};
	sw_u64(&w, s->cid); /* connections do not survive a snapshot (as in Firecracker) */
	return w.err;
}

static int vsock_restore(struct virtio_pci *vp, struct state_r *r)
{
	struct vvsock *s = vp->dev;
	if (sr_u64(r) != s->cid || !sr_done(r))
		return -EINVAL;
	/* Connections do not survive: drop ours and tell the driver so, as Firecracker does
	 * after a snapshot is loaded. Not from here: the interrupt would go out before the
	 * transport has set the MSI routes. The transport kicks every live queue next, and the
	 * event queue's kick sends the event. */
	for (int i = 0; i < MAX_CONN; i++)
		if (s->conn[i].state != C_FREE)
			conn_close(vp, &s->conn[i]);
	s->nrst = s->rst_head = 0;
	s->tx_stalled = false;
	s->rx_waiting = false;
	s->reset_pending = (vp->status & VIRTIO_STATUS_DRIVER_OK) != 0;
	return 0;
}

static void vsock_destroy(struct virtio_pci *vp)
{
	struct vvsock *s = vp->dev;
	for (int i = 0; i < MAX_CONN; i++)
		if (s->conn[i].fd >= 0 && s->conn[i].state != C_FREE)
			close(s->conn[i].fd);
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		unlink(s->path);
	}
	free(s);
}

static const struct virtio_dev_ops vsock_ops = {
    .notify = vsock_notify,
    .cfg_read = vsock_cfg_read,
    .reset = vsock_reset,
    .save = vsock_save,
    .restore = vsock_restore,
    .destroy = vsock_destroy,
    .backend_fd = vsock_backend_fd,
    .backend_ready = vsock_backend_ready,
};

struct virtio_pci *virtio_vsock_new(uint32_t cid, const char *uds, const struct guest_mem *mem,
				    struct irq_chip *chip, struct cove_err *err)
{
	struct vvsock *s = calloc(1, sizeof(*s));
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	if (!s || !vp) {
		free(s);
		free(vp);
		cove_err_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(uds) + 12 >= sizeof(sa.sun_path)) {
		cove_err_set(err, -ENAMETOOLONG, "vsock uds %s: path too long", uds);
		goto fail;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", uds);
	snprintf(s->path, sizeof(s->path), "%s", uds);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(s->listen_fd, 16)) {
		cove_err_set(err, -errno, "vsock uds %s: %s", uds, strerror(errno));
		if (s->listen_fd >= 0)
			close(s->listen_fd);
		goto fail;
	}
	for (int i = 0; i < MAX_CONN; i++)
		s->conn[i].fd = -1;
	s->cid = cid;
	s->next_port = 1u << 30;
	struct virtio_pci_config cfg = {
	    .name = "virtio-vsock",
	    .device_id = 19,
	    .class_code = 0x00FF00,
	    .nqueues = 3,
	    .qmax = 128,
	    .ops = &vsock_ops,
	    .dev = s,
	    .mem = mem,
	    .chip = chip,
	};
	virtio_pci_init(vp, &cfg);
	return vp;
fail:
	free(s);
	free(vp);
	return NULL;
}
