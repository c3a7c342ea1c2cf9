/* libFuzzer target: the kernel-image parsers and loader (bzImage header, ELF/PVH notes), and a
 * bzImage's payload decompressed into guest RAM and booted by PVH. */
#include "vmm/loader.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_mem mem;
	if (!mem.host && guest_mem_init(&mem, 32 << 20, false))
		abort();
	struct bzimage_info bi;
	struct pvh_info pi;
	struct cove_err err = {0};
	bzimage_parse(data, size, &bi, &err);
	cove_err_clear(&err);
	pvh_parse(data, size, &pi, &err);
	cove_err_clear(&err);
	uint64_t base;
	elf_unpack_base(data, size, 0x100000, &base, &err);
	cove_err_clear(&err);
	/* the decompressors, bounded by a small buffer (a peek) */
	struct kernel_payload p;
	if (!kernel_payload_find(data, size, &p, &err)) {
		static uint8_t out[64 << 10];
		size_t n;
		kernel_payload_decompress(&p, out, sizeof(out), &n);
	}
	cove_err_clear(&err);
	kernel_find_marker(data, size, "pvm-guest: "); /* a bzImage's compressed payload */
	static const uint8_t initrd[64];
	/* auto: the payload into guest RAM, its vmlinux by PVH, else the boot protocol */
	for (int b = BOOT_CHOICE_AUTO; b <= BOOT_CHOICE_PVH; b++) {
		struct boot_config cfg = {
		    .kernel = data,
		    .kernel_len = size,
		    .initrd = initrd,
		    .initrd_len = sizeof(initrd),
		    .cmdline = "console=ttyS0",
		    .rsdp = 0xE0000,
		    .boot = (enum boot_choice)b,
		};
		struct boot_entry e;
		struct boot_report rep;
		loader_load(&mem, &cfg, &e, &rep, &err);
		cove_err_clear(&err);
	}
	return 0;
}
