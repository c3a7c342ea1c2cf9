/* Wires the PCI host bridge and the configured virtio devices into a machine. */
#include "devices/virtio/virtio_machine.h"
#include "devices/virtio/virtio_devices.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int add(struct virtio_machine *vmach, struct vm *vm, struct virtio_pci *vp,
	       struct cove_err *err)
{
	if (!vp)
		return err && err->code ? err->code : -ENOMEM;
	if (vmach->ndev == VIRTIO_MACHINE_MAX_DEVS) {
		virtio_dev_free(vp);
		return cove_err_set(err, -ENOSPC, "too many virtio devices");
	}
	int slot = pci_host_add(&vmach->host, &vp->pci);
	if (slot < 0) {
		virtio_dev_free(vp);
		return cove_err_set(err, slot, "no room on PCI bus 0 for %s", vp->name);
	}
	vp->intx = (struct irq_line){&vm->irq, vp->pci.gsi};
	vmach->dev[vmach->ndev++] = vp;
	return 0;
}

int virtio_machine_create(struct virtio_machine **out, struct vm *vm, struct device *cf9,
			  const struct virtio_opts *opts, struct cove_err *err)
{
	*out = NULL;
	struct virtio_machine *vmach = calloc(1, sizeof(*vmach));
	if (!vmach)
		return cove_err_set(err, -ENOMEM, "out of memory");
	int ret = pci_host_init(&vmach->host, vm->pio, vm->mmio, cf9);
	if (ret) {
		cove_err_set(err, ret, "cannot map the PCI host bridge: %s", strerror(-ret));
		goto fail;
	}
	static const struct virtio_opts none;
	if (!opts)
		opts = &none;
	for (unsigned i = 0; i < opts->ndisks && !ret; i++)
		ret = add(vmach, vm, virtio_blk_new(&opts->disk[i], &vm->mem, &vm->irq, err), err);
	if (!ret && opts->rng)
		ret = add(vmach, vm, virtio_rng_new(&vm->mem, &vm->irq, err), err);
	if (ret)
		goto fail;
	*out = vmach;
	return 0;
fail:
	virtio_machine_destroy(vmach);
	return ret;
}

void virtio_machine_destroy(struct virtio_machine *vmach)
{
	if (!vmach)
		return;
	for (unsigned i = 0; i < vmach->ndev; i++)
		virtio_dev_free(vmach->dev[i]);
	pci_host_fini(&vmach->host);
	free(vmach);
}
