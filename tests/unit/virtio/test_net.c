/* Unit tests of virtio-net's control queue and queue pairs: the command parser on good and
 * malformed messages (however the driver splits them), and a four-pair NIC over socketpairs
 * switched between one, four and two pairs by VQ_PAIRS_SET, each pair's traffic on its own
 * fd, a hostile control chain putting the device into NEEDS_RESET. */
#include "devices/virtio/virtio_devices.h"
#include "devices/virtio/virtio_net_ctrl.h"
#include "vdriver.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#define HDR   12
#define PAIRS 4
#define F_MQ  (VIRTIO_NET_F_MQ | VIRTIO_NET_F_CTRL_VQ)

/* --- the parser alone ----------------------------------------------------------------- */

/* A chain of the given readable pieces of msg, then one writable ack byte (unless no_ack). */
static void chain_of(struct virtq_chain *c, uint8_t *msg, const size_t *cuts, unsigned ncuts,
		     uint8_t *ack, bool no_ack)
{
	memset(c, 0, sizeof(*c));
	size_t at = 0;
	for (unsigned i = 0; i < ncuts; i++) {
		c->iov[c->nout++] = (struct iovec){msg + at, cuts[i]};
		c->out_len += cuts[i];
		at += cuts[i];
	}
	if (!no_ack) {
		c->iov[c->nout + c->nin++] = (struct iovec){ack, 1};
		c->in_len = 1;
	}
}

static int parse(uint8_t *msg, const size_t *cuts, unsigned ncuts, uint64_t features,
		 struct vnet_ctrl_cmd *cmd)
{
	struct virtq_chain c;
	uint8_t ack = 0xEE;
	chain_of(&c, msg, cuts, ncuts, &ack, false);
	return vnet_ctrl_parse(&c, features, PAIRS, cmd);
}

static void ctrl_parse_good(void **state)
{
	uint8_t msg[4] = {VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 3, 0};
	struct vnet_ctrl_cmd cmd;
	/* Linux's layout (header, then data), all in one, and one byte per descriptor. */
	assert_int_equal(parse(msg, (size_t[]){2, 2}, 2, F_MQ, &cmd), VIRTIO_NET_OK);
	assert_int_equal(cmd.class, VIRTIO_NET_CTRL_MQ);
	assert_int_equal(cmd.pairs, 3);
	assert_int_equal(parse(msg, (size_t[]){4}, 1, F_MQ, &cmd), VIRTIO_NET_OK);
	assert_int_equal(cmd.pairs, 3);
	assert_int_equal(parse(msg, (size_t[]){1, 1, 1, 1}, 4, F_MQ, &cmd), VIRTIO_NET_OK);
	assert_int_equal(cmd.pairs, 3);
	msg[2] = 1; /* the bounds themselves */
	assert_int_equal(parse(msg, (size_t[]){4}, 1, F_MQ, &cmd), VIRTIO_NET_OK);
	msg[2] = PAIRS;
	assert_int_equal(parse(msg, (size_t[]){4}, 1, F_MQ, &cmd), VIRTIO_NET_OK);
	assert_int_equal(cmd.pairs, PAIRS);
}

static void ctrl_parse_refused(void **state)
{
	struct vnet_ctrl_cmd cmd;
	uint8_t mq[4] = {VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 2, 0};
	/* MQ not negotiated: the driver may not ask. */
	assert_int_equal(parse(mq, (size_t[]){4}, 1, VIRTIO_NET_F_CTRL_VQ, &cmd), VIRTIO_NET_ERR);
	/* Out of range: 0, more than max_virtqueue_pairs, a huge le16. */
	uint8_t zero[4] = {VIRTIO_NET_CTRL_MQ, 0, 0, 0}, five[4] = {VIRTIO_NET_CTRL_MQ, 0, 5, 0},
		big[4] = {VIRTIO_NET_CTRL_MQ, 0, 2, 1};
	assert_int_equal(parse(zero, (size_t[]){4}, 1, F_MQ, &cmd), VIRTIO_NET_ERR);
	assert_int_equal(parse(five, (size_t[]){4}, 1, F_MQ, &cmd), VIRTIO_NET_ERR);
	assert_int_equal(parse(big, (size_t[]){4}, 1, F_MQ, &cmd), VIRTIO_NET_ERR);
	/* Too short: no data, half the data, half a header, nothing readable at all. */
	assert_int_equal(parse(mq, (size_t[]){2}, 1, F_MQ, &cmd), VIRTIO_NET_ERR);
	assert_int_equal(parse(mq, (size_t[]){2, 1}, 2, F_MQ, &cmd), VIRTIO_NET_ERR);
	assert_int_equal(parse(mq, (size_t[]){1}, 1, F_MQ, &cmd), VIRTIO_NET_ERR);
	assert_int_equal(parse(mq, NULL, 0, F_MQ, &cmd), VIRTIO_NET_ERR);
	/* Commands of features Cove does not offer, as Linux would send them if it had them:
	 * receive modes, MAC table and address, VLAN filter, announce, RSS, offloads, and a class
	 * nobody defined. */
	static const uint8_t other[][2] = {
	    {VIRTIO_NET_CTRL_RX, 0},
	    {VIRTIO_NET_CTRL_RX, 1},
	    {VIRTIO_NET_CTRL_RX, 5},
	    {VIRTIO_NET_CTRL_MAC, 0},
	    {VIRTIO_NET_CTRL_MAC, 1},
	    {VIRTIO_NET_CTRL_VLAN, 0},
	    {VIRTIO_NET_CTRL_VLAN, 1},
	    {VIRTIO_NET_CTRL_ANNOUNCE, 0},
	    {VIRTIO_NET_CTRL_MQ, 1},
	    {VIRTIO_NET_CTRL_MQ, 2},
	    {VIRTIO_NET_CTRL_MQ, 200},
	    {VIRTIO_NET_CTRL_GUEST_OFFLOADS, 0},
	    {99, 0},
	};
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		uint8_t msg[16] = {other[i][0], other[i][1], 1};
		assert_int_equal(parse(msg, (size_t[]){2, 14}, 2, ~0ULL & ~VIRTIO_NET_F_MQ, &cmd),
				 VIRTIO_NET_ERR);
		assert_int_equal(cmd.class, other[i][0]);
		assert_int_equal(cmd.command, other[i][1]);
	}
	/* No room for the ack: not answerable. */
	struct virtq_chain c;
	chain_of(&c, mq, (size_t[]){4}, 1, NULL, true);
	assert_int_equal(vnet_ctrl_parse(&c, F_MQ, PAIRS, &cmd), -EINVAL);
	memset(&c, 0, sizeof(c));
	assert_int_equal(vnet_ctrl_parse(&c, F_MQ, PAIRS, &cmd), -EINVAL);
}

/* --- a NIC with four pairs over socketpairs --------------------------------------------- */

#define BUF(q, i) (0x60000u + 0x4000u * (q) + 0x800u * (i)) /* 2 KiB buffers */

static struct virtio_pci *nic_new(unsigned pairs, int *host)
{
	int fds[PAIRS];
	for (unsigned p = 0; p < pairs; p++) {
		int sv[2];
		assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
		fds[p] = sv[0];
		host[p] = sv[1];
	}
	struct virtio_net_opts o = {.mac = {0x52, 0x54, 0, 1, 2, 4}};
	struct cove_err err = {0};
	struct virtio_pci *vp = virtio_net_new_fds(&o, fds, pairs, &vd_mem, NULL, &err);
	assert_non_null(vp);
	return vp;
}

static void nic_free(struct virtio_pci *vp, int *host, unsigned pairs)
{
	virtio_dev_free(vp);
	for (unsigned p = 0; p < pairs; p++)
		close(host[p]);
	memset(vd_ram, 0, VD_RAM);
}

/* Posts receive buffer i on pair p's receive queue. */
static void post_rx(struct virtio_pci *vp, unsigned p, unsigned i)
{
	vd_post(vp, 2 * p, i, 1, (uint64_t[]){BUF(2 * p, i)}, (uint32_t[]){2048}, (bool[]){true},
		true);
}

/* Sends a control command (header and data in separate descriptors, Linux's way); returns the
 * ack the device wrote (0xEE: none). */
static uint8_t ctrl(struct virtio_pci *vp, unsigned q, unsigned slot, uint8_t class,
		    uint8_t command, uint16_t data)
{
	uint64_t at = 0x5F000 + 0x20 * slot;
	uint8_t *m = vd_ram + at;
	m[0] = class;
	m[1] = command;
	m[2] = (uint8_t)data;
	m[3] = (uint8_t)(data >> 8);
	m[4] = 0xEE;
	vd_post(vp, q, 3 * slot, 3, (uint64_t[]){at, at + 2, at + 4}, (uint32_t[]){2, 2, 1},
		(bool[]){false, false, true}, true);
	return m[4];
}

/* The host sends a frame on fd: header, then n bytes of seed. */
static void host_send(int fd, size_t n, uint8_t seed)
{
	uint8_t f[HDR + 256] = {0};
	memset(f + HDR, seed, n);
	assert_int_equal(write(fd, f, HDR + n), (ssize_t)(HDR + n));
}

/* The guest transmits n bytes of seed on pair p (descriptor slot i). */
static void guest_send(struct virtio_pci *vp, unsigned p, unsigned i, size_t n, uint8_t seed)
{
	uint64_t at = 0x58000 + 0x400 * (2 * p + i);
	memset(vd_ram + at, 0, HDR);
	memset(vd_ram + at + HDR, seed, n);
	vd_post(vp, 2 * p + 1, i, 1, (uint64_t[]){at}, (uint32_t[]){(uint32_t)(HDR + n)},
		(bool[]){false}, true);
}

/* What fd holds: the first byte after the header of the next frame, or -1. */
static int host_recv(int fd)
{
	uint8_t f[512];
	ssize_t r = read(fd, f, sizeof(f));
	return r > HDR ? f[HDR] : -1;
}

static void mq_pairs(void **state)
{
	int host[PAIRS];
	struct virtio_pci *vp = nic_new(PAIRS, host);
	/* Offered: MQ and CTRL_VQ, 2 * 4 + 1 queues, max_virtqueue_pairs 4, MSI-X for each. */
	vd_wr(vp, 0x00, 4, 0);
	uint64_t f = vd_rd(vp, 0x04, 4);
	assert_true(f & VIRTIO_NET_F_MQ);
	assert_true(f & VIRTIO_NET_F_CTRL_VQ);
	assert_int_equal(vd_rd(vp, 0x12, 2), 2 * PAIRS + 1);
	assert_int_equal(vd_rd(vp, VPCI_DEVCFG + 8, 2), PAIRS);
	assert_int_equal(vp->nvec, 2 * PAIRS + 2);
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1 | F_MQ, 2 * PAIRS + 1));
	for (unsigned p = 0; p < PAIRS; p++)
		post_rx(vp, p, 0);
	/* After DRIVER_OK only pair 0 carries traffic: pair 1's fd is not read. */
	host_send(host[0], 60, 0x10);
	host_send(host[1], 60, 0x11);
	virtio_pci_backend(vp);
	assert_int_equal(vd_used_idx(0), 1);
	assert_int_equal(vd_ram[BUF(0, 0) + HDR], 0x10);
	assert_int_equal(vd_used_idx(2), 0);
	/* VQ_PAIRS_SET 4 on the control queue (after the data queues): acked, and pair 1's
	 * frame arrives on receive queue 2. */
	const unsigned cq = 2 * PAIRS;
	assert_int_equal(ctrl(vp, cq, 0, VIRTIO_NET_CTRL_MQ, 0, PAIRS), VIRTIO_NET_OK);
	assert_int_equal(vd_used_idx(cq), 1);
	assert_int_equal(vd_used_len(cq, 0), 1);
	assert_int_equal(vd_used_idx(2), 1);
	assert_int_equal(vd_ram[BUF(2, 0) + HDR], 0x11);
	/* Every pair: a frame in on its fd lands on its receive queue, a frame out on its
	 * transmit queue leaves on its fd. */
	for (unsigned p = 2; p < PAIRS; p++)
		host_send(host[p], 60, (uint8_t)(0x10 + p));
	virtio_pci_backend(vp);
	for (unsigned p = 0; p < PAIRS; p++) {
		assert_int_equal(vd_used_idx(2 * p), 1);
		assert_int_equal(vd_ram[BUF(2 * p, 0) + HDR], 0x10 + p);
		guest_send(vp, p, 0, 100, (uint8_t)(0x20 + p));
		assert_int_equal(vd_used_idx(2 * p + 1), 1);
		assert_int_equal(host_recv(host[p]), 0x20 + p);
		for (unsigned o = 0; o < PAIRS; o++)
			assert_int_equal(host_recv(host[o]), -1);
	}
	/* Refused: more pairs than there are, none, an unknown class; the pairs stay four. */
	assert_int_equal(ctrl(vp, cq, 1, VIRTIO_NET_CTRL_MQ, 0, PAIRS + 1), VIRTIO_NET_ERR);
	assert_int_equal(ctrl(vp, cq, 2, VIRTIO_NET_CTRL_MQ, 0, 0), VIRTIO_NET_ERR);
	assert_int_equal(ctrl(vp, cq, 3, VIRTIO_NET_CTRL_RX, 0, 1), VIRTIO_NET_ERR);
	post_rx(vp, 3, 1);
	host_send(host[3], 60, 0x33);
	virtio_pci_backend(vp);
	assert_int_equal(vd_used_idx(6), 2);
	/* Down to two pairs: pair 3's fd is no longer read; a frame the driver still sends on
	 * pair 3's transmit queue leaves through pair 0's. */
	assert_int_equal(ctrl(vp, cq, 4, VIRTIO_NET_CTRL_MQ, 0, 2), VIRTIO_NET_OK);
	post_rx(vp, 3, 2);
	host_send(host[3], 60, 0x34);
	virtio_pci_backend(vp);
	assert_int_equal(vd_used_idx(6), 2);
	guest_send(vp, 3, 1, 100, 0x44);
	assert_int_equal(host_recv(host[0]), 0x44);
	assert_int_equal(host_recv(host[3]), -1);
	assert_false(vd_rd(vp, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
	/* A reset goes back to one pair: pair 1's frame stays on its fd. */
	memset(vd_ram, 0, VD_RAM);
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1 | F_MQ, 2 * PAIRS + 1));
	post_rx(vp, 0, 0);
	post_rx(vp, 1, 0);
	host_send(host[1], 60, 0x66);
	virtio_pci_backend(vp);
	assert_int_equal(vd_used_idx(2), 0);
	assert_int_equal(ctrl(vp, cq, 0, VIRTIO_NET_CTRL_MQ, 0, 2), VIRTIO_NET_OK);
	assert_int_equal(vd_used_idx(2), 1);
	assert_int_equal(vd_ram[BUF(2, 0) + HDR], 0x66);
	nic_free(vp, host, PAIRS);
}

/* Without MQ the control queue is queue 2 and VQ_PAIRS_SET is refused; a control chain with
 * nothing writable for the ack puts the device into NEEDS_RESET (and a reset revives it). */
static void mq_not_negotiated(void **state)
{
	int host[PAIRS];
	struct virtio_pci *vp = nic_new(PAIRS, host);
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1 | VIRTIO_NET_F_CTRL_VQ, 2 * PAIRS + 1));
	assert_int_equal(ctrl(vp, 2, 0, VIRTIO_NET_CTRL_MQ, 0, 2), VIRTIO_NET_ERR);
	assert_int_equal(vd_used_idx(2), 1);
	/* Queue 8 (the control queue with MQ) is not one now, although the driver made it
	 * live: a notification there does nothing. */
	assert_int_equal(ctrl(vp, 8, 0, VIRTIO_NET_CTRL_MQ, 0, 2), 0xEE);
	assert_int_equal(vd_used_idx(8), 0);
	/* Two such chains made available at once: the device stops at the first (it once went
	 * on looking at a queue NEEDS_RESET had stopped, for ever). */
	uint64_t at = 0x5F800;
	vd_ram[at] = VIRTIO_NET_CTRL_MQ;
	vd_post1(vp, 2, 6, at, 4, false, false);
	vd_post1(vp, 2, 7, at, 4, false, false);
	vd_wr(vp, VPCI_NOTIFY + 4 * 2, 2, 2);
	assert_true(vd_rd(vp, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
	memset(vd_ram, 0, VD_RAM);
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1 | VIRTIO_NET_F_CTRL_VQ, 3));
	assert_int_equal(vd_rd(vp, 0x14, 1), 15);
	post_rx(vp, 0, 0);
	host_send(host[0], 60, 0x55);
	virtio_pci_backend(vp);
	assert_int_equal(vd_used_idx(0), 1);
	nic_free(vp, host, PAIRS);
}

/* One pair: no MQ offered, max_virtqueue_pairs 1, the control queue is queue 2. */
static void one_pair(void **state)
{
	int host[1];
	struct virtio_pci *vp = nic_new(1, host);
	vd_wr(vp, 0x00, 4, 0);
	uint64_t f = vd_rd(vp, 0x04, 4);
	assert_false(f & VIRTIO_NET_F_MQ);
	assert_true(f & VIRTIO_NET_F_CTRL_VQ);
	assert_int_equal(vd_rd(vp, 0x12, 2), 3);
	assert_int_equal(vd_rd(vp, VPCI_DEVCFG + 8, 2), 1);
	assert_false(vd_init(vp, VIRTIO_F_VERSION_1 | F_MQ, 3)); /* MQ was not offered */
	assert_true(vd_init(vp, VIRTIO_F_VERSION_1 | VIRTIO_NET_F_CTRL_VQ, 3));
	assert_int_equal(ctrl(vp, 2, 0, VIRTIO_NET_CTRL_MQ, 0, 1), VIRTIO_NET_ERR);
	nic_free(vp, host, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(ctrl_parse_good),
	    cmocka_unit_test(ctrl_parse_refused),
	    cmocka_unit_test_setup_teardown(mq_pairs, vd_setup, vd_teardown),
	    cmocka_unit_test_setup_teardown(mq_not_negotiated, vd_setup, vd_teardown),
	    cmocka_unit_test_setup_teardown(one_pair, vd_setup, vd_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
