/* The modern virtio-pci transport: capabilities, common config, notify, ISR, MSI-X. */
#include "devices/virtio/virtio_pci.h"
#include "devices/devutil.h"
#include "devices/virtio/msi_route.h"
#include "util/log.h"
#include "vmm/vm.h"

#include <stdio.h>

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR	   3
#define CAP_DEVICE 4
#define CAP_PCI	   5

static void add_vcap(struct virtio_pci *vp, uint8_t type, uint32_t off, uint32_t len,
		     unsigned extra, uint32_t extra_val)
{
	uint8_t c[20] = {0x09, 0, (uint8_t)(16 + extra), type, 0 /* BAR0 */};
	memcpy(&c[8], &off, 4);
	memcpy(&c[12], &len, 4);
	if (extra)
		memcpy(&c[16], &extra_val, 4);
	unsigned at = pci_func_add_cap(&vp->pci, c, 16 + extra);
	if (type == CAP_PCI && at) {
		vp->pcicfg_cap = at;
		/* bar, offset, length, data are the driver's to write. */
		vp->pci.wmask[at + 4] = 0xFF;
		memset(&vp->pci.wmask[at + 8], 0xFF, 12);
	}
}

static void add_msix_cap(struct virtio_pci *vp)
{
	uint8_t c[12] = {0x11, 0};
	uint16_t ctrl = (uint16_t)(vp->nvec - 1);
	uint32_t table = VPCI_MSIX | 0, pba = VPCI_PBA | 0;
	memcpy(&c[2], &ctrl, 2);
	memcpy(&c[4], &table, 4);
	memcpy(&c[8], &pba, 4);
	vp->msix_cap = pci_func_add_cap(&vp->pci, c, sizeof(c));
	if (vp->msix_cap)
		vp->pci.wmask[vp->msix_cap + 3] = 0xC0; /* enable, function mask */
}

/* ---- Interrupts ------------------------------------------------------------------- */

static bool vec_masked(struct virtio_pci *vp, unsigned v)
{
	return vp->msix_fmask || (vp->msix_table[v][3] & 1);
}

static void msix_send(struct virtio_pci *vp, unsigned v)
{
	struct kvm_msi msi = {
	    .address_lo = vp->msix_table[v][0],
	    .address_hi = vp->msix_table[v][1],
	    .data = vp->msix_table[v][2],
	};
	vp->interrupts++;
	if (vp->route_ok[v]) {
		uint64_t one = 1;
		if (write(vp->irq_fd[v], &one, sizeof(one)) == sizeof(one)) {
			vp->irqfd_sends++;
			return;
		}
	}
	if (vp->vm_fd >= 0)
		ioctl(vp->vm_fd, KVM_SIGNAL_MSI, &msi);
}

static void raise_vector(struct virtio_pci *vp, uint16_t v, uint8_t isr_bit)
{
	if (vp->msix_on) {
		if (v == VIRTIO_MSI_NO_VECTOR || v >= vp->nvec)
			return;
		if (vec_masked(vp, v))
			vp->pba |= 1ULL << v;
		else
			msix_send(vp, v);
		return;
	}
	vp->isr |= isr_bit;
	if (!(pci_cfg_get(&vp->pci, PCI_COMMAND, 2) & PCI_CMD_INTX_OFF)) {
		vp->interrupts++;
		irq_line_set(&vp->intx, true);
	}
}

/* Delivers pending vectors that are no longer masked. */
static void msix_flush_pending(struct virtio_pci *vp)
{
	for (unsigned v = 0; v < vp->nvec && vp->msix_on; v++) {
		if ((vp->pba & (1ULL << v)) && !vec_masked(vp, v)) {
			vp->pba &= ~(1ULL << v);
			msix_send(vp, v);
		}
	}
}

void virtio_pci_notify_queue(struct virtio_pci *vp, unsigned q)
{
	if (q < vp->nqueues)
		raise_vector(vp, vp->vq[q].msix_vector, 1);
}

/* Asks the I/O thread to serve queue q again on its next turn (the queue's kick eventfd;
 * tests without one: nothing). */
static void requeue(struct virtio_pci *vp, unsigned q)
{
	uint64_t one = 1;
	if (vp->kick_fd[q] >= 0 && write(vp->kick_fd[q], &one, sizeof(one)) < 0)
		log_debug("%s: cannot requeue queue %u", vp->name, q);
}

void virtio_pci_serve(struct virtio_pci *vp, unsigned q, struct virtq_chain *chain,
		      uint32_t (*serve)(struct virtio_pci *vp, const struct virtq_chain *c))
{
	struct virtq *vq = &vp->vq[q];
	unsigned budget = 4u * vq->size;
	for (;;) {
		const char *why = NULL;
		int r = 0;
		bool any = false;
		while (budget && (r = virtq_pop(vq, chain, &why)) == 1) {
			uint32_t len = serve(vp, chain);
			if (len == VIRTIO_SERVE_RETRY || len == VIRTIO_SERVE_YIELD) {
				/* Throttled (the device calls again when its bucket refills) or out
				 * of the device's budget for this turn (the next turn resumes). */
				virtq_unpop(vq);
				if (any && virtq_should_notify(vq))
					virtio_pci_notify_queue(vp, q);
				if (len == VIRTIO_SERVE_YIELD)
					requeue(vp, q);
				return;
			}
			if (len != VIRTIO_SERVE_ASYNC) {
				virtq_push(vq, chain->head, len);
				any = true;
			}
			budget--;
		}
		if (r < 0) {
			virtio_pci_needs_reset(vp, why);
			return;
		}
		if (any && virtq_should_notify(vq))
			virtio_pci_notify_queue(vp, q);
		if (!budget) {
			requeue(vp, q);
			return;
		}
		if (!virtq_enable_notify(vq))
			return;
	}
}

void virtio_pci_config_changed(struct virtio_pci *vp)
{
	vp->config_gen++;
	raise_vector(vp, vp->msix_config, 2);
}

void virtio_pci_needs_reset(struct virtio_pci *vp, const char *why)
{
	if (vp->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	log_warn("%s: guest driver error: %s; device needs reset", vp->name, why);
	vp->needs_reset_count++;
	vp->status |= VIRTIO_STATUS_NEEDS_RESET;
	for (unsigned q = 0; q < vp->nqueues; q++)
		vp->vq[q].enabled = false;
	if (vp->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_pci_config_changed(vp);
}

/* ---- Common configuration ---------------------------------------------------------- */

static void notify_locked(struct virtio_pci *vp, unsigned q);
_Static_assert(VIRTIO_MAX_QUEUES <= 64, "early_kicks holds one bit per queue");

static void reset_device(struct virtio_pci *vp)
{
	if (vp->ops->reset)
		vp->ops->reset(vp);
	for (unsigned q = 0; q < vp->nqueues; q++) {
		virtq_reset(&vp->vq[q]);
		vp->vq[q].size = vp->qmax;
		vp->vq[q].msix_vector = VIRTIO_MSI_NO_VECTOR;
	}
	vp->guest_features = 0;
	vp->dfselect = vp->gfselect = 0;
	vp->queue_select = 0;
	vp->msix_config = VIRTIO_MSI_NO_VECTOR;
	vp->status = 0;
	vp->isr = 0;
	vp->early_kicks = 0;
	irq_line_set(&vp->intx, false);
}

bool virtio_pci_drain(struct virtio_pci *vp, unsigned ms)
{
	if (vp->ops->drain && vp->ops->drain(vp, ms))
		return false;
	vp->reset_pending = false;
	return true;
}

/* Status 0 (virtio 1.2 §2.4.1): the registers and queues go back to their reset state at once,
 * so nothing new starts, and the model forgets its requests; but I/O it started may still
 * write guest RAM (a read into a buffer), so the reset is complete, and the status reads 0,
 * only once that has ended. The write waits a little for it; a driver polls the status for
 * the rest (§4.1.4.3.2 has it wait for 0 before it reuses anything), and the I/O thread ends
 * the reset when the last completion arrives. */
static void start_reset(struct virtio_pci *vp)
{
	uint8_t was = vp->status;
	reset_device(vp);
	if (virtio_pci_drain(vp, VIRTIO_RESET_WAIT_MS))
		return;
	vp->reset_pending = true;
	vp->reset_status = was ? was : VIRTIO_STATUS_ACK;
	if (!vp->resets_waited++)
		log_info("%s: a reset waits for I/O in flight (more than %d ms); the status reads "
			 "nonzero until it ends",
			 vp->name, VIRTIO_RESET_WAIT_MS);
}

static struct virtq *cur_queue(struct virtio_pci *vp)
{
	return vp->queue_select < vp->nqueues ? &vp->vq[vp->queue_select] : NULL;
}

static void common_read(struct virtio_pci *vp, unsigned off, void *data, unsigned len)
{
	uint8_t r[0x40] = {0};
	struct virtq *vq = cur_queue(vp);
	uint32_t df = vp->dfselect < 2 ? (uint32_t)(vp->host_features >> (32 * vp->dfselect)) : 0;
	uint32_t gf = vp->gfselect < 2 ? (uint32_t)(vp->guest_features >> (32 * vp->gfselect)) : 0;
	uint16_t nq = (uint16_t)vp->nqueues;
	if (vp->reset_pending)
		virtio_pci_drain(vp, 0);
	memcpy(&r[0x00], &vp->dfselect, 4);
	memcpy(&r[0x04], &df, 4);
	memcpy(&r[0x08], &vp->gfselect, 4);
	memcpy(&r[0x0C], &gf, 4);
	memcpy(&r[0x10], &vp->msix_config, 2);
	memcpy(&r[0x12], &nq, 2);
	r[0x14] = vp->reset_pending ? vp->reset_status : vp->status;
	r[0x15] = vp->config_gen;
	memcpy(&r[0x16], &vp->queue_select, 2);
	if (vq) {
		uint16_t en = vq->enabled, qoff = vp->queue_select;
		memcpy(&r[0x18], &vq->size, 2);
		memcpy(&r[0x1A], &vq->msix_vector, 2);
		memcpy(&r[0x1C], &en, 2);
		memcpy(&r[0x1E], &qoff, 2);
		memcpy(&r[0x20], &vq->desc_gpa, 8);
		memcpy(&r[0x28], &vq->avail_gpa, 8);
		memcpy(&r[0x30], &vq->used_gpa, 8);
		memcpy(&r[0x38], &qoff, 2);
	}
	if (off + len <= sizeof(r))
		memcpy(data, &r[off], len);
	else
		memset(data, 0, len);
}

static void set_status(struct virtio_pci *vp, uint8_t s)
{
	if (s == 0) {
		start_reset(vp);
		return;
	}
	if ((s & VIRTIO_STATUS_FEATURES_OK) && !(vp->status & VIRTIO_STATUS_FEATURES_OK)) {
		/* Only features we offered, and always the modern interface. */
		if ((vp->guest_features & ~vp->host_features) ||
		    !(vp->guest_features & VIRTIO_F_VERSION_1))
			s &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		for (unsigned q = 0; q < vp->nqueues; q++) {
			vp->vq[q].event_idx = virtio_has(vp, VIRTIO_F_EVENT_IDX);
			vp->vq[q].indirect = virtio_has(vp, VIRTIO_F_INDIRECT_DESC);
		}
	}
	bool was_ok = vp->status & VIRTIO_STATUS_DRIVER_OK;
	vp->status = (uint8_t)(s | (vp->status & VIRTIO_STATUS_NEEDS_RESET));
	if (was_ok || !(s & VIRTIO_STATUS_DRIVER_OK))
		return;
	if (vp->ops->activate)
		vp->ops->activate(vp);
	/* The notifications that came before DRIVER_OK, now that the buffers may be used. */
	uint64_t early = vp->early_kicks;
	vp->early_kicks = 0;
	for (unsigned q = 0; q < vp->nqueues; q++)
		if (early & (1ULL << q))
			notify_locked(vp, q);
}

static void set64(uint64_t *f, unsigned at, unsigned len, uint64_t v)
{
	/* A 4- or 8-byte write into an 8-byte field at byte offset at (0 or 4). */
	if (len == 8 && at == 0) {
		*f = v;
	} else if (len == 4 && at == 0) {
		*f = (*f & ~0xFFFFFFFFULL) | (uint32_t)v;
	} else if (len == 4 && at == 4) {
		*f = (*f & 0xFFFFFFFFULL) | (v << 32);
	}
}

static void common_write(struct virtio_pci *vp, unsigned off, const void *data, unsigned len)
{
	uint64_t v = dev_load(data, len);
	struct virtq *vq = cur_queue(vp);
	if (vp->reset_pending && !virtio_pci_drain(vp, 0)) {
		/* The driver did not wait for the status to read 0: nothing changes yet. */
		log_debug("%s: write at 0x%x during a reset ignored", vp->name, off);
		return;
	}
	switch (off) {
	case 0x00:
		vp->dfselect = (uint32_t)v;
		return;
	case 0x08:
		vp->gfselect = (uint32_t)v;
		return;
	case 0x0C:
		if (vp->gfselect < 2 && !(vp->status & VIRTIO_STATUS_FEATURES_OK)) {
			unsigned sh = 32 * vp->gfselect;
			vp->guest_features = (vp->guest_features & ~(0xFFFFFFFFULL << sh)) |
					     ((uint64_t)(uint32_t)v << sh);
		}
		return;
	case 0x10:
		vp->msix_config = (uint16_t)v;
		return;
	case 0x14:
		set_status(vp, (uint8_t)v);
		return;
	case 0x16:
		vp->queue_select = (uint16_t)v;
		return;
	}
	if (!vq)
		return;
	if (off == 0x1A) {
		vq->msix_vector = (uint16_t)v < vp->nvec ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
		return;
	}
	if (vq->enabled) {
		/* The driver may not change a live queue (§4.1.4.3.2): ignore, and say so. */
		if (off >= 0x18 && off < 0x38 && off != 0x1C)
			log_debug("%s: queue %u: write at 0x%x to a live queue ignored", vp->name,
				  vp->queue_select, off);
		return;
	}
	switch (off) {
	case 0x18:
		if (v == 0 || v > vp->qmax || (v & (v - 1)))
			virtio_pci_needs_reset(vp,
					       "queue size not a power of two up to the maximum");
		else
			vq->size = (uint16_t)v;
		return;
	case 0x1C:
		if (v == 1) {
			vq->enabled = true;
			if (virtq_start(vq, vp->mem)) {
				vq->enabled = false;
				virtio_pci_needs_reset(vp, "queue rings outside guest RAM");
			} else {
				vq->event_idx = virtio_has(vp, VIRTIO_F_EVENT_IDX);
				vq->indirect = virtio_has(vp, VIRTIO_F_INDIRECT_DESC);
			}
		}
		return;
	case 0x20:
	case 0x24:
		set64(&vq->desc_gpa, off - 0x20, len, v);
		return;
	case 0x28:
	case 0x2C:
		set64(&vq->avail_gpa, off - 0x28, len, v);
		return;
	case 0x30:
	case 0x34:
		set64(&vq->used_gpa, off - 0x30, len, v);
		return;
	}
}

/* ---- BAR0 ------------------------------------------------------------------------ */

static void bar_read_locked(struct virtio_pci *vp, uint64_t off, void *data, unsigned len)
{
	memset(data, 0, len);
	if (off < VPCI_COMMON + 0x40) {
		common_read(vp, (unsigned)off, data, len);
	} else if (off == VPCI_ISR) {
		dev_store(data, len, vp->isr);
		vp->isr = 0;
		irq_line_set(&vp->intx, false);
	} else if (off >= VPCI_DEVCFG && off < VPCI_NOTIFY) {
		if (vp->ops->cfg_read)
			vp->ops->cfg_read(vp, (unsigned)(off - VPCI_DEVCFG), data, len);
	} else if (off >= VPCI_MSIX && off < VPCI_MSIX + 16ULL * vp->nvec && len == 4 &&
		   !(off & 3)) {
		uint64_t i = (off - VPCI_MSIX) / 4;
		dev_store(data, 4, vp->msix_table[i / 4][i % 4]);
	} else if (off >= VPCI_MSIX && off < VPCI_MSIX + 16ULL * vp->nvec && len == 8 &&
		   !(off & 7)) {
		uint64_t i = (off - VPCI_MSIX) / 4;
		dev_store(data, 8,
			  vp->msix_table[i / 4][i % 4] | (uint64_t)vp->msix_table[i / 4][i % 4 + 1]
							     << 32);
	} else if (off >= VPCI_PBA && off + len <= VPCI_PBA + 8) {
		uint64_t p = vp->pba >> (8 * (off - VPCI_PBA));
		dev_store(data, len, p);
	}
}

static void msix_write(struct virtio_pci *vp, uint64_t off, uint64_t v, unsigned len)
{
	uint64_t i = (off - VPCI_MSIX) / 4;
	if (len == 4 && !(off & 3)) {
		vp->msix_table[i / 4][i % 4] = (uint32_t)v;
	} else if (len == 8 && !(off & 7)) {
		vp->msix_table[i / 4][i % 4] = (uint32_t)v;
		vp->msix_table[i / 4][i % 4 + 1] = (uint32_t)(v >> 32);
	} else {
		return;
	}
	unsigned vec = (unsigned)(i / 4);
	if (vp->router && vp->irq_fd[vec] >= 0)
		vp->route_ok[vec] =
		    msi_router_set(vp->router, vp->irq_gsi[vec], vp->msix_table[vec][0],
				   vp->msix_table[vec][1], vp->msix_table[vec][2], true) == 0;
	msix_flush_pending(vp);
}

static void notify_locked(struct virtio_pci *vp, unsigned q)
{
	if (q >= vp->nqueues || !vp->vq[q].enabled || (vp->status & VIRTIO_STATUS_NEEDS_RESET))
		return;
	if (!(vp->status & VIRTIO_STATUS_DRIVER_OK)) {
		/* A driver may notify a live queue before DRIVER_OK (Linux's balloon primes its
		 * statistics queue so, and never notifies it again). The device may not use the
		 * buffers yet (§3.1.1): remember the queue, set_status serves it at DRIVER_OK. */
		vp->early_kicks |= 1ULL << q;
		return;
	}
	vp->ops->notify(vp, q);
}

void virtio_pci_kick(struct virtio_pci *vp, unsigned q)
{
	pthread_mutex_lock(&vp->lock);
	vp->kicks++;
	notify_locked(vp, q);
	pthread_mutex_unlock(&vp->lock);
}

/* Binds (or unbinds) each queue's eventfd to its notify address. Failures leave the MMIO
 * exit path in place, which serves the same writes. */
static void bind_kicks(struct virtio_pci *vp, uint64_t bar, bool on)
{
	for (unsigned q = 0; q < vp->nqueues && vp->vm_fd >= 0; q++) {
		if (vp->kick_fd[q] < 0)
			continue;
		struct kvm_ioeventfd io = {
		    .addr = bar + VPCI_NOTIFY + 4ULL * q,
		    .len = 2,
		    .fd = vp->kick_fd[q],
		    .flags = on ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
		};
		if (ioctl(vp->vm_fd, KVM_IOEVENTFD, &io) < 0) {
			if (on)
				log_info("%s: KVM_IOEVENTFD: %s (notifications by MMIO exit)",
					 vp->name, strerror(errno));
			return;
		}
	}
	vp->kick_bound = on;
	vp->kick_addr = bar;
}

int virtio_pci_irqfd_init(struct virtio_pci *vp, struct msi_router *router)
{
	for (unsigned v = 0; v < vp->nvec && vp->vm_fd >= 0; v++) {
		int gsi = msi_router_alloc(router);
		if (gsi < 0)
			return gsi;
		int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd < 0)
			return -errno;
		struct kvm_irqfd irqfd = {.fd = (uint32_t)fd, .gsi = (uint32_t)gsi};
		if (ioctl(vp->vm_fd, KVM_IRQFD, &irqfd) < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
		vp->irq_fd[v] = fd;
		vp->irq_gsi[v] = gsi;
	}
	vp->router = router;
	return 0;
}

void virtio_pci_watch_backend(struct virtio_pci *vp)
{
	if (vp->io_epfd < 0 || !vp->ops->backend_fd)
		return;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = vp->io_tag};
	epoll_ctl(vp->io_epfd, EPOLL_CTL_MOD, vp->ops->backend_fd(vp), &ev);
}

void virtio_pci_backend(struct virtio_pci *vp)
{
	pthread_mutex_lock(&vp->lock);
	if (vp->ops->backend_ready)
		vp->ops->backend_ready(vp);
	if (vp->reset_pending) /* the last completion ends the reset */
		virtio_pci_drain(vp, 0);
	pthread_mutex_unlock(&vp->lock);
}

int virtio_pci_kick_init(struct virtio_pci *vp)
{
	for (unsigned q = 0; q < vp->nqueues; q++) {
		vp->kick_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vp->kick_fd[q] < 0)
			return -errno;
	}
	return 0;
}

static void bar_moved(struct pci_func *f, unsigned idx, uint64_t addr, bool mapped)
{
	struct virtio_pci *vp = f->opaque;
	if (idx != 0)
		return;
	pthread_mutex_lock(&vp->lock);
	if (vp->kick_bound)
		bind_kicks(vp, vp->kick_addr, false);
	if (mapped)
		bind_kicks(vp, addr, true);
	pthread_mutex_unlock(&vp->lock);
}

static void bar_write_locked(struct virtio_pci *vp, uint64_t off, const void *data, unsigned len)
{
	if (off < VPCI_COMMON + 0x40) {
		common_write(vp, (unsigned)off, data, len);
	} else if (off >= VPCI_DEVCFG && off < VPCI_NOTIFY) {
		if (vp->ops->cfg_write)
			vp->ops->cfg_write(vp, (unsigned)(off - VPCI_DEVCFG), data, len);
	} else if (off >= VPCI_NOTIFY && off < VPCI_NOTIFY + 4ULL * VIRTIO_MAX_QUEUES) {
		vp->notifies++;
		notify_locked(vp, (unsigned)(off - VPCI_NOTIFY) / 4);
	} else if (off >= VPCI_MSIX && off < VPCI_MSIX + 16ULL * vp->nvec) {
		msix_write(vp, off, dev_load(data, len), len);
	}
}

static void bar_read(struct device *dev, uint64_t off, void *data, unsigned len)
{
	struct virtio_pci *vp = dev->priv;
	pthread_mutex_lock(&vp->lock);
	bar_read_locked(vp, off, data, len);
	pthread_mutex_unlock(&vp->lock);
}

static void bar_write(struct device *dev, uint64_t off, const void *data, unsigned len)
{
	struct virtio_pci *vp = dev->priv;
	pthread_mutex_lock(&vp->lock);
	bar_write_locked(vp, off, data, len);
	pthread_mutex_unlock(&vp->lock);
}

static const struct device_ops bar_ops = {.read = bar_read, .write = bar_write};

/* ---- PCI config hooks (called with the host bridge's lock held) -------------------- */

static void cfg_written(struct pci_func *f, unsigned off, unsigned len)
{
	struct virtio_pci *vp = f->opaque;
	pthread_mutex_lock(&vp->lock);
	if (vp->msix_cap && off <= vp->msix_cap + 3u && off + len > vp->msix_cap + 2u) {
		uint16_t ctrl = (uint16_t)pci_cfg_get(f, vp->msix_cap + 2, 2);
		vp->msix_on = ctrl & 0x8000;
		vp->msix_fmask = ctrl & 0x4000;
		if (vp->msix_on)
			irq_line_set(&vp->intx, false);
		msix_flush_pending(vp);
	}
	/* VIRTIO_PCI_CAP_PCI_CFG: a write to pci_cfg_data goes to BAR0 at cap.offset. */
	unsigned c = vp->pcicfg_cap;
	if (c && off >= c + 16 && off < c + 20) {
		uint32_t boff = pci_cfg_get(f, c + 8, 4), blen = pci_cfg_get(f, c + 12, 4);
		uint32_t val = pci_cfg_get(f, c + 16, 4);
		if (f->cfg[c + 4] == 0 && (blen == 1 || blen == 2 || blen == 4) &&
		    boff < VPCI_BAR_SIZE && !(boff & (blen - 1)))
			bar_write_locked(vp, boff, &val, blen);
	}
	pthread_mutex_unlock(&vp->lock);
}

static bool cfg_read(struct pci_func *f, unsigned off, unsigned len, uint32_t *val)
{
	struct virtio_pci *vp = f->opaque;
	unsigned c = vp->pcicfg_cap;
	if (!c || off < c + 16 || off >= c + 20)
		return false;
	uint32_t boff = pci_cfg_get(f, c + 8, 4), blen = pci_cfg_get(f, c + 12, 4), v = 0;
	pthread_mutex_lock(&vp->lock);
	if (f->cfg[c + 4] == 0 && (blen == 1 || blen == 2 || blen == 4) && boff < VPCI_BAR_SIZE &&
	    !(boff & (blen - 1)))
		bar_read_locked(vp, boff, &v, blen);
	pthread_mutex_unlock(&vp->lock);
	pci_cfg_set(f, c + 16, 4, v);
	*val = pci_cfg_get(f, off, len);
	return true;
}

static const struct pci_func_ops vpci_ops = {
    .cfg_written = cfg_written,
    .cfg_read = cfg_read,
    .bar_moved = bar_moved,
};

void virtio_pci_init(struct virtio_pci *vp, const struct virtio_pci_config *cfg)
{
	memset(vp, 0, sizeof(*vp));
	pthread_mutex_init(&vp->lock, NULL);
	snprintf(vp->name, sizeof(vp->name), "%s", cfg->name);
	vp->device_id = cfg->device_id;
	vp->ops = cfg->ops;
	vp->dev = cfg->dev;
	vp->mem = cfg->mem;
	vp->vm_fd = cfg->chip ? cfg->chip->vm_fd : -1;
	vp->host_features =
	    cfg->features | VIRTIO_F_VERSION_1 | VIRTIO_F_EVENT_IDX | VIRTIO_F_INDIRECT_DESC;
	vp->nqueues = cfg->nqueues < VIRTIO_MAX_QUEUES ? cfg->nqueues : VIRTIO_MAX_QUEUES;
	vp->qmax = cfg->qmax && cfg->qmax <= VIRTQ_MAX_SIZE ? cfg->qmax : 256;
	vp->nvec = vp->nqueues + 1;
	vp->bar = (struct device){.name = vp->name, .ops = &bar_ops, .priv = vp};
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		vp->kick_fd[q] = -1;
	for (unsigned v = 0; v < VIRTIO_MAX_VECTORS; v++)
		vp->irq_fd[v] = -1;
	vp->io_epfd = -1;

	struct pci_func *f = &vp->pci;
	pci_func_init(f, 0x1AF4, (uint16_t)(0x1040 + cfg->device_id), cfg->class_code, 0x1AF4,
		      cfg->device_id);
	f->ops = &vpci_ops;
	f->opaque = vp;
	pci_func_set_bar(f, 0, VPCI_BAR_SIZE, true, &vp->bar);
	add_msix_cap(vp);
	add_vcap(vp, CAP_COMMON, VPCI_COMMON, 0x40, 0, 0);
	add_vcap(vp, CAP_NOTIFY, VPCI_NOTIFY, 4 * VIRTIO_MAX_QUEUES, 4, 4);
	add_vcap(vp, CAP_ISR, VPCI_ISR, 1, 0, 0);
	add_vcap(vp, CAP_DEVICE, VPCI_DEVCFG, 0x1000, 0, 0);
	add_vcap(vp, CAP_PCI, 0, 0, 4, 0);
	for (unsigned i = 0; i < VIRTIO_MAX_VECTORS; i++)
		vp->msix_table[i][3] = 1; /* masked at reset */
	reset_device(vp);
}

void virtio_pci_fini(struct virtio_pci *vp)
{
	if (vp->kick_bound)
		bind_kicks(vp, vp->kick_addr, false);
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		if (vp->kick_fd[q] >= 0)
			close(vp->kick_fd[q]);
	for (unsigned v = 0; v < VIRTIO_MAX_VECTORS; v++) {
		if (vp->irq_fd[v] < 0)
			continue;
		struct kvm_irqfd irqfd = {.fd = (uint32_t)vp->irq_fd[v],
					  .gsi = (uint32_t)vp->irq_gsi[v],
					  .flags = KVM_IRQFD_FLAG_DEASSIGN};
		ioctl(vp->vm_fd, KVM_IRQFD, &irqfd);
		close(vp->irq_fd[v]);
	}
	if (vp->notifies || vp->kicks)
		log_info("%s: %llu notifications by ioeventfd, %llu by MMIO exit; %llu "
			 "interrupts, %llu of them by irqfd",
			 vp->name, (unsigned long long)vp->kicks, (unsigned long long)vp->notifies,
			 (unsigned long long)vp->interrupts, (unsigned long long)vp->irqfd_sends);
	if (vp->resets_waited)
		log_info("%s: %llu resets waited more than %d ms for I/O in flight", vp->name,
			 (unsigned long long)vp->resets_waited, VIRTIO_RESET_WAIT_MS);
	pthread_mutex_destroy(&vp->lock);
}
