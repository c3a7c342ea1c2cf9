/* The PCI host bridge: config space through 0xCF8/0xCFC and ECAM, BARs mapped on the MMIO bus. */
#include "devices/pci/pci.h"
#include "devices/devutil.h"
#include "util/log.h"
#include "vmm/layout.h"

#include <errno.h>
#include <string.h>

uint32_t pci_cfg_get(const struct pci_func *f, unsigned off, unsigned len)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < len && off + i < PCI_CFG_SIZE; i++)
		v |= (uint32_t)f->cfg[off + i] << (8 * i);
	return v;
}

void pci_cfg_set(struct pci_func *f, unsigned off, unsigned len, uint32_t val)
{
	for (unsigned i = 0; i < len && off + i < PCI_CFG_SIZE; i++)
		f->cfg[off + i] = (uint8_t)(val >> (8 * i));
}

static void set_mask(struct pci_func *f, unsigned off, unsigned len, uint32_t mask)
{
	for (unsigned i = 0; i < len; i++)
		f->wmask[off + i] = (uint8_t)(mask >> (8 * i));
}

void pci_func_init(struct pci_func *f, uint16_t vendor, uint16_t device, uint32_t class_code,
		   uint16_t subsys_vendor, uint16_t subsys_id)
{
	memset(f->cfg, 0, sizeof(f->cfg));
	memset(f->wmask, 0, sizeof(f->wmask));
	memset(f->w1c, 0, sizeof(f->w1c));
	memset(f->bar, 0, sizeof(f->bar));
	f->cap_end = 0;
	pci_cfg_set(f, PCI_VENDOR_ID, 2, vendor);
	pci_cfg_set(f, PCI_VENDOR_ID + 2, 2, device);
	pci_cfg_set(f, PCI_REVISION, 1, 1);
	pci_cfg_set(f, PCI_CLASS_PROG, 3, class_code);
	pci_cfg_set(f, PCI_SUBSYS_VENDOR, 2, subsys_vendor);
	pci_cfg_set(f, PCI_SUBSYS_ID, 2, subsys_id);
	set_mask(f, PCI_COMMAND, 2, PCI_CMD_IO | PCI_CMD_MEM | PCI_CMD_MASTER | PCI_CMD_INTX_OFF);
	set_mask(f, PCI_INTERRUPT_LINE, 1, 0xFF);
	f->w1c[PCI_STATUS + 1] = 0xF9; /* error bits */
}

void pci_func_set_bar(struct pci_func *f, unsigned idx, uint64_t size, bool is64,
		      struct device *dev)
{
	if (idx >= PCI_NUM_BARS || (is64 && idx + 1 >= PCI_NUM_BARS) || size < 4096 ||
	    (size & (size - 1)))
		return;
	f->bar[idx] = (struct pci_bar){.size = size, .is64 = is64, .dev = dev};
	unsigned off = PCI_BAR0 + 4 * idx;
	pci_cfg_set(f, off, 4, is64 ? 0x4 : 0x0); /* memory, 64-bit or 32-bit, not prefetchable */
	set_mask(f, off, 4, (uint32_t) ~(size - 1) & 0xFFFFFFF0u);
	if (is64)
		set_mask(f, off + 4, 4, (uint32_t)(~(size - 1) >> 32));
}

unsigned pci_func_add_cap(struct pci_func *f, const void *cap, unsigned len)
{
	/* Capabilities live in 0x40..0xFF, 4-byte aligned, appended to the list at 0x34. */
	unsigned last = 0, p = f->cfg[PCI_CAP_PTR];
	for (int guard = 0; p && guard < 48; guard++) {
		last = p;
		p = f->cfg[p + 1];
	}
	unsigned off = f->cap_end ? (f->cap_end + 3u) & ~3u : 0x40;
	if (len < 2 || off + len > 0x100)
		return 0;
	memcpy(&f->cfg[off], cap, len);
	f->cfg[off + 1] = 0;
	if (last)
		f->cfg[last + 1] = (uint8_t)off;
	else
		f->cfg[PCI_CAP_PTR] = (uint8_t)off;
	f->cap_end = off + len;
	pci_cfg_set(f, PCI_STATUS, 2, pci_cfg_get(f, PCI_STATUS, 2) | PCI_STATUS_CAPS);
	return off;
}

static uint64_t bar_addr(const struct pci_func *f, unsigned i)
{
	uint64_t a = pci_cfg_get(f, PCI_BAR0 + 4 * i, 4) & ~0xFULL;
	if (f->bar[i].is64)
		a |= (uint64_t)pci_cfg_get(f, PCI_BAR0 + 4 * i + 4, 4) << 32;
	return a;
}

/* Maps each BAR where the guest put it while memory decoding is on. */
static void update_bars(struct pci_host *h, struct pci_func *f)
{
	bool mem_on = pci_cfg_get(f, PCI_COMMAND, 2) & PCI_CMD_MEM;
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &f->bar[i];
		if (!b->size)
			continue;
		uint64_t a = bar_addr(f, i);
		bool want = mem_on && a != 0 && a + b->size > a && a + b->size <= (1ULL << 52);
		if (b->mapped && (!want || a != b->addr)) {
			bus_unregister(h->mmio, BUS_MMIO, b->addr);
			b->mapped = false;
			if (f->ops && f->ops->bar_moved)
				f->ops->bar_moved(f, i, b->addr, false);
		}
		if (want && !b->mapped) {
			int ret = bus_register(h->mmio, BUS_MMIO, a, b->size, b->dev);
			if (ret == 0) {
				b->mapped = true;
				b->addr = a;
				if (f->ops && f->ops->bar_moved)
					f->ops->bar_moved(f, i, a, true);
			} else {
				log_debug("pci %02x: BAR%u at 0x%llx not mapped (%d)", f->slot, i,
					  (unsigned long long)a, ret);
			}
		}
	}
}

void pci_func_remap(struct pci_func *f)
{
	struct pci_host *h = f->host;
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	update_bars(h, f);
	pthread_mutex_unlock(&h->lock);
}

static uint32_t cfg_read(struct pci_host *h, unsigned bus, unsigned dev, unsigned fn, unsigned off,
			 unsigned len)
{
	if (bus != 0 || fn != 0 || dev >= PCI_MAX_SLOTS || !h->slot[dev] ||
	    off + len > PCI_CFG_SIZE)
		return len == 4 ? 0xFFFFFFFFu : (1u << (8 * len)) - 1;
	struct pci_func *f = h->slot[dev];
	uint32_t v;
	pthread_mutex_lock(&h->lock);
	if (!f->ops || !f->ops->cfg_read || !f->ops->cfg_read(f, off, len, &v))
		v = pci_cfg_get(f, off, len);
	pthread_mutex_unlock(&h->lock);
	return v;
}

static void cfg_write(struct pci_host *h, unsigned bus, unsigned dev, unsigned fn, unsigned off,
		      unsigned len, uint32_t v)
{
	if (bus != 0 || fn != 0 || dev >= PCI_MAX_SLOTS || !h->slot[dev] ||
	    off + len > PCI_CFG_SIZE)
		return;
	struct pci_func *f = h->slot[dev];
	pthread_mutex_lock(&h->lock);
	for (unsigned i = 0; i < len; i++) {
		uint8_t b = (uint8_t)(v >> (8 * i));
		uint8_t *c = &f->cfg[off + i];
		*c = (uint8_t)((*c & ~f->wmask[off + i]) | (b & f->wmask[off + i]));
		*c &= (uint8_t) ~(b & f->w1c[off + i]);
	}
	if (off < PCI_BAR0 + 24 && off + len > PCI_COMMAND)
		update_bars(h, f);
	if (f->ops && f->ops->cfg_written)
		f->ops->cfg_written(f, off, len);
	pthread_mutex_unlock(&h->lock);
}

/* ECAM: bus 20..27, device 15..19, function 12..14, register 0..11 of the offset. */
static void ecam_read(struct device *dev, uint64_t off, void *data, unsigned len)
{
	struct pci_host *h = dev->priv;
	unsigned reg = off & 0xFFF;
	if (len > 4 || (reg & (len - 1))) {
		memset(data, 0xFF, len);
		return;
	}
	dev_store(data, len,
		  cfg_read(h, (off >> 20) & 0xFF, (off >> 15) & 31, (off >> 12) & 7, reg, len));
}

static void ecam_write(struct device *dev, uint64_t off, const void *data, unsigned len)
{
	struct pci_host *h = dev->priv;
	unsigned reg = off & 0xFFF;
	if (len > 4 || (reg & (len - 1)))
		return;
	cfg_write(h, (off >> 20) & 0xFF, (off >> 15) & 31, (off >> 12) & 7, reg, len,
		  (uint32_t)dev_load(data, len));
}

static void addr_read(struct device *dev, uint64_t off, void *data, unsigned len)
{
	struct pci_host *h = dev->priv;
	if (off == 0 && len == 4)
		dev_store(data, 4, h->config_address);
	else if (off == 1 && len == 1 && h->cf9 && h->cf9->ops->read)
		h->cf9->ops->read(h->cf9, 0, data, 1);
	else
		memset(data, 0xFF, len);
}

static void addr_write(struct device *dev, uint64_t off, const void *data, unsigned len)
{
	struct pci_host *h = dev->priv;
	if (off == 0 && len == 4)
		h->config_address = (uint32_t)dev_load(data, 4) & 0x80FFFFFCu;
	else if (off == 1 && len == 1 && h->cf9 && h->cf9->ops->write)
		h->cf9->ops->write(h->cf9, 0, data, 1);
}

static void data_read(struct device *dev, uint64_t off, void *data, unsigned len)
{
	struct pci_host *h = dev->priv;
	uint32_t a = h->config_address;
	if (!(a & 0x80000000u) || off + len > 4) {
		memset(data, 0xFF, len);
		return;
	}
	dev_store(
	    data, len,
	    cfg_read(h, (a >> 16) & 0xFF, (a >> 11) & 31, (a >> 8) & 7, (a & 0xFC) + off, len));
}

static void data_write(struct device *dev, uint64_t off, const void *data, unsigned len)
{
	struct pci_host *h = dev->priv;
	uint32_t a = h->config_address;
	if (!(a & 0x80000000u) || off + len > 4)
		return;
	cfg_write(h, (a >> 16) & 0xFF, (a >> 11) & 31, (a >> 8) & 7, (a & 0xFC) + off, len,
		  (uint32_t)dev_load(data, len));
}

static const struct device_ops ecam_ops = {.read = ecam_read, .write = ecam_write};
static const struct device_ops addr_ops = {.read = addr_read, .write = addr_write};
static const struct device_ops data_ops = {.read = data_read, .write = data_write};

int pci_host_init(struct pci_host *h, struct bus *pio, struct bus *mmio, struct device *cf9)
{
	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
	h->mmio = mmio;
	h->cf9 = cf9;
	h->next32 = PCI_MMIO32_BASE;
	h->end32 = PCI_MMIO32_END;
	h->next64 = PCI_MMIO64_BASE;
	h->end64 = PCI_MMIO64_BASE + PCI_MMIO64_SIZE;
	h->ecam = (struct device){.name = "pci-ecam", .ops = &ecam_ops, .priv = h};
	h->pio_addr = (struct device){.name = "pci-cf8", .ops = &addr_ops, .priv = h};
	h->pio_data = (struct device){.name = "pci-cfc", .ops = &data_ops, .priv = h};
	/* Red Hat's "PCIe host bridge" ids, class 06.00.00. */
	pci_func_init(&h->bridge, 0x1B36, 0x0008, 0x060000, 0x1AF4, 0x1100);
	h->bridge.host = h;
	h->slot[0] = &h->bridge;
	int ret;
	if ((ret = bus_register(mmio, BUS_MMIO, LAYOUT_PCI_ECAM, LAYOUT_PCI_ECAM_LEN, &h->ecam)))
		return ret;
	if ((ret = bus_register(pio, BUS_PIO, 0xCF8, 4, &h->pio_addr)) ||
	    (ret = bus_register(pio, BUS_PIO, 0xCFC, 4, &h->pio_data)))
		return ret;
	return 0;
}

void pci_host_fini(struct pci_host *h)
{
	pthread_mutex_destroy(&h->lock);
}

static int alloc_bar(uint64_t *next, uint64_t end, uint64_t size, uint64_t *out)
{
	uint64_t a = (*next + size - 1) & ~(size - 1);
	if (a < *next || a + size > end || a + size < a)
		return -ENOSPC;
	*out = a;
	*next = a + size;
	return 0;
}

int pci_host_add(struct pci_host *h, struct pci_func *f)
{
	unsigned s = 1;
	while (s < PCI_MAX_SLOTS && h->slot[s])
		s++;
	if (s == PCI_MAX_SLOTS)
		return -ENOSPC;
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &f->bar[i];
		if (!b->size)
			continue;
		/* Small BARs in the 32-bit hole, where every guest reaches them; big 64-bit
		 * BARs above 4 GiB. */
		uint64_t a;
		int ret = b->is64 && b->size >= (256ULL << 20)
			      ? alloc_bar(&h->next64, h->end64, b->size, &a)
			      : alloc_bar(&h->next32, h->end32, b->size, &a);
		if (ret)
			return ret;
		pci_cfg_set(f, PCI_BAR0 + 4 * i, 4, (uint32_t)a | (b->is64 ? 4 : 0));
		if (b->is64)
			pci_cfg_set(f, PCI_BAR0 + 4 * i + 4, 4, (uint32_t)(a >> 32));
	}
	f->host = h;
	f->slot = s;
	f->gsi = PCI_INTX_GSI_BASE + s % 8;
	pci_cfg_set(f, PCI_INTERRUPT_PIN, 1, 1);
	pci_cfg_set(f, PCI_INTERRUPT_LINE, 1, f->gsi);
	h->slot[s] = f;
	return (int)s;
}
