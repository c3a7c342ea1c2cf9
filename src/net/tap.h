/* The tap network backend: a Linux tap device with virtio-net headers and offloads. */
#ifndef COVE_NET_TAP_H
#define COVE_NET_TAP_H

#include <cove/error.h>
#include <stdbool.h>

#define TAP_VNET_HDR_LEN 12 /* struct virtio_net_hdr_v1 (with num_buffers) */

/* Opens (or creates, as root) tap device name with IFF_VNET_HDR, non-blocking. Returns the fd
 * or -errno with err set. */
int tap_open(const char *name, struct cove_err *err);

/* Offloads the guest accepts (TUNSETOFFLOAD): checksum, TSO4/6, ECN, UFO flags as TUN_F_*. */
int tap_set_offload(int fd, unsigned tun_flags);

#endif
