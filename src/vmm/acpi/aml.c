/* AML emitter (scopes, devices, names, packages, resource templates) and a checking reader. */
#include "vmm/acpi/aml.h"

#include <errno.h>
#include <string.h>

enum {
	OP_ZERO = 0x00,
	OP_ONE = 0x01,
	OP_NAME = 0x08,
	OP_BYTE = 0x0A,
	OP_WORD = 0x0B,
	OP_DWORD = 0x0C,
	OP_STRING = 0x0D,
	OP_QWORD = 0x0E,
	OP_SCOPE = 0x10,
	OP_BUFFER = 0x11,
	OP_PACKAGE = 0x12,
	OP_METHOD = 0x14,
	OP_DUAL_NAME = 0x2E,
	OP_MULTI_NAME = 0x2F,
	OP_EXT = 0x5B,
	OP_EXT_DEVICE = 0x82,
	OP_ROOT = 0x5C,
	OP_PARENT = 0x5E,
	OP_ONES = 0xFF,
};

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
	memset(a, 0, sizeof(*a));
	a->buf = buf;
	a->cap = cap;
}

long aml_finish(struct aml *a)
{
	if (!a->err && a->depth)
		a->err = -EINVAL;
	return a->err ? a->err : (long)a->len;
}

void aml_raw(struct aml *a, const void *p, size_t n)
{
	if (a->err)
		return;
	if (n > a->cap - a->len) {
		a->err = -ENOSPC;
		return;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

static void byte(struct aml *a, uint8_t b)
{
	aml_raw(a, &b, 1);
}

static bool seg_char(char c, bool first)
{
	return (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

/* Splits path into prefix chars and padded 4-byte segments. Returns segments or -1. */
static int parse_path(const char *path, char *prefix, size_t *nprefix, char segs[][4], int max_segs)
{
	size_t np = 0;
	if (*path == '\\')
		prefix[np++] = *path++;
	else
		while (*path == '^' && np < AML_MAX_DEPTH)
			prefix[np++] = *path++;
	*nprefix = np;
	int n = 0;
	while (*path) {
		if (n == max_segs)
			return -1;
		int k = 0;
		while (*path && *path != '.') {
			if (k == 4 || !seg_char(*path, k == 0))
				return -1;
			segs[n][k++] = *path++;
		}
		if (k == 0)
			return -1;
		while (k < 4)
			segs[n][k++] = '_';
		n++;
		if (*path == '.' && !*++path)
			return -1;
	}
	return n;
}

static void namestring(struct aml *a, const char *path)
{
	char prefix[AML_MAX_DEPTH], segs[AML_MAX_DEPTH][4];
	size_t np;
	int n = parse_path(path, prefix, &np, segs, AML_MAX_DEPTH);
	if (n < 0 || (n == 0 && np == 0)) {
		if (!a->err)
			a->err = -EINVAL;
		return;
	}
	aml_raw(a, prefix, np);
	if (n == 0) {
		byte(a, 0x00); /* NullName */
		return;
	}
	if (n == 2)
		byte(a, OP_DUAL_NAME);
	else if (n > 2) {
		byte(a, OP_MULTI_NAME);
		byte(a, (uint8_t)n);
	}
	for (int i = 0; i < n; i++)
		aml_raw(a, segs[i], 4);
}

static void open_pkg(struct aml *a, bool buffer)
{
	if (a->err)
		return;
	if (a->depth == AML_MAX_DEPTH) {
		a->err = -EINVAL;
		return;
	}
	a->open[a->depth].start = a->len;
	a->open[a->depth].buffer = buffer;
	a->depth++;
}

/* Inserts n bytes at pos (moving what follows). */
static void insert(struct aml *a, size_t pos, const uint8_t *p, size_t n)
{
	if (a->err)
		return;
	if (n > a->cap - a->len) {
		a->err = -ENOSPC;
		return;
	}
	memmove(a->buf + pos + n, a->buf + pos, a->len - pos);
	memcpy(a->buf + pos, p, n);
	a->len += n;
}

static size_t int_encode(uint64_t v, uint8_t *out)
{
	size_t n;
	if (v == 0) {
		out[0] = OP_ZERO;
		return 1;
	}
	if (v == 1) {
		out[0] = OP_ONE;
		return 1;
	}
	if (v <= 0xFF) {
		out[0] = OP_BYTE;
		n = 1;
	} else if (v <= 0xFFFF) {
		out[0] = OP_WORD;
		n = 2;
	} else if (v <= 0xFFFFFFFF) {
		out[0] = OP_DWORD;
		n = 4;
	} else {
		out[0] = OP_QWORD;
		n = 8;
	}
	for (size_t i = 0; i < n; i++)
		out[1 + i] = (uint8_t)(v >> (8 * i));
	return 1 + n;
}

void aml_close(struct aml *a)
{
	if (a->err)
		return;
	if (a->depth == 0) {
		a->err = -EINVAL;
		return;
	}
	a->depth--;
	size_t start = a->open[a->depth].start;
	if (a->open[a->depth].buffer) {
		uint8_t size[9];
		size_t n = int_encode(a->len - start, size);
		insert(a, start, size, n);
	}
	size_t body = a->len - start;
	uint8_t pk[4];
	size_t n;
	if (body + 1 <= 63) {
		pk[0] = (uint8_t)(body + 1);
		n = 1;
	} else {
		n = body + 2 < (1u << 12) ? 2 : body + 3 < (1u << 20) ? 3 : 4;
		size_t total = body + n;
		if (total >= (1u << 28)) {
			a->err = -ENOSPC;
			return;
		}
		pk[0] = (uint8_t)((n - 1) << 6 | (total & 0x0F));
		for (size_t i = 1; i < n; i++)
			pk[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	insert(a, start, pk, n);
}

void aml_scope_open(struct aml *a, const char *path)
{
	byte(a, OP_SCOPE);
	open_pkg(a, false);
	namestring(a, path);
}

void aml_device_open(struct aml *a, const char *path)
{
	byte(a, OP_EXT);
	byte(a, OP_EXT_DEVICE);
	open_pkg(a, false);
	namestring(a, path);
}

void aml_package_open(struct aml *a, uint8_t count)
{
	byte(a, OP_PACKAGE);
	open_pkg(a, false);
	byte(a, count);
}

void aml_buffer_open(struct aml *a)
{
	byte(a, OP_BUFFER);
	open_pkg(a, true);
}

void aml_name(struct aml *a, const char *path)
{
	byte(a, OP_NAME);
	namestring(a, path);
}

void aml_int(struct aml *a, uint64_t v)
{
	uint8_t b[9];
	aml_raw(a, b, int_encode(v, b));
}

void aml_string(struct aml *a, const char *s)
{
	byte(a, OP_STRING);
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p > 0x7F) {
			if (!a->err)
				a->err = -EINVAL;
			return;
		}
	}
	aml_raw(a, s, strlen(s) + 1);
}

void aml_eisaid(struct aml *a, const char *id)
{
	static const char hex[] = "0123456789ABCDEF";
	if (strlen(id) != 7) {
		if (!a->err)
			a->err = -EINVAL;
		return;
	}
	uint32_t v = 0;
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z') {
			if (!a->err)
				a->err = -EINVAL;
			return;
		}
		v = v << 5 | (uint32_t)(id[i] - '@');
	}
	for (int i = 3; i < 7; i++) {
		const char *h = id[i] ? strchr(hex, id[i]) : NULL;
		if (!h) {
			if (!a->err)
				a->err = -EINVAL;
			return;
		}
		v = v << 4 | (uint32_t)(h - hex);
	}
	/* The id is stored big-endian in a DWord. */
	uint8_t b[5] = {OP_DWORD, (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
			(uint8_t)v};
	aml_raw(a, b, sizeof(b));
}

void aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	uint8_t d[8] = {
	    0x47,  0x01, (uint8_t)min, (uint8_t)(min >> 8), (uint8_t)max, (uint8_t)(max >> 8),
	    align, len};
	aml_raw(a, d, sizeof(d));
}

void aml_res_irq(struct aml *a, uint16_t mask)
{
	uint8_t d[3] = {0x22, (uint8_t)mask, (uint8_t)(mask >> 8)};
	aml_raw(a, d, sizeof(d));
}

enum { RES_MEM = 0, RES_IO = 1, RES_BUS = 2 };
#define RES_FIXED_PRODUCER 0x0C /* MinFixed, MaxFixed, PosDecode, ResourceProducer */

/*
 * A Word/DWord/QWord address space descriptor (ACPI 6.5, 6.4.3.5): granularity 0,
 * translation 0, length max - min + 1.
 */
static void res_addr(struct aml *a, uint8_t tag, unsigned size, uint8_t type, uint8_t tflags,
		     uint64_t min, uint64_t max)
{
	uint8_t d[3 + 3 + 5 * 8];
	unsigned n = 0, body = 3 + 5 * size;
	d[n++] = tag;
	d[n++] = (uint8_t)body;
	d[n++] = (uint8_t)(body >> 8);
	d[n++] = type;
	d[n++] = RES_FIXED_PRODUCER;
	d[n++] = tflags;
	const uint64_t f[5] = {0, min, max, 0, max - min + 1};
	for (int i = 0; i < 5; i++)
		for (unsigned k = 0; k < size; k++)
			d[n++] = (uint8_t)(f[i] >> (8 * k));
	aml_raw(a, d, n);
}

void aml_res_word_bus(struct aml *a, uint16_t min, uint16_t max)
{
	res_addr(a, 0x88, 2, RES_BUS, 0, min, max);
}

void aml_res_word_io(struct aml *a, uint16_t min, uint16_t max)
{
	res_addr(a, 0x88, 2, RES_IO, 0x03 /* EntireRange */, min, max);
}

void aml_res_dword_mem(struct aml *a, uint32_t min, uint32_t max)
{
	res_addr(a, 0x87, 4, RES_MEM, 0x01 /* ReadWrite, NonCacheable */, min, max);
}

void aml_res_qword_mem(struct aml *a, uint64_t min, uint64_t max)
{
	res_addr(a, 0x8A, 8, RES_MEM, 0x01, min, max);
}

void aml_res_end(struct aml *a)
{
	uint8_t d[2] = {0x79, 0x00}; /* checksum 0: "treat as correct" */
	aml_raw(a, d, sizeof(d));
}

/* ---- Reading ---- */

struct rd {
	const uint8_t *p;
	size_t len;
};

/* Parses a PkgLength at *pos; returns the end of the package or 0 on error. */
static size_t pkg_end(const struct rd *r, size_t *pos)
{
	size_t start = *pos;
	if (start >= r->len)
		return 0;
	uint8_t b0 = r->p[start];
	size_t n = (size_t)(b0 >> 6), total;
	if (n == 0) {
		total = b0 & 0x3F;
	} else {
		if ((b0 & 0x30) || n > r->len - start - 1)
			return 0;
		total = b0 & 0x0F;
		for (size_t i = 0; i < n; i++)
			total |= (size_t)r->p[start + 1 + i] << (4 + 8 * i);
	}
	if (total < n + 1 || total > r->len - start)
		return 0;
	*pos = start + n + 1;
	return start + total;
}

struct path {
	unsigned n;
	char seg[AML_MAX_DEPTH][4];
};

static bool nameseg_ok(const uint8_t *s)
{
	for (int i = 0; i < 4; i++)
		if (!seg_char((char)s[i], i == 0))
			return false;
	return true;
}

/* Parses a NameString at *pos relative to scope into out. Returns false on error. */
static bool read_name(const struct rd *r, size_t *pos, const struct path *scope, struct path *out)
{
	size_t i = *pos;
	*out = *scope;
	if (i < r->len && r->p[i] == OP_ROOT) {
		out->n = 0;
		i++;
	} else {
		while (i < r->len && r->p[i] == OP_PARENT) {
			if (out->n == 0)
				return false;
			out->n--;
			i++;
		}
	}
	if (i >= r->len)
		return false;
	size_t count;
	if (r->p[i] == 0x00) {
		count = 0;
		i++;
	} else if (r->p[i] == OP_DUAL_NAME) {
		count = 2;
		i++;
	} else if (r->p[i] == OP_MULTI_NAME) {
		if (i + 1 >= r->len)
			return false;
		count = r->p[i + 1];
		i += 2;
	} else {
		count = 1;
	}
	if (count > r->len - i || count * 4 > r->len - i)
		return false;
	for (size_t k = 0; k < count; k++, i += 4) {
		if (out->n == AML_MAX_DEPTH || !nameseg_ok(r->p + i))
			return false;
		memcpy(out->seg[out->n++], r->p + i, 4);
	}
	*pos = i;
	return true;
}

int aml_read_int(const uint8_t *aml, size_t len, size_t off, uint64_t *v, size_t *next)
{
	if (off >= len)
		return -EINVAL;
	size_t n;
	switch (aml[off]) {
	case OP_ZERO:
		*v = 0;
		n = 0;
		break;
	case OP_ONE:
		*v = 1;
		n = 0;
		break;
	case OP_ONES:
		*v = ~0ULL;
		n = 0;
		break;
	case OP_BYTE:
		n = 1;
		break;
	case OP_WORD:
		n = 2;
		break;
	case OP_DWORD:
		n = 4;
		break;
	case OP_QWORD:
		n = 8;
		break;
	default:
		return -EINVAL;
	}
	if (n) {
		if (n > len - off - 1)
			return -EINVAL;
		*v = 0;
		for (size_t i = 0; i < n; i++)
			*v |= (uint64_t)aml[off + 1 + i] << (8 * i);
	}
	if (next)
		*next = off + 1 + n;
	return 0;
}

/* Skips a data object at *pos. */
static bool skip_data(const struct rd *r, size_t *pos)
{
	size_t i = *pos;
	uint64_t v;
	if (i >= r->len)
		return false;
	uint8_t op = r->p[i];
	if (aml_read_int(r->p, r->len, i, &v, pos) == 0)
		return true;
	if (op == OP_STRING) {
		const uint8_t *nul = memchr(r->p + i + 1, 0, r->len - i - 1);
		if (!nul)
			return false;
		*pos = (size_t)(nul - r->p) + 1;
		return true;
	}
	if (op == OP_BUFFER || op == OP_PACKAGE) {
		size_t body = i + 1, end = pkg_end(r, &body);
		if (!end)
			return false;
		*pos = end;
		return true;
	}
	return false;
}

static bool same_path(const struct path *a, const struct path *b)
{
	return a->n == b->n && memcmp(a->seg, b->seg, sizeof(a->seg[0]) * a->n) == 0;
}

/* Walks a TermList in [pos, end). Returns 0 when found, -ENOENT, or -EINVAL. */
static int walk(const struct rd *r, size_t pos, size_t end, const struct path *scope,
		const struct path *want, size_t *off, unsigned depth)
{
	if (depth > AML_MAX_DEPTH)
		return -EINVAL;
	const struct rd sub = {r->p, end};
	while (pos < end) {
		uint8_t op = r->p[pos];
		struct path p;
		if (op == OP_SCOPE || op == OP_METHOD ||
		    (op == OP_EXT && pos + 1 < end && r->p[pos + 1] == OP_EXT_DEVICE)) {
			pos += op == OP_EXT ? 2 : 1;
			size_t inner_end = pkg_end(&sub, &pos);
			if (!inner_end || !read_name(&sub, &pos, scope, &p) || pos > inner_end)
				return -EINVAL;
			if (op != OP_METHOD) {
				int rc = walk(r, pos, inner_end, &p, want, off, depth + 1);
				if (rc != -ENOENT)
					return rc;
			}
			pos = inner_end;
		} else if (op == OP_NAME) {
			pos++;
			if (!read_name(&sub, &pos, scope, &p))
				return -EINVAL;
			if (same_path(&p, want)) {
				*off = pos;
				return 0;
			}
			if (!skip_data(&sub, &pos))
				return -EINVAL;
		} else {
			return -EINVAL;
		}
	}
	return -ENOENT;
}

int aml_find(const uint8_t *aml, size_t len, const char *path, size_t *off)
{
	char prefix[AML_MAX_DEPTH], segs[AML_MAX_DEPTH][4];
	size_t np;
	int n = parse_path(path, prefix, &np, segs, AML_MAX_DEPTH);
	if (n <= 0 || np != 1 || prefix[0] != '\\')
		return -EINVAL;
	struct path want = {.n = (unsigned)n}, root = {0};
	memcpy(want.seg, segs, sizeof(segs[0]) * (size_t)n);
	const struct rd r = {aml, len};
	return walk(&r, 0, len, &root, &want, off, 0);
}

int aml_package_elem(const uint8_t *aml, size_t len, size_t off, unsigned idx, size_t *elem,
		     size_t *end_out)
{
	const struct rd r = {aml, len};
	if (off >= len || aml[off] != OP_PACKAGE)
		return -EINVAL;
	size_t pos = off + 1, end = pkg_end(&r, &pos);
	if (!end || pos >= end)
		return -EINVAL;
	unsigned count = aml[pos++];
	if (idx >= count)
		return -ENOENT;
	const struct rd sub = {aml, end};
	for (unsigned i = 0; i < idx; i++)
		if (pos >= end || !skip_data(&sub, &pos))
			return -EINVAL;
	if (pos >= end)
		return -ENOENT; /* elements past the list are uninitialized */
	*elem = pos;
	if (end_out)
		*end_out = end;
	return 0;
}

int aml_package_int(const uint8_t *aml, size_t len, size_t off, unsigned idx, uint64_t *v)
{
	size_t pos, end;
	int rc = aml_package_elem(aml, len, off, idx, &pos, &end);
	return rc ? rc : aml_read_int(aml, end, pos, v, NULL);
}
