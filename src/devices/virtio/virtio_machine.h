/* The PCI host bridge and the virtio devices of one machine, built from struct virtio_opts. */
#ifndef COVE_DEVICES_VIRTIO_VIRTIO_MACHINE_H
#define COVE_DEVICES_VIRTIO_VIRTIO_MACHINE_H

#include "devices/pci/pci.h"
#include "devices/virtio/msi_route.h"
#include "devices/virtio/virtio_opts.h"
#include "devices/virtio/virtio_pci.h"
#include "vmm/acpi/acpi.h"
#include "vmm/vm.h"

#include <cove/error.h>

#define VIRTIO_MACHINE_MAX_DEVS 24

#define VIRTIO_KICK_BACKEND 0xFFFFu /* virtio_kick.q of a backend fd */

struct virtio_kick {
	struct virtio_pci *vp;
	unsigned q;
};

struct virtio_machine {
	struct pci_host host;
	struct msi_router router;
	struct virtio_pci *dev[VIRTIO_MACHINE_MAX_DEVS];
	unsigned ndev;
	/* The I/O thread: epoll over every queue's ioeventfd, and a stop eventfd. */
	int epfd, stop_fd;
	pthread_t io_thread;
	bool io_started;
	struct virtio_kick kick[VIRTIO_MACHINE_MAX_DEVS * (VIRTIO_MAX_QUEUES + 1)];
	unsigned nkick;
};

/*
 * Builds the host bridge on vm's buses and one PCI function per configured device. cf9 is
 * the reset register at port 0xCF9 (it shares 0xCF8..0xCFB with CONFIG_ADDRESS), or NULL.
 * Returns 0 or -errno with err set; on failure *out is NULL and nothing is left behind
 * except bus ranges (which go with the VM).
 */
int virtio_machine_create(struct virtio_machine **out, struct vm *vm, struct device *cf9,
			  const struct virtio_opts *opts, struct cove_err *err);
void virtio_machine_destroy(struct virtio_machine *vm);

/* Virtio device ids (virtio 1.2, section 5) of the devices a caller looks up. */
enum { VIRTIO_ID_NET = 1, VIRTIO_ID_BLOCK = 2, VIRTIO_ID_BALLOON = 5 };

/* The index-th (0-based, in creation order) device of this virtio device id, or NULL. NICs
 * come in --net order, disks in --disk order. vmach may be NULL. */
struct virtio_pci *virtio_machine_find(const struct virtio_machine *vmach, uint16_t device_id,
				       unsigned index);

/* What the ACPI tables say about the host bridge (absent when vmach is NULL). */
struct acpi_pci_config virtio_machine_acpi(const struct virtio_machine *vmach);

#endif
