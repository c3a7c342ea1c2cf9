/*
 * Kernel loaders: the Linux x86 boot protocol (bzImage, 64-bit entry) and PVH (ELF32/ELF64
 * with a XEN_ELFNOTE_PHYS32_ENTRY note). The parsers take untrusted bytes and are pure.
 */
#ifndef COVE_VMM_LOADER_H
#define COVE_VMM_LOADER_H

#include "vmm/guest_mem.h"
#include "vmm/vm.h"

#include <cove/error.h>
#include <stddef.h>
#include <stdint.h>

enum kernel_format {
	KERNEL_UNKNOWN = 0,
	KERNEL_BZIMAGE,
	KERNEL_ELF,
};

/* Guesses the format from the first bytes (full checks are in the parsers). */
enum kernel_format kernel_detect(const uint8_t *img, size_t len);

/*
 * Whether MARKER (under 64 bytes) occurs in the kernel image: in the file itself, or in a
 * bzImage's payload once decompressed (gzip, zstd, xz; at most 512 MiB of output is read).
 * Returns 1 found, 0 not found, -ENOTSUP for another compression, -EINVAL for a damaged
 * payload or a setup header bzimage_parse refuses, -ENOMEM.
 */
int kernel_find_marker(const uint8_t *img, size_t len, const char *marker);

struct bzimage_info {
	uint16_t version;	  /* boot protocol version, 0x020C or later */
	size_t setup_size;	  /* bytes before the protected-mode kernel */
	size_t kernel_size;	  /* bytes of the protected-mode kernel */
	size_t hdr_end;		  /* end of the setup header inside the image */
	uint32_t initrd_addr_max; /* highest address the initrd may end at */
	uint32_t cmdline_size;	  /* longest command line, without the NUL */
	uint32_t init_size;	  /* memory the kernel needs from where it runs */
	uint64_t pref_address;	  /* where it prefers to run */
	uint8_t relocatable;
	uint16_t xloadflags;
	uint32_t payload_offset; /* the compressed kernel, from the end of the setup */
	uint32_t payload_length;
};

/* Returns 0 or -EINVAL (-ENOEXEC: not a bzImage) with the reason in err. */
int bzimage_parse(const uint8_t *img, size_t len, struct bzimage_info *out, struct cove_err *err);

#define PVH_MAX_SEGMENTS 16

struct pvh_segment {
	uint64_t offset; /* in the file */
	uint64_t filesz;
	uint64_t paddr;
	uint64_t memsz;
};

struct pvh_info {
	uint32_t entry; /* 32-bit protected-mode entry point */
	unsigned nseg;
	struct pvh_segment seg[PVH_MAX_SEGMENTS];
	uint64_t start; /* lowest paddr loaded */
	uint64_t end;	/* first byte above what is loaded */
};

/* Returns 0 or -EINVAL (-ENOEXEC: not an ELF file) with the reason in err. */
int pvh_parse(const uint8_t *img, size_t len, struct pvh_info *out, struct cove_err *err);

/*
 * Where an initrd of size bytes goes: page-aligned, as high as possible with its end at most
 * limit (exclusive), and not below floor. Returns 0 or -ENOSPC.
 */
int initrd_place(uint64_t size, uint64_t floor, uint64_t limit, uint64_t *addr);

struct boot_config {
	const uint8_t *kernel;
	size_t kernel_len;
	const uint8_t *initrd; /* may be NULL */
	size_t initrd_len;
	const char *cmdline; /* may be NULL */
	uint64_t rsdp;	     /* guest address of the ACPI RSDP, 0 if none */
};

/*
 * Loads the kernel (format detected from its bytes), initrd and command line into mem and
 * writes the boot data (boot_params or hvm_start_info, e820 map). Fills entry for vm_run.
 * Returns 0 or -errno with a message in err.
 */
int loader_load(const struct guest_mem *mem, const struct boot_config *cfg,
		struct boot_entry *entry, struct cove_err *err);

#endif
