/* The probe guest's main: reads the test list from the command line, runs it, powers off. */
#include "probe.h"
#include "virtio.h"

static const struct {
	const char *name;
	test_fn fn;
} tests[] = {
    {"boot", test_boot},
    {"initrd", test_initrd},
    {"acpi", test_acpi},
    {"smp", test_smp},
    {"timer", test_timer},
    {"rtc", test_rtc},
    {"serial", test_serial},
    {"exitloop", test_exitloop},
    /* virtio (tests/guest/virtio_tests.c) */
    {"pci", test_pci},
    {"vblk", test_vblk},
    {"vblk_ro", test_vblk_ro},
    {"vrng", test_vrng},
    {"vhostile", test_vhostile},
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

void probe_main(int kind, uint64_t data)
{
	uint64_t main_tsc = rdtsc();
	serial_init();
	boot_collect(kind, data);
	boot_timer_mark();
	idt_init();
	acpi_scan();
	tsc_calibrate();
	lapic_init();

	size_t n;
	const char *list = cmdline_get("probe", &n);
	if (!list) {
		demo();
		acpi_poweroff();
	}
	uint64_t now = rdtsc(), mhz = tsc_hz / 1000000;
	kprintf("PROBE: start: %s, %lu us after the first instruction (%lu us to C)\n",
		boot_kind_name(), (now - entry_tsc) / mhz, (main_tsc - entry_tsc) / mhz);
	run_list(list, n);
	kprintf("PROBE: %d passed, %d failed\n", passed, failed);
	acpi_poweroff();
}
