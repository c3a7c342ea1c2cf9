/* Reads what the loader handed over (Linux boot_params or PVH hvm_start_info) into `boot`. */
#include "probe.h"

struct bootinfo boot;

#define PVH_MAGIC 0x336EC578U

static void take_cmdline(uint64_t addr)
{
	if (!addr || !phys_ok(addr, 1))
		return;
	boot.cmdline_found = 1;
	size_t n = 0;
	while (n < LAYOUT_CMDLINE_MAX && phys_ok(addr + n, 1) && rd8(addr + n)) {
		if (n < CMDLINE_SZ - 1)
			boot.cmdline[n] = (char)rd8(addr + n);
		n++;
	}
	boot.cmdline_len = n;
	boot.cmdline[n < CMDLINE_SZ - 1 ? n : CMDLINE_SZ - 1] = 0;
}

static void add_mem(uint64_t addr, uint64_t len, uint32_t type)
{
	if (boot.nmem < MAX_MEM)
		boot.mem[boot.nmem++] = (struct mem_range){addr, len, type};
}

static void collect_linux(uint64_t bp)
{
	if (!phys_ok(bp, 4096))
		return;
	take_cmdline(rd32(bp + 0x228) | (uint64_t)rd32(bp + 0xC8) << 32);
	unsigned n = rd8(bp + 0x1E8);
	if (n > 128)
		n = 128;
	for (unsigned i = 0; i < n; i++) {
		uint64_t e = bp + 0x2D0 + 20 * i;
		add_mem(rd64(e), rd64(e + 8), rd32(e + 16));
	}
	boot.initrd_addr = rd32(bp + 0x218) | (uint64_t)rd32(bp + 0xC0) << 32;
	boot.initrd_size = rd32(bp + 0x21C) | (uint64_t)rd32(bp + 0xC4) << 32;
	boot.rsdp_hint = rd64(bp + 0x70);
}

static void collect_pvh(uint64_t si)
{
	if (!phys_ok(si, 56) || rd32(si) != PVH_MAGIC)
		return;
	boot.pvh_version = rd32(si + 4);
	take_cmdline(rd64(si + 24));
	boot.rsdp_hint = rd64(si + 32);
	uint32_t nmod = rd32(si + 12);
	uint64_t mods = rd64(si + 16);
	if (nmod && phys_ok(mods, 32)) {
		boot.initrd_addr = rd64(mods);
		boot.initrd_size = rd64(mods + 8);
	}
	if (boot.pvh_version >= 1) {
		uint64_t mm = rd64(si + 40);
		uint32_t n = rd32(si + 48);
		if (n > MAX_MEM)
			n = MAX_MEM;
		if (phys_ok(mm, (uint64_t)n * 24))
			for (uint32_t i = 0; i < n; i++)
				add_mem(rd64(mm + 24 * i), rd64(mm + 24 * i + 8),
					rd32(mm + 24 * i + 16));
	}
}

void boot_collect(int kind, uint64_t data)
{
	boot.kind = kind;
	if (kind == BOOT_PVH)
		collect_pvh(data);
	else
		collect_linux(data);
}

uint64_t boot_ram_total(void)
{
	uint64_t total = 0;
	for (int i = 0; i < boot.nmem; i++)
		if (boot.mem[i].type == 1)
			total += boot.mem[i].len;
	return total;
}

const char *boot_kind_name(void)
{
	switch (boot.kind) {
	case BOOT_PVH:
		return "PVH entry";
	case BOOT_LINUX64:
		return "Linux 64-bit entry";
	default:
		return "Linux 32-bit entry";
	}
}
