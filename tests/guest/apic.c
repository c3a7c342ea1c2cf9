/* Interrupts and the local APIC: IDT/TSS, exceptions, AP bring-up (INIT-SIPI-SIPI), LAPIC timer. */
#include "probe.h"

#define VEC_TIMER    0x40
#define VEC_SPURIOUS 0xFF
#define TRAMP_BASE   0x3000

#define LAPIC_ID       0x020
#define LAPIC_TPR      0x080
#define LAPIC_EOI      0x0B0
#define LAPIC_SVR      0x0F0
#define LAPIC_ICR      0x300
#define LAPIC_ICR_HI   0x310
#define LAPIC_LVT_TMR  0x320
#define LAPIC_TMR_INIT 0x380
#define LAPIC_TMR_CUR  0x390
#define LAPIC_TMR_DIV  0x3E0

struct frame {
	uint64_t r11, r10, r9, r8, rdi, rsi, rdx, rcx, rax;
	uint64_t vec, err, rip, cs, rflags, rsp, ss;
};

struct tss {
	uint32_t rsv0;
	uint64_t rsp[3];
	uint64_t rsv1;
	uint64_t ist[7];
	uint64_t rsv2;
	uint16_t rsv3, iomap;
	uint8_t iobitmap[0x10000 / 8 + 1]; /* every port allowed at CPL3 */
} __attribute__((packed));

extern char isr_stubs[];
extern void user_resume(long rax) __attribute__((noreturn));
extern uint64_t gdt[];
extern void ap_entry64(void);
extern char ap_tramp_start[], ap_tramp_end[], ap_tramp_cr3[], ap_tramp_stack[], ap_tramp_entry[];
extern char pml4[];

static struct {
	uint16_t lo, sel;
	uint8_t ist, type;
	uint16_t mid;
	uint32_t hi, rsv;
} idt[256] __attribute__((aligned(16)));

static struct tss tss __attribute__((aligned(16)));
static uint8_t ist_stack[4096] __attribute__((section(".stacks"), aligned(16)));
static uint8_t ap_stacks[MAX_CPUS][4096] __attribute__((section(".stacks"), aligned(16)));

int lapic_x2;
static uint64_t lapic_mmio = LAYOUT_LAPIC;
static volatile uint64_t timer_ticks;
static volatile int ap_count;
uint32_t ap_ids[MAX_CPUS];
int smp_online = 1;

static void set_gate(int v, void *fn, int dpl)
{
	uint64_t a = (uint64_t)(uintptr_t)fn;
	idt[v].lo = (uint16_t)a;
	idt[v].sel = 0x08;
	idt[v].ist = 0;
	idt[v].type = (uint8_t)(0x8E | (dpl << 5));
	idt[v].mid = (uint16_t)(a >> 16);
	idt[v].hi = (uint32_t)(a >> 32);
}

static void load_idt(void)
{
	struct {
		uint16_t lim;
		uint64_t base;
	} __attribute__((packed)) p = {sizeof(idt) - 1, (uint64_t)(uintptr_t)idt};
	__asm__ volatile("lidt %0" : : "m"(p));
}

/* The legacy PIC: moved to vectors 0x20-0x2F (off the exceptions, where a BIOS leaves it) and
 * masked. */
static void pic_off(void)
{
	static const uint8_t init[2][4] = {{0x11, 0x20, 0x04, 0x01}, {0x11, 0x28, 0x02, 0x01}};
	for (int c = 0; c < 2; c++) {
		uint16_t base = c ? 0xA0 : 0x20;
		outb(base, init[c][0]);
		for (int i = 1; i < 4; i++)
			outb(base + 1, init[c][i]);
		outb(base + 1, 0xFF);
	}
}

void idt_init(void)
{
	pic_off();
	/* Only the vectors in use (CPL0 is emulated: every instruction counts); others are not
	 * present, so a stray interrupt shows up as #NP (11) with its vector in the error code. */
	for (int v = 0; v < 32; v++)
		set_gate(v, isr_stubs + 16 * v, 0);
	set_gate(VEC_TIMER, isr_stubs + 16 * VEC_TIMER, 0);
	set_gate(VEC_SPURIOUS, isr_stubs + 16 * VEC_SPURIOUS, 0);
	load_idt();
	tss.rsp[0] = (uint64_t)(uintptr_t)(ist_stack + sizeof(ist_stack));
	tss.iomap = offsetof(struct tss, iobitmap);
	tss.iobitmap[sizeof(tss.iobitmap) - 1] = 0xFF;
	uint64_t b = (uint64_t)(uintptr_t)&tss, lim = sizeof(tss) - 1;
	gdt[6] = (lim & 0xFFFF) | (b & 0xFFFFFF) << 16 | 0x89ULL << 40 | ((lim >> 16) & 0xF) << 48 |
		 ((b >> 24) & 0xFF) << 56;
	gdt[7] = b >> 32;
	__asm__ volatile("ltr %w0" : : "r"(0x30));
}

static void lapic_write(uint32_t reg, uint32_t v)
{
	if (lapic_x2)
		wrmsr(0x800 + (reg >> 4), v);
	else
		*(volatile uint32_t *)(uintptr_t)(lapic_mmio + reg) = v;
}

static uint32_t lapic_read(uint32_t reg)
{
	if (lapic_x2)
		return (uint32_t)rdmsr(0x800 + (reg >> 4));
	return *(volatile uint32_t *)(uintptr_t)(lapic_mmio + reg);
}

void isr_dispatch(struct frame *f)
{
	if (f->vec == VEC_TIMER) {
		timer_ticks++;
		lapic_write(LAPIC_EOI, 0);
		return;
	}
	if (f->vec == VEC_SPURIOUS)
		return;
	if (f->vec >= 32) {
		lapic_write(LAPIC_EOI, 0);
		return;
	}
	if (f->cs & 3) /* the ud2 that ends enter_user(), or a fault at CPL3 */
		user_resume(f->vec == 6 ? (long)f->rax : -(long)f->vec);
	uint64_t cr2;
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	kprintf("PROBE: FAIL crash: exception %lu err 0x%lx rip 0x%lx cr2 0x%lx\n", f->vec, f->err,
		f->rip, cr2);
	acpi_poweroff();
}

static uint32_t my_apic_id(void)
{
	uint32_t r[4];
	if (lapic_x2)
		return lapic_read(LAPIC_ID);
	cpuid(1, 0, r);
	return r[1] >> 24;
}

int lapic_init(void)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	if (!(r[3] & (1U << 9)))
		return -1;
	uint64_t base = rdmsr(0x1B);
	lapic_mmio = base & ~0xFFFULL;
	if (!phys_ok(lapic_mmio, 4096))
		return -1;
	if (r[2] & (1U << 21)) {
		wrmsr(0x1B, base | (1U << 11) | (1U << 10));
		lapic_x2 = 1;
	} else {
		wrmsr(0x1B, base | (1U << 11));
	}
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_SVR, 0x100 | VEC_SPURIOUS);
	return 0;
}

void ap_main(void)
{
	load_idt();
	if (lapic_x2)
		wrmsr(0x1B, rdmsr(0x1B) | (1U << 11) | (1U << 10));
	lapic_write(LAPIC_SVR, 0x100 | VEC_SPURIOUS);
	uint32_t id = my_apic_id();
	int k = __atomic_fetch_add(&ap_count, 1, __ATOMIC_SEQ_CST);
	if (k < MAX_CPUS)
		ap_ids[k] = id;
	for (;;)
		__asm__ volatile("cli; hlt");
}

static void send_ipi(uint32_t dest, uint32_t low)
{
	if (lapic_x2) {
		wrmsr(0x830, (uint64_t)dest << 32 | low);
		return;
	}
	lapic_write(LAPIC_ICR_HI, dest << 24);
	lapic_write(LAPIC_ICR, low);
	for (int i = 0; i < 100000 && (lapic_read(LAPIC_ICR) & (1U << 12)); i++)
		__asm__ volatile("pause");
}

static int smp_start(char *detail, size_t n);

/* Brings up every enabled MADT CPU but this one (once); returns how many failed to start. */
int smp_boot(char *detail, size_t n)
{
	static int done, result;
	static char first_detail[96];
	if (done) { /* APs are parked; INIT again would restart them */
		ksnprintf(detail, n, "%s", first_detail);
		return result;
	}
	done = 1;
	result = smp_start(first_detail, sizeof(first_detail));
	ksnprintf(detail, n, "%s", first_detail);
	return result;
}

static int smp_start(char *detail, size_t n)
{
	uint32_t self = my_apic_id();
	size_t len = (size_t)(ap_tramp_end - ap_tramp_start);
	memcpy((void *)TRAMP_BASE, ap_tramp_start, len);
	uint64_t cr3;
	__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
	*(volatile uint64_t *)(uintptr_t)(TRAMP_BASE + (ap_tramp_cr3 - ap_tramp_start)) = cr3;
	*(volatile uint64_t *)(uintptr_t)(TRAMP_BASE + (ap_tramp_entry - ap_tramp_start)) =
	    (uint64_t)(uintptr_t)ap_entry64;
	/* The trampoline hands out stacks upwards from here, 4 KiB each (lock xadd). */
	*(volatile uint64_t *)(uintptr_t)(TRAMP_BASE + (ap_tramp_stack - ap_tramp_start)) =
	    (uint64_t)(uintptr_t)(ap_stacks[1] + 4096);
	int failed = 0, started = 0;
	uint32_t bad = 0;
	for (int i = 0; i < acpi.ncpus; i++) {
		uint32_t id = acpi.cpu_apic[i];
		if (id == self)
			continue;
		if (started + 1 >= MAX_CPUS)
			break;
		int before = ap_count;
		send_ipi(id, 0x4500); /* INIT, assert */
		delay_us(10000);
		for (int s = 0; s < 2 && ap_count == before; s++) {
			send_ipi(id, 0x4600 | (TRAMP_BASE >> 12));	  /* STARTUP */
			uint64_t end = rdtsc() + tsc_hz / (s ? 5 : 1000); /* 1 ms, then 200 ms */
			while (ap_count == before && rdtsc() < end)
				__asm__ volatile("pause");
		}
		started++;
		if (ap_count == before) {
			failed++;
			bad = id;
		}
	}
	smp_online = 1 + ap_count;
	if (failed)
		ksnprintf(detail, n, "%d of %d APs did not start (e.g. APIC id %u)", failed,
			  started, bad);
	return failed;
}

int timer_test(char *detail, size_t n)
{
	timer_ticks = 0;
	lapic_write(LAPIC_TMR_DIV, 0x3);		    /* divide by 16 */
	lapic_write(LAPIC_LVT_TMR, VEC_TIMER | (1U << 17)); /* periodic */
	lapic_write(LAPIC_TMR_INIT, 200000);
	uint64_t t0 = rdtsc(), end = t0 + 2 * tsc_hz, t1 = t0;
	__asm__ volatile("sti");
	while (timer_ticks < 10 && (t1 = rdtsc()) < end)
		__asm__ volatile("pause");
	__asm__ volatile("cli");
	lapic_write(LAPIC_LVT_TMR, 1U << 16); /* masked */
	lapic_write(LAPIC_TMR_INIT, 0);
	uint64_t ticks = timer_ticks, us = (t1 - t0) / (tsc_hz / 1000000);
	if (ticks < 10) {
		ksnprintf(detail, n, "%lu periodic ticks in %lu ms (want 10)", ticks, us / 1000);
		return FAIL;
	}
	ksnprintf(detail, n, "10 periodic ticks in %lu us (period %lu us, %s mode)", us, us / 10,
		  lapic_x2 ? "x2APIC" : "xAPIC");
	return PASS;
}
