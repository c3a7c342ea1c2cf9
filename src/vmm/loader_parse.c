/* Parsers of untrusted kernel images: the bzImage setup header and ELF PVH notes. */
#include "vmm/loader.h"

#include <errno.h>
#include <string.h>

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

enum kernel_format kernel_detect(const uint8_t *img, size_t len)
{
	if (len >= 4 && memcmp(img,
			       "\x7f"
			       "ELF",
			       4) == 0)
		return KERNEL_ELF;
	if (len >= 0x206 && rd16(img + 0x1FE) == 0xAA55 && memcmp(img + 0x202, "HdrS", 4) == 0)
		return KERNEL_BZIMAGE;
	return KERNEL_UNKNOWN;
}

#define XLF_KERNEL_64 0x1
#define LOADED_HIGH   0x1

int bzimage_parse(const uint8_t *img, size_t len, struct bzimage_info *out, struct cove_err *err)
{
	memset(out, 0, sizeof(*out));
	if (kernel_detect(img, len) != KERNEL_BZIMAGE)
		return cove_err_set(err, -ENOEXEC, "not a bzImage (no HdrS signature)");
	if (len < 0x26C)
		return cove_err_set(err, -EINVAL, "bzImage truncated in its setup header");
	out->version = rd16(img + 0x206);
	if (out->version < 0x020C)
		return cove_err_set(
		    err, -EINVAL,
		    "bzImage boot protocol %u.%02u is too old (2.12 or later needed "
		    "for the 64-bit entry)",
		    out->version >> 8, out->version & 0xFF);
	unsigned setup_sects = img[0x1F1] ? img[0x1F1] : 4;
	out->setup_size = ((size_t)setup_sects + 1) * 512;
	if (out->setup_size >= len)
		return cove_err_set(err, -EINVAL,
				    "bzImage truncated: setup of %zu bytes, file of %zu",
				    out->setup_size, len);
	out->kernel_size = len - out->setup_size;
	out->hdr_end = 0x202 + (size_t)img[0x201];
	if (out->hdr_end > 0x26C)
		out->hdr_end = 0x26C;
	if (out->hdr_end > out->setup_size)
		return cove_err_set(err, -EINVAL, "bzImage setup header longer than its setup");
	if (!(img[0x211] & LOADED_HIGH))
		return cove_err_set(err, -EINVAL, "bzImage is not loaded high (a zImage?)");
	out->xloadflags = rd16(img + 0x236);
	if (!(out->xloadflags & XLF_KERNEL_64))
		return cove_err_set(err, -EINVAL, "bzImage has no 64-bit entry point");
	out->initrd_addr_max = rd32(img + 0x22C);
	out->relocatable = img[0x234];
	out->cmdline_size = rd32(img + 0x238);
	out->pref_address = rd64(img + 0x258);
	out->init_size = rd32(img + 0x260);
	out->payload_offset = rd32(img + 0x248);
	out->payload_length = rd32(img + 0x24C);
	return 0;
}

#define PT_LOAD			 1
#define PT_NOTE			 4
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define PVH_MAX_PHDRS		 256

/* Finds the PVH entry in the notes of [off, off+size) of the file. 1 found, 0 not, <0 bad. */
static int find_pvh_note(const uint8_t *img, size_t len, uint64_t off, uint64_t size,
			 uint64_t *entry)
{
	if (off > len || size > len - off)
		return -EINVAL;
	const uint8_t *p = img + off, *end = img + off + size;
	while ((size_t)(end - p) >= 12) {
		uint32_t namesz = rd32(p), descsz = rd32(p + 4), type = rd32(p + 8);
		uint64_t name_len = ((uint64_t)namesz + 3) & ~3ULL;
		uint64_t desc_len = ((uint64_t)descsz + 3) & ~3ULL;
		p += 12;
		if (name_len > (uint64_t)(end - p) || desc_len > (uint64_t)(end - p) - name_len)
			return -EINVAL;
		const uint8_t *name = p, *desc = p + name_len;
		if (namesz == 4 && memcmp(name, "Xen", 4) == 0 &&
		    type == XEN_ELFNOTE_PHYS32_ENTRY) {
			if (descsz == 4)
				*entry = rd32(desc);
			else if (descsz == 8)
				*entry = rd64(desc);
			else
				return -EINVAL;
			return 1;
		}
		p = desc + desc_len;
	}
	return 0;
}

/* The ELF header's program-header table, checked to lie inside the len bytes. */
struct elf_phdrs {
	bool is64;
	uint64_t phoff;
	uint16_t phnum, phentsize;
};

static int elf_phdrs(const uint8_t *img, size_t len, struct elf_phdrs *ph, struct cove_err *err)
{
	if (kernel_detect(img, len) != KERNEL_ELF)
		return cove_err_set(err, -ENOEXEC, "not an ELF file");
	if (len < 52)
		return cove_err_set(err, -EINVAL, "ELF header truncated");
	bool is64 = img[4] == 2;
	if ((img[4] != 1 && img[4] != 2) || img[5] != 1)
		return cove_err_set(err, -EINVAL, "not a little-endian ELF32 or ELF64 file");
	if (is64 && len < 64)
		return cove_err_set(err, -EINVAL, "ELF header truncated");
	uint16_t type = rd16(img + 16), machine = rd16(img + 18);
	if (type != 2)
		return cove_err_set(err, -EINVAL, "ELF file is not an executable");
	if (machine != 3 && machine != 62)
		return cove_err_set(err, -EINVAL, "ELF file is not for x86 (machine %u)", machine);
	uint64_t phoff = is64 ? rd64(img + 32) : rd32(img + 28);
	uint16_t phentsize = rd16(img + (is64 ? 54 : 42));
	uint16_t phnum = rd16(img + (is64 ? 56 : 44));
	size_t want = is64 ? 56 : 32;
	if (phnum == 0 || phnum > PVH_MAX_PHDRS || phentsize != want)
		return cove_err_set(err, -EINVAL, "ELF program headers malformed (%u of %u bytes)",
				    phnum, phentsize);
	if (phoff > len || (uint64_t)phnum * phentsize > len - phoff)
		return cove_err_set(err, -EINVAL, "ELF program headers beyond the end of the file");
	*ph = (struct elf_phdrs){is64, phoff, phnum, phentsize};
	return 0;
}

struct elf_phdr {
	uint32_t type;
	uint64_t off, paddr, filesz, memsz;
};

static struct elf_phdr elf_phdr(const uint8_t *img, const struct elf_phdrs *ph, unsigned i)
{
	const uint8_t *p = img + ph->phoff + (uint64_t)i * ph->phentsize;
	if (ph->is64)
		return (struct elf_phdr){rd32(p), rd64(p + 8), rd64(p + 24), rd64(p + 32),
					 rd64(p + 40)};
	return (struct elf_phdr){rd32(p), rd32(p + 4), rd32(p + 12), rd32(p + 16), rd32(p + 20)};
}

int elf_unpack_base(const uint8_t *img, size_t len, uint64_t floor, uint64_t *base,
		    struct cove_err *err)
{
	struct elf_phdrs ph;
	int r = elf_phdrs(img, len, &ph, err);
	if (r)
		return r;
	uint64_t b = floor;
	for (unsigned i = 0; i < ph.phnum; i++) {
		struct elf_phdr h = elf_phdr(img, &ph, i);
		if (h.type == PT_LOAD && h.memsz > 0 && h.paddr > h.off && h.paddr - h.off > b)
			b = h.paddr - h.off;
	}
	*base = b;
	return 0;
}

int pvh_parse(const uint8_t *img, size_t len, struct pvh_info *out, struct cove_err *err)
{
	memset(out, 0, sizeof(*out));
	struct elf_phdrs ph;
	int r = elf_phdrs(img, len, &ph, err);
	if (r)
		return r;
	bool found = false;
	uint64_t entry = 0;
	out->start = UINT64_MAX;
	for (unsigned i = 0; i < ph.phnum; i++) {
		struct elf_phdr h = elf_phdr(img, &ph, i);
		if (h.type == PT_NOTE && !found) {
			r = find_pvh_note(img, len, h.off, h.filesz, &entry);
			if (r < 0)
				return cove_err_set(err, -EINVAL, "ELF note segment malformed");
			found = r == 1;
		} else if (h.type == PT_LOAD && h.memsz > 0) {
			if (h.off > len || h.filesz > len - h.off)
				return cove_err_set(err, -EINVAL,
						    "ELF segment %u beyond the end of the file", i);
			if (h.filesz > h.memsz)
				return cove_err_set(
				    err, -EINVAL, "ELF segment %u: file size above memory size", i);
			if (h.paddr + h.memsz < h.paddr || h.paddr + h.memsz > (1ULL << 32))
				return cove_err_set(err, -EINVAL,
						    "ELF segment %u does not fit below 4 GiB", i);
			if (out->nseg == PVH_MAX_SEGMENTS)
				return cove_err_set(err, -EINVAL, "ELF file has too many segments");
			out->seg[out->nseg++] =
			    (struct pvh_segment){h.off, h.filesz, h.paddr, h.memsz};
			if (h.paddr < out->start)
				out->start = h.paddr;
			if (h.paddr + h.memsz > out->end)
				out->end = h.paddr + h.memsz;
		}
	}
	if (!found)
		return cove_err_set(err, -ENOENT,
				    "ELF kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); "
				    "Cove boots ELF kernels by PVH only");
	if (entry >= (1ULL << 32))
		return cove_err_set(err, -EINVAL, "PVH entry point 0x%llx is above 4 GiB",
				    (unsigned long long)entry);
	if (out->nseg == 0)
		return cove_err_set(err, -EINVAL, "ELF file has nothing to load");
	out->entry = (uint32_t)entry;
	return 0;
}

int boot_choice_parse(const char *s, enum boot_choice *out)
{
	static const char *const names[] = {"auto", "linux", "pvh"};
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(s, names[i])) {
			*out = (enum boot_choice)i;
			return 0;
		}
	}
	return -EINVAL;
}

int initrd_place(uint64_t size, uint64_t floor, uint64_t limit, uint64_t *addr)
{
	if (size == 0 || size > limit)
		return -ENOSPC;
	uint64_t a = (limit - size) & ~0xFFFULL;
	if (a < floor)
		return -ENOSPC;
	*addr = a;
	return 0;
}
