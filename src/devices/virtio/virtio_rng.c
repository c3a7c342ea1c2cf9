/* virtio-rng (virtio 1.2 §5.4): fills each writable buffer from getrandom(2). */
#include "devices/virtio/virtio_devices.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

struct vrng {
	struct virtq_chain chain;
	uint64_t bytes;
};

#define RNG_MAX_PER_REQ 65536u

static uint32_t fill(const struct virtq_chain *c)
{
	uint32_t done = 0;
	for (unsigned i = c->nout; i < c->nout + c->nin && done < RNG_MAX_PER_REQ; i++) {
		size_t want = c->iov[i].iov_len;
		if (want > RNG_MAX_PER_REQ - done)
			want = RNG_MAX_PER_REQ - done;
		ssize_t r = getrandom(c->iov[i].iov_base, want, 0);
		if (r <= 0)
			break;
		done += (uint32_t)r;
		if ((size_t)r < want)
			break;
	}
	return done;
}

static uint32_t rng_serve(struct virtio_pci *vp, const struct virtq_chain *c)
{
	struct vrng *g = vp->dev;
	uint32_t len = fill(c);
	g->bytes += len;
	return len;
}

static void rng_notify(struct virtio_pci *vp, unsigned q)
{
	struct vrng *g = vp->dev;
	virtio_pci_serve(vp, q, &g->chain, rng_serve);
}

static void rng_destroy(struct virtio_pci *vp)
{
	free(vp->dev);
}

static const struct virtio_dev_ops rng_ops = {.notify = rng_notify, .destroy = rng_destroy};

struct virtio_pci *virtio_rng_new(const struct guest_mem *mem, struct irq_chip *chip,
				  struct cove_err *err)
{
	struct vrng *g = calloc(1, sizeof(*g));
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	if (!g || !vp) {
		free(g);
		free(vp);
		cove_err_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	struct virtio_pci_config cfg = {
	    .name = "virtio-rng",
	    .device_id = 4,
	    .class_code = 0x00FF00,
	    .nqueues = 1,
	    .qmax = 256,
	    .ops = &rng_ops,
	    .dev = g,
	    .mem = mem,
	    .chip = chip,
	};
	virtio_pci_init(vp, &cfg);
	return vp;
}
