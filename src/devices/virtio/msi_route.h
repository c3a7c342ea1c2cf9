/* MSI routes in KVM's GSI routing table, so that irqfds can raise MSI-X messages. */
#ifndef COVE_DEVICES_VIRTIO_MSI_ROUTE_H
#define COVE_DEVICES_VIRTIO_MSI_ROUTE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define MSI_ROUTE_FIRST_GSI 24 /* after the IOAPIC's 24 inputs */
#define MSI_ROUTE_MAX	    256

struct msi_router {
	int vm_fd;
	pthread_mutex_t lock;
	unsigned n; /* GSIs handed out */
	struct {
		uint32_t addr_lo, addr_hi, data;
		bool valid;
	} route[MSI_ROUTE_MAX];
};

void msi_router_init(struct msi_router *r, int vm_fd);
void msi_router_fini(struct msi_router *r);
/* A new GSI for one MSI vector (no route yet). Returns the GSI or -ENOSPC. */
int msi_router_alloc(struct msi_router *r);
/* Points gsi at the message (valid) or at nothing. Installs the whole table: the
 * in-kernel irqchip's default routes for GSIs 0-23, then every valid MSI route.
 * Returns 0 or -errno. */
int msi_router_set(struct msi_router *r, int gsi, uint32_t addr_lo, uint32_t addr_hi, uint32_t data,
		   bool valid);

#endif
