/* Saved state of a virtio-pci device: PCI config, transport registers, queues, MSI-X, model;
 * restored all or nothing, then the BAR, ioeventfds and MSI routes are set up again. */
#include "devices/devutil.h"
#include "devices/virtio/msi_route.h"
#include "devices/virtio/virtio_devices.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VPCI_MAGIC DEV_MAGIC('V', 'P', 'C', 'I')
#define VPCI_V	   2 /* 2: the model's state is length-prefixed */

/* The transport's part of a device, as saved (a restore fills one before touching vp). */
struct vpci_regs {
	uint8_t cfg[256];
	uint64_t guest_features;
	uint32_t dfselect, gfselect;
	uint16_t queue_select, msix_config;
	uint8_t status, config_gen, isr;
	struct virtq vq[VIRTIO_MAX_QUEUES];
	uint32_t msix_table[VIRTIO_MAX_VECTORS][4];
	uint64_t pba;
};

int virtio_pci_save(struct virtio_pci *vp, struct state_buf *buf)
{
	struct state_w w = {buf, 0};
	struct state_buf model = {0};
	pthread_mutex_lock(&vp->lock);
	/* Requests in flight finish first (their used entries belong in the saved rings); a
	 * reset waiting for them ends. */
	if (!virtio_pci_drain(vp, VIRTIO_DRAIN_WAIT_MS)) {
		pthread_mutex_unlock(&vp->lock);
		log_warn("%s: I/O still in flight after %d ms; not saved", vp->name,
			 VIRTIO_DRAIN_WAIT_MS);
		return -EBUSY;
	}
	sw_header(&w, VPCI_MAGIC, VPCI_V);
	sw_u16(&w, vp->device_id);
	sw_bytes(&w, vp->pci.cfg, 256);
	sw_u64(&w, vp->guest_features);
	sw_u32(&w, vp->dfselect);
	sw_u32(&w, vp->gfselect);
	sw_u16(&w, vp->queue_select);
	sw_u16(&w, vp->msix_config);
	sw_u8(&w, vp->status);
	sw_u8(&w, vp->config_gen);
	sw_u8(&w, vp->isr);
	sw_u8(&w, (uint8_t)vp->nqueues);
	for (unsigned q = 0; q < vp->nqueues; q++) {
		const struct virtq *vq = &vp->vq[q];
		sw_u16(&w, vq->size);
		sw_u64(&w, vq->desc_gpa);
		sw_u64(&w, vq->avail_gpa);
		sw_u64(&w, vq->used_gpa);
		sw_u16(&w, vq->msix_vector);
		sw_u8(&w, vq->enabled);
		sw_u16(&w, vq->last_avail);
		sw_u16(&w, vq->used_idx);
		sw_u16(&w, vq->signalled);
		sw_u8(&w, vq->signalled_valid);
	}
	sw_u8(&w, (uint8_t)vp->nvec);
	for (unsigned v = 0; v < vp->nvec; v++)
		for (int i = 0; i < 4; i++)
			sw_u32(&w, vp->msix_table[v][i]);
	sw_u64(&w, vp->pba);
	if (!w.err && vp->ops->save)
		w.err = vp->ops->save(vp, &model);
	if (!w.err && model.len > UINT32_MAX)
		w.err = -E2BIG;
	sw_u32(&w, (uint32_t)model.len);
	sw_bytes(&w, model.data, model.len);
	pthread_mutex_unlock(&vp->lock);
	state_buf_free(&model);
	return w.err;
}

/* Reads the transport's part into t, checking every value against this device. */
static int parse_regs(struct virtio_pci *vp, struct state_r *r, struct vpci_regs *t)
{
	sr_bytes(r, t->cfg, 256);
	t->guest_features = sr_u64(r);
	t->dfselect = sr_u32(r);
	t->gfselect = sr_u32(r);
	t->queue_select = sr_u16(r);
	t->msix_config = sr_u16(r);
	t->status = sr_u8(r);
	t->config_gen = sr_u8(r);
	t->isr = sr_u8(r);
	if (sr_u8(r) != vp->nqueues || (t->guest_features & ~vp->host_features))
		return -EINVAL;
	if (t->msix_config >= vp->nvec && t->msix_config != VIRTIO_MSI_NO_VECTOR)
		return -EINVAL;
	for (unsigned q = 0; q < vp->nqueues; q++) {
		struct virtq *vq = &t->vq[q];
		virtq_reset(vq);
		vq->size = sr_u16(r);
		vq->desc_gpa = sr_u64(r);
		vq->avail_gpa = sr_u64(r);
		vq->used_gpa = sr_u64(r);
		vq->msix_vector = sr_u16(r);
		bool en = sr_u8(r);
		uint16_t la = sr_u16(r), ui = sr_u16(r), sg = sr_u16(r);
		bool sv = sr_u8(r);
		if (r->bad || !vq->size || vq->size > vp->qmax || (vq->size & (vq->size - 1)) ||
		    (vq->msix_vector >= vp->nvec && vq->msix_vector != VIRTIO_MSI_NO_VECTOR))
			return -EINVAL;
		vq->event_idx = (t->guest_features & VIRTIO_F_EVENT_IDX) != 0;
		vq->indirect = (t->guest_features & VIRTIO_F_INDIRECT_DESC) != 0;
		if (en) {
			if (virtq_start(vq, vp->mem))
				return -EINVAL;
			vq->enabled = true;
		}
		vq->last_avail = la;
		vq->used_idx = ui;
		vq->signalled = sg;
		vq->signalled_valid = sv;
	}
	if (sr_u8(r) != vp->nvec)
		return -EINVAL;
	for (unsigned v = 0; v < vp->nvec; v++)
		for (int i = 0; i < 4; i++)
			t->msix_table[v][i] = sr_u32(r);
	t->pba = sr_u64(r);
	return r->bad ? -EINVAL : 0;
}

static void get_regs(const struct virtio_pci *vp, struct vpci_regs *t)
{
	memcpy(t->cfg, vp->pci.cfg, 256);
	t->guest_features = vp->guest_features;
	t->dfselect = vp->dfselect;
	t->gfselect = vp->gfselect;
	t->queue_select = vp->queue_select;
	t->msix_config = vp->msix_config;
	t->status = vp->status;
	t->config_gen = vp->config_gen;
	t->isr = vp->isr;
	memcpy(t->vq, vp->vq, sizeof(t->vq));
	memcpy(t->msix_table, vp->msix_table, sizeof(t->msix_table));
	t->pba = vp->pba;
}

/* Config space takes only what the guest could have written, over our read-only fields
 * (restoring the backup: all of it). */
static void put_regs(struct virtio_pci *vp, const struct vpci_regs *t, bool masked)
{
	for (unsigned i = 0; i < 256; i++)
		vp->pci.cfg[i] = masked ? (uint8_t)((vp->pci.cfg[i] & ~vp->pci.wmask[i]) |
						    (t->cfg[i] & vp->pci.wmask[i]))
					: t->cfg[i];
	vp->guest_features = t->guest_features;
	vp->dfselect = t->dfselect;
	vp->gfselect = t->gfselect;
	vp->queue_select = t->queue_select;
	vp->msix_config = t->msix_config;
	vp->status = t->status;
	vp->config_gen = t->config_gen;
	vp->isr = t->isr;
	memcpy(vp->vq, t->vq, sizeof(vp->vq));
	memcpy(vp->msix_table, t->msix_table, sizeof(vp->msix_table));
	vp->pba = t->pba;
	if (vp->msix_cap) {
		uint16_t ctrl = (uint16_t)pci_cfg_get(&vp->pci, vp->msix_cap + 2, 2);
		vp->msix_on = ctrl & 0x8000;
		vp->msix_fmask = ctrl & 0x4000;
	}
}

/* The host side of what the restored registers say: MSI routes for each vector's irqfd,
 * the INTx level, and a look at every live queue (buffers may wait there). Holds vp->lock. */
static void rewire(struct virtio_pci *vp)
{
	for (unsigned v = 0; v < vp->nvec; v++)
		if (vp->router && vp->irq_fd[v] >= 0)
			vp->route_ok[v] =
			    msi_router_set(vp->router, vp->irq_gsi[v], vp->msix_table[v][0],
					   vp->msix_table[v][1], vp->msix_table[v][2], true) == 0;
	bool intx = !vp->msix_on && (vp->isr & 3) &&
		    !(pci_cfg_get(&vp->pci, PCI_COMMAND, 2) & PCI_CMD_INTX_OFF);
	irq_line_set(&vp->intx, intx);
	for (unsigned q = 0; q < vp->nqueues; q++) {
		uint64_t one = 1;
		if (vp->vq[q].enabled && vp->kick_fd[q] >= 0 &&
		    write(vp->kick_fd[q], &one, sizeof(one)) < 0)
			break;
	}
}

int virtio_pci_restore(struct virtio_pci *vp, const void *data, size_t len)
{
	struct state_r r = {data, len, 0, false};
	if (!sr_header(&r, VPCI_MAGIC, VPCI_V) || sr_u16(&r) != vp->device_id)
		return -EINVAL;
	struct vpci_regs *t = calloc(2, sizeof(*t)), *old = t ? t + 1 : NULL;
	if (!t)
		return -ENOMEM;
	pthread_mutex_lock(&vp->lock);
	/* Nothing the device started may complete into the restored rings or buffers. */
	int ret = virtio_pci_drain(vp, VIRTIO_DRAIN_WAIT_MS) ? 0 : -EBUSY;
	if (ret)
		goto out;
	ret = parse_regs(vp, &r, t);
	uint32_t mlen = sr_u32(&r);
	const uint8_t *model = sr_take(&r, mlen);
	if (!ret && (!model || !sr_done(&r)))
		ret = -EINVAL;
	if (ret)
		goto out;
	/* Apply, let the model check its part against the new registers, undo if it refuses. */
	get_regs(vp, old);
	put_regs(vp, t, true);
	struct state_r mr = {model, mlen, 0, false};
	ret = vp->ops->restore ? vp->ops->restore(vp, &mr) : (mlen ? -EINVAL : 0);
	if (ret) {
		put_regs(vp, old, false);
		goto out;
	}
	rewire(vp);
out:
	pthread_mutex_unlock(&vp->lock);
	free(t);
	/* The BAR where the restored config space puts it (ioeventfds follow: bar_moved). */
	if (!ret)
		pci_func_remap(&vp->pci);
	return ret;
}

void virtio_dev_free(struct virtio_pci *vp)
{
	if (!vp)
		return;
	if (vp->ops->destroy)
		vp->ops->destroy(vp);
	virtio_pci_fini(vp);
	free(vp);
}
