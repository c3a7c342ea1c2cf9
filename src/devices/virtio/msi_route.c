/* KVM GSI routing: the irqchip's default routes plus one MSI route per allocated vector. */
#include "devices/virtio/msi_route.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

void msi_router_init(struct msi_router *r, int vm_fd)
{
	memset(r, 0, sizeof(*r));
	r->vm_fd = vm_fd;
	pthread_mutex_init(&r->lock, NULL);
}

void msi_router_fini(struct msi_router *r)
{
	pthread_mutex_destroy(&r->lock);
}

int msi_router_alloc(struct msi_router *r)
{
	pthread_mutex_lock(&r->lock);
	int gsi = r->n < MSI_ROUTE_MAX ? (int)(MSI_ROUTE_FIRST_GSI + r->n++) : -ENOSPC;
	pthread_mutex_unlock(&r->lock);
	return gsi;
}

/* KVM replaces the whole table: rebuild it as the kernel's default x86 table (PIC and IOAPIC
 * for GSIs 0-15, IOAPIC for 16-23) plus our MSI routes. */
static int install(struct msi_router *r)
{
	size_t max = 16 * 2 + 8 + MSI_ROUTE_MAX;
	struct kvm_irq_routing *t =
	    calloc(1, sizeof(*t) + max * sizeof(struct kvm_irq_routing_entry));
	if (!t)
		return -ENOMEM;
	unsigned n = 0;
	for (unsigned gsi = 0; gsi < 24; gsi++) {
		if (gsi < 16) {
			t->entries[n++] = (struct kvm_irq_routing_entry){
			    .gsi = gsi,
			    .type = KVM_IRQ_ROUTING_IRQCHIP,
			    .u.irqchip = {gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
					  gsi % 8},
			};
		}
		t->entries[n++] = (struct kvm_irq_routing_entry){
		    .gsi = gsi,
		    .type = KVM_IRQ_ROUTING_IRQCHIP,
		    .u.irqchip = {KVM_IRQCHIP_IOAPIC, gsi},
		};
	}
	for (unsigned i = 0; i < r->n; i++) {
		if (!r->route[i].valid)
			continue;
		t->entries[n++] = (struct kvm_irq_routing_entry){
		    .gsi = MSI_ROUTE_FIRST_GSI + i,
		    .type = KVM_IRQ_ROUTING_MSI,
		    .u.msi = {.address_lo = r->route[i].addr_lo,
			      .address_hi = r->route[i].addr_hi,
			      .data = r->route[i].data},
		};
	}
	t->nr = n;
	int ret = ioctl(r->vm_fd, KVM_SET_GSI_ROUTING, t) < 0 ? -errno : 0;
	free(t);
	return ret;
}

int msi_router_set(struct msi_router *r, int gsi, uint32_t addr_lo, uint32_t addr_hi, uint32_t data,
		   bool valid)
{
	if (gsi < MSI_ROUTE_FIRST_GSI || gsi >= MSI_ROUTE_FIRST_GSI + MSI_ROUTE_MAX)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	unsigned i = (unsigned)gsi - MSI_ROUTE_FIRST_GSI;
	int ret = 0;
	if (r->route[i].valid != valid || r->route[i].addr_lo != addr_lo ||
	    r->route[i].addr_hi != addr_hi || r->route[i].data != data) {
		r->route[i].addr_lo = addr_lo;
		r->route[i].addr_hi = addr_hi;
		r->route[i].data = data;
		r->route[i].valid = valid;
		ret = install(r);
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}
