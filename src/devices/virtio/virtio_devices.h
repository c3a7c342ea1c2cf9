/* Constructors of Cove's virtio device models (each a virtio_pci function). */
#ifndef COVE_DEVICES_VIRTIO_VIRTIO_DEVICES_H
#define COVE_DEVICES_VIRTIO_VIRTIO_DEVICES_H

#include "devices/virtio/virtio_opts.h"
#include "devices/virtio/virtio_pci.h"

#include <cove/error.h>

/* Both take mem and chip (may be NULL in tests) and return NULL with err set on failure.
 * The result is freed with virtio_dev_free. */
struct virtio_pci *virtio_blk_new(const struct virtio_disk_opts *o, const struct guest_mem *mem,
				  struct irq_chip *chip, struct cove_err *err);
struct virtio_pci *virtio_rng_new(const struct guest_mem *mem, struct irq_chip *chip,
				  struct cove_err *err);
struct virtio_pci *virtio_net_new(const struct virtio_net_opts *o, const struct guest_mem *mem,
				  struct irq_chip *chip, struct cove_err *err);
/* The same over fd instead of o->tap: a tap or any socket that passes one frame (with the
 * 12-byte vnet header) per read and write. Takes fd (closed on failure too). */
struct virtio_pci *virtio_net_new_fd(const struct virtio_net_opts *o, int fd,
				     const struct guest_mem *mem, struct irq_chip *chip,
				     struct cove_err *err);
/* The same with one queue pair per fd (1..VIRTIO_NET_MAX_PAIRS; o->queues is not looked at):
 * pair p receives what fds[p] gives and sends there. Takes the fds (closed on failure too). */
struct virtio_pci *virtio_net_new_fds(const struct virtio_net_opts *o, const int *fds,
				      unsigned nfds, const struct guest_mem *mem,
				      struct irq_chip *chip, struct cove_err *err);
/* A NIC's limits in bytes/s and frames/s per direction (0: none; VIRTIO_NET_KEEP in a
 * set call: unchanged). Works on any NIC, started with limits or not; what waits for a
 * bucket is retried at once. */
#define VIRTIO_NET_KEEP UINT64_MAX
struct virtio_net_limits {
	uint64_t rx_bps, rx_pps, tx_bps, tx_pps;
};
void virtio_net_set_limits(struct virtio_pci *vp, const struct virtio_net_limits *l);
void virtio_net_get_limits(struct virtio_pci *vp, struct virtio_net_limits *l);
struct virtio_pci *virtio_console_new(const struct virtio_opts *o, const struct guest_mem *mem,
				      struct irq_chip *chip, struct cove_err *err);
struct virtio_pci *virtio_balloon_new(const struct virtio_balloon_opts *o,
				      const struct guest_mem *mem, struct irq_chip *chip,
				      struct cove_err *err);
/* Sets the balloon's target and tells the driver (config change). Returns 0, or -EINVAL with
 * err set when it is more than the guest's RAM (virtio_balloon_new refuses that too). */
int virtio_balloon_set_target(struct virtio_pci *vp, uint32_t amount_mib, struct cove_err *err);
/* Changes the statistics polling interval and asks for statistics at once. -EPERM when it
 * would switch statistics on or off (0 to non-zero or back): that is for boot only. */
int virtio_balloon_set_interval(struct virtio_pci *vp, uint32_t seconds);

/* Statistics tags (virtio 1.2 §5.5.6.3). */
enum {
	VIRTIO_BALLOON_S_SWAP_IN,
	VIRTIO_BALLOON_S_SWAP_OUT,
	VIRTIO_BALLOON_S_MAJFLT,
	VIRTIO_BALLOON_S_MINFLT,
	VIRTIO_BALLOON_S_MEMFREE,
	VIRTIO_BALLOON_S_MEMTOT,
	VIRTIO_BALLOON_S_AVAIL,
	VIRTIO_BALLOON_S_CACHES,
	VIRTIO_BALLOON_S_HTLB_PGALLOC,
	VIRTIO_BALLOON_S_HTLB_PGFAIL,
	VIRTIO_BALLOON_NSTATS
};

struct virtio_balloon_info {
	uint32_t target_pages, actual_pages, interval_s;
	bool deflate_on_oom; /* negotiated with the driver */
	uint32_t stats_seen; /* bit per tag the driver reported */
	uint64_t stats_reports;
	uint64_t stats[VIRTIO_BALLOON_NSTATS];
	uint64_t inflated, deflated; /* page numbers taken from the driver's lists so far */
};
/* Page numbers of inflate lists the I/O thread handles per turn: a longer list (one chain
 * may name millions) is finished on later turns, with the other devices served between. */
#define VIRTIO_BALLOON_PAGES_PER_TURN 1024
void virtio_balloon_info(struct virtio_pci *vp, struct virtio_balloon_info *out);
struct virtio_pci *virtio_vsock_new(uint32_t cid, const char *uds, const struct guest_mem *mem,
				    struct irq_chip *chip, struct cove_err *err);
/* Changes a disk's limits at run time (bytes/s, requests/s; 0: none), whether or not it was
 * started with one; requests held back by the old limits are looked at again at once. */
void virtio_blk_set_limits(struct virtio_pci *vp, uint64_t bps, uint64_t iops);

/* A disk's counters (requests that completed without error, and their bytes), its id and
 * its current limits. */
struct virtio_blk_stats {
	char id[21];
	uint64_t rd_reqs, rd_bytes, wr_reqs, wr_bytes, fl_reqs;
	uint64_t discard_reqs, wz_reqs;
	uint64_t errors;    /* requests answered with an error status */
	uint64_t throttled; /* times a request waited for the rate limit */
	uint64_t bps, iops; /* limits now (0: none) */
};
/* Copies vp's counters (any thread). Returns 0, or -ENODEV when vp is not a disk. */
int virtio_blk_stats(struct virtio_pci *vp, struct virtio_blk_stats *out);
void virtio_dev_free(struct virtio_pci *vp);

#endif
