/* PCI: a host bridge with config space through 0xCF8/0xCFC and ECAM, bus 0, BAR placement. */
#ifndef COVE_DEVICES_PCI_PCI_H
#define COVE_DEVICES_PCI_PCI_H

#include "vmm/bus.h"
#include "vmm/device.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define PCI_CFG_SIZE  4096 /* PCIe extended config space */
#define PCI_MAX_SLOTS 32
#define PCI_NUM_BARS  6

/* Standard config registers used here. */
#define PCI_VENDOR_ID	   0x00
#define PCI_COMMAND	   0x04
#define PCI_STATUS	   0x06
#define PCI_REVISION	   0x08
#define PCI_CLASS_PROG	   0x09
#define PCI_HEADER_TYPE	   0x0E
#define PCI_BAR0	   0x10
#define PCI_SUBSYS_VENDOR  0x2C
#define PCI_SUBSYS_ID	   0x2E
#define PCI_CAP_PTR	   0x34
#define PCI_INTERRUPT_LINE 0x3C
#define PCI_INTERRUPT_PIN  0x3D
#define PCI_CMD_IO	   0x1
#define PCI_CMD_MEM	   0x2
#define PCI_CMD_MASTER	   0x4
#define PCI_CMD_INTX_OFF   0x400
#define PCI_STATUS_CAPS	   0x10
#define PCI_STATUS_INTX	   0x08

struct pci_func;

struct pci_func_ops {
	/* Called with the function's config already updated by a guest write of len bytes at
	 * off (after the write mask). May be NULL. */
	void (*cfg_written)(struct pci_func *f, unsigned off, unsigned len);
	/* May override a read (return true after filling *val). May be NULL. */
	bool (*cfg_read)(struct pci_func *f, unsigned off, unsigned len, uint32_t *val);
	/* BAR idx was mapped at addr (mapped) or unmapped from it. May be NULL. */
	void (*bar_moved)(struct pci_func *f, unsigned idx, uint64_t addr, bool mapped);
};

struct pci_bar {
	uint64_t size; /* power of two >= 4096; 0: unused */
	bool is64;
	uint64_t addr;	    /* current guest address */
	struct device *dev; /* what the BAR maps (offsets relative to the BAR) */
	bool mapped;	    /* registered on the MMIO bus at addr */
};

struct pci_func {
	const struct pci_func_ops *ops;
	void *opaque;
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE]; /* bits the guest may write */
	uint8_t w1c[PCI_CFG_SIZE];   /* bits a guest write of 1 clears */
	struct pci_bar bar[PCI_NUM_BARS];
	struct pci_host *host;
	unsigned slot;
	unsigned gsi;	  /* INTx line (IOAPIC input), 0 if none */
	unsigned cap_end; /* first byte after the last capability */
};

struct pci_host {
	struct bus *mmio;
	pthread_mutex_t lock; /* config space and BAR mapping */
	struct pci_func *slot[PCI_MAX_SLOTS];
	struct pci_func bridge; /* 00:00.0 */
	uint32_t config_address;
	struct device *cf9; /* the reset register that shares 0xCF8..0xCFB, or NULL */
	struct device pio_addr, pio_data, ecam;
	uint64_t next32, end32, next64, end64; /* BAR windows */
};

/* Windows the host bridge hands BARs out from (also what the DSDT's _CRS describes). */
#define PCI_MMIO32_BASE 0xC1000000ULL
#define PCI_MMIO32_END	0xE0000000ULL	/* ECAM follows */
#define PCI_MMIO64_BASE 0x8000000000ULL /* 512 GiB */
#define PCI_MMIO64_SIZE 0x1000000000ULL /* 64 GiB */
/* The IOAPIC inputs INTx uses: slot s, pin A → PCI_INTX_GSI_BASE + s % 8 (the _PRT says so). */
#define PCI_INTX_GSI_BASE 16

/*
 * Sets up the host bridge: ECAM on mmio at LAYOUT_PCI_ECAM, 0xCF8/0xCFC on pio. cf9 is the
 * device that owned port 0xCF9 (byte accesses there are passed to it), or NULL.
 * Returns 0 or -errno.
 */
int pci_host_init(struct pci_host *h, struct bus *pio, struct bus *mmio, struct device *cf9);
void pci_host_fini(struct pci_host *h);

/* Initialises f's header (type 0) with the given ids; capabilities come after. */
void pci_func_init(struct pci_func *f, uint16_t vendor, uint16_t device, uint32_t class_code,
		   uint16_t subsys_vendor, uint16_t subsys_id);
/* Declares a memory BAR of size bytes mapped to dev (64-bit BARs use two slots). */
void pci_func_set_bar(struct pci_func *f, unsigned idx, uint64_t size, bool is64,
		      struct device *dev);
/* Appends a capability of len bytes (id first, next pointer filled in). Returns its offset
 * or 0 when config space is full. */
unsigned pci_func_add_cap(struct pci_func *f, const void *cap, unsigned len);
/* Places f at a free slot, assigns its BARs and INTx line. Returns the slot or -errno. */
int pci_host_add(struct pci_host *h, struct pci_func *f);

/* Maps f's BARs where its config space says (after a restore wrote it). Takes the host's
 * lock; nothing when f is not on a host. */
void pci_func_remap(struct pci_func *f);

/* Little-endian config accessors (no masks). */
uint32_t pci_cfg_get(const struct pci_func *f, unsigned off, unsigned len);
void pci_cfg_set(struct pci_func *f, unsigned off, unsigned len, uint32_t val);

#endif
