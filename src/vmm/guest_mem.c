/* Guest RAM: one anonymous mapping, split around the 32-bit MMIO hole, bounds-checked access. */
#include "vmm/guest_mem.h"
#include "vmm/layout.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_2M (2ULL << 20)

void guest_mem_split(uint64_t size, uint64_t *low, uint64_t *high)
{
	if (size <= LAYOUT_MMIO32_START) {
		*low = size;
		*high = 0;
	} else {
		*low = LAYOUT_MMIO32_START;
		*high = size - LAYOUT_MMIO32_START;
	}
}

int guest_mem_init(struct guest_mem *mem, uint64_t size, bool hugepages)
{
	memset(mem, 0, sizeof(*mem));
	if (size < GUEST_MEM_MIN || size > GUEST_MEM_MAX || size % 4096)
		return -EINVAL;
	guest_mem_split(size, &mem->low_size, &mem->high_size);
	mem->map_len = size;
	void *p = MAP_FAILED;
	if (hugepages && size % HUGE_2M == 0) {
		/* Reserved up front: with MAP_NORESERVE a short pool means SIGBUS later. */
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		mem->hugetlb = p != MAP_FAILED;
	}
	if (p == MAP_FAILED)
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	if (hugepages && !mem->hugetlb)
		madvise(p, size, MADV_HUGEPAGE); /* best effort: THP may be off */
	/* A child process (cove forks one at exit) never needs guest RAM. */
	madvise(p, size, MADV_DONTFORK);
	mem->host = p;
	return 0;
}

void guest_mem_free(struct guest_mem *mem)
{
	if (mem->host)
		munmap(mem->host, mem->map_len);
	memset(mem, 0, sizeof(*mem));
}

void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	if (!mem->host)
		return NULL;
	if (gpa < mem->low_size) {
		if (len > mem->low_size - gpa)
			return NULL;
		return mem->host + gpa;
	}
	if (gpa >= LAYOUT_HIGH_RAM && gpa - LAYOUT_HIGH_RAM < mem->high_size) {
		uint64_t off = gpa - LAYOUT_HIGH_RAM;
		if (len > mem->high_size - off)
			return NULL;
		return mem->host + mem->low_size + off;
	}
	return NULL;
}

int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = guest_mem_ptr(mem, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = guest_mem_ptr(mem, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

void guest_mem_clear(struct guest_mem *mem)
{
	if (!mem->host)
		return;
	if (madvise(mem->host, mem->map_len, MADV_DONTNEED) != 0)
		memset(mem->host, 0, mem->map_len);
}
