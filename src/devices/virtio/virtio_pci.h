/* The modern virtio-pci transport (virtio 1.2 §4.1, no legacy interface) and its MSI-X. */
#ifndef COVE_DEVICES_VIRTIO_VIRTIO_PCI_H
#define COVE_DEVICES_VIRTIO_VIRTIO_PCI_H

#include "devices/pci/pci.h"
#include "devices/virtio/virtq.h"
#include "vmm/irq.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_F_INDIRECT_DESC (1ULL << 28)
#define VIRTIO_F_EVENT_IDX     (1ULL << 29)
#define VIRTIO_F_VERSION_1     (1ULL << 32)

#define VIRTIO_STATUS_ACK	  1
#define VIRTIO_STATUS_DRIVER	  2
#define VIRTIO_STATUS_DRIVER_OK	  4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED	  0x80

#define VIRTIO_MSI_NO_VECTOR 0xFFFF
#define VIRTIO_MAX_QUEUES    33 /* virtio-net's 16 queue pairs and its control queue */
#define VIRTIO_MAX_VECTORS   (VIRTIO_MAX_QUEUES + 1)

/* A write of status 0 waits this long for the device's I/O in flight; if it takes longer the
 * status reads nonzero until it is done (the driver polls it, as Linux does). */
#define VIRTIO_RESET_WAIT_MS 100
/* A save or restore waits this long for it. */
#define VIRTIO_DRAIN_WAIT_MS 10000

/* BAR0 layout (one 64-bit memory BAR). */
#define VPCI_COMMON   0x0000
#define VPCI_ISR      0x1000
#define VPCI_DEVCFG   0x2000
#define VPCI_NOTIFY   0x3000 /* queue q at VPCI_NOTIFY + 4 * q */
#define VPCI_MSIX     0x4000
#define VPCI_PBA      0x5000
#define VPCI_BAR_SIZE 0x8000

struct virtio_pci;
struct state_buf;
struct state_r;

/* What a device model gives the transport. All calls hold vp->lock. */
struct virtio_dev_ops {
	/* Queue q has new buffers. Only with DRIVER_OK set: a notification that comes before
	 * it is delivered when the driver sets it (after activate). */
	void (*notify)(struct virtio_pci *vp, unsigned q);
	/* Device-specific config space (offsets from 0). */
	void (*cfg_read)(struct virtio_pci *vp, unsigned off, void *data, unsigned len);
	void (*cfg_write)(struct virtio_pci *vp, unsigned off, const void *data, unsigned len);
	/* The driver reset the device (status 0): forget in-flight work, so that it completes
	 * into nothing (no used entries, no interrupts). May be NULL. */
	void (*reset)(struct virtio_pci *vp);
	/* The driver set DRIVER_OK. May be NULL. */
	void (*activate)(struct virtio_pci *vp);
	/* Waits up to ms milliseconds (0: only takes what is done) for the work the device has
	 * handed to the host and that may still touch guest RAM (I/O in flight), completing it
	 * into the rings (or into nothing after a reset). Returns 0 when none is left, else
	 * -EBUSY. A reset completes, and a save or restore goes ahead, only once it returns 0.
	 * May be NULL: the device touches guest RAM only under vp->lock. */
	int (*drain)(struct virtio_pci *vp, unsigned ms);
	/* Device-specific state after the transport's. May be NULL. */
	int (*save)(struct virtio_pci *vp, struct state_buf *buf);
	int (*restore)(struct virtio_pci *vp, struct state_r *r);
	void (*destroy)(struct virtio_pci *vp);
	/* A host fd (tap, socket) the I/O thread watches for input, one-shot: backend_ready
	 * runs once it is readable, and the device re-arms it with virtio_pci_watch_backend.
	 * Both may be NULL. A device with backend_ready gets io_epfd and io_tag (below) even
	 * without backend_fd, to watch fds of its own. */
	int (*backend_fd)(struct virtio_pci *vp);
	void (*backend_ready)(struct virtio_pci *vp);
};

struct virtio_pci {
	struct pci_func pci;
	struct device bar;  /* BAR0's register file on the MMIO bus */
	struct device pdev; /* save/restore/reset/destroy entry of the whole device */
	const struct virtio_dev_ops *ops;
	void *dev; /* the device model's state */
	char name[24];
	uint16_t device_id;
	pthread_mutex_t lock;
	const struct guest_mem *mem;
	int vm_fd; /* KVM_SIGNAL_MSI */
	struct irq_line intx;

	uint64_t host_features, guest_features;
	uint32_t dfselect, gfselect;
	uint16_t queue_select, msix_config;
	uint8_t status, config_gen, isr;
	/* A reset waits for I/O in flight: the registers are in their reset state already, the
	 * status reads reset_status (nonzero) and the driver's writes are ignored until then. */
	bool reset_pending;
	uint8_t reset_status;
	uint64_t resets_waited; /* resets that returned to the driver before their I/O ended */
	unsigned nqueues;
	uint16_t qmax; /* largest queue size offered */
	struct virtq vq[VIRTIO_MAX_QUEUES];

	/* MSI-X (table and PBA in BAR0). */
	unsigned msix_cap;
	unsigned nvec;
	uint32_t msix_table[VIRTIO_MAX_VECTORS][4];
	uint64_t pba;
	bool msix_on, msix_fmask;

	unsigned pcicfg_cap; /* offset of the VIRTIO_PCI_CAP_PCI_CFG capability */
	uint64_t notifies, interrupts, needs_reset_count;
	/* Queues (bit q) notified while live but before DRIVER_OK: served when the driver sets
	 * it. Not saved: a restore looks at every live queue anyway. */
	uint64_t early_kicks;

	/* Fast path: one eventfd per queue bound to its notify address (KVM_IOEVENTFD), read
	 * by the I/O thread. A write KVM does not match still arrives as an MMIO exit. */
	int kick_fd[VIRTIO_MAX_QUEUES];
	bool kick_bound;
	uint64_t kick_addr;
	uint64_t kicks; /* notifications that came by ioeventfd */

	/* Interrupts: an irqfd per MSI-X vector on its own GSI route; KVM_SIGNAL_MSI when
	 * routing or irqfd fails. */
	struct msi_router *router;
	int irq_fd[VIRTIO_MAX_VECTORS];
	int irq_gsi[VIRTIO_MAX_VECTORS];
	bool route_ok[VIRTIO_MAX_VECTORS];
	uint64_t irqfd_sends;

	/* The I/O thread's epoll and this device's entry in it (virtio_machine sets them). */
	int io_epfd;
	void *io_tag;
};

struct virtio_pci_config {
	const char *name;
	uint16_t
	    device_id; /* virtio device id: 1 net, 2 blk, 3 console, 4 rng, 5 balloon, 19 vsock */
	uint32_t class_code;
	uint64_t features; /* device features; VERSION_1, EVENT_IDX, INDIRECT_DESC are added */
	unsigned nqueues;
	uint16_t qmax;
	const struct virtio_dev_ops *ops;
	void *dev;
	const struct guest_mem *mem;
	struct irq_chip *chip;
};

/* Fills vp (zeroed by the caller or not) as a PCI function ready for pci_host_add. */
void virtio_pci_init(struct virtio_pci *vp, const struct virtio_pci_config *cfg);
void virtio_pci_fini(struct virtio_pci *vp);

/* Creates the queues' eventfds (-errno on failure). virtio_pci_kick runs a notification
 * that arrived on kick_fd[q] (from the I/O thread). */
int virtio_pci_kick_init(struct virtio_pci *vp);
void virtio_pci_kick(struct virtio_pci *vp, unsigned q);
/* Gives each MSI-X vector an irqfd on a GSI from router. Returns 0 or -errno (then the
 * device keeps using KVM_SIGNAL_MSI). */
/* Re-arms the backend fd's one-shot watch (call with vp->lock held or not). */
void virtio_pci_watch_backend(struct virtio_pci *vp);
/* Runs ops->backend_ready under vp->lock (from the I/O thread). */
void virtio_pci_backend(struct virtio_pci *vp);
struct msi_router;
int virtio_pci_irqfd_init(struct virtio_pci *vp, struct msi_router *router);

/*
 * Serves queue q: each available chain goes to serve(), which returns the bytes it wrote
 * into the chain's writable part; the chain is then used. The walk is bounded: after a
 * budget of chains it asks the I/O thread to come back (the queue's kick eventfd), so a busy
 * driver cannot starve the other devices. A device whose single chain can ask for unbounded
 * work (the balloon's page lists) bounds that itself with VIRTIO_SERVE_YIELD. A broken chain
 * puts the device into NEEDS_RESET. Holds vp->lock.
 */
#define VIRTIO_SERVE_RETRY UINT32_MAX	    /* serve(): not now (rate limit): the chain goes back */
#define VIRTIO_SERVE_ASYNC (UINT32_MAX - 1) /* serve(): taken; the device uses it later */
/* serve(): out of this turn's budget: the chain goes back (the device keeps how far it got)
 * and the I/O thread comes back to the queue on its next turn. */
#define VIRTIO_SERVE_YIELD (UINT32_MAX - 2)
void virtio_pci_serve(struct virtio_pci *vp, unsigned q, struct virtq_chain *chain,
		      uint32_t (*serve)(struct virtio_pci *vp, const struct virtq_chain *c));

/* Signals the driver that queue q has used buffers (if it asked for it). Holds vp->lock. */
void virtio_pci_notify_queue(struct virtio_pci *vp, unsigned q);
/* Config change interrupt. Holds vp->lock. */
void virtio_pci_config_changed(struct virtio_pci *vp);
/* The driver broke the rules: NEEDS_RESET, one log line, queues stop. Holds vp->lock. */
void virtio_pci_needs_reset(struct virtio_pci *vp, const char *why);
/* Whether the driver negotiated feature bit f. */
static inline bool virtio_has(const struct virtio_pci *vp, uint64_t f)
{
	return (vp->guest_features & f) == f;
}

/* Waits up to ms for the device's I/O in flight (ops->drain); a reset waiting for it completes.
 * Returns true when nothing is in flight. Holds vp->lock. */
bool virtio_pci_drain(struct virtio_pci *vp, unsigned ms);

/* Whole-device state (transport + device model). save→restore→save gives the same bytes. */
int virtio_pci_save(struct virtio_pci *vp, struct state_buf *buf);
int virtio_pci_restore(struct virtio_pci *vp, const void *data, size_t len);

#endif
