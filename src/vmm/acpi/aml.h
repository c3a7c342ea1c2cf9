/* A tiny AML (ACPI Machine Language) emitter for the DSDT, and a reader for checking it. */
#ifndef COVE_VMM_ACPI_AML_H
#define COVE_VMM_ACPI_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 16

/*
 * Emits into a caller-owned buffer. Errors stick: after the first one (-ENOSPC when the
 * buffer is full, -EINVAL for a malformed name or unbalanced open/close) every call does
 * nothing and aml_finish() returns the error.
 */
struct aml {
	uint8_t *buf;
	size_t len, cap;
	int err;
	unsigned depth;
	struct {
		size_t start; /* where the package length goes */
		bool buffer;  /* a Buffer: its size is inserted too */
	} open[AML_MAX_DEPTH];
};

void aml_init(struct aml *a, uint8_t *buf, size_t cap);
/* Returns the length written, or a negative errno. */
long aml_finish(struct aml *a);

/*
 * Names are ACPI paths: "\\_SB.COM1", "_HID", "^PCI0". Segments shorter than four
 * characters are padded with '_' ("RTC" is "RTC_").
 */
void aml_scope_open(struct aml *a, const char *path);
void aml_device_open(struct aml *a, const char *path);
void aml_package_open(struct aml *a, uint8_t count);
/* A Buffer whose bytes follow (resource descriptors, raw bytes). */
void aml_buffer_open(struct aml *a);
/* Closes the innermost scope, device, package or buffer. */
void aml_close(struct aml *a);

/* Name(path, <the data object that follows>). */
void aml_name(struct aml *a, const char *path);
void aml_int(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* A compressed EISA id such as "PNP0501". */
void aml_eisaid(struct aml *a, const char *id);
void aml_raw(struct aml *a, const void *p, size_t n);

/* Resource descriptors, inside aml_buffer_open(): Name(_CRS, ResourceTemplate() {...}). */
void aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
void aml_res_irq(struct aml *a, uint16_t mask); /* IRQNoFlags: edge, active high */
/* Address space descriptors a bridge produces (fixed min and max, positive decode). */
void aml_res_word_bus(struct aml *a, uint16_t min, uint16_t max);
void aml_res_word_io(struct aml *a, uint16_t min, uint16_t max);
void aml_res_dword_mem(struct aml *a, uint32_t min, uint32_t max);
void aml_res_qword_mem(struct aml *a, uint64_t min, uint64_t max);
void aml_res_end(struct aml *a);

/*
 * Reading: finds the data object of Name(path) in a DSDT body (the AML after the 36-byte
 * header) and stores its offset in *off. path is absolute ("\\_S5", "\\_SB.COM1._HID").
 * Understands what the emitter writes (scopes, devices, names, data objects) and skips
 * methods. Returns 0, -ENOENT, or -EINVAL for AML it cannot parse. Safe on any input.
 */
int aml_find(const uint8_t *aml, size_t len, const char *path, size_t *off);

/* Reads an integer data object at off; returns 0 or -EINVAL. *next gets the end. */
int aml_read_int(const uint8_t *aml, size_t len, size_t off, uint64_t *v, size_t *next);

/* Where element idx (any data object, a Package too) of the Package at off starts, in
 * *elem; *end (may be NULL) gets the end of the enclosing Package. 0, -EINVAL or -ENOENT. */
int aml_package_elem(const uint8_t *aml, size_t len, size_t off, unsigned idx, size_t *elem,
		     size_t *end);

/* Element idx (an integer) of the Package at off. Returns 0, -EINVAL or -ENOENT. */
int aml_package_int(const uint8_t *aml, size_t len, size_t off, unsigned idx, uint64_t *v);

#endif
