/* The probe guest's main: reads the test list from the command line, runs it, powers off. */
#include "probe.h"

static const struct {
	const char *name;
	test_fn fn;
} tests[] = {
    {"boot", test_boot},     {"initrd", test_initrd},	  {"acpi", test_acpi},
    {"smp", test_smp},	     {"timer", test_timer},	  {"rtc", test_rtc},
    {"serial", test_serial}, {"exitloop", test_exitloop}, {"exitloop0", test_exitloop0},
};

#define NTESTS (sizeof(tests) / sizeof(tests[0]))

/* Tests that need nothing from the host but the machine itself. */
static const char all_tests[] = "boot,acpi,smp,timer,rtc";

static int passed, failed;

static void run_one(const char *name, size_t len)
{
	char detail[160] = "";
	char nm[24];
	if (len >= sizeof(nm))
		len = sizeof(nm) - 1;
	memcpy(nm, name, len);
	nm[len] = 0;
	if (!strncmp(nm, "poweroff", 9))
		return; /* implicit: the run ends with it and the host sees the exit */
	for (size_t i = 0; i < NTESTS; i++) {
		if (strlen(tests[i].name) != len || strncmp(tests[i].name, nm, len))
			continue;
		int r = tests[i].fn(detail, sizeof(detail));
		if (r == PASS) {
			passed++;
			kprintf("PROBE: ok %s%s%s\n", nm, detail[0] ? ": " : "", detail);
		} else if (r == SKIP) {
			kprintf("PROBE: SKIP %s: %s\n", nm, detail);
		} else {
			failed++;
			kprintf("PROBE: FAIL %s: %s\n", nm, detail[0] ? detail : "failed");
		}
		return;
	}
	failed++;
	kprintf("PROBE: FAIL %s: unknown test\n", nm);
}

static void run_list(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t j = i;
		while (j < n && p[j] != ',')
			j++;
		if (j - i == 3 && !strncmp(p + i, "all", 3))
			run_list(all_tests, sizeof(all_tests) - 1);
		else if (j > i)
			run_one(p + i, j - i);
		i = j + 1;
	}
}

/* Firecracker's boot-time marker: one byte to the first page of the 32-bit MMIO window. */
static void boot_timer_mark(void)
{
	for (int i = 0; i < boot.nmem; i++) {
		struct mem_range *m = &boot.mem[i];
		if (m->type == 1 && m->addr <= LAYOUT_BOOT_TIMER &&
		    LAYOUT_BOOT_TIMER - m->addr < m->len)
			return;
	}
	*(volatile uint8_t *)(uintptr_t)LAYOUT_BOOT_TIMER = 123;
}

extern uint64_t entry_tsc;

/* How the run ends (probe.exit=): ACPI poweroff by default; resets and a hang test the VMM. */
static void finish(void)
{
	size_t n;
	const char *how = cmdline_get("probe.exit", &n);
	if (!how || (n == 8 && !strncmp(how, "poweroff", 8)))
		acpi_poweroff();
	if (n == 4 && !strncmp(how, "halt", 4)) {
		kprintf("PROBE: halting\n");
		for (;;)
			__asm__ volatile("cli; hlt");
	}
	if (n == 10 && !strncmp(how, "reset-acpi", 10))
		acpi_reset();
	if (n == 11 && !strncmp(how, "reset-i8042", 11)) {
		kprintf("PROBE: resetting through the i8042\n");
		outb(0x64, 0xFE);
	}
	if (n == 9 && !strncmp(how, "reset-cf9", 9)) {
		kprintf("PROBE: resetting through port 0xcf9\n");
		outb(LAYOUT_PORT_RESET, 0x06);
	}
	if (n == 11 && !strncmp(how, "triplefault", 11)) {
		kprintf("PROBE: triple fault\n");
		struct {
			uint16_t lim;
			uint64_t base;
		} __attribute__((packed)) empty = {0, 0};
		__asm__ volatile("lidt %0; ud2" : : "m"(empty));
	}
	delay_us(200000);
	kprintf("PROBE: probe.exit had no effect; powering off\n");
	acpi_poweroff();
}

void probe_main(int kind, uint64_t data)
{
	uint64_t main_tsc = rdtsc();
	serial_init();
	boot_collect(kind, data);
	boot_timer_mark();
	/* The first line as early as possible (a VMM's startup benchmark waits for it). */
	if (tsc_calibrate_early()) {
		uint64_t now = rdtsc(), mhz = tsc_hz / 1000000;
		kprintf("PROBE: start: %s, %lu us after the first instruction (%lu us to C)\n",
			boot_kind_name(), (now - entry_tsc) / mhz, (main_tsc - entry_tsc) / mhz);
	} else {
		kprintf("PROBE: start: %s, %lu TSC cycles after the first instruction\n",
			boot_kind_name(), rdtsc() - entry_tsc);
	}
	idt_init();
	acpi_scan();
	tsc_calibrate();
	lapic_init();

	size_t n;
	const char *list = cmdline_get("probe", &n);
	if (!list) {
		demo();
		finish();
	}
	run_list(list, n);
	kprintf("PROBE: %d passed, %d failed\n", passed, failed);
	finish();
}
