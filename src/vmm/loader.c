/* Loads a kernel, initrd and command line into guest RAM with the boot data its protocol wants. */
#include "vmm/loader.h"
#include "vmm/e820.h"
#include "vmm/layout.h"

#include <errno.h>
#include <string.h>

#define PAGE_UP(x) (((x) + 0xFFFULL) & ~0xFFFULL)

/* boot_params offsets (Documentation/arch/x86/zero-page.rst, boot.rst). */
#define BP_ACPI_RSDP	  0x070
#define BP_EXT_RAMDISK	  0x0C0
#define BP_EXT_RAMDISK_SZ 0x0C4
#define BP_EXT_CMDLINE	  0x0C8
#define BP_E820_ENTRIES	  0x1E8
#define BP_HDR		  0x1F1
#define BP_VID_MODE	  0x1FA
#define BP_TYPE_OF_LOADER 0x210
#define BP_RAMDISK_IMAGE  0x218
#define BP_RAMDISK_SIZE	  0x21C
#define BP_CMD_LINE_PTR	  0x228
#define BP_E820_TABLE	  0x2D0
#define BP_E820_MAX	  128

/* hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h), version 1. */
#define PVH_MAGIC 0x336EC578u
struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};
struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};
struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};
#define PVH_MODLIST (LAYOUT_PVH_INFO + 0x40)
#define PVH_MEMMAP  (LAYOUT_PVH_INFO + 0x80)

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static int write_cmdline(const struct guest_mem *mem, const char *cmdline, size_t max,
			 struct cove_err *err)
{
	if (!cmdline)
		cmdline = "";
	size_t n = strlen(cmdline);
	if (n >= max)
		return cove_err_set(
		    err, -E2BIG, "command line of %zu bytes is too long (at most %zu)", n, max - 1);
	if (guest_mem_write(mem, LAYOUT_CMDLINE, cmdline, n + 1))
		return cove_err_set(err, -EFAULT, "no room for the command line");
	return 0;
}

static int load_initrd(const struct guest_mem *mem, const struct boot_config *cfg, uint64_t floor,
		       uint64_t limit, uint64_t *addr, struct cove_err *err)
{
	if (initrd_place(cfg->initrd_len, floor, limit, addr))
		return cove_err_set(err, -ENOSPC,
				    "initrd of %zu MiB is too big for guest memory (room for %llu "
				    "MiB below %llu MiB; give more --memory)",
				    cfg->initrd_len >> 20,
				    (unsigned long long)(limit > floor ? (limit - floor) >> 20 : 0),
				    (unsigned long long)(limit >> 20));
	if (guest_mem_write(mem, *addr, cfg->initrd, cfg->initrd_len))
		return cove_err_set(err, -EFAULT, "initrd does not fit in guest RAM");
	return 0;
}

static int load_bzimage(const struct guest_mem *mem, const struct boot_config *cfg,
			struct boot_entry *entry, struct cove_err *err)
{
	struct bzimage_info bz;
	int ret = bzimage_parse(cfg->kernel, cfg->kernel_len, &bz, err);
	if (ret)
		return ret;
	uint64_t load = LAYOUT_KERNEL;
	if (!bz.relocatable && bz.pref_address >= LAYOUT_KERNEL)
		load = bz.pref_address;
	uint64_t need = bz.kernel_size > bz.init_size ? bz.kernel_size : bz.init_size;
	/* A relocatable kernel below its preferred address decompresses up there. */
	uint64_t end = load + need;
	if (bz.pref_address > load && bz.pref_address < LAYOUT_MMIO32_START &&
	    bz.pref_address + bz.init_size > end)
		end = bz.pref_address + bz.init_size;
	if (load >= mem->low_size || end > mem->low_size)
		return cove_err_set(
		    err, -ENOSPC, "kernel needs %llu MiB of RAM from %llu MiB: give more --memory",
		    (unsigned long long)(need >> 20), (unsigned long long)(load >> 20));
	if (guest_mem_write(mem, load, cfg->kernel + bz.setup_size, bz.kernel_size))
		return cove_err_set(err, -EFAULT, "kernel does not fit in guest RAM");

	uint8_t *bp = guest_mem_ptr(mem, LAYOUT_ZERO_PAGE, 4096);
	if (!bp)
		return cove_err_set(err, -EFAULT, "no room for boot_params");
	memset(bp, 0, 4096);
	memcpy(bp + BP_HDR, cfg->kernel + BP_HDR, bz.hdr_end - BP_HDR);
	bp[BP_TYPE_OF_LOADER] = 0xFF;
	bp[BP_VID_MODE] = 0xFF;
	bp[BP_VID_MODE + 1] = 0xFF;

	size_t max = bz.cmdline_size ? (size_t)bz.cmdline_size + 1 : 256;
	if (max > LAYOUT_CMDLINE_MAX)
		max = LAYOUT_CMDLINE_MAX;
	if ((ret = write_cmdline(mem, cfg->cmdline, max, err)))
		return ret;
	put32(bp + BP_CMD_LINE_PTR, (uint32_t)LAYOUT_CMDLINE);

	if (cfg->initrd_len) {
		uint64_t limit = (uint64_t)bz.initrd_addr_max + 1;
		if (bz.initrd_addr_max == 0)
			limit = 0x38000000ULL; /* the default of old protocols */
		if (limit > mem->low_size)
			limit = mem->low_size;
		uint64_t addr;
		if ((ret = load_initrd(mem, cfg, PAGE_UP(end), limit, &addr, err)))
			return ret;
		put32(bp + BP_RAMDISK_IMAGE, (uint32_t)addr);
		put32(bp + BP_RAMDISK_SIZE, (uint32_t)cfg->initrd_len);
		put32(bp + BP_EXT_RAMDISK, (uint32_t)(addr >> 32));
		put32(bp + BP_EXT_RAMDISK_SZ, (uint32_t)((uint64_t)cfg->initrd_len >> 32));
	}
	put64(bp + BP_ACPI_RSDP, cfg->rsdp);

	struct e820_entry map[E820_MAX_BUILT];
	int n = e820_build(mem->low_size, mem->high_size, map, E820_MAX_BUILT);
	if (n < 0)
		return cove_err_set(err, n, "cannot build the e820 map");
	bp[BP_E820_ENTRIES] = (uint8_t)n;
	memcpy(bp + BP_E820_TABLE, map, (size_t)n * sizeof(map[0]));

	entry->mode = BOOT_LINUX64;
	entry->rip = load + 0x200;
	entry->arg = LAYOUT_ZERO_PAGE;
	return 0;
}

static int load_pvh(const struct guest_mem *mem, const struct boot_config *cfg,
		    struct boot_entry *entry, struct cove_err *err)
{
	struct pvh_info pi;
	int ret = pvh_parse(cfg->kernel, cfg->kernel_len, &pi, err);
	if (ret)
		return ret;
	if (pi.start < LAYOUT_KERNEL)
		return cove_err_set(err, -EINVAL,
				    "ELF kernel loads at 0x%llx, below 1 MiB (the boot data lives "
				    "there)",
				    (unsigned long long)pi.start);
	if (pi.end > mem->low_size)
		return cove_err_set(err, -ENOSPC,
				    "kernel needs RAM up to %llu MiB: give more --memory",
				    (unsigned long long)((pi.end + (1 << 20) - 1) >> 20));
	for (unsigned i = 0; i < pi.nseg; i++) {
		const struct pvh_segment *s = &pi.seg[i];
		uint8_t *dst = guest_mem_ptr(mem, s->paddr, s->memsz);
		if (!dst)
			return cove_err_set(err, -EFAULT, "ELF segment does not fit in guest RAM");
		memcpy(dst, cfg->kernel + s->offset, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}
	if ((ret = write_cmdline(mem, cfg->cmdline, LAYOUT_CMDLINE_MAX, err)))
		return ret;

	struct hvm_start_info si = {
	    .magic = PVH_MAGIC,
	    .version = 1,
	    .cmdline_paddr = LAYOUT_CMDLINE,
	    .rsdp_paddr = cfg->rsdp,
	    .memmap_paddr = PVH_MEMMAP,
	};
	if (cfg->initrd_len) {
		uint64_t addr;
		if ((ret = load_initrd(mem, cfg, PAGE_UP(pi.end), mem->low_size, &addr, err)))
			return ret;
		struct hvm_modlist_entry mod = {.paddr = addr, .size = cfg->initrd_len};
		if (guest_mem_write(mem, PVH_MODLIST, &mod, sizeof(mod)))
			return cove_err_set(err, -EFAULT, "no room for the PVH module list");
		si.nr_modules = 1;
		si.modlist_paddr = PVH_MODLIST;
	}
	struct e820_entry map[E820_MAX_BUILT];
	int n = e820_build(mem->low_size, mem->high_size, map, E820_MAX_BUILT);
	if (n < 0)
		return cove_err_set(err, n, "cannot build the e820 map");
	struct hvm_memmap_entry mm[E820_MAX_BUILT];
	for (int i = 0; i < n; i++)
		mm[i] = (struct hvm_memmap_entry){map[i].addr, map[i].size, map[i].type, 0};
	si.memmap_entries = (uint32_t)n;
	if (guest_mem_write(mem, PVH_MEMMAP, mm, (size_t)n * sizeof(mm[0])) ||
	    guest_mem_write(mem, LAYOUT_PVH_INFO, &si, sizeof(si)))
		return cove_err_set(err, -EFAULT, "no room for hvm_start_info");

	entry->mode = BOOT_PVH32;
	entry->rip = pi.entry;
	entry->arg = LAYOUT_PVH_INFO;
	return 0;
}

int loader_load(const struct guest_mem *mem, const struct boot_config *cfg,
		struct boot_entry *entry, struct cove_err *err)
{
	switch (kernel_detect(cfg->kernel, cfg->kernel_len)) {
	case KERNEL_BZIMAGE:
		return load_bzimage(mem, cfg, entry, err);
	case KERNEL_ELF:
		return load_pvh(mem, cfg, entry, err);
	default:
		return cove_err_set(
		    err, -ENOEXEC,
		    "not a kernel (neither a bzImage nor an ELF file with a PVH note)");
	}
}
