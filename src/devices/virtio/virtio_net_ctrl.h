/* virtio-net's control queue (virtio 1.2 §5.1.6.5): parsing a driver's command and its answer. */
#ifndef COVE_DEVICES_VIRTIO_VIRTIO_NET_CTRL_H
#define COVE_DEVICES_VIRTIO_VIRTIO_NET_CTRL_H

#include "devices/virtio/virtq.h"

#include <stdint.h>

#define VIRTIO_NET_F_CTRL_VQ		 (1ULL << 17)
#define VIRTIO_NET_F_CTRL_RX		 (1ULL << 18)
#define VIRTIO_NET_F_CTRL_VLAN		 (1ULL << 19)
#define VIRTIO_NET_F_GUEST_ANNOUNCE	 (1ULL << 21)
#define VIRTIO_NET_F_MQ			 (1ULL << 22)
#define VIRTIO_NET_F_CTRL_MAC_ADDR	 (1ULL << 23)
#define VIRTIO_NET_F_CTRL_GUEST_OFFLOADS (1ULL << 2)

/* Classes and commands. */
#define VIRTIO_NET_CTRL_RX		0 /* PROMISC 0, ALLMULTI 1, extra modes 2-5 */
#define VIRTIO_NET_CTRL_MAC		1 /* MAC_TABLE_SET 0, MAC_ADDR_SET 1 */
#define VIRTIO_NET_CTRL_VLAN		2 /* ADD 0, DEL 1 */
#define VIRTIO_NET_CTRL_ANNOUNCE	3 /* ACK 0 */
#define VIRTIO_NET_CTRL_MQ		4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 0
#define VIRTIO_NET_CTRL_MQ_RSS_CONFIG	1
#define VIRTIO_NET_CTRL_MQ_HASH_CONFIG	2
#define VIRTIO_NET_CTRL_GUEST_OFFLOADS	5

/* The ack byte. */
#define VIRTIO_NET_OK  0
#define VIRTIO_NET_ERR 1

/* What an accepted command asks the device to do. */
struct vnet_ctrl_cmd {
	uint8_t class, command;
	uint16_t pairs; /* VQ_PAIRS_SET: 1..max_pairs */
};

/*
 * Reads the command in chain c (class, command and data in the readable part, however the
 * driver split it; the ack is the first writable byte). features are the negotiated ones,
 * max_pairs is max_virtqueue_pairs. Returns VIRTIO_NET_OK with *out filled for a command the
 * device carries out, VIRTIO_NET_ERR for one it does not (a feature not negotiated, an
 * unknown class or command, data too short, a value out of range), or -EINVAL when the chain
 * has no writable byte for the answer (the driver broke the rules).
 */
int vnet_ctrl_parse(const struct virtq_chain *c, uint64_t features, uint16_t max_pairs,
		    struct vnet_ctrl_cmd *out);

#endif
