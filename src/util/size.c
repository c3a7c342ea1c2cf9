/* Parsing and printing of human-readable sizes. */
#include "util/size.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int unit_shift(char c)
{
	switch (toupper((unsigned char)c)) {
	case 'K':
		return 10;
	case 'M':
		return 20;
	case 'G':
		return 30;
	case 'T':
		return 40;
	case 'P':
		return 50;
	case 'E':
		return 60;
	default:
		return -1;
	}
}

int size_parse(const char *text, uint64_t default_unit, uint64_t *out)
{
	const char *p = text;
	uint64_t whole = 0;
	uint64_t frac_num = 0, frac_den = 1;

	if (!p || !isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		if (whole > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		whole = whole * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		for (; isdigit((unsigned char)*p); p++) {
			if (frac_den < 1000000000ULL) {
				frac_num = frac_num * 10 + (uint64_t)(*p - '0');
				frac_den *= 10;
			}
		}
	}

	uint64_t unit = default_unit;
	if (*p) {
		int shift = unit_shift(*p);
		if (shift < 0) {
			if (toupper((unsigned char)*p) == 'B' && p[1] == '\0') {
				unit = 1;
				p++;
			} else {
				return -EINVAL;
			}
		} else {
			unit = 1ULL << shift;
			p++;
			if (*p == 'i' || *p == 'I')
				p++;
			if (*p == 'B' || *p == 'b')
				p++;
		}
		if (*p)
			return -EINVAL;
	}

	if (unit && whole > UINT64_MAX / unit)
		return -ERANGE;
	uint64_t value = whole * unit;
	/* frac_num < frac_den <= 1e9, and unit <= 2^60: split to avoid overflow. */
	uint64_t frac = (unit / frac_den) * frac_num + (unit % frac_den) * frac_num / frac_den;
	if (value > UINT64_MAX - frac)
		return -ERANGE;
	if (frac_num && unit == 1)
		return -EINVAL; /* fractional bytes */
	*out = value + frac;
	return 0;
}

void size_format(uint64_t bytes, char *buf, unsigned long buflen)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	unsigned i = 0;
	uint64_t scaled = bytes;
	while (scaled >= 1024 && i < 6) {
		scaled /= 1024;
		i++;
	}
	if (i == 0) {
		snprintf(buf, buflen, "%llu B", (unsigned long long)bytes);
		return;
	}
	uint64_t base = 1ULL << (10 * i);
	if (bytes % base == 0)
		snprintf(buf, buflen, "%llu %s", (unsigned long long)(bytes / base), units[i]);
	else
		snprintf(buf, buflen, "%.1f %s", (double)bytes / (double)base, units[i]);
}
