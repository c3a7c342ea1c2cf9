/* Small runtime of the probe guest: memory and string helpers, COM1 output, printf, crc32, TSC. */
#include "probe.h"

#define COM1 LAYOUT_PORT_COM1

uint64_t tsc_hz = 1000000000ULL;
const char *tsc_source = "assumed 1 GHz";
static int uart_fifo;

void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *dp = d;
	const uint8_t *sp = s;
	while (n--)
		*dp++ = *sp++;
	return d;
}

void *memset(void *d, int c, size_t n)
{
	uint8_t *dp = d;
	while (n--)
		*dp++ = (uint8_t)c;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (a[i] != b[i])
			return (uint8_t)a[i] < (uint8_t)b[i] ? -1 : 1;
		if (!a[i])
			return 0;
	}
	return 0;
}

/* Guest-physical ranges we can touch: the identity map covers the first 4 GiB. */
int phys_ok(uint64_t addr, uint64_t len)
{
	return addr < 0x100000000ULL && len <= 0x100000000ULL - addr;
}

/* Input that arrived before serial_init (enabling the FIFO clears it), for test_serial. */
uint8_t serial_early[16];
size_t serial_early_len;

void serial_init(void)
{
	for (int i = 0; i < 64 && (inb(COM1 + 5) & 0x01); i++) {
		uint8_t c = inb(COM1);
		if (serial_early_len < sizeof(serial_early))
			serial_early[serial_early_len++] = c;
	}
	outb(COM1 + 1, 0x00); /* no interrupts */
	outb(COM1 + 3, 0x80); /* DLAB */
	outb(COM1 + 0, 0x01); /* 115200 */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03); /* 8N1 */
	outb(COM1 + 2, 0x07); /* FIFO on, cleared */
	outb(COM1 + 4, 0x03); /* DTR, RTS */
	uart_fifo = (inb(COM1 + 2) & 0xC0) == 0xC0;
}

/* With the FIFO on, one THRE wait makes room for 16 bytes; without it, for one. */
static int uart_slots;

static void serial_putc(char c)
{
	if (!uart_slots) {
		for (int spin = 0; spin < 100000 && !(inb(COM1 + 5) & 0x20); spin++)
			;
		uart_slots = uart_fifo ? 16 : 1;
	}
	outb(COM1, (uint8_t)c);
	uart_slots--;
}

void putstr(const char *s)
{
	for (; *s; s++) {
		if (*s == '\n')
			serial_putc('\r');
		serial_putc(*s);
	}
}

struct out {
	char *buf;
	size_t n, pos;
};

static void out_c(struct out *o, char c)
{
	if (o->pos + 1 < o->n)
		o->buf[o->pos] = c;
	o->pos++;
}

static void out_num(struct out *o, uint64_t v, int base, int width, char pad, int neg)
{
	char tmp[24];
	int k = 0;
	do {
		tmp[k++] = "0123456789abcdef"[v % (unsigned)base];
		v /= (unsigned)base;
	} while (v);
	if (neg)
		tmp[k++] = '-';
	while (width-- > k)
		out_c(o, pad);
	while (k)
		out_c(o, tmp[--k]);
}

void kvsnprintf(char *buf, size_t n, const char *fmt, va_list ap)
{
	struct out o = {buf, n, 0};
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			out_c(&o, *fmt);
			continue;
		}
		fmt++;
		char pad = ' ';
		int width = 0, lng = 0;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z') {
			lng = 1;
			fmt++;
		}
		switch (*fmt) {
		case 'd': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			out_num(&o, v < 0 ? (uint64_t)-v : (uint64_t)v, 10, width, pad, v < 0);
			break;
		}
		case 'u':
			out_num(&o, lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, width,
				pad, 0);
			break;
		case 'x':
			out_num(&o, lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, width,
				pad, 0);
			break;
		case 'c':
			out_c(&o, (char)va_arg(ap, int));
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			int len = (int)strlen(s);
			while (width-- > len)
				out_c(&o, ' ');
			while (*s)
				out_c(&o, *s++);
			break;
		}
		case '%':
			out_c(&o, '%');
			break;
		default:
			out_c(&o, '?');
			if (!*fmt)
				fmt--;
			break;
		}
	}
	if (n)
		buf[o.pos < n ? o.pos : n - 1] = 0;
}

void ksnprintf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kvsnprintf(buf, n, fmt, ap);
	va_end(ap);
}

void kprintf(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	kvsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	putstr(buf);
}

/* zlib's crc32 (reflected 0xEDB88320), table built on first use. */
static uint32_t crc_table[256];

uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
	if (!crc_table[1]) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xEDB88320U ^ (c >> 1) : c >> 1;
			crc_table[i] = c;
		}
	}
	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
	return ~crc;
}

uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

uint64_t tsc_ms(uint64_t cycles)
{
	return cycles / (tsc_hz / 1000);
}

void delay_us(uint64_t us)
{
	uint64_t end = rdtsc() + us * (tsc_hz / 1000000);
	while (rdtsc() < end)
		__asm__ volatile("pause");
}

/* KVM's pvclock page: the TSC-to-nanoseconds scale gives the TSC frequency exactly. */
static volatile struct {
	uint32_t version, pad0;
	uint64_t tsc_timestamp, system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags, pad[2];
} kvmclock __attribute__((aligned(64)));

static int kvmclock_hz(void)
{
	uint32_t r[4];
	cpuid(0x40000000, 0, r);
	if (r[1] != 0x4B4D564B || r[0] < 0x40000001) /* "KVMKVMKVM" */
		return 0;
	cpuid(0x40000001, 0, r);
	if (!(r[0] & (1U << 3))) /* KVM_FEATURE_CLOCKSOURCE2 */
		return 0;
	wrmsr(0x4B564D01, (uint64_t)(uintptr_t)&kvmclock | 1);
	uint32_t mul = kvmclock.tsc_to_system_mul;
	int shift = kvmclock.tsc_shift;
	wrmsr(0x4B564D01, 0);
	if (!mul)
		return 0;
	uint64_t hz = (1000000000ULL << 32) / mul;
	hz = shift >= 0 ? hz >> shift : hz << -shift;
	if (hz < 100000000ULL)
		return 0;
	tsc_hz = hz;
	tsc_source = "kvmclock";
	return 1;
}

/* The TSC rate from kvmclock, which needs no ACPI; returns 1 if known. */
int tsc_calibrate_early(void)
{
	return kvmclock_hz();
}

/* TSC frequency: kvmclock, else the ACPI PM timer if the FADT has one, else PIT channel 2. */
void tsc_calibrate(void)
{
	uint32_t r[4];
	if (tsc_source[0] == 'k' || kvmclock_hz())
		return;
	if (acpi.pm_tmr_port) {
		uint32_t mask = acpi.pm_tmr_32 ? 0xFFFFFFFFU : 0xFFFFFFU;
		uint32_t p0 = inl(acpi.pm_tmr_port) & mask, p;
		uint64_t t0 = rdtsc(), t;
		int guard = 0;
		do {
			p = inl(acpi.pm_tmr_port) & mask;
			t = rdtsc();
		} while (((p - p0) & mask) < 35795 &&
			 ++guard < 1000000); /* 10 ms at 3.579545 MHz */
		uint64_t ticks = (p - p0) & mask;
		if (ticks >= 35795 && ticks < 3579545) {
			tsc_hz = (t - t0) * 3579545ULL / ticks;
			tsc_source = "ACPI PM timer";
			return;
		}
	}
	uint8_t b = inb(0x61);
	if (b != 0xFF) {
		outb(0x61, (b & ~0x02) | 0x01); /* gate on, speaker off */
		outb(0x43, 0xB0);		/* channel 2, lo/hi, mode 0 */
		outb(0x42, 11932 & 0xFF);	/* 10 ms at 1.193182 MHz */
		outb(0x42, 11932 >> 8);
		uint64_t t0 = rdtsc();
		int guard = 0;
		while (!(inb(0x61) & 0x20) && ++guard < 1000000)
			;
		uint64_t t = rdtsc();
		outb(0x61, b);
		if (guard < 1000000 && guard > 0) {
			tsc_hz = (t - t0) * 100;
			tsc_source = "PIT";
			return;
		}
	}
	cpuid(0, 0, r);
	if (r[0] >= 0x15) {
		cpuid(0x15, 0, r);
		if (r[0] && r[1] && r[2]) {
			tsc_hz = (uint64_t)r[2] * r[1] / r[0];
			tsc_source = "CPUID 0x15";
			return;
		}
	}
}

int parse_u64(const char *s, size_t n, int base, uint64_t *out)
{
	uint64_t v = 0;
	if (base == 16 && n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		n -= 2;
	}
	if (!n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return -1;
		if (v > (UINT64_MAX - d) / (unsigned)base)
			return -1;
		v = v * (unsigned)base + d;
	}
	*out = v;
	return 0;
}

/* The value of "key=value" in the command line (the last one wins), or NULL. */
const char *cmdline_get(const char *key, size_t *vlen)
{
	const char *res = NULL;
	size_t klen = strlen(key);
	const char *p = boot.cmdline;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *tok = p;
		while (*p && *p != ' ')
			p++;
		size_t tlen = (size_t)(p - tok);
		if (tlen > klen && tok[klen] == '=' && !strncmp(tok, key, klen)) {
			res = tok + klen + 1;
			*vlen = tlen - klen - 1;
		}
	}
	return res;
}
