/* The tap network backend: a Linux tap device with virtio-net headers and offloads. */
#ifndef COVE_NET_TAP_H
#define COVE_NET_TAP_H

#include <cove/error.h>
#include <stdbool.h>

#define TAP_VNET_HDR_LEN 12 /* struct virtio_net_hdr_v1 (with num_buffers) */
#define TAP_MAX_QUEUES	 16 /* queues Cove opens on one tap (the kernel allows 256) */

/* Opens (or creates, as root) tap device name with IFF_VNET_HDR, non-blocking, with n queues
 * (1..TAP_MAX_QUEUES) into fds[0..n): IFF_MULTI_QUEUE when n > 1 (the tap must then be made
 * with multi_queue, or not exist yet). All queues start attached. Returns 0 or -errno with err
 * set; on failure no fd is left open. */
int tap_open_queues(const char *name, unsigned n, int *fds, struct cove_err *err);

/* Offloads the guest accepts (TUNSETOFFLOAD): checksum, TSO4/6, ECN, UFO flags as TUN_F_*.
 * They are the tap's, whichever queue sets them. */
int tap_set_offload(int fd, unsigned tun_flags);
/* Attaches (the kernel steers frames to it again) or detaches a queue of a multi-queue tap
 * (TUNSETQUEUE). Returns 0 or -errno (-ENOTTY on anything but a tap). */
int tap_set_queue(int fd, bool attach);

#endif
