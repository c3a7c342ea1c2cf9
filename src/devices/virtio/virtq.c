/* Split virtqueues: every walk bounded, every address and length checked through guest_mem. */
#include "devices/virtio/virtq.h"

#include <errno.h>
#include <string.h>

static uint16_t load16(volatile uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

int virtq_start(struct virtq *vq, const struct guest_mem *mem)
{
	uint16_t n = vq->size;
	if (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1)))
		return -EINVAL;
	/* Alignments of §2.7: descriptors 16, avail 2, used 4. */
	if ((vq->desc_gpa & 15) || (vq->avail_gpa & 1) || (vq->used_gpa & 3))
		return -EINVAL;
	void *d = guest_mem_ptr(mem, vq->desc_gpa, 16ULL * n);
	void *a = guest_mem_ptr(mem, vq->avail_gpa, 6 + 2ULL * n);
	void *u = guest_mem_ptr(mem, vq->used_gpa, 6 + 8ULL * n);
	if (!d || !a || !u)
		return -EINVAL;
	vq->mem = mem;
	vq->desc = d;
	vq->avail = a;
	vq->used = u;
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->signalled = 0;
	vq->signalled_valid = false;
	return 0;
}

void virtq_reset(struct virtq *vq)
{
	memset(vq, 0, sizeof(*vq));
}

bool virtq_has_avail(struct virtq *vq)
{
	/* A stopped queue (NEEDS_RESET) has nothing for virtq_pop: saying otherwise would make
	 * every "enable notifications, pop again" loop spin. */
	return vq->enabled && vq->avail && load16(&vq->avail[1]) != vq->last_avail;
}

static int add_seg(struct virtq *vq, struct virtq_chain *c, const struct virtq_desc *d,
		   const char **why)
{
	bool w = d->flags & VIRTQ_DESC_F_WRITE;
	if (!w && c->nin) {
		*why = "readable descriptor after a writable one";
		return -EIO;
	}
	if (d->len == 0)
		return 0;
	void *p = guest_mem_ptr(vq->mem, d->addr, d->len);
	if (!p) {
		*why = "descriptor outside guest RAM";
		return -EIO;
	}
	if (c->nout + c->nin >= VIRTQ_MAX_SEGS) {
		*why = "too many segments in a chain";
		return -EIO;
	}
	c->iov[c->nout + c->nin] = (struct iovec){p, d->len};
	if (w) {
		c->nin++;
		c->in_len += d->len;
	} else {
		c->nout++;
		c->out_len += d->len;
	}
	return 0;
}

/* Walks the chain at head. A chain visits at most table-size descriptors (more is a loop). */
static int walk(struct virtq *vq, uint16_t head, struct virtq_chain *c, const char **why)
{
	const struct virtq_desc *table = vq->desc;
	uint32_t tsize = vq->size, idx = head, seen = 0;
	bool in_indirect = false;
	c->head = head;
	c->nout = c->nin = 0;
	c->out_len = c->in_len = 0;
	for (;;) {
		if (idx >= tsize) {
			*why = "descriptor index out of range";
			return -EIO;
		}
		if (++seen > tsize) {
			*why = "descriptor chain loops";
			return -EIO;
		}
		struct virtq_desc d;
		memcpy(&d, (const uint8_t *)table + 16 * (size_t)idx, sizeof(d));
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (!vq->indirect || in_indirect || (d.flags & VIRTQ_DESC_F_NEXT)) {
				*why = "bad indirect descriptor";
				return -EIO;
			}
			if (d.len == 0 || d.len % 16 || d.len / 16 > VIRTQ_MAX_SEGS) {
				*why = "bad indirect table length";
				return -EIO;
			}
			table = guest_mem_ptr(vq->mem, d.addr, d.len);
			if (!table) {
				*why = "indirect table outside guest RAM";
				return -EIO;
			}
			in_indirect = true;
			tsize = d.len / 16;
			idx = 0;
			seen = 0;
			continue;
		}
		int ret = add_seg(vq, c, &d, why);
		if (ret)
			return ret;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		idx = d.next;
	}
}

int virtq_pop(struct virtq *vq, struct virtq_chain *chain, const char **why)
{
	*why = NULL;
	if (!vq->enabled || !vq->avail)
		return 0;
	uint16_t avail_idx = load16(&vq->avail[1]);
	if (avail_idx == vq->last_avail)
		return 0;
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->size) {
		*why = "available index ran ahead of the queue size";
		return -EIO;
	}
	uint16_t head = vq->avail[2 + (vq->last_avail & (vq->size - 1))];
	int ret = walk(vq, head, chain, why);
	if (ret)
		return ret;
	vq->last_avail++;
	return 1;
}

void virtq_unpop(struct virtq *vq)
{
	vq->last_avail--;
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t len)
{
	if (!vq->used)
		return;
	volatile uint32_t *elem =
	    (volatile uint32_t *)(vq->used + 2) + 2 * (size_t)(vq->used_idx & (vq->size - 1));
	elem[0] = head;
	elem[1] = len;
	vq->used_idx++;
	__atomic_store_n(&vq->used[1], vq->used_idx, __ATOMIC_RELEASE);
}

bool virtq_should_notify(struct virtq *vq)
{
	if (!vq->avail)
		return false;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(load16(&vq->avail[0]) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	uint16_t new_idx = vq->used_idx, old = vq->signalled;
	bool valid = vq->signalled_valid;
	vq->signalled = new_idx;
	vq->signalled_valid = true;
	if (!valid)
		return true;
	uint16_t event = load16(&vq->avail[2 + vq->size]);
	/* vring_need_event: notify when event lies in (old, new]. */
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool virtq_enable_notify(struct virtq *vq)
{
	if (!vq->used)
		return false;
	if (vq->event_idx)
		__atomic_store_n(&vq->used[2 + 4 * vq->size], vq->last_avail, __ATOMIC_RELEASE);
	else
		__atomic_store_n(&vq->used[0], 0, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return virtq_has_avail(vq);
}

uint64_t virtq_chain_read(const struct virtq_chain *c, uint64_t off, void *dst, uint64_t len)
{
	uint64_t done = 0;
	for (unsigned i = 0; i < c->nout && done < len; i++) {
		uint64_t l = c->iov[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		uint64_t n = l - off < len - done ? l - off : len - done;
		memcpy((uint8_t *)dst + done, (uint8_t *)c->iov[i].iov_base + off, n);
		done += n;
		off = 0;
	}
	return done;
}

uint64_t virtq_chain_write(const struct virtq_chain *c, uint64_t off, const void *src, uint64_t len)
{
	uint64_t done = 0;
	for (unsigned i = c->nout; i < c->nout + c->nin && done < len; i++) {
		uint64_t l = c->iov[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		uint64_t n = l - off < len - done ? l - off : len - done;
		memcpy((uint8_t *)c->iov[i].iov_base + off, (const uint8_t *)src + done, n);
		done += n;
		off = 0;
	}
	return done;
}

int virtq_chain_slice(const struct virtq_chain *c, bool writable, uint64_t off, uint64_t len,
		      struct iovec *out, int max)
{
	unsigned first = writable ? c->nout : 0;
	unsigned end = writable ? c->nout + c->nin : c->nout;
	int n = 0;
	uint64_t left = len;
	for (unsigned i = first; i < end && left; i++) {
		uint64_t l = c->iov[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		if (n == max)
			return 0;
		uint64_t take = l - off < left ? l - off : left;
		out[n++] = (struct iovec){(uint8_t *)c->iov[i].iov_base + off, take};
		left -= take;
		off = 0;
	}
	return left ? 0 : n;
}
