/* Unit tests of virtio device state in use: save → restore → save gives the same bytes for
 * net (over a socketpair), balloon, console and vsock after real traffic; a refused restore
 * leaves the device as it was; a restore maps the BAR and MSI routes where the state says;
 * virtio-net's receive and transmit limits set at run time, and a frame spread over several
 * mergeable receive buffers; a NIC with three queue pairs, two in use and a frame waiting on
 * the second, restored to the same bytes and going on where it was. */
#include "devices/pci/pci.h"
#include "devices/virtio/msi_route.h"
#include "devices/virtio/virtio_devices.h"
#include "vdriver.h"
#include "vmm/bus.h"
#include "vmm/layout.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define HDR 12 /* virtio-net header with num_buffers */

static void save(struct virtio_pci *vp, struct state_buf *b)
{
	memset(b, 0, sizeof(*b));
	assert_int_equal(virtio_pci_save(vp, b), 0);
}

/* Restores a into other and checks that saving other gives a's bytes again. */
static void round_trip(struct virtio_pci *other, const struct state_buf *a)
{
	struct state_buf b;
	assert_int_equal(virtio_pci_restore(other, a->data, a->len), 0);
	save(other, &b);
	assert_int_equal(a->len, b.len);
	assert_memory_equal(a->data, b.data, a->len);
	state_buf_free(&b);
}

/* --- virtio-net over a socketpair ------------------------------------------------ */

static struct virtio_pci *net_new(int *host_end)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
	struct virtio_net_opts o = {.mac = {0x52, 0x54, 0, 1, 2, 3}};
	struct cove_err err = {0};
	struct virtio_pci *vp = virtio_net_new_fd(&o, sv[0], &vd_mem, NULL, &err);
	assert_non_null(vp);
	*host_end = sv[1];
	return vp;
}

/* The host sends a frame of n bytes after the header; byte i of the payload is seed + i. */
static void host_send(int fd, size_t n, uint8_t seed)
{
	static uint8_t f[8192];
	memset(f, 0, HDR);
	for (size_t i = 0; i < n; i++)
		f[HDR + i] = (uint8_t)(seed + i);
	assert_int_equal(write(fd, f, HDR + n), (ssize_t)(HDR + n));
}

static void net_state_round_trip(void **state)
{
	int h1, h2;
	struct virtio_pci *a = net_new(&h1), *b = net_new(&h2);
	assert_true(vd_init(a, VIRTIO_F_VERSION_1 | VIRTIO_F_EVENT_IDX | (1ULL << 15) | (1ULL << 5),
			    a->nqueues));
	/* Transmit one frame: the host end gets it. */
	memset(vd_ram + 0x50000, 0, HDR);
	memset(vd_ram + 0x50000 + HDR, 0x5A, 100);
	vd_post1(a, 1, 0, 0x50000, HDR + 100, false, true);
	uint8_t got[256];
	assert_int_equal(read(h1, got, sizeof(got)), HDR + 100);
	assert_int_equal(got[HDR + 99], 0x5A);
	assert_int_equal(vd_used_idx(1), 1);
	/* A frame arrives before the driver has receive buffers: it waits in the device. */
	host_send(h1, 300, 7);
	virtio_pci_backend(a);
	assert_int_equal(vd_used_idx(0), 0);
	struct state_buf s;
	save(a, &s);
	round_trip(b, &s);
	/* The restored device delivers the waiting frame once there is a buffer. */
	vd_post1(b, 0, 0, 0x60000, 2048, true, true);
	virtio_pci_backend(b);
	assert_int_equal(vd_used_idx(0), 1);
	assert_int_equal(vd_used_len(0, 0), HDR + 300);
	assert_int_equal(vd_ram[0x60000 + 10], 1); /* num_buffers */
	assert_int_equal(vd_ram[0x60000 + HDR], 7);
	assert_int_equal(vd_ram[0x60000 + HDR + 299], (uint8_t)(7 + 299));
	/* Refused: a truncated state. */
	assert_int_equal(virtio_pci_restore(b, s.data, s.len - 1), -EINVAL);
	state_buf_free(&s);
	virtio_dev_free(a);
	virtio_dev_free(b);
	close(h1);
	close(h2);
}

/* A frame larger than one receive buffer fills several (num_buffers in the first header);
 * without MRG_RXBUF it is dropped and the buffers stay the driver's. */
static void net_mergeable_rx(void **state)
{
	int h;
	struct virtio_pci *vp = net_new(&h);
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1 | (1ULL << 15), vp->nqueues));
	for (unsigned i = 0; i < 4; i++)
		vd_post1(vp, 0, i, 0x60000 + 0x1000 * i, 2048, true, false);
	host_send(h, 5000, 3);
	virtio_pci_backend(vp);
	assert_int_equal(vd_used_idx(0), 3);
	assert_int_equal(vd_used_len(0, 0), 2048);
	assert_int_equal(vd_used_len(0, 1), 2048);
	assert_int_equal(vd_used_len(0, 2), HDR + 5000 - 4096);
	assert_int_equal(vd_ram[0x60000 + 10] | vd_ram[0x60000 + 11] << 8, 3); /* num_buffers */
	/* The payload runs on across the buffers in order. */
	assert_int_equal(vd_ram[0x60000 + HDR], 3);
	assert_int_equal(vd_ram[0x61000], (uint8_t)(3 + 2048 - HDR));
	assert_int_equal(vd_ram[0x62000 + 5000 + HDR - 4096 - 1], (uint8_t)(3 + 4999));
	virtio_dev_free(vp);
	close(h);
	memset(vd_ram + VD_QBASE(0), 0, 0x3000); /* fresh rings for a fresh device */
	vp = net_new(&h);
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1, vp->nqueues));
	for (unsigned i = 0; i < 4; i++)
		vd_post1(vp, 0, i, 0x60000 + 0x1000 * i, 2048, true, false);
	host_send(h, 5000, 3);
	host_send(h, 100, 9);
	virtio_pci_backend(vp);
	assert_int_equal(vd_used_idx(0), 1); /* the big frame dropped, the small one delivered */
	assert_int_equal(vd_used_len(0, 0), HDR + 100);
	assert_int_equal(vd_ram[0x60000 + HDR], 9);
	virtio_dev_free(vp);
	close(h);
}

/* Three pairs over socketpairs, host ends in host[]. */
static struct virtio_pci *net_mq_new(unsigned pairs, int *host)
{
	int fds[3];
	for (unsigned p = 0; p < pairs; p++) {
		int sv[2];
		assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
		fds[p] = sv[0];
		host[p] = sv[1];
	}
	struct virtio_net_opts o = {.mac = {0x52, 0x54, 0, 1, 2, 5}};
	struct cove_err err = {0};
	struct virtio_pci *vp = virtio_net_new_fds(&o, fds, pairs, &vd_mem, NULL, &err);
	assert_non_null(vp);
	return vp;
}

static void net_mq_state_round_trip(void **state)
{
	int ha[3], hb[3], hc[2];
	struct virtio_pci *a = net_mq_new(3, ha), *b = net_mq_new(3, hb), *c = net_mq_new(2, hc);
	const uint64_t mq = (1ULL << 22) | (1ULL << 17);
	assert_true(vd_init(a, VIRTIO_F_VERSION_1 | (1ULL << 15) | mq, a->nqueues));
	/* VQ_PAIRS_SET 2 on the control queue (6): class, command, le16 2, then the ack. */
	uint8_t cmd[5] = {4, 0, 2, 0, 0xEE};
	memcpy(vd_ram + 0x58000, cmd, 5);
	struct virtq_desc d[2] = {{0x58000, 4, VIRTQ_DESC_F_NEXT, 1},
				  {0x58004, 1, VIRTQ_DESC_F_WRITE, 0}};
	memcpy(vd_ram + VD_QBASE(6), d, sizeof(d));
	vd_ram[VD_QBASE(6) + 0x1002] = 1; /* avail idx 1, ring[0] = head 0 */
	vd_wr(a, VPCI_NOTIFY + 4 * 6, 2, 6);
	assert_int_equal(vd_used_idx(6), 1);
	assert_int_equal(vd_ram[0x58004], 0); /* VIRTIO_NET_OK */
	/* A frame for the second pair before the driver has receive buffers there. */
	host_send(ha[1], 200, 40);
	virtio_pci_backend(a);
	assert_int_equal(vd_used_idx(2), 0);
	struct state_buf s, before, after;
	save(a, &s);
	/* A NIC with another number of pairs refuses the state and stays as it was. */
	save(c, &before);
	assert_int_equal(virtio_pci_restore(c, s.data, s.len), -EINVAL);
	save(c, &after);
	assert_int_equal(before.len, after.len);
	assert_memory_equal(before.data, after.data, before.len);
	state_buf_free(&before);
	state_buf_free(&after);
	round_trip(b, &s);
	/* The restored NIC delivers the waiting frame on the second pair... */
	vd_post1(b, 2, 0, 0x60000, 2048, true, true);
	assert_int_equal(vd_used_idx(2), 1);
	assert_int_equal(vd_used_len(2, 0), HDR + 200);
	assert_int_equal(vd_ram[0x60000 + HDR + 199], (uint8_t)(40 + 199));
	/* ...reads its second pair's fd but not the third's (two pairs in use)... */
	vd_post1(b, 2, 1, 0x61000, 2048, true, true);
	vd_post1(b, 4, 0, 0x62000, 2048, true, true);
	host_send(hb[1], 50, 1);
	host_send(hb[2], 50, 2);
	virtio_pci_backend(b);
	assert_int_equal(vd_used_idx(2), 2);
	assert_int_equal(vd_used_idx(4), 0);
	/* ...and sends on the second pair's fd. */
	memset(vd_ram + 0x50000, 0, HDR);
	memset(vd_ram + 0x50000 + HDR, 0x77, 30);
	vd_post1(b, 3, 0, 0x50000, HDR + 30, false, true);
	uint8_t got[128];
	assert_int_equal(read(hb[1], got, sizeof(got)), HDR + 30);
	assert_int_equal(got[HDR], 0x77);
	/* A state that claims more pairs in use than there are is refused. */
	save(b, &before);
	size_t model = s.len - (2 + 6 + 2 + 2 + 3 * 5 + 200 + HDR);
	assert_int_equal(s.data[model + 10], 2); /* active, le16 */
	s.data[model + 10] = 4;
	assert_int_equal(virtio_pci_restore(b, s.data, s.len), -EINVAL);
	save(b, &after);
	assert_memory_equal(before.data, after.data, before.len);
	state_buf_free(&before);
	state_buf_free(&after);
	state_buf_free(&s);
	virtio_dev_free(a);
	virtio_dev_free(b);
	virtio_dev_free(c);
	for (unsigned p = 0; p < 3; p++) {
		close(ha[p]);
		close(hb[p]);
	}
	close(hc[0]);
	close(hc[1]);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {0, (long)ms * 1000000L};
	nanosleep(&ts, NULL);
}

static void net_limits_at_run_time(void **state)
{
	int h;
	struct virtio_pci *vp = net_new(&h);
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1 | (1ULL << 15), vp->nqueues));
	/* Started without limits; 20 frames/s on receive allows a burst of 2 frames. */
	struct virtio_net_limits l = {.rx_bps = VIRTIO_NET_KEEP,
				      .rx_pps = 20,
				      .tx_bps = VIRTIO_NET_KEEP,
				      .tx_pps = VIRTIO_NET_KEEP};
	virtio_net_set_limits(vp, &l);
	struct virtio_net_limits now;
	virtio_net_get_limits(vp, &now);
	assert_int_equal(now.rx_pps, 20);
	assert_int_equal(now.tx_pps, 0);
	for (unsigned i = 0; i < 3; i++)
		vd_post1(vp, 0, i, 0x60000 + 0x1000 * i, 2048, true, false);
	for (uint8_t i = 0; i < 3; i++)
		host_send(h, 64, i);
	sleep_ms(2);
	virtio_pci_backend(vp); /* the setter's wake-up: two frames pass, the third waits */
	assert_int_equal(vd_used_idx(0), 2);
	virtio_pci_backend(vp);
	assert_int_equal(vd_used_idx(0), 2);
	sleep_ms(80); /* one frame's worth of tokens (50 ms) */
	virtio_pci_backend(vp);
	assert_int_equal(vd_used_idx(0), 3);
	assert_int_equal(vd_ram[0x62000 + HDR], 2);
	/* Transmit: 20 frames/s; two go out, the third waits until the limit is lifted. */
	l = (struct virtio_net_limits){.rx_bps = VIRTIO_NET_KEEP,
				       .rx_pps = VIRTIO_NET_KEEP,
				       .tx_bps = VIRTIO_NET_KEEP,
				       .tx_pps = 20};
	virtio_net_set_limits(vp, &l);
	memset(vd_ram + 0x50000, 0, HDR + 64);
	for (unsigned i = 0; i < 3; i++)
		vd_post1(vp, 1, i, 0x50000, HDR + 64, false, i == 2);
	assert_int_equal(vd_used_idx(1), 2);
	l.tx_pps = 0;
	virtio_net_set_limits(vp, &l);
	sleep_ms(2);
	virtio_pci_backend(vp);
	assert_int_equal(vd_used_idx(1), 3);
	uint8_t got[256];
	int frames = 0;
	while (read(h, got, sizeof(got)) == HDR + 64)
		frames++;
	assert_int_equal(frames, 3);
	virtio_net_get_limits(vp, &now);
	assert_int_equal(now.rx_pps, 20);
	assert_int_equal(now.tx_pps, 0);
	virtio_dev_free(vp);
	close(h);
}

/* --- balloon, console, vsock in use ------------------------------------------------ */

static struct virtio_pci *balloon_new(void)
{
	struct virtio_balloon_opts o = {
	    .amount_mib = 0, .deflate_on_oom = true, .stats_interval_s = 1};
	struct cove_err err = {0};
	struct virtio_pci *vp = virtio_balloon_new(&o, &vd_mem, NULL, &err);
	assert_non_null(vp);
	return vp;
}

static void balloon_in_use(void **state)
{
	struct virtio_pci *a = balloon_new(), *b = balloon_new(), *c = balloon_new();
	assert_true(vd_init(a, VIRTIO_F_VERSION_1 | (1ULL << 1) | (1ULL << 2), a->nqueues));
	/* Statistics: free memory 5 MiB; the device keeps the buffer. */
	uint8_t st[10] = {4, 0};
	uint64_t free_b = 5ULL << 20;
	memcpy(st + 2, &free_b, 8);
	memcpy(vd_ram + 0x70000, st, 10);
	vd_post1(a, 2, 0, 0x70000, 10, false, true);
	assert_int_equal(vd_used_idx(2), 0);
	/* Inflate two pages; the host raises the target; the driver reports what it holds. */
	uint32_t pfns[2] = {0x80, 0x81};
	memcpy(vd_ram + 0x71000, pfns, 8);
	vd_post1(a, 0, 0, 0x71000, 8, false, true);
	assert_int_equal(vd_used_idx(0), 1);
	struct cove_err err = {0};
	assert_int_equal(virtio_balloon_set_target(a, 1, &err), 0);
	assert_int_equal(vd_rd(a, VPCI_DEVCFG, 4), 256);
	/* More than the guest's RAM (1 MiB here): refused, with the sizes, target unchanged. */
	assert_int_equal(virtio_balloon_set_target(a, 2, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "amount_mib 2: more than the guest's 1 MiB"));
	assert_int_equal(vd_rd(a, VPCI_DEVCFG, 4), 256);
	struct virtio_balloon_opts big = {.amount_mib = 2};
	err = (struct cove_err){0};
	assert_null(virtio_balloon_new(&big, &vd_mem, NULL, &err));
	assert_non_null(strstr(err.msg, "amount_mib 2: more than the guest's 1 MiB"));
	vd_wr(a, VPCI_DEVCFG + 4, 4, 2);
	struct virtio_balloon_info info;
	virtio_balloon_info(a, &info);
	assert_int_equal(info.target_pages, 256);
	assert_int_equal(info.actual_pages, 2);
	assert_true(info.deflate_on_oom);
	assert_int_equal(info.stats[4], free_b);
	assert_int_equal(info.stats_reports, 1);
	struct state_buf s, before, after;
	save(a, &s);
	/* A refused restore changes nothing: a held buffer outside the queue... */
	save(c, &before);
	struct state_buf bad;
	save(a, &bad);
	size_t model = bad.len - 105; /* the balloon's part: version u16, then the fields */
	bad.data[model + 10] = 1;     /* stats_held */
	bad.data[model + 11] = 200;   /* stats_head: past the queue's 16 entries */
	assert_int_equal(virtio_pci_restore(c, bad.data, bad.len), -EINVAL);
	save(c, &after);
	assert_int_equal(before.len, after.len);
	assert_memory_equal(before.data, after.data, before.len);
	state_buf_free(&after);
	/* ...and a queue size that is not a power of two (the transport's part). */
	memcpy(bad.data, s.data, s.len);
	size_t q0 = 4 + 2 + 2 + 256 + 8 + 4 + 4 + 2 + 2 + 3 + 1;
	bad.data[q0] = 3;
	assert_int_equal(virtio_pci_restore(c, bad.data, bad.len), -EINVAL);
	save(c, &after);
	assert_memory_equal(before.data, after.data, before.len);
	state_buf_free(&after);
	state_buf_free(&before);
	state_buf_free(&bad);
	/* The good state restores to the same bytes, held buffer and all. */
	round_trip(b, &s);
	virtio_balloon_info(b, &info);
	assert_int_equal(info.target_pages, 256);
	assert_int_equal(info.actual_pages, 2);
	assert_int_equal(info.stats[4], free_b);
	/* The restored device hands the statistics buffer back when it polls. */
	assert_int_equal(virtio_balloon_set_interval(b, 2), 0);
	assert_int_equal(virtio_balloon_set_interval(b, 0), -EPERM);
	sleep_ms(2);
	virtio_pci_backend(b);
	assert_int_equal(vd_used_idx(2), 1);
	/* The driver refills it: a second report. */
	free_b = 6ULL << 20;
	memcpy(vd_ram + 0x70002, &free_b, 8);
	vd_post1(b, 2, 0, 0x70000, 10, false, true);
	virtio_balloon_info(b, &info);
	assert_int_equal(info.stats_reports, 2);
	assert_int_equal(info.stats[4], free_b);
	state_buf_free(&s);
	virtio_dev_free(a);
	virtio_dev_free(b);
	virtio_dev_free(c);
}

static void console_in_use(void **state)
{
	struct virtio_opts co = {.hvc = true, .hvc_file = "/dev/null"};
	struct cove_err err = {0};
	struct virtio_pci *a = virtio_console_new(&co, &vd_mem, NULL, &err);
	struct virtio_pci *b = virtio_console_new(&co, &vd_mem, NULL, &err);
	assert_non_null(a);
	assert_non_null(b);
	assert_true(vd_init(a, VIRTIO_F_VERSION_1 | VIRTIO_F_EVENT_IDX, a->nqueues));
	memcpy(vd_ram + 0x50000, "hello\n", 6);
	vd_post1(a, 1, 0, 0x50000, 6, false, true);
	vd_post1(a, 1, 1, 0x50000, 6, false, true);
	assert_int_equal(vd_used_idx(1), 2);
	vd_post1(a, 0, 0, 0x60000, 64, true, true); /* a receive buffer the device holds */
	struct state_buf s;
	save(a, &s);
	round_trip(b, &s);
	/* The restored console goes on from the third transmit. */
	vd_post1(b, 1, 2, 0x50000, 6, false, true);
	assert_int_equal(vd_used_idx(1), 3);
	state_buf_free(&s);
	virtio_dev_free(a);
	virtio_dev_free(b);
}

static struct virtio_pci *vsock_new(int n)
{
	char uds[80];
	snprintf(uds, sizeof(uds), "/tmp/cove-unit-state-%d-%d", getpid(), n);
	unlink(uds);
	struct cove_err err = {0};
	struct virtio_pci *vp = virtio_vsock_new(42, uds, &vd_mem, NULL, &err);
	assert_non_null(vp);
	return vp;
}

static void vsock_in_use(void **state)
{
	struct virtio_pci *a = vsock_new(1), *b = vsock_new(2), *c = vsock_new(3);
	assert_true(vd_init(a, VIRTIO_F_VERSION_1, a->nqueues));
	/* The guest asks for host port 9 (nobody listens): the device answers RST. */
	uint8_t h[44] = {0};
	uint64_t src = 42, dst = 2;
	uint32_t sp = 1000, dp = 9;
	uint16_t type = 1, op = 1;
	memcpy(h, &src, 8);
	memcpy(h + 8, &dst, 8);
	memcpy(h + 16, &sp, 4);
	memcpy(h + 20, &dp, 4);
	memcpy(h + 28, &type, 2);
	memcpy(h + 30, &op, 2);
	memcpy(vd_ram + 0x50000, h, 44);
	vd_post1(a, 0, 0, 0x60000, 256, true, true);
	vd_post1(a, 1, 0, 0x50000, 44, false, true);
	assert_int_equal(vd_used_idx(0), 1);
	uint16_t rop;
	memcpy(&rop, vd_ram + 0x60000 + 30, 2);
	assert_int_equal(rop, 3); /* RST */
	struct state_buf s;
	save(a, &s);
	round_trip(b, &s);
	/* With an event buffer posted, a restore tells the driver its connections are gone. */
	vd_post1(a, 2, 0, 0x70000, 8, true, true);
	memset(vd_ram + 0x70000, 0xFF, 8);
	state_buf_free(&s);
	save(a, &s);
	assert_int_equal(virtio_pci_kick_init(c), 0);
	assert_int_equal(virtio_pci_restore(c, s.data, s.len), 0);
	/* Not from inside the restore (the MSI routes are not set yet there): when the event
	 * queue is next served, which the restore's kick of every live queue brings. */
	assert_int_equal(vd_used_idx(2), 0);
	uint64_t kicks;
	assert_int_equal(read(c->kick_fd[2], &kicks, sizeof(kicks)), sizeof(kicks));
	virtio_pci_kick(c, 2); /* what the I/O thread does with it */
	assert_int_equal(vd_used_idx(2), 1);
	uint32_t id;
	memcpy(&id, vd_ram + 0x70000, 4);
	assert_int_equal(id, 0); /* VIRTIO_VSOCK_EVENT_TRANSPORT_RESET */
	/* Once only: a second event buffer stays with the device. */
	vd_post1(c, 2, 1, 0x70010, 8, true, true);
	assert_int_equal(vd_used_idx(2), 1);
	state_buf_free(&s);
	virtio_dev_free(a);
	virtio_dev_free(b);
	virtio_dev_free(c);
}

/* --- a restore puts the BAR and the MSI routes where the state says ------------------ */

static void restore_remaps(void **state)
{
	struct bus *pio = bus_new(), *mmio = bus_new(), *pio2 = bus_new(), *mmio2 = bus_new();
	struct pci_host *h = calloc(2, sizeof(*h)), *h2 = h + 1;
	assert_int_equal(pci_host_init(h, pio, mmio, NULL), 0);
	assert_int_equal(pci_host_init(h2, pio2, mmio2, NULL), 0);
	struct virtio_pci *a = balloon_new(), *b = balloon_new();
	assert_true(pci_host_add(h, &a->pci) > 0);
	/* The second host has another device first: b's BAR starts elsewhere. */
	struct virtio_pci *filler = balloon_new();
	assert_true(pci_host_add(h2, &filler->pci) > 0);
	assert_true(pci_host_add(h2, &b->pci) > 0);
	/* The guest moves a's BAR to 0xD0000000, turns memory decoding and MSI-X on. */
	uint64_t cfg = LAYOUT_PCI_ECAM + ((uint64_t)a->pci.slot << 15);
	uint32_t bar = 0xD0000000u, zero = 0;
	bus_write(mmio, BUS_MMIO, cfg + PCI_BAR0, &bar, 4);
	bus_write(mmio, BUS_MMIO, cfg + PCI_BAR0 + 4, &zero, 4);
	uint16_t cmd = PCI_CMD_MEM | PCI_CMD_MASTER, ctrl = 0x8000;
	bus_write(mmio, BUS_MMIO, cfg + PCI_COMMAND, &cmd, 2);
	bus_write(mmio, BUS_MMIO, cfg + a->msix_cap + 2, &ctrl, 2);
	uint16_t nq = 0;
	assert_true(bus_read(mmio, BUS_MMIO, 0xD0000000u + 0x12, &nq, 2));
	assert_int_equal(nq, 3);
	uint32_t msg[3] = {0xFEE01000u, 0, 0x41};
	for (int i = 0; i < 3; i++)
		bus_write(mmio, BUS_MMIO, 0xD0000000u + VPCI_MSIX + 16 + 4 * i, &msg[i], 4);
	/* b has irqfds on GSIs of a router (no KVM here: the routes are only recorded). */
	struct msi_router router;
	msi_router_init(&router, -1);
	b->router = &router;
	for (unsigned v = 0; v < b->nvec; v++) {
		b->irq_fd[v] = eventfd(0, EFD_CLOEXEC);
		b->irq_gsi[v] = msi_router_alloc(&router);
	}
	assert_false(bus_read(mmio2, BUS_MMIO, 0xD0000000u + 0x12, &nq, 2));
	struct state_buf s;
	save(a, &s);
	round_trip(b, &s);
	nq = 0;
	assert_true(bus_read(mmio2, BUS_MMIO, 0xD0000000u + 0x12, &nq, 2));
	assert_int_equal(nq, 3);
	assert_true(b->msix_on);
	unsigned r1 = (unsigned)b->irq_gsi[1] - MSI_ROUTE_FIRST_GSI;
	assert_true(router.route[r1].valid);
	assert_int_equal(router.route[r1].addr_lo, 0xFEE01000u);
	assert_int_equal(router.route[r1].data, 0x41);
	state_buf_free(&s);
	virtio_dev_free(a);
	virtio_dev_free(b);
	virtio_dev_free(filler);
	msi_router_fini(&router);
	pci_host_fini(h);
	pci_host_fini(h2);
	free(h);
	bus_free(pio);
	bus_free(mmio);
	bus_free(pio2);
	bus_free(mmio2);
}

#define T(f) cmocka_unit_test_setup_teardown(f, vd_setup, vd_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(net_state_round_trip), T(net_limits_at_run_time),	 T(net_mergeable_rx),
	    T(balloon_in_use),	     T(console_in_use),		 T(vsock_in_use),
	    T(restore_remaps),	     T(net_mq_state_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
