/* libFuzzer target: the request parsers of virtio-blk, -rng, -balloon, -console, -vsock and
 * -net behind the virtio-pci transport, fed chains from fuzzer-written guest memory (the
 * queue picked by the input at 0, 0x1000, 0x2000). virtio-net runs over socketpairs instead
 * of a tap: its transmit path writes there, and a frame the input asks for arrives from one.
 * There are two NICs, one pair (control queue 2) and two pairs (MQ: control queue 4), so that
 * the control queue's commands, VQ_PAIRS_SET among them, are reached. */
#include "devices/virtio/virtio_devices.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define RAM (64u << 10)

static uint8_t ram[RAM];
static struct guest_mem mem = {.host = ram, .map_len = RAM, .low_size = RAM};
#define NDEVS 7
static struct virtio_pci *devs[NDEVS]; /* blk, rng, balloon, console, vsock, net, net (2 pairs) */
static int net_host[3] = {-1, -1, -1}; /* the socketpairs' other ends: the "tap" sides */

static void wr(struct virtio_pci *vp, uint64_t off, unsigned len, uint64_t v)
{
	vp->bar.ops->write(&vp->bar, off, &v, len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int fd = memfd_create("fuzz-disk", 0);
	if (fd < 0 || ftruncate(fd, 1 << 20))
		abort();
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct virtio_disk_opts o = {.path = path, .queues = 1, .sync_io = true};
	struct cove_err err = {0};
	devs[0] = virtio_blk_new(&o, &mem, NULL, &err);
	devs[1] = virtio_rng_new(&mem, NULL, &err);
	devs[2] = virtio_balloon_new(
	    &(struct virtio_balloon_opts){.deflate_on_oom = true, .stats_interval_s = 1}, &mem,
	    NULL, &err);
	struct virtio_opts co = {.hvc = true, .hvc_file = "/dev/null"};
	devs[3] = virtio_console_new(&co, &mem, NULL, &err);
	char uds[64];
	snprintf(uds, sizeof(uds), "/tmp/cove-fuzz-vsock-%d", getpid());
	unlink(uds);
	devs[4] = virtio_vsock_new(3, uds, &mem, NULL, &err);
	int fds[3];
	for (int i = 0; i < 3; i++) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
			abort();
		fds[i] = sv[0];
		net_host[i] = sv[1];
	}
	struct virtio_net_opts no = {.mac = {0x52, 0x54, 0, 0, 0, 1}};
	devs[5] = virtio_net_new_fd(&no, fds[0], &mem, NULL, &err);
	devs[6] = virtio_net_new_fds(&no, fds + 1, 2, &mem, NULL, &err);
	for (int i = 0; i < NDEVS; i++)
		if (!devs[i])
			abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 10)
		return 0;
	memset(ram, 0, sizeof(ram));
	memcpy(ram, data + 10, size - 10 < RAM ? size - 10 : RAM);
	struct virtio_pci *vp = devs[(data[0] & 0xF) % NDEVS];
	unsigned q = (data[0] >> 4) % vp->nqueues;
	/* Features: bits 0-15, 16-19 (net's STATUS, CTRL_VQ, CTRL_RX, CTRL_VLAN), 22 (MQ),
	 * 28-30 (indirect, event index), and VERSION_1. */
	uint64_t feat = 1ULL << 32 | (uint64_t)(data[1] & 0x70) << 24 | data[2] | data[3] << 8 |
			(uint64_t)(data[1] & 0x0F) << 16 | (data[1] & 0x80 ? 1ULL << 22 : 0);
	wr(vp, 0x14, 1, 0);
	wr(vp, 0x14, 1, 3);
	wr(vp, 0x08, 4, 0);
	wr(vp, 0x0C, 4, (uint32_t)feat);
	wr(vp, 0x08, 4, 1);
	wr(vp, 0x0C, 4, (uint32_t)(feat >> 32));
	wr(vp, 0x14, 1, 11);
	wr(vp, 0x16, 2, (uint16_t)q);
	wr(vp, 0x18, 2, 1u << (data[4] % 8));
	wr(vp, 0x20, 8, 0);
	wr(vp, 0x28, 8, 0x1000);
	wr(vp, 0x30, 8, 0x2000);
	wr(vp, 0x1C, 2, 1);
	wr(vp, 0x14, 1, 15);
	for (int i = 0; i < 1 + data[5] % 4; i++)
		wr(vp, VPCI_NOTIFY + 4 * q, 2, (uint16_t)q);
	if (vp == devs[5] || vp == devs[6]) {
		/* A frame from the host side (its length from the input, its bytes from guest
		 * memory, its pair from the input too) goes through the receive path; what the
		 * guest sent is drained. */
		int h = vp == devs[5] ? 0 : 1 + (data[9] & 1);
		size_t flen = (size_t)(data[9] | (data[5] & 0xF0) << 4);
		if (flen && send(net_host[h], ram + 0x3000, flen, MSG_DONTWAIT) < 0)
			flen = 0;
		virtio_pci_backend(vp);
		static uint8_t sink[70000];
		for (int i = 0; i < 3; i++)
			while (recv(net_host[i], sink, sizeof(sink), MSG_DONTWAIT) > 0)
				;
	}
	/* Hostile register writes after DRIVER_OK. */
	wr(vp, data[6] & 0x3F, 2, data[7] | data[8] << 8);
	wr(vp, VPCI_NOTIFY + 4 * q, 2, (uint16_t)q);
	return 0;
}
