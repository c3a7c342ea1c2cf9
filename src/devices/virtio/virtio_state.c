/* Saved state of a virtio-pci device: PCI config, transport registers, queues, MSI-X, model. */
#include "devices/devutil.h"
#include "devices/virtio/virtio_devices.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define VPCI_MAGIC DEV_MAGIC('V', 'P', 'C', 'I')

int virtio_pci_save(struct virtio_pci *vp, struct state_buf *buf)
{
	struct state_w w = {buf, 0};
	pthread_mutex_lock(&vp->lock);
	if (vp->ops->quiesce && (w.err = vp->ops->quiesce(vp))) {
		pthread_mutex_unlock(&vp->lock);
		return w.err;
	}
	sw_header(&w, VPCI_MAGIC, 1);
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
		w.err = vp->ops->save(vp, buf);
	pthread_mutex_unlock(&vp->lock);
	return w.err;
}

int virtio_pci_restore(struct virtio_pci *vp, const void *data, size_t len)
{
	struct state_r r = {data, len, 0, false};
	if (!sr_header(&r, VPCI_MAGIC, 1) || sr_u16(&r) != vp->device_id)
		return -EINVAL;
	pthread_mutex_lock(&vp->lock);
	uint8_t cfg[256];
	sr_bytes(&r, cfg, 256);
	uint64_t gf = sr_u64(&r);
	vp->dfselect = sr_u32(&r);
	vp->gfselect = sr_u32(&r);
	vp->queue_select = sr_u16(&r);
	vp->msix_config = sr_u16(&r);
	uint8_t status = sr_u8(&r);
	vp->config_gen = sr_u8(&r);
	vp->isr = sr_u8(&r);
	int ret = -EINVAL;
	if (sr_u8(&r) != vp->nqueues || (gf & ~vp->host_features))
		goto out;
	vp->guest_features = gf;
	vp->status = status;
	for (unsigned q = 0; q < vp->nqueues; q++) {
		struct virtq *vq = &vp->vq[q];
		virtq_reset(vq);
		vq->size = sr_u16(&r);
		vq->desc_gpa = sr_u64(&r);
		vq->avail_gpa = sr_u64(&r);
		vq->used_gpa = sr_u64(&r);
		vq->msix_vector = sr_u16(&r);
		bool en = sr_u8(&r);
		uint16_t la = sr_u16(&r), ui = sr_u16(&r), sg = sr_u16(&r);
		bool sv = sr_u8(&r);
		vq->event_idx = virtio_has(vp, VIRTIO_F_EVENT_IDX);
		vq->indirect = virtio_has(vp, VIRTIO_F_INDIRECT_DESC);
		if (en) {
			if (virtq_start(vq, vp->mem))
				goto out;
			vq->enabled = true;
		}
		vq->last_avail = la;
		vq->used_idx = ui;
		vq->signalled = sg;
		vq->signalled_valid = sv;
	}
	if (sr_u8(&r) != vp->nvec)
		goto out;
	for (unsigned v = 0; v < vp->nvec; v++)
		for (int i = 0; i < 4; i++)
			vp->msix_table[v][i] = sr_u32(&r);
	vp->pba = sr_u64(&r);
	if (r.bad)
		goto out;
	/* Config space: only what the guest could have written, over our read-only fields. */
	for (unsigned i = 0; i < 256; i++)
		vp->pci.cfg[i] =
		    (uint8_t)((vp->pci.cfg[i] & ~vp->pci.wmask[i]) | (cfg[i] & vp->pci.wmask[i]));
	if (vp->msix_cap) {
		uint16_t ctrl = (uint16_t)pci_cfg_get(&vp->pci, vp->msix_cap + 2, 2);
		vp->msix_on = ctrl & 0x8000;
		vp->msix_fmask = ctrl & 0x4000;
	}
	ret = vp->ops->restore ? vp->ops->restore(vp, &r) : 0;
	if (!ret && !sr_done(&r))
		ret = -EINVAL;
out:
	pthread_mutex_unlock(&vp->lock);
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
