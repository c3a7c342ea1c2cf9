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
struct virtio_pci *virtio_console_new(const struct virtio_opts *o, const struct guest_mem *mem,
				      struct irq_chip *chip, struct cove_err *err);
struct virtio_pci *virtio_balloon_new(uint32_t target_pages, const struct guest_mem *mem,
				      struct irq_chip *chip, struct cove_err *err);
/* Sets the balloon's target (pages of 4 KiB) and tells the driver. */
void virtio_balloon_set_target(struct virtio_pci *vp, uint32_t pages);
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
/* Whether vp is a virtio-blk device (of virtio_blk_new). */
bool virtio_is_blk(const struct virtio_pci *vp);
/* Copies vp's counters (any thread). Returns 0, or -ENODEV when vp is not a disk. */
int virtio_blk_stats(struct virtio_pci *vp, struct virtio_blk_stats *out);
void virtio_dev_free(struct virtio_pci *vp);

#endif
