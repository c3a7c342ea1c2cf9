/* The probe guest's PCI enumeration and virtio-pci driver (as Linux does it), and their tests. */
#ifndef PROBE_VIRTIO_H
#define PROBE_VIRTIO_H

#include <stddef.h>
#include <stdint.h>

#define VQ_SIZE	   64
#define VQ_MAX	   12	/* up to 5 queue pairs and a control queue; vectors 0x50 + q */
#define VEC_VIRTIO 0x50 /* MSI-X vectors 0x50.. (one per queue, config at +15) */
#define VEC_INTX   0x5E /* the INTx test's IOAPIC vector */

struct pci_dev {
	uint8_t bus, dev, fn;
	uint16_t vendor, device;
	uint32_t class_code;
};

struct vq {
	uint16_t size, idx, last_used, free_head;
	uint16_t notify_off;
	volatile uint8_t *desc;	  /* 16 * size */
	volatile uint16_t *avail; /* flags, idx, ring[size], used_event */
	volatile uint16_t *used;  /* flags, idx, {u32 id, u32 len}[size], avail_event */
};

struct vdev {
	struct pci_dev pci;
	uint64_t common, notify, isr, devcfg;
	uint32_t notify_mult;
	uint64_t msix_table;
	unsigned msix_cap, msix_n;
	uint64_t features;
	unsigned nq;
	struct vq q[VQ_MAX];
	int event_idx;
};

/* pci.c */
uint32_t pci_read(const struct pci_dev *d, unsigned off, unsigned len);
void pci_write(const struct pci_dev *d, unsigned off, unsigned len, uint32_t v);
int pci_scan(struct pci_dev *out, int max);
uint64_t pci_bar(const struct pci_dev *d, unsigned bar);
extern volatile uint64_t virtio_irqs[16];
extern uint64_t intx_isr;
extern int vdev_no_msix; /* vdev_init leaves MSI-X off (INTx test) */
void virtio_irq(uint64_t vec);
void idt_enable_vector(int v); /* apic.c */

/* virtio.c */
/* Finds the n-th (0-based) virtio device with this id (2 blk, 4 rng...). Returns 0 or -1. */
int vdev_find(unsigned device_id, int n, struct vdev *v, char *err, size_t errn);
/* Reset, features (want & offered, always VERSION_1), nq queues, MSI-X, DRIVER_OK. */
int vdev_init(struct vdev *v, uint64_t want, unsigned nq, char *err, size_t errn);
/* The same in two steps, as Linux's probe does: the queues live (a driver may post and notify
 * then, as Linux's balloon does for its statistics), then DRIVER_OK. */
int vdev_init_queues(struct vdev *v, uint64_t want, unsigned nq, char *err, size_t errn);
void vdev_driver_ok(struct vdev *v);
uint8_t vdev_status(struct vdev *v);
void vdev_reset(struct vdev *v);
/* Adds a chain of n buffers (write[i]: device-writable), notifies. Returns head or -1. */
int vq_add(struct vdev *v, unsigned q, const uint64_t *addr, const uint32_t *len, const int *write,
	   int n, int indirect);
/* Waits for one used entry (timeout ms). Returns 0 with *len, or -1. */
int vq_wait(struct vdev *v, unsigned q, uint32_t *len, unsigned ms);
void vq_notify(struct vdev *v, unsigned q);
uint8_t *dma_alloc(size_t n);
void dma_reset(void);

/* The entries main.c's test table takes from here (one line there). */
#define VIRTIO_PROBE_TESTS                                                                      \
	{"pci", test_pci}, {"vblk", test_vblk}, {"vblk_ro", test_vblk_ro}, {"vrng", test_vrng}, \
	    {"vhostile", test_vhostile}, {"vnet", test_vnet}, {"vblkbench", test_vblkbench},    \
	    {"vcon", test_vcon}, {"vballoon", test_vballoon}, {"vvsock", test_vvsock},          \
	    {"vnetbench", test_vnetbench}, {"vblk_mq", test_vblk_mq},                           \
	    {"vblk_intx", test_vblk_intx}, {"vballoon_target", test_vballoon_target},           \
	    {"vblk_guard", test_vblk_guard}, {"vnet_mq", test_vnet_mq},                         \
	    {"vblk_reset", test_vblk_reset}, {"vblk_reset_again", test_vblk_reset_again},       \
	    {"vballoon_big", test_vballoon_big}, {"vcon_bulk", test_vcon_bulk},                 \
	    {"vblk_noflush", test_vblk_noflush},

/* virtio_tests.c: the first disk's pattern (byte j of sector s), a reset and initialised disk
 * (the nth, one queue), one request and its status byte (see there). */
uint8_t disk_pat(uint64_t s, unsigned j);
int blk_open(struct vdev *v, int nth, uint64_t want, char *d, size_t n);
int blk_req(struct vdev *v, uint32_t type, uint64_t sector, uint8_t *buf, uint32_t len, int nseg,
	    int indirect);
int test_pci(char *d, size_t n);
int test_vblk(char *d, size_t n);
int test_vblk_ro(char *d, size_t n);
int test_vrng(char *d, size_t n);
int test_vhostile(char *d, size_t n);
int test_vcon(char *d, size_t n);
int test_vcon_bulk(char *d, size_t n);
int test_vballoon(char *d, size_t n);
int test_vvsock(char *d, size_t n);    /* virtio_vsock.c */
int test_vnet(char *d, size_t n);      /* virtio_net.c */
int test_vblkbench(char *d, size_t n); /* virtio_bench.c */
int test_vnetbench(char *d, size_t n);
int test_vblk_mq(char *d, size_t n);
int test_vblk_intx(char *d, size_t n);
int test_vballoon_target(char *d, size_t n); /* virtio_balloon.c */
int test_vballoon_big(char *d, size_t n);
int test_vblk_guard(char *d, size_t n);
int test_vnet_mq(char *d, size_t n);	/* virtio_net.c */
int test_vblk_reset(char *d, size_t n); /* virtio_reset.c */
int test_vblk_reset_again(char *d, size_t n);
int test_vblk_noflush(char *d, size_t n);

#endif
