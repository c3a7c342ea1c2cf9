/* The probe guest's tests (boot data, initrd, ACPI, SMP, timer, RTC, serial input, exit loop). */
#include "probe.h"

static uint8_t user_stack[8192] __attribute__((section(".stacks"), aligned(16)));

/* Runs fn(a0, a1) at CPL3, natively under PVM; a fault there returns -vector. */
long user_call(long (*fn)(long, long), long a0, long a1)
{
	return enter_user(fn, user_stack + sizeof(user_stack), a0, a1);
}

static long user_crc32(long addr, long len)
{
	return crc32_update(0, (const uint8_t *)(uintptr_t)addr, (size_t)len);
}

static int opt_u64(const char *key, int base, uint64_t *v, int *bad)
{
	size_t n;
	const char *s = cmdline_get(key, &n);
	if (!s)
		return 0;
	if (parse_u64(s, n, base, v)) {
		*bad = 1;
		return 0;
	}
	return 1;
}

int test_boot(char *d, size_t n)
{
	int bad = 0;
	uint64_t want_mem = 0, want_len = 0;
	int has_mem = opt_u64("probe.mem", 10, &want_mem, &bad);
	int has_len = opt_u64("probe.cmdline_len", 10, &want_len, &bad);
	if (bad) {
		ksnprintf(d, n, "malformed probe.mem or probe.cmdline_len");
		return FAIL;
	}
	if (!boot.cmdline_found || !boot.cmdline_len) {
		ksnprintf(d, n, "no command line");
		return FAIL;
	}
	for (size_t i = 0; boot.cmdline[i]; i++) {
		char c = boot.cmdline[i];
		if ((c < 32 || c > 126) && c != '\t' && c != '\n') {
			ksnprintf(d, n, "command line byte %zu is 0x%x", i, (unsigned)(uint8_t)c);
			return FAIL;
		}
	}
	if (has_len && want_len != boot.cmdline_len) {
		ksnprintf(d, n, "command line is %zu bytes, host sent %lu", boot.cmdline_len,
			  want_len);
		return FAIL;
	}
	if (!boot.nmem) {
		ksnprintf(d, n, "no memory map");
		return FAIL;
	}
	uint64_t ram = boot_ram_total();
	/* Firmware keeps a little (the 640K-1M hole, its own tables); the map must cover the rest.
	 */
	if (has_mem && (ram > want_mem || ram + 4 * 1024 * 1024 < want_mem)) {
		ksnprintf(d, n, "memory map has %lu KiB of RAM, host gave %lu KiB", ram >> 10,
			  want_mem >> 10);
		return FAIL;
	}
	if (!acpi.rsdp) {
		ksnprintf(d, n, "no RSDP (hint 0x%lx, EBDA and BIOS area searched)",
			  boot.rsdp_hint);
		return FAIL;
	}
	/* probe.rsdp_hint=1: the boot data itself must give the RSDP's address (boot_params'
	 * acpi_rsdp_addr, hvm_start_info's rsdp_paddr), not only a scan of the BIOS area. */
	uint64_t want_hint = 0;
	opt_u64("probe.rsdp_hint", 10, &want_hint, &bad);
	if (want_hint && boot.rsdp_hint != acpi.rsdp) {
		ksnprintf(d, n, "boot data gives RSDP 0x%lx, the RSDP is at 0x%lx", boot.rsdp_hint,
			  acpi.rsdp);
		return FAIL;
	}
	ksnprintf(d, n, "%s, cmdline %zu bytes, RAM %lu KiB in %d ranges, RSDP at 0x%lx%s",
		  boot_kind_name(), boot.cmdline_len, ram >> 10, boot.nmem, acpi.rsdp,
		  boot.rsdp_hint == acpi.rsdp ? " (given by the boot data)" : "");
	return PASS;
}

int test_initrd(char *d, size_t n)
{
	int bad = 0;
	uint64_t want = 0;
	int has = opt_u64("probe.initrd_crc", 16, &want, &bad);
	if (bad) {
		ksnprintf(d, n, "malformed probe.initrd_crc");
		return FAIL;
	}
	if (!boot.initrd_addr || !boot.initrd_size) {
		ksnprintf(d, n, "no initrd");
		return FAIL;
	}
	if (!phys_ok(boot.initrd_addr, boot.initrd_size)) {
		ksnprintf(d, n, "initrd at 0x%lx+0x%lx is outside the first 4 GiB",
			  boot.initrd_addr, boot.initrd_size);
		return FAIL;
	}
	/* At CPL3: native speed under PVM, where CPL0 is emulated. */
	long r = user_call(user_crc32, (long)boot.initrd_addr, (long)boot.initrd_size);
	if (r < 0) {
		ksnprintf(d, n, "exception %ld reading the initrd", -r);
		return FAIL;
	}
	uint32_t crc = (uint32_t)r;
	if (has && crc != want) {
		ksnprintf(d, n, "crc32 %08x, host said %08lx (%lu bytes at 0x%lx)", crc, want,
			  boot.initrd_size, boot.initrd_addr);
		return FAIL;
	}
	ksnprintf(d, n, "%lu bytes at 0x%lx, crc32 %08x%s", boot.initrd_size, boot.initrd_addr, crc,
		  has ? " matches" : " (no probe.initrd_crc to compare)");
	return PASS;
}

int test_acpi(char *d, size_t n)
{
	if (!acpi.rsdp) {
		ksnprintf(d, n, "%s", acpi.err[0] ? acpi.err : "no RSDP");
		return FAIL;
	}
	if (!acpi.rsdp_ok) {
		ksnprintf(d, n, "RSDP extended checksum wrong");
		return FAIL;
	}
	if (acpi.err[0]) {
		ksnprintf(d, n, "%s", acpi.err);
		return FAIL;
	}
	for (int i = 0; i < acpi.nt; i++) {
		if (!acpi.t[i].sum_ok) {
			ksnprintf(d, n, "table '%s' at 0x%lx (length %u): bad checksum or length",
				  acpi.t[i].sig, acpi.t[i].addr, acpi.t[i].len);
			return FAIL;
		}
	}
	if (!acpi.fadt || !acpi.madt || !acpi.dsdt) {
		ksnprintf(d, n, "missing%s%s%s", acpi.fadt ? "" : " FADT", acpi.madt ? "" : " MADT",
			  acpi.dsdt ? "" : " DSDT");
		return FAIL;
	}
	if (!acpi.ncpus) {
		ksnprintf(d, n, "MADT lists no enabled CPU");
		return FAIL;
	}
	if (!acpi.nioapic) {
		ksnprintf(d, n, "MADT lists no IOAPIC");
		return FAIL;
	}
	if (!acpi.s5_found) {
		ksnprintf(d, n, "DSDT has no \\_S5 package");
		return FAIL;
	}
	char sigs[80] = "";
	size_t p = 0;
	for (int i = 0; i < acpi.nt && p + 6 < sizeof(sigs); i++) {
		memcpy(sigs + p, acpi.t[i].sig, 4);
		sigs[p + 4] = ' ';
		p += 5;
	}
	if (p)
		sigs[p - 1] = 0;
	ksnprintf(
	    d, n,
	    "RSDP rev %d, %d tables (%s), MADT: %d CPUs, %d IOAPICs, %d overrides, S5 type %u",
	    acpi.rsdp_rev, acpi.nt, sigs, acpi.ncpus, acpi.nioapic, acpi.niso, acpi.s5_typ);
	return PASS;
}

int test_smp(char *d, size_t n)
{
	int bad = 0;
	uint64_t want = 0;
	int has = opt_u64("probe.cpus", 10, &want, &bad);
	if (bad) {
		ksnprintf(d, n, "malformed probe.cpus");
		return FAIL;
	}
	if (!acpi.ncpus) {
		ksnprintf(d, n, "no CPUs in the MADT");
		return FAIL;
	}
	uint64_t t0 = rdtsc();
	if (smp_boot(d, n))
		return FAIL;
	uint64_t us = (rdtsc() - t0) / (tsc_hz / 1000000);
	if (has && (want != (uint64_t)acpi.ncpus || want != (uint64_t)smp_online)) {
		ksnprintf(d, n, "host asked for %lu CPUs; MADT has %d, %d online", want, acpi.ncpus,
			  smp_online);
		return FAIL;
	}
	ksnprintf(d, n, "%d of %d CPUs online (INIT-SIPI-SIPI, %s) in %lu us", smp_online,
		  acpi.ncpus, lapic_x2 ? "x2APIC" : "xAPIC", us);
	return PASS;
}

int test_timer(char *d, size_t n)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	if (!(r[3] & (1U << 9))) {
		ksnprintf(d, n, "CPUID reports no local APIC");
		return FAIL;
	}
	return timer_test(d, n);
}

static uint8_t cmos(uint8_t reg)
{
	outb(LAYOUT_PORT_RTC, reg);
	return inb(LAYOUT_PORT_RTC + 1);
}

struct rtc_time {
	unsigned sec, min, hour, day, mon, year;
	int bcd;
};

static int bcd_ok(uint8_t v)
{
	return (v & 0xF) < 10 && (v >> 4) < 10;
}

static unsigned from_bcd(uint8_t v)
{
	return (v & 0xF) + 10u * (v >> 4);
}

/* Reads the RTC twice (outside update cycles) until two reads agree. Returns 0 or -1. */
static int rtc_read(struct rtc_time *t, char *d, size_t n)
{
	uint8_t r[7], prev[7];
	int same = 0;
	for (int tries = 0; tries < 10 && !same; tries++) {
		for (int i = 0; i < 100000 && (cmos(0x0A) & 0x80); i++)
			;
		const uint8_t regs[7] = {0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32};
		for (int i = 0; i < 7; i++)
			r[i] = cmos(regs[i]);
		same = tries > 0 && !memcmp(r, prev, sizeof(r));
		memcpy(prev, r, sizeof(r));
	}
	if (!same) {
		ksnprintf(d, n, "RTC never read the same twice");
		return -1;
	}
	uint8_t b = cmos(0x0B);
	int pm = 0;
	t->bcd = !(b & 0x04);
	if (!(b & 0x02)) { /* 12-hour clock */
		pm = r[2] & 0x80;
		r[2] &= 0x7F;
	}
	if (t->bcd) {
		for (int i = 0; i < 7; i++) {
			if (!bcd_ok(r[i]) && !(i == 6 && (r[6] == 0 || r[6] == 0xFF))) {
				ksnprintf(d, n, "register %d is 0x%02x, not BCD", i, r[i]);
				return -1;
			}
		}
		for (int i = 0; i < 6; i++)
			r[i] = (uint8_t)from_bcd(r[i]);
		r[6] = bcd_ok(r[6]) ? (uint8_t)from_bcd(r[6]) : 0;
	}
	if (!(b & 0x02)) {
		if (r[2] == 12)
			r[2] = 0;
		if (pm)
			r[2] += 12;
	}
	t->sec = r[0];
	t->min = r[1];
	t->hour = r[2];
	t->day = r[3];
	t->mon = r[4];
	unsigned century = r[6] >= 19 && r[6] <= 21 ? r[6] : 20;
	t->year = century * 100 + r[5];
	return 0;
}

int test_rtc(char *d, size_t n)
{
	struct rtc_time t;
	if (rtc_read(&t, d, n))
		return FAIL;
	static const uint8_t mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int ok = t.year >= 2024 && t.year <= 2100 && t.mon >= 1 && t.mon <= 12 && t.day >= 1 &&
		 t.day <= mdays[t.mon - 1 < 12 ? t.mon - 1 : 0] && t.hour < 24 && t.min < 60 &&
		 t.sec < 60;
	ksnprintf(d, n, "%04u-%02u-%02u %02u:%02u:%02u (%s)", t.year, t.mon, t.day, t.hour, t.min,
		  t.sec, t.bcd ? "BCD" : "binary");
	if (!ok) {
		char tmp[64];
		ksnprintf(tmp, sizeof(tmp), "implausible date %s", d);
		ksnprintf(d, n, "%s", tmp);
		return FAIL;
	}
	return PASS;
}

int test_serial(char *d, size_t n)
{
	size_t len;
	const char *want = cmdline_get("probe.serial_in", &len);
	if (!want || !len) {
		ksnprintf(d, n, "no probe.serial_in= on the command line");
		return SKIP;
	}
	char got[64];
	size_t k = 0, cap = len < sizeof(got) ? len : sizeof(got);
	for (size_t i = 0; i < serial_early_len && k < cap; i++)
		got[k++] = (char)serial_early[i];
	/* Hosts may wait for this line before typing (firmware such as SeaBIOS reads COM1 too). */
	kprintf("PROBE: waiting for %zu bytes of serial input\n", cap - k);
	uint64_t end = rdtsc() + 5 * tsc_hz;
	while (k < cap && rdtsc() < end) {
		if (inb(LAYOUT_PORT_COM1 + 5) & 0x01)
			got[k++] = (char)inb(LAYOUT_PORT_COM1);
	}
	if (k < cap) {
		ksnprintf(d, n, "got %zu of %zu bytes in 5 s", k, cap);
		return FAIL;
	}
	if (memcmp(got, want, cap)) {
		got[k < sizeof(got) ? k : sizeof(got) - 1] = 0;
		for (size_t i = 0; i < k && i < sizeof(got); i++)
			if (got[i] < 32 || got[i] > 126)
				got[i] = '.';
		char exp[sizeof(got)];
		memcpy(exp, want, cap);
		exp[cap < sizeof(exp) ? cap : sizeof(exp) - 1] = 0;
		ksnprintf(d, n, "read '%s', expected '%s'", got, exp);
		return FAIL;
	}
	ksnprintf(d, n, "read %zu bytes as expected", cap);
	return PASS;
}

/* probe.loops outb to probe.port, timed; at CPL3 (native under PVM) or at CPL0 (emulated). */
static int exitloop(char *d, size_t n, int cpl)
{
	int bad = 0;
	uint64_t loops = 10000, port = 0x80;
	opt_u64("probe.loops", 10, &loops, &bad);
	opt_u64("probe.port", 16, &port, &bad);
	if (bad || port > 0xFFFF || loops > (1ULL << 40)) {
		ksnprintf(d, n, "malformed probe.loops or probe.port");
		return FAIL;
	}
	long cycles = cpl ? user_call(user_exitloop, (long)loops, (long)port)
			  : user_exitloop((long)loops, (long)port);
	if (cycles < 0) {
		ksnprintf(d, n, "exception %ld at CPL3 (port I/O not allowed at CPL3?)", -cycles);
		return FAIL;
	}
	uint64_t us = (uint64_t)cycles / (tsc_hz / 1000000);
	uint64_t rate = us ? loops * 1000000 / us : 0;
	uint64_t ns_each = loops ? us * 1000 / loops : 0;
	ksnprintf(d, n,
		  "%lu exits in %lu us from CPL%d (port 0x%lx): %lu exits/s, %lu ns each, TSC %lu "
		  "MHz (%s)",
		  loops, us, cpl, port, rate, ns_each, tsc_hz / 1000000, tsc_source);
	return PASS;
}

int test_exitloop(char *d, size_t n)
{
	return exitloop(d, n, 3);
}

int test_exitloop0(char *d, size_t n)
{
	return exitloop(d, n, 0);
}

/* Prints an EISA id (ACPI compressed form) such as PNP0501. */
static void eisa_name(uint32_t v, char out[8])
{
	uint16_t a = (uint16_t)((v & 0xFF) << 8 | ((v >> 8) & 0xFF));
	uint16_t b = (uint16_t)(((v >> 16) & 0xFF) << 8 | ((v >> 24) & 0xFF));
	out[0] = (char)('@' + ((a >> 10) & 0x1F));
	out[1] = (char)('@' + ((a >> 5) & 0x1F));
	out[2] = (char)('@' + (a & 0x1F));
	for (int i = 0; i < 4; i++)
		out[3 + i] = "0123456789ABCDEF"[(b >> (12 - 4 * i)) & 0xF];
	out[7] = 0;
}

static void demo_acpi_devices(void)
{
	if (!acpi.dsdt)
		return;
	kprintf("  DSDT devices (_HID):");
	int k = 0, repeats = 0;
	char last[10] = "";
	for (uint32_t i = 36; i + 9 < acpi.dsdt_len && k < 24; i++) {
		const uint8_t *p = acpi.dsdt + i;
		if (memcmp(p, "_HID", 4))
			continue;
		char name[10] = "";
		if (p[4] == 0x0C) {
			eisa_name(*(const uint32_t *)(p + 5), name);
		} else if (p[4] == 0x0D) {
			size_t j = 0;
			while (j < 9 && i + 5 + j < acpi.dsdt_len && p[5 + j] >= 32 &&
			       p[5 + j] < 127) {
				name[j] = (char)p[5 + j];
				j++;
			}
			name[j] = 0;
		} else {
			continue;
		}
		if (!strncmp(name, last, sizeof(last))) {
			repeats++;
			continue;
		}
		if (repeats)
			kprintf(" (x%d)", repeats + 1);
		repeats = 0;
		memcpy(last, name, sizeof(last));
		kprintf(" %s", name);
		k++;
	}
	if (repeats)
		kprintf(" (x%d)", repeats + 1);
	kprintf("%s\n", k ? "" : " none");
}

static uint32_t pci_read(unsigned bus, unsigned dev, unsigned fn, unsigned off)
{
	outl(0xCF8, 0x80000000U | bus << 16 | dev << 11 | fn << 8 | (off & 0xFC));
	return inl(0xCFC);
}

static void demo_pci(void)
{
	outl(0xCF8, 0x80000000U);
	if (inl(0xCF8) != 0x80000000U) {
		kprintf("  PCI: no configuration mechanism at 0xCF8\n");
		return;
	}
	int found = 0;
	for (unsigned dev = 0; dev < 32; dev++) {
		for (unsigned fn = 0; fn < 8; fn++) {
			uint32_t id = pci_read(0, dev, fn, 0);
			if ((id & 0xFFFF) == 0xFFFF) {
				if (!fn)
					break;
				continue;
			}
			uint32_t cls = pci_read(0, dev, fn, 8);
			kprintf("  PCI 00:%02x.%u %04x:%04x class %04x\n", dev, fn, id & 0xFFFF,
				id >> 16, cls >> 16);
			found++;
			if (!fn && !(pci_read(0, dev, 0, 0xC) & 0x800000))
				break;
		}
	}
	if (!found)
		kprintf("  PCI: bus 0 is empty\n");
}

void demo(void)
{
	kprintf("\nCove probe guest: demo mode (boot with probe=all to run the tests)\n");
	kprintf("boot: %s, command line \"%s\"\n", boot_kind_name(), boot.cmdline);
	kprintf("memory: %lu MiB of RAM in %d ranges\n", boot_ram_total() >> 20, boot.nmem);
	for (int i = 0; i < boot.nmem; i++)
		kprintf("  %016lx-%016lx %s\n", boot.mem[i].addr,
			boot.mem[i].addr + boot.mem[i].len - 1, acpi_region_name(boot.mem[i].type));
	if (boot.initrd_size)
		kprintf("initrd: %lu bytes at 0x%lx\n", boot.initrd_size, boot.initrd_addr);
	if (acpi.rsdp) {
		kprintf("ACPI: RSDP rev %d at 0x%lx, %d tables\n", acpi.rsdp_rev, acpi.rsdp,
			acpi.nt);
		for (int i = 0; i < acpi.nt; i++)
			kprintf("  %s %s %6u bytes at 0x%lx%s\n", acpi.t[i].sig, acpi.t[i].oem,
				acpi.t[i].len, acpi.t[i].addr,
				acpi.t[i].sum_ok ? "" : " (bad checksum)");
	} else {
		kprintf("ACPI: %s\n", acpi.err);
	}
	char detail[96] = "";
	if (acpi.ncpus)
		smp_boot(detail, sizeof(detail));
	kprintf("CPUs: %d in the MADT, %d online (%s)%s%s\n", acpi.ncpus, smp_online,
		lapic_x2 ? "x2APIC" : "xAPIC", detail[0] ? ": " : "", detail);
	kprintf("TSC: %lu MHz (%s)\n", tsc_hz / 1000000, tsc_source);
	kprintf("devices:\n");
	outb(LAYOUT_PORT_COM1 + 7, 0x5A); /* scratch register: a 16450/16550 keeps it */
	kprintf("  COM1 at 0x3f8: %s\n",
		inb(LAYOUT_PORT_COM1 + 7) == 0x5A ? "16550" : "no scratch register");
	struct rtc_time t;
	char err[64];
	if (!rtc_read(&t, err, sizeof(err)))
		kprintf("  RTC: %04u-%02u-%02u %02u:%02u:%02u UTC\n", t.year, t.mon, t.day, t.hour,
			t.min, t.sec);
	else
		kprintf("  RTC: %s\n", err);
	kprintf("  i8042: %s\n", inb(0x64) == 0xFF ? "absent" : "present");
	if (acpi.pm_tmr_port)
		kprintf("  ACPI PM timer at port 0x%x\n", acpi.pm_tmr_port);
	demo_acpi_devices();
	demo_pci();
	kprintf("PROBE: demo done, powering off\n");
}
