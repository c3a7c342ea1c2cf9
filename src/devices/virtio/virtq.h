/* Split virtqueues (virtio 1.2 §2.7): bounded, checked descriptor walks and used-ring updates. */
#ifndef COVE_DEVICES_VIRTIO_VIRTQ_H
#define COVE_DEVICES_VIRTIO_VIRTQ_H

#include "vmm/guest_mem.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define VIRTQ_MAX_SIZE 1024 /* largest queue a Cove device offers */
#define VIRTQ_MAX_SEGS 1024 /* segments one chain may have (direct + indirect) */

#define VIRTQ_DESC_F_NEXT	   1
#define VIRTQ_DESC_F_WRITE	   2
#define VIRTQ_DESC_F_INDIRECT	   4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY	   1

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq {
	/* Set by the driver through the transport. */
	uint16_t size; /* power of two, 1..VIRTQ_MAX_SIZE */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t msix_vector;
	bool enabled;
	/* Device side. */
	const struct guest_mem *mem;
	bool event_idx;	     /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;	     /* VIRTIO_F_INDIRECT_DESC negotiated */
	uint16_t last_avail; /* next avail entry to take */
	uint16_t used_idx;   /* our copy of used->idx */
	uint16_t signalled;  /* used_idx when the driver was last notified */
	bool signalled_valid;
	/* Host views of the rings, checked once by virtq_start. */
	struct virtq_desc *desc;
	volatile uint16_t *avail; /* flags, idx, ring[size], used_event */
	volatile uint16_t *used;  /* flags, idx, {id u32, len u32}[size], avail_event */
};

/* One descriptor chain: device-readable segments first (iov[0..nout)), then the writable
 * ones (iov[nout..nout+nin)). The base pointers point into guest RAM. */
struct virtq_chain {
	uint16_t head;
	unsigned nout, nin;
	uint64_t out_len, in_len; /* bytes in each part */
	struct iovec iov[VIRTQ_MAX_SEGS];
};

/* Checks the rings' placement and sizes and maps them. Returns 0 or -EINVAL. */
int virtq_start(struct virtq *vq, const struct guest_mem *mem);
/* Back to the state after reset (not enabled, nothing mapped). */
void virtq_reset(struct virtq *vq);

/*
 * Takes the next available chain. Returns 1 (chain filled), 0 (nothing available) or
 * -EIO when the driver broke the rules (the caller puts the device into NEEDS_RESET);
 * why holds a short reason then.
 */
int virtq_pop(struct virtq *vq, struct virtq_chain *chain, const char **why);
/* Puts head back so that the next virtq_pop returns it again (no room to serve it yet). */
void virtq_unpop(struct virtq *vq);
/* Returns a used chain with len bytes written. */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t len);
/* After pushes: does the driver want an interrupt now (EVENT_IDX / NO_INTERRUPT)? */
bool virtq_should_notify(struct virtq *vq);
/* With EVENT_IDX: tell the driver to notify when it adds past what we have taken.
 * Returns true when more entries arrived meanwhile (the caller pops again); false on a
 * queue that is not enabled. */
bool virtq_enable_notify(struct virtq *vq);
/* Whether entries are available for virtq_pop (without taking them): never on a queue
 * that is not enabled. */
bool virtq_has_avail(struct virtq *vq);

/* Copies from the readable part at offset off. Returns bytes copied (may be short). */
uint64_t virtq_chain_read(const struct virtq_chain *c, uint64_t off, void *dst, uint64_t len);
/* Copies into the writable part at offset off. Returns bytes copied (may be short). */
uint64_t virtq_chain_write(const struct virtq_chain *c, uint64_t off, const void *src,
			   uint64_t len);
/*
 * Fills out[] with the segments of the part (writable or readable) covering
 * [off, off + len); returns the count (0 when the range does not fit or max is too small).
 */
int virtq_chain_slice(const struct virtq_chain *c, bool writable, uint64_t off, uint64_t len,
		      struct iovec *out, int max);

#endif
