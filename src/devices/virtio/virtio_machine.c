/* Wires the PCI host bridge and the configured virtio devices into a machine. */
#include "devices/virtio/virtio_machine.h"
#include "devices/virtio/virtio_devices.h"
#include "util/log.h"
#include "vmm/layout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* The I/O thread: runs each queue's notification as its ioeventfd fires. */
static void *io_main(void *arg)
{
	struct virtio_machine *vmach = arg;
	pthread_setname_np(pthread_self(), "virtio-io");
	for (;;) {
		struct epoll_event ev[16];
		int n = epoll_wait(vmach->epfd, ev, 16, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return NULL;
		for (int i = 0; i < n; i++) {
			struct virtio_kick *k = ev[i].data.ptr;
			if (!k)
				return NULL; /* the stop eventfd */
			if (k->q == VIRTIO_KICK_BACKEND) {
				virtio_pci_backend(k->vp);
				continue;
			}
			uint64_t cnt;
			if (read(k->vp->kick_fd[k->q], &cnt, sizeof(cnt)) == sizeof(cnt))
				virtio_pci_kick(k->vp, k->q);
		}
	}
}

static int start_io(struct virtio_machine *vmach, struct cove_err *err)
{
	vmach->epfd = epoll_create1(EPOLL_CLOEXEC);
	vmach->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vmach->epfd < 0 || vmach->stop_fd < 0)
		return cove_err_set(err, -errno, "virtio I/O thread: %s", strerror(errno));
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	if (epoll_ctl(vmach->epfd, EPOLL_CTL_ADD, vmach->stop_fd, &ev) < 0)
		return cove_err_set(err, -errno, "virtio I/O thread: %s", strerror(errno));
	for (unsigned i = 0; i < vmach->ndev; i++) {
		struct virtio_pci *vp = vmach->dev[i];
		int r = virtio_pci_irqfd_init(vp, &vmach->router);
		if (r)
			log_info("%s: irqfd: %s (interrupts by KVM_SIGNAL_MSI)", vp->name,
				 strerror(-r));
		int ret = virtio_pci_kick_init(vp);
		if (ret)
			return cove_err_set(err, ret, "eventfd: %s", strerror(-ret));
		for (unsigned q = 0; q < vp->nqueues; q++) {
			struct virtio_kick *k = &vmach->kick[vmach->nkick++];
			*k = (struct virtio_kick){vp, q};
			ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = k};
			if (epoll_ctl(vmach->epfd, EPOLL_CTL_ADD, vp->kick_fd[q], &ev) < 0)
				return cove_err_set(err, -errno, "epoll: %s", strerror(errno));
		}
	}
	/* Backend fds (tap, sockets): one-shot, armed now, re-armed by their devices. A device
	 * with backend_ready but no backend fd adds its fds itself when it needs them. */
	for (unsigned i = 0; i < vmach->ndev; i++) {
		struct virtio_pci *vp = vmach->dev[i];
		if (!vp->ops->backend_fd && !vp->ops->backend_ready)
			continue;
		struct virtio_kick *k = &vmach->kick[vmach->nkick++];
		*k = (struct virtio_kick){vp, VIRTIO_KICK_BACKEND};
		vp->io_epfd = vmach->epfd;
		vp->io_tag = k;
		if (!vp->ops->backend_fd)
			continue;
		ev = (struct epoll_event){.events = EPOLLIN | EPOLLONESHOT, .data.ptr = k};
		if (epoll_ctl(vmach->epfd, EPOLL_CTL_ADD, vp->ops->backend_fd(vp), &ev) < 0)
			return cove_err_set(err, -errno, "epoll: %s", strerror(errno));
	}
	int ret = pthread_create(&vmach->io_thread, NULL, io_main, vmach);
	if (ret)
		return cove_err_set(err, -ret, "virtio I/O thread: %s", strerror(ret));
	vmach->io_started = true;
	return 0;
}

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
	vmach->epfd = vmach->stop_fd = -1;
	msi_router_init(&vmach->router, vm->vm_fd);
	int ret = pci_host_init(&vmach->host, vm->pio, vm->mmio, cf9);
	if (ret) {
		cove_err_set(err, ret, "cannot map the PCI host bridge: %s", strerror(-ret));
		goto fail;
	}
	static const struct virtio_opts none;
	if (!opts)
		opts = &none;
	for (unsigned i = 0; i < opts->nnics && !ret; i++)
		ret = add(vmach, vm, virtio_net_new(&opts->net[i], &vm->mem, &vm->irq, err), err);
	for (unsigned i = 0; i < opts->ndisks && !ret; i++)
		ret = add(vmach, vm, virtio_blk_new(&opts->disk[i], &vm->mem, &vm->irq, err), err);
	if (!ret && opts->hvc)
		ret = add(vmach, vm, virtio_console_new(opts, &vm->mem, &vm->irq, err), err);
	if (!ret && opts->vsock)
		ret =
		    add(vmach, vm,
			virtio_vsock_new(opts->vsock_cid, opts->vsock_uds, &vm->mem, &vm->irq, err),
			err);
	if (!ret && opts->balloon) /* it checks its size against the guest's RAM */
		ret = add(vmach, vm,
			  virtio_balloon_new(&opts->balloon_opts, &vm->mem, &vm->irq, err), err);
	if (!ret && opts->rng)
		ret = add(vmach, vm, virtio_rng_new(&vm->mem, &vm->irq, err), err);
	if (!ret && vmach->ndev)
		ret = start_io(vmach, err);
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
	if (vmach->io_started) {
		uint64_t one = 1;
		if (write(vmach->stop_fd, &one, sizeof(one)) == sizeof(one))
			pthread_join(vmach->io_thread, NULL);
	}
	if (vmach->epfd >= 0)
		close(vmach->epfd);
	if (vmach->stop_fd >= 0)
		close(vmach->stop_fd);
	for (unsigned i = 0; i < vmach->ndev; i++)
		virtio_dev_free(vmach->dev[i]);
	pci_host_fini(&vmach->host);
	msi_router_fini(&vmach->router);
	free(vmach);
}

struct virtio_pci *virtio_machine_find(const struct virtio_machine *vmach, uint16_t device_id,
				       unsigned index)
{
	for (unsigned i = 0; vmach && i < vmach->ndev; i++)
		if (vmach->dev[i]->device_id == device_id && index-- == 0)
			return vmach->dev[i];
	return NULL;
}

struct acpi_pci_config virtio_machine_acpi(const struct virtio_machine *vmach)
{
	if (!vmach)
		return (struct acpi_pci_config){.present = false};
	return (struct acpi_pci_config){
	    .present = true,
	    .ecam_base = LAYOUT_PCI_ECAM,
	    .bus_start = 0,
	    .bus_end = (uint8_t)((LAYOUT_PCI_ECAM_LEN >> 20) - 1),
	    .mmio32_base = PCI_MMIO32_BASE,
	    .mmio32_len = PCI_MMIO32_END - PCI_MMIO32_BASE,
	    .mmio64_base = PCI_MMIO64_BASE,
	    .mmio64_len = PCI_MMIO64_SIZE,
	};
}
