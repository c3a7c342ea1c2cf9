/* libFuzzer target: the kernel-image parsers and loader (bzImage header, ELF/PVH notes). */
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
	kernel_find_marker(data, size, "pvm-guest: "); /* a bzImage's compressed payload */
	static const uint8_t initrd[64];
	struct boot_config cfg = {data, size, initrd, sizeof(initrd), "console=ttyS0", 0xE0000};
	struct boot_entry e;
	loader_load(&mem, &cfg, &e, &err);
	return 0;
}
