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
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#define RXQ	  0
#define TXQ	  1
#define EVQ	  2
#define HOST_CID  2
#define HDR	  44
#define MAX_CONN  64
#define BUF_ALLOC (256u << 10) /* per connection: guest data the host socket has not taken */
#define MAX_PKT	  (64u << 10)
#define RX_BUDGET 256 /* packets one rx_pump puts out before it lets the others run */
/* Space freed in a connection's buffer since the guest last heard fwd_cnt that earns it a
 * CREDIT_UPDATE: a guest out of credit hears of it once this much has gone to the host. */
#define CREDIT_STEP (BUF_ALLOC / 4)
/* How long the guest has to answer a connection request, and the host to take what the guest
 * sent before its full SHUTDOWN (both Firecracker's). */
#define CONN_TIMEOUT_NS (2000ULL * 1000000)
/* RSTs for packets of no connection, waiting for receive buffers; when full, the transmit
 * queue waits too (each of its packets may need one). */
#define NRST 32
/* The device's epoll: the listening socket, the timer, and each connection's socket (its slot
 * and generation, so that an event for an earlier occupant of the slot is ignored). */
#define TAG_LISTEN UINT64_MAX
#define TAG_TIMER  (UINT64_MAX - 1)

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
	uint32_t gen; /* bumped when the slot is freed */
	uint32_t host_port, guest_port;
	uint32_t peer_buf_alloc, peer_fwd_cnt; /* the guest's receive credit */
	uint32_t tx_cnt;		       /* bytes we sent the guest */
	uint32_t fwd_cnt;		       /* bytes from the guest written to the host socket */
	uint32_t fwd_told;		       /* fwd_cnt as the guest last heard it */
	uint32_t host_shut;  /* SHUTDOWN flags the guest has from us (the host end's state) */
	uint32_t shut_due;   /* SHUTDOWN flags still to send, after the data read before them */
	uint32_t guest_shut; /* SHUTDOWN flags the guest sent */
	unsigned owe;	     /* OWE_* */
	/* What the socket's one-shot watch waits for besides EPOLLOUT (armed while data is
	 * held): input, or its hang-up only (EPOLLHUP and EPOLLERR always count). */
	bool want_in, want_hup;
	/* When the connection is given up (devclock_mono_ns(); 0: never): see expire(). */
	uint64_t deadline;
	/* Guest data the host socket has not taken yet: a ring of BUF_ALLOC bytes (allocated on
	 * first use), held_len bytes from held_at. The guest's credit keeps it from overflowing. */
	uint8_t *held;
	uint32_t held_at, held_len;
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
	int epfd;     /* the device's epoll (its backend fd) */
	int timer_fd; /* the earliest deadline */
	bool timer_set;
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
	struct iovec iov[VIRTQ_MAX_SEGS];
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

static uint64_t conn_tag(const struct vvsock *s, const struct conn *c)
{
	return (uint64_t)(c - s->conn) | (uint64_t)c->gen << 32;
}

/* Arms c's one-shot watch for what it waits for: input (want_in), room for the data it holds,
 * its hang-up (want_hup, or with either of the others). Waiting for nothing, it stays off. */
static void conn_arm(struct vvsock *s, struct conn *c)
{
	if (c->fd < 0 || !(c->want_in || c->want_hup || c->held_len))
		return;
	struct epoll_event ev = {.events = (c->want_in ? EPOLLIN : 0) |
					   (c->held_len ? EPOLLOUT : 0) | EPOLLONESHOT,
				 .data.u64 = conn_tag(s, c)};
	epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Takes fd into slot c (its watch: input, one-shot). Returns false when epoll refuses it. */
static bool conn_take_fd(struct vvsock *s, struct conn *c, int fd)
{
	c->fd = fd;
	c->want_in = true;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = conn_tag(s, c)};
	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) == 0;
}

static void conn_close_fd(struct vvsock *s, struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	free(c->held);
	c->held = NULL;
	c->held_at = c->held_len = 0;
}

/* Frees the slot: events still on their way for it are stale (the generation moves on). */
static void conn_close(struct vvsock *s, struct conn *c)
{
	conn_close_fd(s, c);
	uint32_t gen = c->gen + 1;
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->gen = gen;
}

/* Ends c with a RST to the guest: the host socket closes now (what it has not taken is
 * dropped), the slot once the RST has gone. */
static void conn_kill(struct vvsock *s, struct conn *c)
{
	conn_close_fd(s, c);
	c->state = C_RST_DUE;
	c->owe = 0;
	c->shut_due = 0;
	c->deadline = 0;
	c->want_in = c->want_hup = false;
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

/* Sets the timer for the earliest deadline (from now, on the device clock). */
static void arm_timer(struct vvsock *s)
{
	uint64_t next = 0;
	for (int i = 0; i < MAX_CONN; i++) {
		uint64_t d = s->conn[i].deadline;
		if (d && (!next || d < next))
			next = d;
	}
	if (!next && !s->timer_set)
		return;
	struct itimerspec its = {0};
	if (next) {
		uint64_t now = devclock_mono_ns();
		uint64_t wait = next > now ? next - now : 1;
		its.it_value.tv_sec = (time_t)(wait / 1000000000ULL);
		its.it_value.tv_nsec = (long)(wait % 1000000000ULL);
	}
	timerfd_settime(s->timer_fd, 0, &its, NULL);
	s->timer_set = next != 0;
}

/* Connections whose deadline has passed: a request the guest never answered (the host's
 * socket is closed; the guest gets a RST if it saw the request), or data the host did not
 * take within the time a full SHUTDOWN leaves it (dropped, then the RST). */
static void expire(struct vvsock *s)
{
	uint64_t now = devclock_mono_ns();
	for (int i = 0; i < MAX_CONN; i++) {
		struct conn *c = &s->conn[i];
		if (!c->deadline || now < c->deadline)
			continue;
		c->deadline = 0;
		if (c->state == C_REQUEST_SENT) {
			log_debug("vsock: guest port %u did not answer host port %u", c->guest_port,
				  c->host_port);
			if (c->owe & OWE_REQUEST)
				conn_close(s, c);
			else
				conn_kill(s, c);
		} else if (c->state == C_OPEN) {
			log_debug("vsock: host port %u: %u bytes from the guest not taken in time",
				  c->host_port, c->held_len);
			conn_kill(s, c);
		}
	}
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
 * SHUTDOWN once the data read before has gone out (rx_pump sends it in turn). A host gone
 * with guest data it never took ends the connection with a RST instead. */
static void host_ended(struct vvsock *s, struct conn *c)
{
	bool gone = host_gone(c->fd);
	if (gone && c->held_len) {
		log_debug("vsock: host port %u closed on %u bytes from the guest", c->host_port,
			  c->held_len);
		conn_kill(s, c);
		return;
	}
	c->shut_due = (gone ? SHUT_F_BOTH : SHUT_F_SEND) & ~c->host_shut;
	c->want_in = false;
	if (!gone) { /* a half-close: wait for the hang-up, not for input (EOF stays readable) */
		c->want_hup = true;
		conn_arm(s, c);
	}
}

/* Reads host data for the guest on c into s->buf, at most room bytes and its credit. Returns
 * true with *len bytes; false with nothing now (the socket is watched again), at end of file
 * (a SHUTDOWN or RST is due) or after a read error (a RST is due). */
static bool conn_read(struct vvsock *s, struct conn *c, uint64_t room, uint32_t *len)
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
		c->want_in = true;
		conn_arm(s, c);
		return false;
	}
	c->want_in = false;
	if (r > 0) {
		*len = (uint32_t)r;
		return true;
	}
	if (r < 0) { /* ECONNRESET: the host end closed on data it had not read */
		log_debug("vsock: host port %u: %s", c->host_port, strerror(errno));
		conn_kill(s, c);
	} else {
		host_ended(s, c); /* end of file, after everything before it went out */
	}
	return false;
}

/*
 * Takes the next packet from the connections for a receive buffer with room bytes of payload:
 * per connection, a RST or the control packet it owes, else a SHUTDOWN that is due or data
 * read from the host socket (never more than room or the guest's credit), else a credit
 * update. Connections take turns. Returns false when none has anything now.
 */
static bool conn_next(struct vvsock *s, uint64_t room, struct pkt *p, uint32_t *len)
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
			if (conn_read(s, c, room, len))
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
static void shut_sent(struct vvsock *s, struct conn *c)
{
	c->host_shut |= c->shut_due;
	c->shut_due = 0;
	if (c->host_shut == SHUT_F_BOTH)
		conn_close(s, c);
}

/* Packet p (payload len) is in the guest's buffer: its connection's books. */
static void pkt_sent(struct vvsock *s, const struct pkt *p, uint32_t len)
{
	struct conn *c = p->c;
	if (!c)
		return;
	c->fwd_told = c->fwd_cnt; /* every header carries it */
	c->owe &= ~OWE_CREDIT;
	if (p->op == OP_RW)
		c->tx_cnt += len;
	else if (p->op == OP_SHUTDOWN && c->shut_due)
		shut_sent(s, c);
	else if (p->op == OP_RST)
		conn_close(s, c);
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
		} else if (!conn_next(s, s->chain.in_len - HDR, &p, &len)) {
			/* Nothing to read after all: the buffer stays the driver's. */
			virtq_unpop(vq);
			break;
		}
		put_hdr(s->buf, HOST_CID, s->cid, p.src_port, p.dst_port, len, p.op, p.flags, p.c);
		virtq_chain_write(&s->chain, 0, s->buf, HDR + (uint64_t)len);
		virtq_push(vq, s->chain.head, HDR + len);
		pkt_sent(s, &p, len);
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
	/* Non-blocking: nothing waits on the host. A listener whose backlog is full refuses
	 * (EAGAIN) as one that is not there does. */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* What c holds is gone to the host: a half-close of the guest waiting for it reaches the host
 * now, and a full one ends the connection with our RST (§5.10.6.6). */
static void held_done(struct vvsock *s, struct conn *c)
{
	c->held_at = 0;
	if (c->guest_shut == SHUT_F_BOTH)
		conn_kill(s, c);
	else if (c->guest_shut & SHUT_F_SEND)
		shutdown(c->fd, SHUT_WR);
}

/* Writes what c holds to the host socket, as much as it takes now, and counts it forwarded.
 * A write error (the host is gone) ends the connection with a RST. */
static void held_flush(struct vvsock *s, struct conn *c)
{
	while (c->held_len) {
		uint32_t first = BUF_ALLOC - c->held_at;
		if (first > c->held_len)
			first = c->held_len;
		struct iovec iov[2] = {{c->held + c->held_at, first},
				       {c->held, c->held_len - first}};
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = first < c->held_len ? 2 : 1};
		ssize_t r = sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (r <= 0) {
			log_debug("vsock: host port %u: %s with %u bytes from the guest held",
				  c->host_port, r < 0 ? strerror(errno) : "no progress",
				  c->held_len);
			conn_kill(s, c);
			return;
		}
		c->held_at = (c->held_at + (uint32_t)r) % BUF_ALLOC;
		c->held_len -= (uint32_t)r;
		c->fwd_cnt += (uint32_t)r;
	}
	credit_check(c);
	if (!c->held_len)
		held_done(s, c);
}

/*
 * The guest's data (len bytes after the header) for c's host socket: written at once as far
 * as the socket takes it, the rest held (after what is held already, to keep the order) and
 * written when the socket has room. fwd_cnt counts what the socket took, so the guest's credit
 * (§5.10.6.3) bounds what is held; the caller refuses data past it.
 */
static void conn_write(struct vvsock *s, struct conn *c, const struct virtq_chain *ch, uint32_t len)
{
	uint32_t done = 0;
	if (!len)
		return;
	if (!c->held_len) {
		int n = virtq_chain_slice(ch, false, HDR, len, s->iov, VIRTQ_MAX_SEGS);
		struct msghdr m = {.msg_iov = s->iov, .msg_iovlen = (size_t)n};
		ssize_t r = n > 0 ? sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) : 0;
		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			log_debug("vsock: host port %u: %s", c->host_port, strerror(errno));
			conn_kill(s, c);
			return;
		}
		done = r > 0 ? (uint32_t)r : 0;
		c->fwd_cnt += done;
	}
	if (done < len) {
		if (!c->held && !(c->held = malloc(BUF_ALLOC))) {
			log_warn("vsock: host port %u: out of memory for the guest's data",
				 c->host_port);
			conn_kill(s, c);
			return;
		}
		uint32_t n = len - done, at = (c->held_at + c->held_len) % BUF_ALLOC;
		uint32_t first = n < BUF_ALLOC - at ? n : BUF_ALLOC - at;
		virtq_chain_read(ch, HDR + done, c->held + at, first);
		virtq_chain_read(ch, HDR + done + first, c->held, n - first);
		c->held_len += n;
		conn_arm(s, c); /* EPOLLOUT brings us back */
	}
	credit_check(c);
}

/* The guest's SHUTDOWN on c (flags accumulate). */
static void guest_shutdown(struct vvsock *s, struct conn *c, uint32_t flags)
{
	c->guest_shut |= flags & SHUT_F_BOTH;
	if (c->state != C_OPEN) {
		conn_kill(s, c);
		return;
	}
	if (c->guest_shut & SHUT_F_RCV) {
		shutdown(c->fd, SHUT_RD); /* the host's writes fail from now on */
		c->want_in = false;
		c->want_hup = true;
	}
	if (c->guest_shut == SHUT_F_BOTH) {
		/* A full close: we answer with a RST (§5.10.6.6) once the host socket has what the
		 * guest sent; the host reads it, then end of file. It has CONN_TIMEOUT_NS. */
		if (!c->held_len) {
			conn_kill(s, c);
			return;
		}
		c->deadline = devclock_mono_ns() + CONN_TIMEOUT_NS;
	} else if ((c->guest_shut & SHUT_F_SEND) && !c->held_len) {
		/* A half-close: the host reads end of file after the data (held_done otherwise). */
		shutdown(c->fd, SHUT_WR);
	}
	conn_arm(s, c);
}

/* The guest's request for host port dp from its port sp: connects to PATH_dp. */
static void guest_connect(struct vvsock *s, uint32_t dp, uint32_t sp, uint32_t ba, uint32_t fc)
{
	char path[140];
	snprintf(path, sizeof(path), "%s_%u", s->path, dp);
	struct conn *n = conn_new(s);
	int fd = n ? connect_path(path) : -1;
	if (fd < 0) {
		orphan_rst(s, dp, sp);
		return;
	}
	n->state = C_OPEN;
	n->host_port = dp;
	n->guest_port = sp;
	n->peer_buf_alloc = ba;
	n->peer_fwd_cnt = fc;
	n->owe = OWE_RESPONSE;
	if (!conn_take_fd(s, n, fd))
		conn_kill(s, n);
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
			conn_close(s, c);
		return 0;
	}
	if (c) {
		c->peer_buf_alloc = ba;
		c->peer_fwd_cnt = fc;
	}
	switch (op) {
	case OP_REQUEST:
		if (c)
			conn_kill(s, c);
		else
			guest_connect(s, dp, sp, ba, fc);
		break;
	case OP_RESPONSE:
		if (c && c->state == C_REQUEST_SENT) {
			char ok[32];
			int k = snprintf(ok, sizeof(ok), "OK %u\n", c->host_port);
			if (write(c->fd, ok, (size_t)k) != k) {
				conn_kill(s, c);
				break;
			}
			c->state = C_OPEN;
			c->owe &= ~OWE_REQUEST;
			c->deadline = 0;
			c->want_in = true;
			c->want_hup = false;
			conn_arm(s, c);
		}
		break;
	case OP_RW:
		if (!c) {
			orphan_rst(s, dp, sp);
			break;
		}
		if (c->state != C_OPEN || len != ch->out_len - HDR ||
		    (c->guest_shut & SHUT_F_SEND)) {
			conn_kill(s, c);
			break;
		}
		if (len > BUF_ALLOC - c->held_len) {
			/* Past the credit we gave (§5.10.6.3.1): not a byte of it is written. */
			log_debug("vsock: guest port %u sent %u bytes with %u of credit", sp, len,
				  BUF_ALLOC - c->held_len);
			conn_kill(s, c);
			break;
		}
		conn_write(s, c, ch, len);
		break;
	case OP_CREDIT_REQUEST:
		if (c && c->state == C_OPEN)
			c->owe |= OWE_CREDIT;
		break;
	case OP_CREDIT_UPDATE:
		break;
	case OP_SHUTDOWN:
		if (c)
			guest_shutdown(s, c, flags);
		break;
	case OP_RST:
		if (c)
			conn_close(s, c);
		break;
	default:
		if (c)
			conn_kill(s, c);
		else
			orphan_rst(s, dp, sp);
	}
	return 0;
}

/* A host connection on PATH: reads "CONNECT N\n", then asks the guest. */
static void connect_line(struct vvsock *s, struct conn *c)
{
	ssize_t r = recv(c->fd, c->line + c->line_len, sizeof(c->line) - 1 - c->line_len,
			 MSG_DONTWAIT | MSG_PEEK);
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		conn_close(s, c);
		return;
	}
	if (r < 0) {
		c->want_in = true;
		conn_arm(s, c);
		return;
	}
	/* Take bytes up to the newline only: what follows is the stream's data. */
	char *nl = memchr(c->line + c->line_len, '\n', (size_t)r);
	size_t take = nl ? (size_t)(nl - (c->line + c->line_len)) + 1 : (size_t)r;
	if (recv(c->fd, c->line + c->line_len, take, MSG_DONTWAIT) != (ssize_t)take) {
		conn_close(s, c);
		return;
	}
	c->line_len += (unsigned)take;
	c->line[c->line_len] = 0;
	if (!nl) {
		if (c->line_len >= sizeof(c->line) - 1) {
			conn_close(s, c);
		} else {
			c->want_in = true;
			conn_arm(s, c);
		}
		return;
	}
	unsigned port;
	char tail;
	if (sscanf(c->line, "CONNECT %u%c", &port, &tail) != 2 || tail != '\n') {
		conn_close(s, c);
		return;
	}
	c->guest_port = port;
	c->host_port = s->next_port++;
	c->state = C_REQUEST_SENT;
	c->peer_buf_alloc = 0;
	c->owe = OWE_REQUEST;
	/* The guest has CONN_TIMEOUT_NS to answer (counted from now: also a guest that takes no
	 * packets at all lets the host go); meanwhile only the host's hang-up is watched. */
	c->deadline = devclock_mono_ns() + CONN_TIMEOUT_NS;
	c->want_hup = true;
	conn_arm(s, c);
}

/* An event on c's socket (its one-shot watch is off now). */
static void conn_event(struct vvsock *s, struct conn *c, uint32_t events)
{
	bool hup = events & (EPOLLHUP | EPOLLERR);
	/* Input is there: conn_next reads it when the guest can take it. */
	if (events & EPOLLIN)
		c->want_in = false;
	switch (c->state) {
	case C_CONNECT_LINE:
		connect_line(s, c);
		return;
	case C_REQUEST_SENT:
		if (hup) { /* the host gave up before the guest answered */
			if (c->owe & OWE_REQUEST)
				conn_close(s, c);
			else
				conn_kill(s, c);
		}
		return;
	case C_OPEN:
		break;
	default:
		return;
	}
	if (c->held_len && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))) {
		held_flush(s, c);
		if (c->state != C_OPEN)
			return;
		if (hup && c->held_len) { /* cannot be written any more */
			conn_kill(s, c);
			return;
		}
	}
	if (hup && c->want_hup) {
		/* A socket that is not read any more was watched for its hang-up only: the host
		 * closed it. */
		c->want_hup = false;
		if (!(c->shut_due & SHUT_F_RCV) && !(c->host_shut & SHUT_F_RCV) && host_gone(c->fd))
			c->shut_due = SHUT_F_BOTH & ~c->host_shut;
	}
	conn_arm(s, c);
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

static bool queue_live(const struct virtio_pci *vp, unsigned q)
{
	return vp->vq[q].enabled && (vp->status & VIRTIO_STATUS_DRIVER_OK) &&
	       !(vp->status & VIRTIO_STATUS_NEEDS_RESET);
}

/* Fills receive buffers; a transmit queue that waited for room for its RSTs goes on if the
 * buffers took some; then the timer is set for what is left. */
static void pump(struct virtio_pci *vp, struct vvsock *s)
{
	rx_pump(vp, s);
	if (s->tx_stalled && s->nrst < NRST && queue_live(vp, TXQ)) {
		s->tx_stalled = false;
		virtio_pci_serve(vp, TXQ, &s->chain, tx_one);
		rx_pump(vp, s);
	}
	arm_timer(s);
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

/* A host connection on PATH (one-shot watch for its CONNECT line). */
static void accept_host(struct vvsock *s)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct conn *c = conn_new(s);
	if (!c) {
		close(fd);
		return;
	}
	c->state = C_CONNECT_LINE;
	if (!conn_take_fd(s, c, fd))
		conn_close(s, c);
}

/* The device's epoll is ready: new host connections, the timer, connections' sockets. */
static void vsock_backend_ready(struct virtio_pci *vp)
{
	struct vvsock *s = vp->dev;
	struct epoll_event ev[MAX_CONN];
	int n = epoll_wait(s->epfd, ev, MAX_CONN, 0);
	for (int k = 0; k < n; k++) {
		uint64_t tag = ev[k].data.u64;
		if (tag == TAG_LISTEN) {
			accept_host(s);
		} else if (tag == TAG_TIMER) {
			uint64_t ticks;
			if (read(s->timer_fd, &ticks, sizeof(ticks)) < 0)
				log_debug("vsock: timer: %s", strerror(errno));
		} else {
			struct conn *c = &s->conn[(uint32_t)tag % MAX_CONN];
			if (c->state != C_FREE && c->gen == (uint32_t)(tag >> 32))
				conn_event(s, c, ev[k].events);
		}
	}
	expire(s);
	virtio_pci_watch_backend(vp); /* our epoll, one-shot in the I/O thread's */
	pump(vp, s);
}

static int vsock_backend_fd(struct virtio_pci *vp)
{
	return ((struct vvsock *)vp->dev)->epfd;
}

static void drop_all(struct vvsock *s)
{
	for (int i = 0; i < MAX_CONN; i++)
		if (s->conn[i].state != C_FREE)
			conn_close(s, &s->conn[i]);
	s->nrst = s->rst_head = 0;
	s->tx_stalled = false;
	arm_timer(s);
}

static void vsock_reset(struct virtio_pci *vp)
{
	struct vvsock *s = vp->dev;
	if (!s)
		return;
	drop_all(s);
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
	drop_all(s);
	s->rx_waiting = false;
	s->reset_pending = (vp->status & VIRTIO_STATUS_DRIVER_OK) != 0;
	return 0;
}

static void vsock_destroy(struct virtio_pci *vp)
{
	struct vvsock *s = vp->dev;
	for (int i = 0; i < MAX_CONN; i++)
		if (s->conn[i].state != C_FREE)
			conn_close(s, &s->conn[i]);
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		unlink(s->path);
	}
	close(s->timer_fd);
	close(s->epfd);
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

/* The listening socket at sa, the device's epoll, the timer, the first two in the epoll.
 * Returns 0 or -errno (nothing left behind). */
static int host_side_init(struct vvsock *s, const struct sockaddr_un *sa)
{
	int e;
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0)
		return -errno;
	if (bind(s->listen_fd, (const struct sockaddr *)sa, sizeof(*sa))) {
		e = -errno;
		goto err_socket;
	}
	if (listen(s->listen_fd, 16)) {
		e = -errno;
		goto err_bound;
	}
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		e = -errno;
		goto err_bound;
	}
	s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->timer_fd < 0) {
		e = -errno;
		goto err_epoll;
	}
	struct epoll_event l = {.events = EPOLLIN, .data.u64 = TAG_LISTEN};
	struct epoll_event t = {.events = EPOLLIN, .data.u64 = TAG_TIMER};
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->listen_fd, &l) ||
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->timer_fd, &t)) {
		e = -errno;
		goto err_timer;
	}
	return 0;
err_timer:
	close(s->timer_fd);
err_epoll:
	close(s->epfd);
err_bound:
	unlink(sa->sun_path);
err_socket:
	close(s->listen_fd);
	return e;
}

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
	int r = host_side_init(s, &sa);
	if (r) {
		cove_err_set(err, r, "vsock uds %s: %s", uds, strerror(-r));
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
