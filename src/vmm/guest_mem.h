/* Guest RAM: anonymous host memory split around the 32-bit MMIO hole, and its one accessor. */
#ifndef COVE_VMM_GUEST_MEM_H
#define COVE_VMM_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem {
	uint8_t *host;	    /* one mapping: low RAM, then high RAM */
	size_t map_len;	    /* bytes mapped */
	uint64_t low_size;  /* RAM at [0, low_size) */
	uint64_t high_size; /* RAM at [LAYOUT_HIGH_RAM, LAYOUT_HIGH_RAM + high_size) */
	bool hugetlb;	    /* backed by MAP_HUGETLB pages */
};

/* Smallest and largest RAM a machine may have. */
#define GUEST_MEM_MIN (16ULL << 20)
#define GUEST_MEM_MAX (1ULL << 40)

/* Splits size bytes of RAM around the 32-bit hole (pure; for the loaders and tests). */
void guest_mem_split(uint64_t size, uint64_t *low, uint64_t *high);

/*
 * Maps size bytes of RAM. hugepages: try MAP_HUGETLB (2 MiB pages), else ask for
 * transparent huge pages. Returns 0, -EINVAL (size out of range) or -ENOMEM.
 */
int guest_mem_init(struct guest_mem *mem, uint64_t size, bool hugepages);
void guest_mem_free(struct guest_mem *mem);

/*
 * The one accessor: a host pointer to [gpa, gpa + len) when that whole range is RAM
 * inside one region, else NULL. Overflow-safe; len 0 is allowed.
 */
void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

/* Copies into/out of guest RAM through guest_mem_ptr. Return 0 or -EFAULT. */
int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len);
int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len);

/* Zeroes all guest RAM (machine reset): drops the pages, so RSS falls too. */
void guest_mem_clear(struct guest_mem *mem);

#endif
