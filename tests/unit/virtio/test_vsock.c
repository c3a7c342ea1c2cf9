/* Unit tests of virtio-vsock's streams, driven as a Linux guest and a host program would: the
 * host connects through the Unix socket ("CONNECT N"), and the driver posts 4 KiB receive
 * buffers (header and payload split over two descriptors as Linux 6.1 does, or in one).
 * Large host-to-guest transfers crossing many buffers within the guest's credit, the device
 * idle (no wake-ups) while it has no buffer or no credit, the SHUTDOWN flags of a host that
 * closes or half-closes, the guest's half-closes reaching the host, and hostile buffers.
 * Guest to host: a megabyte to a host that reads slowly (the device keeps what the socket does
 * not take and gives credit back only as the host reads), a guest over its credit, every RST
 * and credit update delivered (none dropped, updates coalesced), and the 2 s timeouts. */
#include "devices/virtio/virtio_devices.h"
#include "skipclock.h"
#include "vdriver.h"

#include <errno.h>
#include <linux/sockios.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define HDR	    44
#define GUEST_CID   42
#define NRX	    8	 /* receive chains; chain i uses descriptors 2i and 2i + 1 */
#define RXPAY	    4096 /* payload bytes of a split chain (Linux 6.1) */
#define RXBUF(i)    (0x20000u + 0x1100u * (i))
#define TXBUF	    0x30000u
#define TXMAX	    0x1000u
#define TXPKT	    (TXMAX - HDR)	      /* the most tx_send carries */
#define STRAYBUF(i) (0x40000u + 0x100u * (i)) /* tx_post's packets, one per ring slot */
#define OP_REQUEST  1
#define OP_RESPONSE 2
#define OP_RST	    3
#define OP_SHUTDOWN 4
#define OP_RW	    5
#define OP_CREDIT   6
#define OP_CREDREQ  7
#define F_RCV	    1 /* VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE */
#define F_SEND	    2 /* VIRTIO_VSOCK_SHUTDOWN_F_SEND */

struct vs_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

/* One test's device, its I/O thread's epoll and the driver's bookkeeping. */
static struct virtio_pci *vp;
static int epfd = -1;
static char uds[80];
static uint16_t rx_used; /* used entries of the receive queue taken */
static unsigned tx_slot;
static char lpath[4][108]; /* the host's listening sockets (uds_PORT), unlinked at teardown */
static unsigned nlpath;

/* Receive chain i: even ones split header and payload (Linux 6.1), odd ones are one 4 KiB
 * buffer (Linux 6.3 on). Returns the payload room. */
static uint32_t rx_room(unsigned i)
{
	return i % 2 ? 4096 - HDR : RXPAY;
}

static void rx_post(unsigned i, bool kick)
{
	uint64_t a[2] = {RXBUF(i), RXBUF(i) + HDR};
	uint32_t l[2] = {HDR, RXPAY};
	bool w[2] = {true, true};
	if (i % 2)
		l[0] = 4096;
	vd_post(vp, 0, 2 * i, i % 2 ? 1 : 2, a, l, w, kick);
}

static void rx_kick(void)
{
	vd_wr(vp, VPCI_NOTIFY, 2, 0);
}

static void assert_no_reset(void)
{
	if (vd_rd(vp, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET)
		fail_msg("the device went into NEEDS_RESET");
}

/* Takes the next used receive buffer: header into h, payload into data (up to max bytes; the
 * rest is counted but dropped); gives the buffer back (without a kick). */
static bool rx_get(struct vs_hdr *h, uint8_t *data, size_t max)
{
	if (vd_used_idx(0) == rx_used)
		return false;
	uint32_t id, len = vd_used_len(0, rx_used);
	memcpy(&id, vd_ram + VD_QBASE(0) + 0x2004 + 8 * (rx_used % VD_QSIZE), 4);
	rx_used++;
	assert_true(id % 2 == 0 && id / 2 < NRX);
	unsigned i = id / 2;
	assert_true(len >= HDR);
	memcpy(h, vd_ram + RXBUF(i), HDR);
	if (h->len != len - HDR || h->len > rx_room(i))
		fail_msg("packet of %u bytes (used length %u) in a buffer with room for %u", h->len,
			 len, rx_room(i));
	assert_int_equal(h->src_cid, 2);
	assert_int_equal(h->dst_cid, GUEST_CID);
	assert_int_equal(h->type, 1);
	memcpy(data, vd_ram + RXBUF(i) + HDR, h->len < max ? h->len : max);
	rx_post(i, false);
	return true;
}

/* A packet from the guest (one descriptor, header and payload). */
static void tx_send(uint32_t sp, uint32_t dp, uint16_t op, uint32_t flags, uint32_t buf_alloc,
		    uint32_t fwd_cnt, const void *data, uint32_t len)
{
	assert_true(len <= TXMAX - HDR);
	struct vs_hdr h = {GUEST_CID, 2, sp, dp, len, 1, op, flags, buf_alloc, fwd_cnt};
	memcpy(vd_ram + TXBUF, &h, HDR);
	if (len)
		memcpy(vd_ram + TXBUF + HDR, data, len);
	uint16_t before = vd_used_idx(1);
	vd_post1(vp, 1, tx_slot++ % VD_QSIZE, TXBUF, HDR + len, false, true);
	assert_int_equal(vd_used_idx(1), (uint16_t)(before + 1));
}

/* What the I/O thread does: runs the device for each ready fd until none is. Returns the
 * wake-ups; a device that keeps its sockets ready without progress fails the test. */
static int io_run(void)
{
	int wakeups = 0;
	for (;;) {
		struct epoll_event ev[8];
		int n = epoll_wait(epfd, ev, 8, 0);
		assert_true(n >= 0);
		if (n == 0)
			return wakeups;
		wakeups += n;
		if (wakeups > 200)
			fail_msg("the device keeps waking the I/O thread (a busy loop)");
		for (int k = 0; k < n; k++)
			virtio_pci_backend(vp);
	}
}

/* Waits up to ms for the device's fds (EPOLLOUT on a socket, a timer), then runs it as io_run
 * does. Returns the wake-ups. */
static int io_wait(int ms)
{
	struct epoll_event ev[8];
	int n = epoll_wait(epfd, ev, 8, ms);
	assert_true(n >= 0 || errno == EINTR);
	for (int k = 0; k < n; k++)
		virtio_pci_backend(vp);
	return (n > 0 ? n : 0) + io_run();
}

static int vs_setup(void **state)
{
	if (vd_setup(state))
		return -1;
	snprintf(uds, sizeof(uds), "/tmp/cove-unit-vsock-%d", getpid());
	unlink(uds);
	struct cove_err err = {0};
	vp = virtio_vsock_new(GUEST_CID, uds, &vd_mem, NULL, &err);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!vp || epfd < 0)
		return -1;
	/* As virtio_machine does: the listening socket one-shot, the device re-arms it. */
	vp->io_epfd = epfd;
	vp->io_tag = vp;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = vp};
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, vp->ops->backend_fd(vp), &ev))
		return -1;
	rx_used = 0;
	tx_slot = 0;
	nlpath = 0;
	clock_skip_ns = 0;
	return 0;
}

static int vs_teardown(void **state)
{
	virtio_dev_free(vp);
	vp = NULL;
	close(epfd);
	unlink(uds);
	for (unsigned i = 0; i < nlpath; i++)
		unlink(lpath[i]);
	return vd_teardown(state);
}

/* Driver up with all receive buffers posted. */
static void start(uint64_t features)
{
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1 | features, 3));
	for (unsigned i = 0; i < NRX; i++)
		rx_post(i, i == NRX - 1);
}

/* The host connects to guest port gport and the guest accepts with buf_alloc. Returns the
 * host's socket (2 s receive timeout); *hp is the host port the device chose. */
static int open_conn(uint32_t gport, uint32_t buf_alloc, uint32_t *hp)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", uds);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	struct timeval tv = {2, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char line[32];
	int k = snprintf(line, sizeof(line), "CONNECT %u\n", gport);
	assert_int_equal(write(fd, line, (size_t)k), k);
	io_run();
	struct vs_hdr h;
	uint8_t d[8];
	assert_true(rx_get(&h, d, sizeof(d)));
	assert_int_equal(h.op, OP_REQUEST);
	assert_int_equal(h.dst_port, gport);
	*hp = h.src_port;
	tx_send(gport, *hp, OP_RESPONSE, 0, buf_alloc, 0, NULL, 0);
	char want[32], got[32] = {0};
	k = snprintf(want, sizeof(want), "OK %u\n", *hp);
	assert_int_equal(recv(fd, got, (size_t)k, MSG_WAITALL), k);
	assert_string_equal(got, want);
	return fd;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

/* Takes every used receive buffer of connection (gport, hp): data is appended to buf at
 * *got (at most max in all), the first SHUTDOWN's flags go to *shut (when shut is not NULL).
 * Returns the packets taken. */
static int drain(uint32_t gport, uint32_t hp, uint8_t *buf, size_t *got, size_t max, uint32_t *shut)
{
	struct vs_hdr h;
	static uint8_t d[RXPAY];
	int n = 0;
	while (rx_get(&h, d, sizeof(d))) {
		n++;
		assert_int_equal(h.dst_port, gport);
		assert_int_equal(h.src_port, hp);
		if (h.op == OP_RW) {
			if (shut && *shut != UINT32_MAX)
				fail_msg("data after the SHUTDOWN");
			if (*got + h.len > max)
				fail_msg("%zu bytes and %u more: more than the %zu sent", *got,
					 h.len, max);
			memcpy(buf + *got, d, h.len);
			*got += h.len;
		} else if (h.op == OP_SHUTDOWN && shut && *shut == UINT32_MAX) {
			*shut = h.flags;
		} else if (h.op != OP_CREDIT) {
			fail_msg("unexpected op %u (flags %u)", h.op, h.flags);
		}
	}
	return n;
}

/* 64 KiB from the host reach the guest through 4 KiB buffers, in order; with all buffers
 * used the device waits (no wake-ups) and goes on when the driver gives them back. */
static void host_to_guest_64k(void **state)
{
	enum { N = 64 << 10 };
	static uint8_t sent[N], got[N];
	start(0);
	uint32_t hp;
	int fd = open_conn(5000, 256 << 10, &hp);
	fill(sent, N, 1);
	assert_int_equal(send(fd, sent, N, 0), N);
	assert_true(io_run() > 0);
	assert_no_reset();
	/* Every buffer is used and the socket still has data: the device must not spin. */
	assert_int_equal((uint16_t)(vd_used_idx(0) - rx_used), NRX);
	assert_int_equal(io_run(), 0);
	size_t total = 0;
	int packets = 0;
	for (int round = 0; round < 100 && total < N; round++) {
		packets += drain(5000, hp, got, &total, N, NULL);
		rx_kick();
		io_run();
		assert_no_reset();
	}
	assert_int_equal(total, N);
	assert_memory_equal(got, sent, N);
	assert_true(packets >= N / RXPAY);
	/* The host's close comes after the last byte, as a SHUTDOWN (the flags: below). */
	close(fd);
	uint32_t shut = UINT32_MAX;
	assert_true(io_run() > 0);
	drain(5000, hp, got, &total, N, &shut);
	assert_int_equal(total, N);
	assert_int_not_equal(shut, UINT32_MAX);
}

/* The guest's credit bounds what is in flight: with buf_alloc 10000 and no credit update the
 * device stops at 10000 bytes (and sleeps), and goes on with each update. */
static void credit_bounds_transfer(void **state)
{
	enum { N = 30000, ALLOC = 10000 };
	static uint8_t sent[N], got[N];
	start(VIRTIO_F_EVENT_IDX);
	uint32_t hp;
	int fd = open_conn(5001, ALLOC, &hp);
	fill(sent, N, 2);
	assert_int_equal(send(fd, sent, N, 0), N);
	size_t total = 0;
	for (uint32_t fwd = 0; fwd < N; fwd += ALLOC) {
		if (fwd)
			tx_send(5001, hp, OP_CREDIT, 0, ALLOC, fwd, NULL, 0);
		for (int round = 0; round < 10; round++) {
			io_run();
			drain(5001, hp, got, &total, N, NULL);
			rx_kick();
		}
		assert_no_reset();
		if (total != fwd + ALLOC)
			fail_msg("%zu bytes in flight with credit for %u", total - fwd, ALLOC);
		assert_int_equal(io_run(), 0);
	}
	assert_memory_equal(got, sent, N);
	close(fd);
}

/* The host sends, then closes: the guest gets all the data, then one SHUTDOWN saying the host
 * will neither send nor receive (flags 3); after that the connection is gone. (Less than a
 * buffer's worth: this is about the end of a stream, host_to_guest_64k about its length.) */
static void host_close_is_shutdown(void **state)
{
	enum { N = 3000 };
	static uint8_t sent[N], got[N];
	start(0);
	uint32_t hp;
	int fd = open_conn(5002, 256 << 10, &hp);
	fill(sent, N, 3);
	assert_int_equal(send(fd, sent, N, 0), N);
	close(fd);
	size_t total = 0;
	uint32_t shut = UINT32_MAX;
	for (int round = 0; round < 20 && shut == UINT32_MAX; round++) {
		io_run();
		drain(5002, hp, got, &total, N, &shut);
		rx_kick();
	}
	assert_no_reset();
	assert_int_equal(total, N);
	assert_memory_equal(got, sent, N);
	if (shut != (F_RCV | F_SEND))
		fail_msg("SHUTDOWN flags %#x after the host closed, want 3 (RCV|SEND)", shut);
	/* The guest's RST gets no answer; data after it does (a RST: no such connection). */
	tx_send(5002, hp, OP_RST, 0, 256 << 10, N, NULL, 0);
	io_run();
	assert_int_equal(vd_used_idx(0), rx_used);
	tx_send(5002, hp, OP_RW, 0, 256 << 10, N, "late", 4);
	struct vs_hdr h;
	uint8_t d[8];
	assert_true(rx_get(&h, d, sizeof(d)));
	assert_int_equal(h.op, OP_RST);
	assert_int_equal(io_run(), 0);
}

/* The host shuts its sending side only: SHUTDOWN with F_SEND after the data, the guest can
 * still send to the host; the host's close later gives a second SHUTDOWN (flags 3). */
static void host_half_close(void **state)
{
	start(0);
	uint32_t hp;
	int fd = open_conn(5003, 256 << 10, &hp);
	assert_int_equal(send(fd, "abc", 3, 0), 3);
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	uint8_t got[8];
	size_t total = 0;
	uint32_t shut = UINT32_MAX;
	io_run();
	drain(5003, hp, got, &total, sizeof(got), &shut);
	assert_int_equal(total, 3);
	assert_memory_equal(got, "abc", 3);
	if (shut != F_SEND)
		fail_msg("SHUTDOWN flags %#x after the host's shutdown(SHUT_WR), want 2 (SEND)",
			 shut);
	/* End of file stays readable: the device must not be woken for it again and again. */
	rx_kick();
	assert_int_equal(io_run(), 0);
	tx_send(5003, hp, OP_RW, 0, 256 << 10, 3, "reply", 5);
	char r[8] = {0};
	assert_int_equal(recv(fd, r, 5, MSG_WAITALL), 5);
	assert_string_equal(r, "reply");
	close(fd);
	shut = UINT32_MAX;
	assert_true(io_run() > 0);
	drain(5003, hp, got, &total, sizeof(got), &shut);
	if (shut != (F_RCV | F_SEND))
		fail_msg("SHUTDOWN flags %#x after the host closed, want 3", shut);
	assert_no_reset();
}

/* The guest shuts its sending side (F_SEND): the host reads the data, then end of file, and
 * can still send to the guest; the guest's full SHUTDOWN then gets a RST. */
static void guest_half_close(void **state)
{
	start(0);
	uint32_t hp;
	int fd = open_conn(5004, 256 << 10, &hp);
	tx_send(5004, hp, OP_RW, 0, 256 << 10, 0, "last words", 10);
	tx_send(5004, hp, OP_SHUTDOWN, F_SEND, 256 << 10, 0, NULL, 0);
	char r[16] = {0};
	ssize_t n = recv(fd, r, 10, MSG_WAITALL);
	if (n != 10)
		fail_msg("the host read %zd bytes (%s) of the guest's 10", n,
			 n < 0 ? strerror(errno) : "end of file");
	assert_string_equal(r, "last words");
	n = recv(fd, r, sizeof(r), 0);
	if (n != 0)
		fail_msg("the host read %zd (%s) where the guest's SHUTDOWN(SEND) means end of "
			 "file",
			 n, n < 0 ? strerror(errno) : "data");
	n = send(fd, "still-open", 10, MSG_NOSIGNAL);
	if (n != 10)
		fail_msg("the host cannot send after the guest's half-close: %s",
			 n < 0 ? strerror(errno) : "short write");
	io_run();
	struct vs_hdr h;
	uint8_t d[16] = {0};
	assert_true(rx_get(&h, d, sizeof(d)));
	if (h.op != OP_RW)
		fail_msg("op %u for the host's data after the guest's half-close, want RW", h.op);
	assert_memory_equal(d, "still-open", 10);
	/* Both directions ended: the device answers with a RST and lets the socket go. */
	tx_send(5004, hp, OP_SHUTDOWN, F_RCV | F_SEND, 256 << 10, 10, NULL, 0);
	assert_true(rx_get(&h, d, sizeof(d)));
	assert_int_equal(h.op, OP_RST);
	assert_int_equal(send(fd, "x", 1, MSG_NOSIGNAL), -1);
	assert_int_equal(errno, EPIPE);
	close(fd);
	assert_no_reset();
}

/* The guest will receive no more (F_RCV): the host's writes fail, the guest's data still
 * goes through. */
static void guest_shuts_receive(void **state)
{
	start(0);
	uint32_t hp;
	int fd = open_conn(5005, 256 << 10, &hp);
	tx_send(5005, hp, OP_SHUTDOWN, F_RCV, 256 << 10, 0, NULL, 0);
	assert_int_equal(send(fd, "x", 1, MSG_NOSIGNAL), -1);
	assert_int_equal(errno, EPIPE);
	tx_send(5005, hp, OP_RW, 0, 256 << 10, 0, "to-host", 7);
	char r[8] = {0};
	ssize_t n = recv(fd, r, 7, MSG_WAITALL);
	if (n != 7)
		fail_msg("the host read %zd bytes (%s) of the guest's 7 after its SHUTDOWN(RCV)", n,
			 n < 0 ? strerror(errno) : "end of file");
	assert_string_equal(r, "to-host");
	assert_int_equal(io_run(), 0);
	assert_int_equal(vd_used_idx(0), rx_used);
	close(fd);
	/* The host's close ends the connection for the guest too. */
	assert_true(io_run() > 0);
	struct vs_hdr h;
	uint8_t d[8];
	assert_true(rx_get(&h, d, sizeof(d)));
	assert_int_equal(h.op, OP_SHUTDOWN);
	assert_int_equal(h.flags, F_RCV | F_SEND);
	assert_no_reset();
}

/* A fwd_cnt ahead of what was sent gives no credit: nothing is sent and nothing spins, until a
 * sane update. */
static void hostile_credit(void **state)
{
	start(0);
	uint32_t hp;
	int fd = open_conn(5006, 4096, &hp);
	tx_send(5006, hp, OP_CREDIT, 0, 4096, 12345, NULL, 0);
	assert_int_equal(send(fd, "data", 4, 0), 4);
	io_run();
	assert_int_equal(vd_used_idx(0), rx_used);
	assert_int_equal(io_run(), 0);
	tx_send(5006, hp, OP_CREDIT, 0, 4096, 0, NULL, 0);
	uint8_t got[8];
	size_t total = 0;
	drain(5006, hp, got, &total, sizeof(got), NULL);
	assert_int_equal(total, 4);
	assert_memory_equal(got, "data", 4);
	assert_no_reset();
	close(fd);
}

/* A receive buffer too small for a header is a driver error (NEEDS_RESET, one count), not a
 * crash or a loop. */
static void hostile_tiny_buffer(void **state)
{
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1, 3));
	vd_post1(vp, 0, 0, RXBUF(0), 20, true, true);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", uds);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, "CONNECT 7\n", 10), 10);
	io_run();
	assert_true(vd_rd(vp, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(vp->needs_reset_count, 1);
	assert_int_equal(vd_used_idx(0), 0);
	close(fd);
	io_run();
}

/* Guest-to-host streams: the guest's end of one connection, as a driver keeps it. */
struct gconn {
	uint32_t gport, hport;
	uint32_t sent;	  /* bytes the guest sent */
	uint32_t fwd;	  /* the device's fwd_cnt, as last heard */
	uint32_t ba;	  /* the device's buf_alloc */
	bool rst;	  /* the device reset the connection */
	uint32_t rst_fwd; /* the fwd_cnt of its RST */
	unsigned updates; /* CREDIT_UPDATEs */
};

/* A host program listening at uds_PORT, where the device connects for guest port requests. */
static int host_listen(uint32_t port)
{
	assert_true(nlpath < sizeof(lpath) / sizeof(lpath[0]));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", uds, port);
	snprintf(lpath[nlpath++], sizeof(lpath[0]), "%s", sa.sun_path);
	unlink(sa.sun_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

/* Takes the device's packets for g: credit updates and a RST, checking the credit fields of
 * every other header (a constant buf_alloc, a fwd_cnt that never goes back nor past what was
 * sent); gives the buffers back with a kick. */
static void g_take(struct gconn *g)
{
	struct vs_hdr h;
	static uint8_t d[RXPAY];
	while (rx_get(&h, d, sizeof(d))) {
		assert_int_equal(h.src_port, g->hport);
		assert_int_equal(h.dst_port, g->gport);
		if (h.op == OP_RST) {
			g->rst = true;
			g->rst_fwd = h.fwd_cnt;
			continue;
		}
		if (h.buf_alloc != g->ba)
			fail_msg("buf_alloc %u, was %u", h.buf_alloc, g->ba);
		if (h.fwd_cnt - g->fwd > g->sent - g->fwd)
			fail_msg("fwd_cnt %u after %u, with %u bytes sent", h.fwd_cnt, g->fwd,
				 g->sent);
		g->fwd = h.fwd_cnt;
		if (h.op == OP_CREDIT)
			g->updates++;
		else
			fail_msg("op %u from the device on a guest-to-host stream", h.op);
	}
	rx_kick();
}

/* The guest connects from gport to host port hport (listened on by lfd): the device connects
 * to uds_HPORT and answers. Returns the host's end (5 s receive timeout). */
static int g_open(struct gconn *g, uint32_t gport, uint32_t hport, int lfd)
{
	*g = (struct gconn){.gport = gport, .hport = hport};
	tx_send(gport, hport, OP_REQUEST, 0, 256 << 10, 0, NULL, 0);
	struct vs_hdr h;
	uint8_t d[8];
	assert_true(rx_get(&h, d, sizeof(d)));
	if (h.op != OP_RESPONSE)
		fail_msg("op %u for a request to a listening host port, want RESPONSE", h.op);
	assert_int_equal(h.src_port, hport);
	assert_int_equal(h.dst_port, gport);
	assert_true(h.buf_alloc > 0);
	g->ba = h.buf_alloc;
	g->fwd = h.fwd_cnt;
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fd >= 0);
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void g_send(struct gconn *g, const uint8_t *data, uint32_t len)
{
	tx_send(g->gport, g->hport, OP_RW, 0, 256 << 10, 0, data, len);
	g->sent += len;
}

/* What the guest may send now (§5.10.6.3.1). */
static uint32_t g_credit(const struct gconn *g)
{
	return g->ba - (g->sent - g->fwd);
}

/* Sends from data[g->sent] up to n bytes in all, within the credit, until the credit is used
 * up and the device has nothing more to say (it waits for the host); fails on a RST. */
static void g_fill(struct gconn *g, const uint8_t *data, uint32_t n)
{
	for (int round = 0; round < 100000; round++) {
		g_take(g);
		if (g->rst)
			fail_msg("the device reset the connection after %u bytes (fwd_cnt %u)",
				 g->sent, g->fwd);
		uint32_t c = g_credit(g), left = n - g->sent;
		if (c && left) {
			uint32_t k = c < left ? c : left;
			g_send(g, data + g->sent, k < TXPKT ? k : TXPKT);
			continue;
		}
		if (!io_run() && vd_used_idx(0) == rx_used)
			return;
	}
	fail_msg("the device never settles");
}

/* Bytes waiting in the host socket's receive queue: what the device wrote and the host has
 * not read. */
static uint32_t host_queued(int fd)
{
	int n = -1;
	assert_int_equal(ioctl(fd, SIOCINQ, &n), 0);
	return (uint32_t)n;
}

/* A host program that reads slowly (1000 bytes a call, a pause every 16 KiB), checking every
 * byte, until end of file; it starts when told. */
struct reader {
	int fd;
	const uint8_t *want;
	size_t n, got;
	atomic_bool go;
	bool eof;
	int err; /* errno of a failed read; -1: wrong data at got */
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	while (!atomic_load(&r->go))
		usleep(1000);
	uint8_t b[1000];
	size_t since = 0;
	for (;;) {
		ssize_t k = recv(r->fd, b, sizeof(b), 0);
		if (k == 0) {
			r->eof = true;
			return NULL;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r->err = errno;
			return NULL;
		}
		for (ssize_t i = 0; i < k; i++)
			if (r->got + (size_t)i >= r->n || b[i] != r->want[r->got + (size_t)i]) {
				r->got += (size_t)i;
				r->err = -1;
				return NULL;
			}
		r->got += (size_t)k;
		since += (size_t)k;
		if (since >= 16384) {
			since = 0;
			usleep(2000);
		}
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* 1 MiB from the guest to a host that reads nothing at first, then slowly (a small receive
 * buffer, pauses): the device keeps what the socket does not take, counts as forwarded
 * (fwd_cnt) only what the socket took, and gives credit back as the host reads; the guest is
 * never reset and its full SHUTDOWN with data still held waits for that data. Every byte
 * arrives in order, then end of file, and the RST's fwd_cnt says all of it went. */
static void guest_to_host_slow_reader(void **state)
{
	enum { N = 1 << 20 };
	static uint8_t data[N];
	fill(data, N, 9);
	start(0);
	int lfd = host_listen(1234);
	struct gconn g;
	int hfd = g_open(&g, 1025, 1234, lfd);
	int small = 4096;
	setsockopt(hfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	struct reader r = {.fd = hfd, .want = data, .n = N};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, reader_main, &r), 0);
	/* The host reads nothing yet: the guest sends what its credit allows, then waits. */
	g_fill(&g, data, N);
	assert_true(g.sent < N);
	tx_send(g.gport, g.hport, OP_CREDREQ, 0, 256 << 10, 0, NULL, 0);
	g_take(&g);
	assert_false(g.rst);
	assert_true(g.updates > 0);
	uint32_t queued = host_queued(hfd);
	if (g.fwd != queued)
		fail_msg("fwd_cnt %u with %u bytes in the host socket (the host read none)", g.fwd,
			 queued);
	if (g.sent - g.fwd > g.ba || g.sent == g.fwd)
		fail_msg("%u bytes sent, %u forwarded: the device holds none or more than its "
			 "buf_alloc %u",
			 g.sent, g.fwd, g.ba);
	/* The host reads, slowly: credit comes back and everything goes through. */
	atomic_store(&r.go, true);
	uint64_t end = now_ms() + 20000;
	while (g.sent < N) {
		g_fill(&g, data, N);
		if (g.sent < N)
			io_wait(50);
		if (now_ms() > end)
			fail_msg("%u of %u bytes sent, %u forwarded, the host read %zu", g.sent, N,
				 g.fwd, r.got);
	}
	/* A full SHUTDOWN while the device may still hold data: the RST comes after it all. */
	tx_send(g.gport, g.hport, OP_SHUTDOWN, F_RCV | F_SEND, 256 << 10, 0, NULL, 0);
	while (!g.rst && now_ms() < end) {
		io_wait(50);
		g_take(&g);
	}
	assert_true(g.rst);
	if (g.rst_fwd != N)
		fail_msg("RST with fwd_cnt %u of %u", g.rst_fwd, N);
	pthread_join(t, NULL);
	if (r.err || r.got != N || !r.eof)
		fail_msg("the host read %zu of %u bytes (%s), end of file %d", r.got, N,
			 r.err < 0 ? "wrong data" : strerror(r.err), r.eof);
	assert_no_reset();
	close(hfd);
	close(lfd);
}

/* A guest that sends past its credit breaks the protocol: that connection gets a RST (the
 * packet that overflows is not written, nothing overflows), the host reads what was
 * forwarded and then end of file, and the device carries on with other connections. */
static void guest_exceeds_credit(void **state)
{
	enum { N = 1 << 20 };
	static uint8_t data[N];
	fill(data, N, 10);
	start(0);
	int lfd = host_listen(1235);
	struct gconn g;
	int hfd = g_open(&g, 1025, 1235, lfd);
	for (;;) {
		uint32_t held = g.sent - host_queued(hfd);
		bool over = held + TXPKT > g.ba;
		assert_true(g.sent + TXPKT <= N);
		g_send(&g, data + g.sent, TXPKT);
		g_take(&g);
		if (over != g.rst)
			fail_msg("%u bytes held, %u more with buf_alloc %u: %s", held, TXPKT, g.ba,
				 g.rst ? "RST" : "no RST");
		if (over)
			break;
	}
	uint32_t fwd = host_queued(hfd);
	static uint8_t got[N];
	ssize_t k = recv(hfd, got, N, MSG_WAITALL);
	if (k != (ssize_t)fwd || memcmp(got, data, fwd))
		fail_msg("the host read %zd bytes after the RST, want the %u forwarded", k, fwd);
	assert_int_equal(recv(hfd, got, 1, 0), 0);
	close(hfd);
	assert_no_reset();
	assert_int_equal(io_run(), 0);
	/* The device is fine: a new connection works. */
	hfd = g_open(&g, 1026, 1235, lfd);
	g_send(&g, (const uint8_t *)"again", 5);
	char b[8] = {0};
	assert_int_equal(recv(hfd, b, 5, MSG_WAITALL), 5);
	assert_string_equal(b, "again");
	close(hfd);
	close(lfd);
}

/* Puts a 4-byte RW packet from guest port sp to host port dp in ring slot tx_slot (its own
 * buffer), kicks, and does not wait for it to be used. */
static void tx_post(uint32_t sp, uint32_t dp)
{
	unsigned slot = tx_slot++ % VD_QSIZE;
	struct vs_hdr h = {GUEST_CID, 2, sp, dp, 4, 1, OP_RW, 0, 256 << 10, 0};
	memcpy(vd_ram + STRAYBUF(slot), &h, HDR);
	memcpy(vd_ram + STRAYBUF(slot) + HDR, "lost", 4);
	vd_post1(vp, 1, slot, STRAYBUF(slot), HDR + 4, false, true);
}

/* Data for no connection gets a RST each (§5.10.6.5): 200 of them while the driver gives the
 * receive queue no buffers back, far more than the device can hold; none is dropped and they
 * come in order (the device stops taking packets until it can answer them). */
static void stray_packets_all_reset(void **state)
{
	enum { N = 200 };
	start(0);
	unsigned posted = 0, rsts = 0;
	for (int round = 0; round < 1000 && rsts < N; round++) {
		/* Post while the transmit ring has room (the device may hold some back). */
		while (posted < N && (uint16_t)(tx_slot - vd_used_idx(1)) < VD_QSIZE) {
			tx_post(30000 + posted, 40000 + posted);
			posted++;
		}
		struct vs_hdr h;
		uint8_t d[8];
		while (rx_get(&h, d, sizeof(d))) {
			if (h.op != OP_RST || h.src_port != 40000 + rsts ||
			    h.dst_port != 30000 + rsts)
				fail_msg(
				    "packet %u: op %u %u -> %u, want the RST 40000+%u -> 30000+%u",
				    rsts, h.op, h.src_port, h.dst_port, rsts, rsts);
			rsts++;
		}
		rx_kick();
	}
	if (rsts != N)
		fail_msg("%u RSTs for %u stray packets (%u posted, %u used)", rsts, N, posted,
			 vd_used_idx(1));
	assert_int_equal(vd_used_idx(1), N);
	assert_no_reset();
	assert_int_equal(io_run(), 0);
}

/* Credit requests while the driver has no receive buffer free: one CREDIT_UPDATE answers them
 * all, with the current fwd_cnt, once a buffer comes. */
static void credit_updates_coalesce(void **state)
{
	start(0);
	int lfd = host_listen(1237);
	struct gconn g;
	int hfd = g_open(&g, 1025, 1237, lfd);
	g_send(&g, (const uint8_t *)"12345", 5);
	/* Stray packets take every receive buffer. */
	for (unsigned i = 0; i < NRX; i++)
		tx_send(30000 + i, 40000 + i, OP_RW, 0, 256 << 10, 0, "x", 1);
	assert_int_equal((uint16_t)(vd_used_idx(0) - rx_used), NRX);
	for (int i = 0; i < 50; i++)
		tx_send(g.gport, g.hport, OP_CREDREQ, 0, 256 << 10, 0, NULL, 0);
	struct vs_hdr h;
	uint8_t d[8];
	for (unsigned i = 0; i < NRX; i++) {
		assert_true(rx_get(&h, d, sizeof(d)));
		assert_int_equal(h.op, OP_RST);
	}
	rx_kick();
	unsigned updates = 0;
	for (int round = 0; round < 20; round++) {
		while (rx_get(&h, d, sizeof(d))) {
			assert_int_equal(h.op, OP_CREDIT);
			assert_int_equal(h.src_port, 1237);
			assert_int_equal(h.fwd_cnt, 5);
			updates++;
		}
		rx_kick();
	}
	if (updates != 1)
		fail_msg("%u CREDIT_UPDATEs for 50 requests while no buffer was free, want 1",
			 updates);
	assert_no_reset();
	close(hfd);
	close(lfd);
}

/* A guest that never answers the host's connection request: after 2 s the device closes the
 * host's socket and resets the request, which frees the slot. The device's timer brings it
 * back on its own (the clock skips most of the wait). */
static void unanswered_request_times_out(void **state)
{
	start(0);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", uds);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, "CONNECT 6000\n", 13), 13);
	io_run();
	struct vs_hdr h;
	uint8_t d[8];
	assert_true(rx_get(&h, d, sizeof(d)));
	assert_int_equal(h.op, OP_REQUEST);
	uint32_t hp = h.src_port;
	clock_skip_ns += 1500000000ULL; /* 1.5 s: not yet */
	virtio_pci_backend(vp);
	assert_int_equal(vd_used_idx(0), rx_used);
	char b[4];
	assert_int_equal(recv(fd, b, sizeof(b), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	/* The device set its timer for the 0.5 s left, and comes back on its own. */
	uint64_t end = now_ms() + 3000;
	while (vd_used_idx(0) == rx_used && now_ms() < end)
		io_wait(100);
	if (!rx_get(&h, d, sizeof(d)))
		fail_msg("no RST 2 s after an unanswered connection request");
	assert_int_equal(h.op, OP_RST);
	assert_int_equal(h.src_port, hp);
	assert_int_equal(h.dst_port, 6000);
	assert_int_equal(recv(fd, b, sizeof(b), 0), 0);
	close(fd);
	assert_no_reset();
	assert_int_equal(io_run(), 0);
}

/* The guest's full SHUTDOWN while the host reads nothing: the device keeps the data up to 2 s,
 * then gives up (a RST) and closes the host's socket, which holds what was forwarded. */
static void shutdown_drain_times_out(void **state)
{
	enum { N = 1 << 20 };
	static uint8_t data[N];
	fill(data, N, 11);
	start(0);
	int lfd = host_listen(1238);
	struct gconn g;
	int hfd = g_open(&g, 1025, 1238, lfd);
	g_fill(&g, data, N);
	tx_send(g.gport, g.hport, OP_SHUTDOWN, F_RCV | F_SEND, 256 << 10, 0, NULL, 0);
	g_take(&g);
	assert_false(g.rst);
	clock_skip_ns += 2100000000ULL;
	virtio_pci_backend(vp);
	g_take(&g);
	if (!g.rst)
		fail_msg("no RST 2 s after the guest's SHUTDOWN with data the host does not read");
	uint32_t fwd = host_queued(hfd);
	static uint8_t got[N];
	ssize_t k = recv(hfd, got, N, MSG_WAITALL);
	assert_int_equal(k, fwd);
	assert_memory_equal(got, data, fwd);
	assert_int_equal(recv(hfd, got, 1, 0), 0);
	close(hfd);
	close(lfd);
	assert_no_reset();
	assert_int_equal(io_run(), 0);
}

/* The guest's SHUTDOWN(SEND) while the device holds data: the host reads all of it, then end
 * of file, and can still answer. The host's close with data not yet read is a RST. */
static void guest_half_close_after_held_data(void **state)
{
	enum { N = 1 << 20 };
	static uint8_t data[N], got[N];
	fill(data, N, 12);
	start(0);
	int lfd = host_listen(1239);
	struct gconn g;
	int hfd = g_open(&g, 1025, 1239, lfd);
	g_fill(&g, data, N);
	uint32_t n = g.sent;
	tx_send(g.gport, g.hport, OP_SHUTDOWN, F_SEND, 256 << 10, 0, NULL, 0);
	size_t total = 0;
	uint64_t end = now_ms() + 10000;
	for (;;) {
		ssize_t k = recv(hfd, got + total, N - total, MSG_DONTWAIT);
		if (k == 0)
			break;
		if (k > 0)
			total += (size_t)k;
		else
			assert_true(errno == EAGAIN);
		io_run();
		g_take(&g);
		assert_false(g.rst);
		if (now_ms() > end)
			fail_msg("the host read %zu of %u bytes, and no end of file", total, n);
	}
	assert_int_equal(total, n);
	assert_memory_equal(got, data, n);
	assert_int_equal(send(hfd, "reply", 5, 0), 5);
	io_run();
	struct vs_hdr h;
	uint8_t d[8] = {0};
	assert_true(rx_get(&h, d, sizeof(d)));
	assert_int_equal(h.op, OP_RW);
	assert_memory_equal(d, "reply", 5);
	close(hfd);
	io_run();
	assert_true(rx_get(&h, d, sizeof(d)));
	assert_int_equal(h.op, OP_SHUTDOWN);
	assert_int_equal(h.flags, F_RCV | F_SEND);
	/* Another connection: the host closes on data it has not read. */
	hfd = g_open(&g, 1026, 1239, lfd);
	g_fill(&g, data, N);
	close(hfd);
	end = now_ms() + 5000;
	while (!g.rst && now_ms() < end) {
		io_wait(50);
		g_take(&g);
	}
	if (!g.rst)
		fail_msg("no RST after the host closed on %u bytes it did not read",
			 g.sent - g.fwd);
	close(lfd);
	assert_no_reset();
	assert_int_equal(io_run(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, vs_setup, vs_teardown)
	    T(host_to_guest_64k),
	    T(credit_bounds_transfer),
	    T(host_close_is_shutdown),
	    T(host_half_close),
	    T(guest_half_close),
	    T(guest_shuts_receive),
	    T(hostile_credit),
	    T(hostile_tiny_buffer),
	    T(guest_to_host_slow_reader),
	    T(guest_exceeds_credit),
	    T(stray_packets_all_reset),
	    T(credit_updates_coalesce),
	    T(unanswered_request_times_out),
	    T(shutdown_drain_times_out),
	    T(guest_half_close_after_held_data),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
