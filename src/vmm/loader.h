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

/* How a kernel is booted: --boot auto|linux|pvh. */
enum boot_choice {
	BOOT_CHOICE_AUTO = 0, /* PVH when the kernel (or a bzImage's payload) has a PVH note */
	BOOT_CHOICE_LINUX,    /* a bzImage by the Linux boot protocol: its own decompressor runs */
	BOOT_CHOICE_PVH,      /* PVH or an error */
};

/* Parses "auto", "linux" or "pvh". Returns 0 or -EINVAL. */
int boot_choice_parse(const char *s, enum boot_choice *out);

/*
 * Whether MARKER (under 64 bytes) occurs in the kernel image: in the file itself, or in a
 * bzImage's payload once decompressed (kernel_payload_decompress_alloc, at most
 * KERNEL_PAYLOAD_MAX bytes). Returns 1 found, 0 not found, -ENOTSUP for a compression not
 * read here, -EINVAL for a damaged payload or a setup header bzimage_parse refuses, -ENOMEM.
 */
int kernel_find_marker(const uint8_t *img, size_t len, const char *marker);

/* The compressed kernel inside a bzImage (payload_offset, payload_length). */
enum payload_kind {
	PAYLOAD_UNKNOWN = 0,
	PAYLOAD_GZIP,
	PAYLOAD_ZSTD,
	PAYLOAD_XZ,
	PAYLOAD_LZ4, /* the LZ4 legacy format, as the kernel build writes it */
	PAYLOAD_BZIP2,
	PAYLOAD_LZMA,
	PAYLOAD_LZO,
};

struct kernel_payload {
	const uint8_t *data; /* inside the image */
	size_t len;
	enum payload_kind kind;
};

/* Far above any kernel: the bound on what a payload may decompress to (hostile files). */
#define KERNEL_PAYLOAD_MAX (512ULL << 20)

/*
 * Finds a bzImage's payload and names its compression from its magic. Returns 0 (also for
 * a kind this file does not decompress), -ENOEXEC (not a bzImage), -ENOTSUP (boot protocol
 * before 2.08: no payload fields) or -EINVAL (payload beyond the file), with err set.
 */
int kernel_payload_find(const uint8_t *img, size_t len, struct kernel_payload *out,
			struct cove_err *err);

/* "gzip", "zstd", "xz", "lz4", "bzip2", "lzma", "lzo" or "unknown". */
const char *kernel_payload_name(enum payload_kind kind);

/*
 * Decompresses p into dst, at most cap bytes (and never more than KERNEL_PAYLOAD_MAX);
 * *out_len is what was written. Returns 0 when the stream ended within cap; -EFBIG when more
 * output follows (dst then holds exactly the first cap bytes, so a small cap peeks at the
 * start); -EINVAL for a damaged or truncated stream; -ENOTSUP for gzip, zstd, xz and lz4
 * only are read; -ENOMEM. Trailing bytes after the stream (the kernel build appends the
 * decompressed size) are ignored.
 */
int kernel_payload_decompress(const struct kernel_payload *p, uint8_t *dst, size_t cap,
			      size_t *out_len);

/*
 * The same into a new buffer of at most max bytes (capped at KERNEL_PAYLOAD_MAX). On 0, and
 * on -EFBIG (more output than max: the buffer holds the first max bytes), the caller owns
 * *out (*out_len bytes) and frees it with kernel_payload_free; other errors leave *out NULL.
 */
int kernel_payload_decompress_alloc(const struct kernel_payload *p, size_t max, uint8_t **out,
				    size_t *out_len);
void kernel_payload_free(uint8_t *buf, size_t len);

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

/*
 * Returns 0 or -EINVAL (-ENOEXEC: not an ELF file; -ENOENT: no PVH note) with the reason in
 * err.
 */
int pvh_parse(const uint8_t *img, size_t len, struct pvh_info *out, struct cove_err *err);

/*
 * From the ELF header and program headers alone (they must lie in the len bytes given; the
 * segments need not): the lowest address at which the file can be laid out so that every
 * PT_LOAD segment moves down (or stays) to its paddr: max(paddr - offset), at least floor.
 * Returns 0 or -EINVAL (-ENOEXEC: not an ELF file) with the reason in err.
 */
int elf_unpack_base(const uint8_t *img, size_t len, uint64_t floor, uint64_t *base,
		    struct cove_err *err);

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
	enum boot_choice boot;
};

/* How loader_load booted the kernel, for the log. */
enum boot_path {
	BOOT_PATH_LINUX = 0,	/* a bzImage by the Linux boot protocol */
	BOOT_PATH_PVH,		/* an ELF kernel by PVH */
	BOOT_PATH_PVH_UNPACKED, /* a bzImage's payload, decompressed here, by PVH */
};

struct boot_report {
	enum boot_path path;
	enum payload_kind payload; /* BOOT_PATH_PVH_UNPACKED */
	uint64_t packed_len;	   /* payload bytes */
	uint64_t unpacked_len;	   /* decompressed bytes (the ELF vmlinux and what follows) */
	uint64_t unpack_ns;	   /* decompressing into guest RAM */
	uint64_t place_ns;	   /* moving the segments into place */
	char no_pvh[512];	   /* --boot auto fell back to the boot protocol: why */
};

/*
 * Loads the kernel (format detected from its bytes), initrd and command line into mem and
 * writes the boot data (boot_params or hvm_start_info, e820 map). Fills entry for vm_run.
 * A bzImage whose payload decompresses to an ELF vmlinux with a PVH note is booted by PVH
 * unless cfg->boot is BOOT_CHOICE_LINUX; the payload is decompressed straight into guest RAM.
 * report (may be NULL) says which way was taken. Returns 0 or -errno with a message in err.
 */
int loader_load(const struct guest_mem *mem, const struct boot_config *cfg,
		struct boot_entry *entry, struct boot_report *report, struct cove_err *err);

#endif
