/* virtio-net's control queue: checks a driver's command against what was negotiated. */
#include "devices/virtio/virtio_net_ctrl.h"

#include <errno.h>

/* Cove offers CTRL_VQ and, with several pairs, MQ; every other class belongs to a feature it
 * does not offer, so a driver that sends one gets VIRTIO_NET_ERR (§5.1.6.5: the device acks
 * only what it did). Receive filtering is not offered either: the device passes every frame
 * the tap gives it, which is what a device without VIRTIO_NET_F_CTRL_RX must do. */
int vnet_ctrl_parse(const struct virtq_chain *c, uint64_t features, uint16_t max_pairs,
		    struct vnet_ctrl_cmd *out)
{
	*out = (struct vnet_ctrl_cmd){0};
	if (c->in_len < 1)
		return -EINVAL;
	uint8_t hdr[2];
	if (virtq_chain_read(c, 0, hdr, 2) != 2)
		return VIRTIO_NET_ERR;
	out->class = hdr[0];
	out->command = hdr[1];
	if (out->class != VIRTIO_NET_CTRL_MQ || out->command != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET ||
	    !(features & VIRTIO_NET_F_MQ))
		return VIRTIO_NET_ERR;
	uint8_t d[2];
	if (virtq_chain_read(c, 2, d, 2) != 2)
		return VIRTIO_NET_ERR;
	uint16_t pairs = (uint16_t)(d[0] | d[1] << 8);
	if (pairs < 1 || pairs > max_pairs)
		return VIRTIO_NET_ERR;
	out->pairs = pairs;
	return VIRTIO_NET_OK;
}
