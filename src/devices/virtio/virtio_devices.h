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
/* Changes a disk's limits at run time (bytes/s, requests/s; 0: none). Disks started
 * without a limit have no timer and ignore it (start them with one to adjust later). */
void virtio_blk_set_limits(struct virtio_pci *vp, uint64_t bps, uint64_t iops);
void virtio_dev_free(struct virtio_pci *vp);

#endif
