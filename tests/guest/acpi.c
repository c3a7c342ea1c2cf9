/* ACPI: finds the RSDP, walks XSDT/RSDT, reads FADT/MADT/DSDT (\_S5) and powers off. */
#include "probe.h"

struct acpi_info acpi;

/* Byte sum of [a, a+n), eight bytes per step. */
static long user_sum8(long addr, long len)
{
	uint64_t a = (uint64_t)addr, n = (uint64_t)len;
	uint64_t total = 0, i = 0;
	while (i < n && (a + i) % 8)
		total += rd8(a + i++);
	while (n - i >= 8) {
		uint64_t lanes = 0; /* four 16-bit lanes, each < 2 * 255 per step */
		for (int k = 0; k < 120 && n - i >= 8; k++, i += 8) {
			uint64_t x = rd64(a + i);
			lanes += (x & 0x00FF00FF00FF00FFULL) + ((x >> 8) & 0x00FF00FF00FF00FFULL);
		}
		for (int k = 0; k < 4; k++)
			total += (lanes >> (16 * k)) & 0xFFFF;
	}
	while (i < n)
		total += rd8(a + i++);
	return (uint8_t)total;
}

/* Large tables are summed at CPL3 (native under PVM); small ones are not worth the trip. */
static uint8_t sum8(uint64_t a, uint64_t n)
{
	if (n < 512)
		return (uint8_t)user_sum8((long)a, (long)n);
	long r = user_call(user_sum8, (long)a, (long)n);
	return r < 0 ? 0xFF : (uint8_t)r;
}

static int rsdp_at(uint64_t a)
{
	return phys_ok(a, 36) && rd64(a) == 0x2052545020445352ULL /* "RSD PTR " */ &&
	       sum8(a, 20) == 0;
}

/* Runs at CPL3 (native speed under PVM, where CPL0 is emulated): the first RSDP in range. */
static long user_rsdp_scan(long from, long to)
{
	for (uint64_t a = (uint64_t)from; a < (uint64_t)to; a += 16)
		if (rd64(a) == 0x2052545020445352ULL /* "RSD PTR " */ && rsdp_at(a))
			return (long)a;
	return 0;
}

static uint64_t rsdp_scan(uint64_t from, uint64_t to)
{
	long r = user_call(user_rsdp_scan, (long)from, (long)to);
	return r > 0 ? (uint64_t)r : 0;
}

/* The boot protocol's hint, else the EBDA's first KiB, else the BIOS area (F segment first). */
static uint64_t rsdp_find(void)
{
	uint64_t r;
	if (boot.rsdp_hint && rsdp_at(boot.rsdp_hint))
		return boot.rsdp_hint;
	uint64_t ebda = (uint64_t)rd16(0x40E) << 4;
	if (ebda >= 0x80000 && ebda < 0xA0000 && (r = rsdp_scan(ebda, ebda + 1024)))
		return r;
	if ((r = rsdp_scan(0xF0000, 0x100000)))
		return r;
	return rsdp_scan(0xE0000, 0xF0000);
}

/* Records a table if its header is readable; returns its index or -1. */
static int add_table(uint64_t a)
{
	if (acpi.nt >= MAX_TABLES || !phys_ok(a, 36))
		return -1;
	uint32_t len = rd32(a + 4);
	struct acpi_table *t = &acpi.t[acpi.nt];
	t->addr = a;
	t->len = len;
	for (int i = 0; i < 4; i++)
		t->sig[i] = (char)rd8(a + i);
	t->sig[4] = 0;
	for (int i = 0; i < 6; i++) {
		char c = (char)rd8(a + 10 + i);
		t->oem[i] = c >= 32 && c < 127 ? c : '.';
	}
	t->oem[6] = 0;
	t->sum_ok = len >= 36 && len <= 0x100000 && phys_ok(a, len) && sum8(a, len) == 0;
	return acpi.nt++;
}

static void parse_madt(const uint8_t *m, uint32_t len)
{
	acpi.lapic_base = *(const uint32_t *)(m + 36);
	for (uint32_t off = 44; off + 2 <= len;) {
		uint8_t type = m[off], l = m[off + 1];
		if (l < 2 || off + l > len)
			break;
		const uint8_t *e = m + off;
		if (type == 0 && l >= 8 && (*(const uint32_t *)(e + 4) & 1)) {
			if (acpi.ncpus < MAX_CPUS)
				acpi.cpu_apic[acpi.ncpus++] = e[3];
		} else if (type == 9 && l >= 16 && (*(const uint32_t *)(e + 8) & 1)) {
			if (acpi.ncpus < MAX_CPUS)
				acpi.cpu_apic[acpi.ncpus++] = *(const uint32_t *)(e + 4);
		} else if (type == 1) {
			acpi.nioapic++;
		} else if (type == 2) {
			acpi.niso++;
		} else if (type == 5 && l >= 12) {
			acpi.lapic_base = *(const uint64_t *)(e + 4);
		}
		off += l;
	}
}

/* SLP_TYP of \_S5: NameOp "_S5_" PackageOp PkgLength NumElements then the first element. */
static void find_s5(const uint8_t *d, uint32_t len)
{
	for (uint32_t i = 36; i + 8 < len; i++) {
		if (d[i] != '_' || d[i + 1] != 'S' || d[i + 2] != '5' || d[i + 3] != '_' ||
		    d[i + 4] != 0x12)
			continue;
		uint32_t p = i + 5;
		p += 1 + (d[p] >> 6); /* PkgLength */
		p += 1;		      /* NumElements */
		if (p + 1 >= len)
			return;
		uint8_t op = d[p];
		if (op == 0x0A)
			acpi.s5_typ = d[p + 1];
		else if (op == 0x00 || op == 0x01)
			acpi.s5_typ = op;
		else if (op == 0xFF)
			acpi.s5_typ = 0xFF;
		else
			acpi.s5_typ = op; /* a bare byte, as some firmware writes it */
		acpi.s5_found = 1;
		return;
	}
}

static void parse_fadt(const uint8_t *f, uint32_t len)
{
	uint64_t dsdt = len >= 44 ? *(const uint32_t *)(f + 40) : 0;
	if (len >= 148 && *(const uint64_t *)(f + 140))
		dsdt = *(const uint64_t *)(f + 140);
	if (len >= 80)
		acpi.pm_tmr_port = (uint16_t) * (const uint32_t *)(f + 76);
	if (!acpi.pm_tmr_port && len >= 220 && f[208] == 1)
		acpi.pm_tmr_port = (uint16_t) * (const uint64_t *)(f + 212);
	if (len >= 116)
		acpi.pm_tmr_32 = (*(const uint32_t *)(f + 112) >> 8) & 1;
	if (dsdt) {
		int k = add_table(dsdt);
		if (k >= 0 && acpi.t[k].sum_ok && !memcmp(acpi.t[k].sig, "DSDT", 4)) {
			acpi.dsdt = (const uint8_t *)(uintptr_t)dsdt;
			acpi.dsdt_len = acpi.t[k].len;
			find_s5(acpi.dsdt, acpi.dsdt_len);
		}
	}
}

void acpi_scan(void)
{
	uint64_t r = rsdp_find();
	if (!r) {
		ksnprintf(acpi.err, sizeof(acpi.err), "no RSDP");
		return;
	}
	acpi.rsdp = r;
	acpi.rsdp_rev = rd8(r + 15);
	acpi.rsdp_ok = 1;
	acpi.rsdt = rd32(r + 16);
	if (acpi.rsdp_rev >= 2) {
		uint32_t l = rd32(r + 20);
		if (l < 36 || sum8(r, l > 36 ? 36 : l) != 0)
			acpi.rsdp_ok = 0;
		acpi.xsdt = rd64(r + 24);
	}
	uint64_t root = acpi.xsdt ? acpi.xsdt : acpi.rsdt;
	int esz = acpi.xsdt ? 8 : 4;
	int k = add_table(root);
	if (k < 0 || !acpi.t[k].sum_ok) {
		ksnprintf(acpi.err, sizeof(acpi.err), "root table at 0x%lx unreadable", root);
		return;
	}
	if (acpi.xsdt && acpi.rsdt)
		add_table(acpi.rsdt); /* checked too, not walked */
	uint32_t n = (acpi.t[k].len - 36) / (uint32_t)esz;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t a = esz == 8 ? rd64(root + 36 + 8 * i) : rd32(root + 36 + 4 * i);
		int j = add_table(a);
		if (j < 0 || !acpi.t[j].sum_ok)
			continue;
		const uint8_t *p = (const uint8_t *)(uintptr_t)a;
		if (!memcmp(acpi.t[j].sig, "FACP", 4) && !acpi.fadt) {
			acpi.fadt = p;
			acpi.fadt_len = acpi.t[j].len;
		} else if (!memcmp(acpi.t[j].sig, "APIC", 4) && !acpi.madt) {
			acpi.madt = p;
			acpi.madt_len = acpi.t[j].len;
		}
	}
	if (acpi.fadt)
		parse_fadt(acpi.fadt, acpi.fadt_len);
	if (acpi.madt && acpi.madt_len >= 44)
		parse_madt(acpi.madt, acpi.madt_len);
}

/* A write of `v` through a Generic Address Structure (I/O or memory space). */
static int gas_write(const uint8_t *g, uint32_t v)
{
	uint64_t addr = *(const uint64_t *)(g + 4);
	if (!addr)
		return -1;
	if (g[0] == 1) {
		outb((uint16_t)addr, (uint8_t)v);
		return 0;
	}
	if (g[0] == 0 && phys_ok(addr, 1)) {
		*(volatile uint8_t *)(uintptr_t)addr = (uint8_t)v;
		return 0;
	}
	return -1;
}

void acpi_poweroff(void)
{
	const uint8_t *f = acpi.fadt;
	uint8_t typ = acpi.s5_found ? acpi.s5_typ : LAYOUT_ACPI_S5_TYPE;
	if (f) {
		uint32_t flags = acpi.fadt_len >= 116 ? *(const uint32_t *)(f + 112) : 0;
		if ((flags & (1U << 20)) && acpi.fadt_len >= 256) {
			gas_write(f + 244, (uint32_t)((typ & 7) << 2) | (1U << 5));
		} else {
			uint32_t port = acpi.fadt_len >= 68 ? *(const uint32_t *)(f + 64) : 0;
			if (!port && acpi.fadt_len >= 184 && f[172] == 1)
				port = (uint32_t) * (const uint64_t *)(f + 176);
			if (port)
				outw((uint16_t)port, (uint16_t)(((typ & 7) << 10) | (1U << 13)));
		}
	}
	delay_us(200000);
	kprintf("PROBE: poweroff failed (%s); resetting\n", f ? "no effect" : "no FADT");
	outb(LAYOUT_PORT_RESET, 0x06);
	outb(0x64, 0xFE);
	for (;;)
		__asm__ volatile("cli; hlt");
}

/* The FADT's RESET_REG (if RESET_REG_SUP), else port 0xCF9. */
void acpi_reset(void)
{
	const uint8_t *f = acpi.fadt;
	kprintf("PROBE: resetting through the ACPI reset register\n");
	if (f && acpi.fadt_len >= 129 && (*(const uint32_t *)(f + 112) & (1U << 10)))
		gas_write(f + 116, f[128]);
	else
		outb(LAYOUT_PORT_RESET, 0x06);
}

const char *acpi_region_name(uint32_t type)
{
	switch (type) {
	case 1:
		return "ram";
	case 2:
		return "reserved";
	case 3:
		return "acpi";
	case 4:
		return "nvs";
	case 5:
		return "unusable";
	default:
		return "other";
	}
}
