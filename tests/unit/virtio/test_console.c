/* Unit tests of virtio-console's transmit side against a slow peer: a Unix-socket client or a
 * pipe given as file= that does not read for a while gets every byte the guest sent, in
 * order, and the transmit queue waits for it (backpressure) instead of dropping the rest; a
 * client that leaves while it holds the queue back does not stall it; a peer that takes
 * nothing for longer than the limit (2 s) loses the guest's output, which then flows again,
 * until it reads. The test plays the I/O thread: its own epoll, and virtio_pci_backend for each
 * event; the device's clock skips what the test does not want to wait. */
#include "devices/virtio/virtio_devices.h"
#include "skipclock.h"
#include "util/log.h"
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define TXQ    1
#define DATA   0x20000u /* the guest's output: NCHAIN chains of 3 descriptors */
#define SEG    (32u << 10)
#define NCHAIN 5 /* 15 of the queue's 16 descriptors; more than a socket's send buffer */
#define TOTAL  (NCHAIN * 3 * SEG)

#define MORE 0xA0000u /* further output, after the first */
#define MS   1000000ULL

static char path[64];
static int ep = -1;
static struct virtio_pci *vp;

/* The device's log lines (stderr) go to a file from capture() until captured() returns them. */
static int saved_stderr = -1;
static FILE *cap;

static void capture(void)
{
	fflush(stderr);
	cap = tmpfile();
	assert_non_null(cap);
	saved_stderr = dup(STDERR_FILENO);
	dup2(fileno(cap), STDERR_FILENO);
	log_set_level(LOG_LEVEL_INFO);
}

static const char *captured(void)
{
	static char text[4096];
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
	log_set_level(LOG_LEVEL_WARN);
	rewind(cap);
	size_t n = fread(text, 1, sizeof(text) - 1, cap);
	text[n] = 0;
	fclose(cap);
	cap = NULL;
	fputs(text, stderr); /* still shown */
	return text;
}

static int setup(void **state)
{
	if (vd_setup(state))
		return -1;
	clock_skip_ns = 0;
	ep = epoll_create1(EPOLL_CLOEXEC);
	return ep < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	if (cap)
		captured();
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

/* Reads what peer holds now (it does not wait), into got at *have. */
static void take(int peer, uint8_t *got, size_t cap_len, size_t *have)
{
	for (;;) {
		struct pollfd p = {.fd = peer, .events = POLLIN};
		if (poll(&p, 1, 0) != 1)
			return;
		assert_true(*have < cap_len); /* no more than the guest sent */
		ssize_t n = read(peer, got + *have, cap_len - *have);
		assert_true(n > 0);
		*have += (size_t)n;
	}
}

/* Plays the I/O thread until nothing happens for ms. */
static void settle(int ms)
{
	while (turn(ms))
		;
}

/* Frees the device and returns its exit log line's counters. */
static void counters(unsigned long long *delivered, unsigned long long *dropped)
{
	capture();
	virtio_dev_free(vp);
	vp = NULL;
	const char *log = captured();
	const char *l = strstr(log, "virtio-console: ");
	assert_non_null(l);
	unsigned long long to_guest;
	assert_int_equal(sscanf(l,
				"virtio-console: %llu bytes to the guest, %llu from it delivered, "
				"%llu dropped",
				&to_guest, delivered, dropped),
			 3);
}

/* A client that reads in bursts with pauses of 1.5 s, under the 2 s limit, between them: the
 * stall is counted from the last progress, not from the first block, so in all it waits far
 * longer than the limit and still gets every byte. */
static void test_paced_client_within_limit(void **state)
{
	static uint8_t got[TOTAL];
	int client;
	console_uds(&client);
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1, 2));
	post_output();
	size_t have = 0;
	unsigned pauses = 0;
	for (int i = 0; i < 200 && (have < TOTAL || vd_used_idx(TXQ) != NCHAIN); i++) {
		clock_skip_ns += 1500 * MS;
		virtio_pci_backend(vp); /* a wakeup then: the pending output is still owed */
		pauses++;
		take(client, got, TOTAL, &have);
		settle(5);
	}
	assert_int_equal(have, TOTAL);
	assert_memory_equal(got, vd_ram + DATA, TOTAL);
	assert_int_equal(vd_used_idx(TXQ), NCHAIN);
	assert_true(pauses >= 2); /* more than the limit in all */
	unsigned long long delivered, dropped;
	counters(&delivered, &dropped);
	assert_int_equal(delivered, TOTAL);
	assert_int_equal(dropped, 0);
	close(client);
}

/* Output the guest sends while the peer is stuck or again reading: one chain of n bytes at
 * MORE + off, from descriptor slot. */
static void post_more(unsigned slot, uint32_t off, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		vd_ram[MORE + off + i] = (uint8_t)(i * 13 + 5 + off);
	vd_post1(vp, TXQ, slot, MORE + off, n, false, true);
}

/* A peer that takes nothing for 2 s: the rest of the chain it held is dropped, and so is each
 * chain after it at once while it takes nothing (the guest's writes complete). Once it reads
 * again, new output reaches it whole. One warning says so; the exit line counts the drop.
 * peer is the client or the pipe's reader, what it held back is NCHAIN chains of post_output. */
static void stuck_then_reads(int peer, const char *warning)
{
	static uint8_t got[TOTAL + 8192];
	capture();
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1, 2));
	post_output();
	held_back();
	uint16_t stuck = vd_used_idx(TXQ);
	clock_skip_ns += 1500 * MS; /* 1.5 s: not yet */
	virtio_pci_backend(vp);
	assert_int_equal(vd_used_idx(TXQ), stuck);
	/* The device's timer, set for the 0.5 s left, brings it back on its own. */
	for (int i = 0; i < 300 && vd_used_idx(TXQ) != NCHAIN; i++)
		turn(10);
	if (vd_used_idx(TXQ) != NCHAIN)
		fail_msg("the queue is still held %d ms after the limit", 3000);
	/* Still not reading: more output is used (dropped) at once, no waiting. */
	post_more(0, 0, 4096);
	assert_int_equal(vd_used_idx(TXQ), NCHAIN + 1);
	/* The peer holds a prefix of the output: everything before the stall, in order. */
	size_t have = 0;
	take(peer, got, sizeof(got), &have);
	assert_true(have > 0 && have < TOTAL);
	assert_memory_equal(got, vd_ram + DATA, have);
	/* Reading again: new output arrives whole. */
	post_more(1, 4096, 8192);
	for (int i = 0; i < 100 && vd_used_idx(TXQ) != NCHAIN + 2; i++)
		turn(10);
	assert_int_equal(vd_used_idx(TXQ), NCHAIN + 2);
	size_t before = have;
	take(peer, got, sizeof(got), &have);
	assert_int_equal(have - before, 8192);
	assert_memory_equal(got + before, vd_ram + MORE + 4096, 8192);
	const char *log = captured();
	assert_non_null(strstr(log, warning));
	assert_null(strstr(strstr(log, warning) + 1, warning)); /* once */
	unsigned long long delivered, dropped;
	counters(&delivered, &dropped);
	assert_int_equal(delivered, have);
	assert_int_equal(dropped, TOTAL - before + 4096);
}

static void test_stuck_client_dropped(void **state)
{
	int client;
	console_uds(&client);
	stuck_then_reads(client,
			 "hvc: client not reading for 2 s; dropping console output until it reads");
	close(client);
}

static void test_stuck_pipe_dropped(void **state)
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
	stuck_then_reads(reader, "hvc: output file not read for 2 s; dropping console output");
	close(reader);
}

/* drop_after_ms= sets the limit: 300 ms here, on the real clock. */
static void test_limit_option(void **state)
{
	snprintf(path, sizeof(path), "/tmp/cove-unit-hvc-%d", getpid());
	unlink(path);
	struct virtio_opts o = {0};
	struct cove_err err = {0};
	assert_int_equal(virtio_opts_set(&o, "hvc", "drop_after_ms=0,uds=/x", &err), -EINVAL);
	assert_int_equal(virtio_opts_set(&o, "hvc", "drop_after_ms=300", &err), -EINVAL);
	char spec[96];
	snprintf(spec, sizeof(spec), "uds=%s,drop_after_ms=300", path);
	assert_int_equal(virtio_opts_set(&o, "hvc", spec, &err), 0);
	assert_int_equal(o.hvc_drop_after_ms, 300);
	vp = virtio_console_new(&o, &vd_mem, NULL, &err);
	virtio_opts_free(&o);
	assert_non_null(vp);
	attach();
	int client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(connect(client, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_true(turn(1000));
	capture();
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1, 2));
	post_output();
	uint64_t t0 = devclock_mono_ns();
	for (int i = 0; i < 300 && vd_used_idx(TXQ) != NCHAIN; i++)
		turn(10);
	uint64_t took = devclock_mono_ns() - t0;
	assert_int_equal(vd_used_idx(TXQ), NCHAIN);
	assert_true(took >= 290 * MS && took < 2000 * MS);
	assert_non_null(strstr(captured(), "hvc: client not reading for 300 ms;"));
	close(client);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_slow_client),	  T(test_slow_pipe),
	    T(test_client_leaves),	  T(test_paced_client_within_limit),
	    T(test_stuck_client_dropped), T(test_stuck_pipe_dropped),
	    T(test_limit_option),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
