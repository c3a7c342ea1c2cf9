/* Shared declarations of the probe guest: a freestanding x86-64 kernel that tests a VMM. */
#ifndef PROBE_H
#define PROBE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/layout.h"

#define BOOT_LINUX   1
#define BOOT_PVH     2
#define BOOT_LINUX64 3

#define MAX_MEM	   64
#define MAX_CPUS   64
#define MAX_TABLES 32
#define CMDLINE_SZ 4096

/* Everything the boot protocol handed over, copied before low memory is reused. */
struct mem_range {
	uint64_t addr, len;
	uint32_t type;
};

struct bootinfo {
	int kind;
	char cmdline[CMDLINE_SZ];
	size_t cmdline_len; /* as found in memory (may exceed what was kept) */
	int cmdline_found;
	struct mem_range mem[MAX_MEM];
	int nmem;
	uint64_t initrd_addr, initrd_size;
	uint64_t rsdp_hint;
	uint32_t pvh_version;
};

struct acpi_table {
	uint64_t addr;
	char sig[5];
	char oem[7];
	uint32_t len;
	int sum_ok;
};

struct acpi_info {
	uint64_t rsdp;
	int rsdp_rev, rsdp_ok;
	uint64_t rsdt, xsdt;
	struct acpi_table t[MAX_TABLES];
	int nt;
	const uint8_t *fadt, *madt, *dsdt;
	uint32_t fadt_len, madt_len, dsdt_len;
	uint64_t lapic_base;
	uint32_t cpu_apic[MAX_CPUS];
	int ncpus; /* enabled LAPIC / x2APIC entries */
	int nioapic, niso;
	uint16_t pm_tmr_port;
	int pm_tmr_32;
	int s5_found;
	uint8_t s5_typ;
	char err[96];
};

extern struct bootinfo boot;
extern struct acpi_info acpi;
extern uint64_t tsc_hz;
extern const char *tsc_source;

/* lib.c */
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);
void serial_init(void);
extern uint8_t serial_early[16];
extern size_t serial_early_len;
void putstr(const char *s);
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ksnprintf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void kvsnprintf(char *buf, size_t n, const char *fmt, va_list ap);
uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n);
int phys_ok(uint64_t addr, uint64_t len);
uint64_t rdtsc(void);
uint64_t tsc_ms(uint64_t cycles);
void delay_us(uint64_t us);
void tsc_calibrate(void);
int tsc_calibrate_early(void);
int parse_u64(const char *s, size_t n, int base, uint64_t *out);
const char *cmdline_get(const char *key, size_t *vlen);

/* boot.c */
void boot_collect(int kind, uint64_t data);
uint64_t boot_ram_total(void);
const char *boot_kind_name(void);

/* acpi.c */
void acpi_scan(void);
void acpi_poweroff(void);
void acpi_reset(void);
const char *acpi_region_name(uint32_t type);

/* apic.c */
void idt_init(void);
int lapic_init(void);
int smp_boot(char *detail, size_t n);
int timer_test(char *detail, size_t n);
extern int smp_online;
extern int lapic_x2;
extern uint32_t ap_ids[MAX_CPUS];
long enter_user(long (*fn)(long, long), void *stack, long a0, long a1);
long user_exitloop(long loops, long port);
long user_call(long (*fn)(long, long), long a0, long a1);

/* tests.c */
typedef int (*test_fn)(char *detail, size_t n);
#define PASS 0
#define FAIL 1
#define SKIP 2
int test_boot(char *d, size_t n);
int test_initrd(char *d, size_t n);
int test_acpi(char *d, size_t n);
int test_smp(char *d, size_t n);
int test_timer(char *d, size_t n);
int test_rtc(char *d, size_t n);
int test_serial(char *d, size_t n);
int test_exitloop(char *d, size_t n);
int test_exitloop0(char *d, size_t n);
void demo(void);

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(sub));
}

static inline uint8_t rd8(uint64_t a)
{
	return *(volatile uint8_t *)(uintptr_t)a;
}
static inline uint16_t rd16(uint64_t a)
{
	return *(volatile uint16_t *)(uintptr_t)a;
}
static inline uint32_t rd32(uint64_t a)
{
	return *(volatile uint32_t *)(uintptr_t)a;
}
static inline uint64_t rd64(uint64_t a)
{
	return *(volatile uint64_t *)(uintptr_t)a;
}

#endif
