/* Parsing of human sizes such as "512M", "4G", "1.5T" and "65536". */
#ifndef COVE_UTIL_SIZE_H
#define COVE_UTIL_SIZE_H

#include <stdint.h>

/*
 * Parses a size with an optional binary suffix (K, M, G, T, P, E; an optional
 * trailing "B" or "iB"; case-insensitive). A bare number is taken in bytes unless
 * default_unit is not 1 (cove run takes "--memory 512" as MiB, like QEMU -m).
 * Returns 0, -EINVAL for malformed text, or -ERANGE when the value overflows.
 */
int size_parse(const char *text, uint64_t default_unit, uint64_t *out);

/* Formats a byte count for humans: "512 MiB", "1.5 GiB", "300 B". */
void size_format(uint64_t bytes, char *buf, unsigned long buflen);

#endif
