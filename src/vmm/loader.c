/* Loads a kernel, initrd and command line into guest RAM with the boot data its protocol wants. */
#include "vmm/loader.h"
#include "vmm/e820.h"
#include "vmm/layout.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

/* The ELF's segments must load at or above 1 MiB (the boot data lives below) and in RAM. */
static int pvh_fits(const struct guest_mem *mem, const struct pvh_info *pi, struct cove_err *err)
{
	if (pi->start < LAYOUT_KERNEL)
		return cove_err_set(err, -EINVAL,
				    "ELF kernel loads at 0x%llx, below 1 MiB (the boot data lives "
				    "there)",
				    (unsigned long long)pi->start);
	if (pi->end > mem->low_size)
		return cove_err_set(err, -ENOSPC,
				    "kernel needs RAM up to %llu MiB: give more --memory",
				    (unsigned long long)((pi->end + (1 << 20) - 1) >> 20));
	return 0;
}

/* The command line, initrd, e820 map and hvm_start_info of a PVH boot, and its entry. */
static int pvh_boot_data(const struct guest_mem *mem, const struct boot_config *cfg,
			 const struct pvh_info *pi, struct boot_entry *entry, struct cove_err *err)
{
	int ret;
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
		if ((ret = load_initrd(mem, cfg, PAGE_UP(pi->end), mem->low_size, &addr, err)))
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
	entry->rip = pi->entry;
	entry->arg = LAYOUT_PVH_INFO;
	return 0;
}

static int load_pvh(const struct guest_mem *mem, const struct boot_config *cfg,
		    struct boot_entry *entry, struct cove_err *err)
{
	struct pvh_info pi;
	int ret = pvh_parse(cfg->kernel, cfg->kernel_len, &pi, err);
	if (ret)
		return ret;
	if ((ret = pvh_fits(mem, &pi, err)))
		return ret;
	for (unsigned i = 0; i < pi.nseg; i++) {
		const struct pvh_segment *s = &pi.seg[i];
		uint8_t *dst = guest_mem_ptr(mem, s->paddr, s->memsz);
		if (!dst)
			return cove_err_set(err, -EFAULT, "ELF segment does not fit in guest RAM");
		memcpy(dst, cfg->kernel + s->offset, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}
	return pvh_boot_data(mem, cfg, &pi, entry, err);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * The ELF file lies in guest RAM from base (each byte at base + its offset) and every segment
 * starts at or below base + its offset (elf_unpack_base). Taken in paddr order, with each
 * segment's memory ending before the next one's begins, every move and zero-fill lands below
 * the bytes still to be moved: one memmove per segment, no copy outside guest RAM.
 */
static int pvh_place_unpacked(const struct guest_mem *mem, uint64_t base, const struct pvh_info *pi,
			      struct cove_err *err)
{
	unsigned order[PVH_MAX_SEGMENTS];
	for (unsigned i = 0; i < pi->nseg; i++) {
		unsigned j = i;
		for (; j > 0 && pi->seg[order[j - 1]].paddr > pi->seg[i].paddr; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
	for (unsigned k = 0; k < pi->nseg; k++) {
		const struct pvh_segment *s = &pi->seg[order[k]];
		const struct pvh_segment *prev = k ? &pi->seg[order[k - 1]] : NULL;
		if (prev && prev->paddr + prev->memsz > s->paddr)
			return cove_err_set(err, -EINVAL, "its vmlinux has overlapping segments");
		if (s->paddr > base + s->offset)
			return cove_err_set(err, -EINVAL,
					    "its vmlinux's segments cannot be moved into place");
	}
	for (unsigned k = 0; k < pi->nseg; k++) {
		const struct pvh_segment *s = &pi->seg[order[k]];
		uint8_t *src = guest_mem_ptr(mem, base + s->offset, s->filesz);
		uint8_t *dst = guest_mem_ptr(mem, s->paddr, s->memsz);
		if (!src || !dst)
			return cove_err_set(err, -EFAULT, "ELF segment does not fit in guest RAM");
		memmove(dst, src, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}
	return 0;
}

#define UNPACK_PEEK (16 << 10) /* ELF header and program headers (at most 256 of 56 bytes) */

static int payload_error(int r, const struct kernel_payload *p, struct cove_err *err)
{
	if (r == -ENOMEM)
		return cove_err_set(err, r, "out of memory decompressing its payload");
	return cove_err_set(err, -EINVAL, "its %s payload is damaged or truncated",
			    kernel_payload_name(p->kind));
}

/*
 * A bzImage booted by PVH: its payload is decompressed straight into guest RAM, at the lowest
 * address from which every segment of the ELF vmlinux moves down into place, and entered at
 * its PVH note. Messages in err say why not ("its payload is ..."), for a fallback.
 */
static int load_unpacked(const struct guest_mem *mem, const struct boot_config *cfg,
			 struct boot_entry *entry, struct boot_report *rep, struct cove_err *err)
{
	struct kernel_payload p;
	int r = kernel_payload_find(cfg->kernel, cfg->kernel_len, &p, err);
	if (r)
		return r;
	rep->payload = p.kind;
	rep->packed_len = p.len;
	const char *kind = kernel_payload_name(p.kind);
	uint8_t head[UNPACK_PEEK];
	size_t n;
	r = kernel_payload_decompress(&p, head, sizeof(head), &n);
	if (r == -ENOTSUP)
		return cove_err_set(err, r,
				    "its payload is %s-compressed, which Cove does not decompress "
				    "(gzip, zstd, xz and lz4 only)",
				    kind);
	if (r && r != -EFBIG)
		return payload_error(r, &p, err);
	uint64_t base;
	if ((r = elf_unpack_base(head, n, LAYOUT_KERNEL, &base, err))) {
		if (r == -ENOEXEC) {
			cove_err_clear(err);
			return cove_err_set(err, r, "its %s payload is not an ELF vmlinux", kind);
		}
		return cove_err_prefix(err, "its vmlinux");
	}
	base = PAGE_UP(base);
	if (base >= mem->low_size)
		return cove_err_set(err, -ENOSPC,
				    "its vmlinux loads at %llu MiB: give more --memory",
				    (unsigned long long)(base >> 20));
	uint64_t cap = mem->low_size - base;
	if (cap > KERNEL_PAYLOAD_MAX)
		cap = KERNEL_PAYLOAD_MAX;
	uint8_t *dst = guest_mem_ptr(mem, base, cap);
	if (!dst)
		return cove_err_set(err, -EFAULT, "no guest RAM to decompress the kernel into");
	uint64_t t0 = now_ns();
	r = kernel_payload_decompress(&p, dst, cap, &n);
	uint64_t t1 = now_ns();
	rep->unpack_ns = t1 - t0;
	rep->unpacked_len = n;
	if (r == -EFBIG && cap == KERNEL_PAYLOAD_MAX)
		return cove_err_set(err, -EINVAL, "its payload decompresses to more than %llu MiB",
				    KERNEL_PAYLOAD_MAX >> 20);
	if (r == -EFBIG)
		return cove_err_set(err, -ENOSPC,
				    "its vmlinux decompresses to more than the RAM from %llu MiB "
				    "to %llu MiB: give more --memory",
				    (unsigned long long)(base >> 20),
				    (unsigned long long)(mem->low_size >> 20));
	if (r)
		return payload_error(r, &p, err);
	struct pvh_info pi;
	if ((r = pvh_parse(dst, n, &pi, err))) {
		if (r == -ENOENT) {
			cove_err_clear(err);
			return cove_err_set(
			    err, r,
			    "its vmlinux has no PVH entry note "
			    "(XEN_ELFNOTE_PHYS32_ENTRY: Linux built with CONFIG_PVH)");
		}
		return cove_err_prefix(err, "its vmlinux");
	}
	if ((r = pvh_fits(mem, &pi, err)) || (r = pvh_place_unpacked(mem, base, &pi, err)))
		return r;
	rep->place_ns = now_ns() - t1;
	return pvh_boot_data(mem, cfg, &pi, entry, err);
}

int loader_load(const struct guest_mem *mem, const struct boot_config *cfg,
		struct boot_entry *entry, struct boot_report *report, struct cove_err *err)
{
	struct boot_report local;
	if (!report)
		report = &local;
	memset(report, 0, sizeof(*report));
	int r;
	switch (kernel_detect(cfg->kernel, cfg->kernel_len)) {
	case KERNEL_BZIMAGE:
		if (cfg->boot != BOOT_CHOICE_LINUX) {
			struct cove_err why = {0};
			r = load_unpacked(mem, cfg, entry, report, &why);
			if (!r) {
				report->path = BOOT_PATH_PVH_UNPACKED;
				return 0;
			}
			if (cfg->boot == BOOT_CHOICE_PVH)
				return cove_err_set(err, r,
						    "--boot pvh: this bzImage cannot boot by PVH: "
						    "%s (--boot linux boots it by the Linux boot "
						    "protocol)",
						    why.msg);
			snprintf(report->no_pvh, sizeof(report->no_pvh), "%s", why.msg);
		}
		report->path = BOOT_PATH_LINUX;
		return load_bzimage(mem, cfg, entry, err);
	case KERNEL_ELF:
		if (cfg->boot == BOOT_CHOICE_LINUX)
			return cove_err_set(
			    err, -EINVAL,
			    "--boot linux: the kernel is an ELF file, which boots "
			    "by PVH only (the Linux boot protocol needs a bzImage)");
		report->path = BOOT_PATH_PVH;
		return load_pvh(mem, cfg, entry, err);
	default:
		return cove_err_set(
		    err, -ENOEXEC,
		    "not a kernel (neither a bzImage nor an ELF file with a PVH note)");
	}
}
