/* A tiny virtio-pci driver for the device models' unit tests: guest RAM, registers, queues. */
#ifndef COVE_TEST_VDRIVER_H
#define COVE_TEST_VDRIVER_H

#include "devices/virtio/virtio_devices.h"

#include <stdbool.h>
#include <stdint.h>

#define VD_RAM	 (1u << 20)
#define VD_QSIZE 16
/* Queue q's rings: descriptors at VD_QBASE(q), avail at +0x1000, used at +0x2000. */
#define VD_QBASE(q) (0x10000u + 0x4000u * (q))

/* The guest's RAM (VD_RAM bytes, page-aligned, zeroed by vd_setup) and its guest_mem. */
extern uint8_t *vd_ram;
extern struct guest_mem vd_mem;

/* cmocka setup and teardown: allocate and free vd_ram. */
int vd_setup(void **state);
int vd_teardown(void **state);

/* Reads and writes the device's BAR (common config at 0, notify at VPCI_NOTIFY). */
uint64_t vd_rd(struct virtio_pci *vp, uint64_t off, unsigned len);
void vd_wr(struct virtio_pci *vp, uint64_t off, unsigned len, uint64_t v);

/* Reset, features, queues [0, nq) live at VD_QBASE, DRIVER_OK (virtio 1.2, 3.1.1). Returns
 * false, and stops there, when the device refuses the features. */
bool vd_init(struct virtio_pci *vp, uint64_t features, unsigned nq);
/* vd_init in two steps, as Linux's probe does it: everything up to DRIVER_OK (the queues are
 * live; a driver may post and notify now), then DRIVER_OK. */
bool vd_init_queues(struct virtio_pci *vp, uint64_t features, unsigned nq);
bool vd_driver_ok(struct virtio_pci *vp);

/* A chain of n descriptors from slot first of queue q (write[i]: device-writable), made
 * available; notified when kick. */
void vd_post(struct virtio_pci *vp, unsigned q, unsigned first, unsigned n, const uint64_t *addr,
	     const uint32_t *len, const bool *write, bool kick);
/* The same for one descriptor. */
void vd_post1(struct virtio_pci *vp, unsigned q, unsigned slot, uint64_t addr, uint32_t len,
	      bool write, bool kick);

/* Queue q's used index, and the length of its used entry n. */
uint16_t vd_used_idx(unsigned q);
uint32_t vd_used_len(unsigned q, unsigned n);

#endif
