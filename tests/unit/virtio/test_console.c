/* Unit tests of virtio-console's transmit side against a slow peer: a Unix-socket client or a
 * pipe given as file= that does not read for a while gets every byte the guest sent, in
 * order, and the transmit queue waits for it (backpressure) instead of dropping the rest; a
 * client that leaves while it holds the queue back does not stall it. The test plays the I/O
 * thread: its own epoll, and virtio_pci_backend for each event. */
#include "devices/virtio/virtio_devices.h"
#include "vdriver.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#define TXQ    1
#define DATA   0x20000u /* the guest's output: NCHAIN chains of 3 descriptors */
#define SEG    (32u << 10)
#define NCHAIN 5 /* 15 of the queue's 16 descriptors; more than a socket's send buffer */
#define TOTAL  (NCHAIN * 3 * SEG)

static char path[64];
static int ep = -1;
static struct virtio_pci *vp;

static int setup(void **state)
{
	if (vd_setup(state))
		return -1;
	ep = epoll_create1(EPOLL_CLOEXEC);
	return ep < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	virtio_dev_free(vp);
	vp = NULL;
	unlink(path);
	close(ep);
	return vd_teardown(state);
}

/* Gives vp the test's epoll as the I/O thread's (and its backend fd, as start_io does). */
static void attach(void)
{
	static int tag;
	vp->io_epfd = ep;
	vp->io_tag = &tag;
	if (vp->ops->backend_fd) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = &tag};
		assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, vp->ops->backend_fd(vp), &ev), 0);
	}
}

/* One turn of the I/O thread: waits up to ms for an event, runs the backend. */
static bool turn(int ms)
{
	struct epoll_event ev;
	if (epoll_wait(ep, &ev, 1, ms) != 1)
		return false;
	virtio_pci_backend(vp);
	return true;
}

/* The guest's output, NCHAIN chains of three descriptors each, all posted, one notification. */
static void post_output(void)
{
	for (uint32_t i = 0; i < TOTAL; i++)
		vd_ram[DATA + i] = (uint8_t)(i * 7 + (i >> 11));
	for (unsigned k = 0; k < NCHAIN; k++) {
		uint64_t a = DATA + 3ULL * SEG * k;
		vd_post(vp, TXQ, 3 * k, 3, (uint64_t[]){a, a + SEG, a + 2 * SEG},
			(uint32_t[]){SEG, SEG, SEG}, (bool[]){false, false, false},
			k == NCHAIN - 1);
	}
}

static struct virtio_pci *console_uds(int *client)
{
	snprintf(path, sizeof(path), "/tmp/cove-unit-hvc-%d", getpid());
	unlink(path);
	struct virtio_opts o = {.hvc = true, .hvc_uds = path};
	struct cove_err err = {0};
	vp = virtio_console_new(&o, &vd_mem, NULL, &err);
	assert_non_null(vp);
	attach();
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int small = 4096;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_true(turn(1000)); /* accepted */
	*client = fd;
	return vp;
}

/* Reads everything the guest sent from peer, slowly, while playing the I/O thread; checks it
 * byte for byte and that every chain was used. */
static void drain(int peer)
{
	static uint8_t got[TOTAL];
	size_t have = 0;
	for (int i = 0; i < 20000 && (have < TOTAL || vd_used_idx(TXQ) != NCHAIN); i++) {
		struct pollfd p = {.fd = peer, .events = POLLIN};
		if (have < TOTAL && poll(&p, 1, 0) == 1) {
			ssize_t n =
			    read(peer, got + have, TOTAL - have < 8192 ? TOTAL - have : 8192);
			assert_true(n > 0);
			have += (size_t)n;
		}
		turn(1);
	}
	assert_int_equal(have, TOTAL);
	assert_memory_equal(got, vd_ram + DATA, TOTAL);
	assert_int_equal(vd_used_idx(TXQ), NCHAIN);
	struct pollfd p = {.fd = peer, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 0), 0); /* nothing more, nothing twice */
}

/* The peer does not read: the queue stops where the socket is full (mid-chain), stays there
 * while the peer does not read, and nothing is lost. */
static void held_back(void)
{
	uint16_t stuck = vd_used_idx(TXQ);
	assert_true(stuck < NCHAIN);
	for (int i = 0; i < 5; i++)
		turn(10);
	vd_wr(vp, VPCI_NOTIFY + 4 * TXQ, 2, TXQ); /* a notification changes nothing */
	assert_int_equal(vd_used_idx(TXQ), stuck);
}

static void test_slow_client(void **state)
{
	int client;
	console_uds(&client);
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1, 2));
	post_output();
	held_back();
	drain(client);
	close(client);
}

static void test_slow_pipe(void **state)
{
	snprintf(path, sizeof(path), "/tmp/cove-unit-hvc-fifo-%d", getpid());
	unlink(path);
	assert_int_equal(mkfifo(path, 0600), 0);
	int reader = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	assert_true(reader >= 0);
	struct virtio_opts o = {.hvc = true, .hvc_file = path};
	struct cove_err err = {0};
	vp = virtio_console_new(&o, &vd_mem, NULL, &err);
	assert_non_null(vp);
	attach();
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1, 2));
	post_output();
	held_back();
	drain(reader);
	close(reader);
}

/* A client that leaves while it holds the queue back: the queue moves on (its output has no
 * peer now), and the next client gets whole chains from then on. */
static void test_client_leaves(void **state)
{
	int client;
	console_uds(&client);
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1, 2));
	post_output();
	assert_true(vd_used_idx(TXQ) < NCHAIN);
	close(client);
	for (int i = 0; i < 100 && vd_used_idx(TXQ) != NCHAIN; i++)
		turn(10);
	assert_int_equal(vd_used_idx(TXQ), NCHAIN);
	/* A new client, the same output again: all of it arrives. */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_true(turn(1000));
	memset(vd_ram + VD_QBASE(TXQ), 0, 0x3000);
	vd_wr(vp, 0x14, 1, 0);
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1, 2));
	post_output();
	drain(fd);
	close(fd);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_slow_client),
	    T(test_slow_pipe),
	    T(test_client_leaves),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
