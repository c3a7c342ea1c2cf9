/* A bump allocator that owns everything a parsed config points to. */
#ifndef COVE_OCI_ARENA_H
#define COVE_OCI_ARENA_H

#include <stddef.h>

struct oci_arena;

struct oci_arena *oci_arena_new(void);
/* Zeroed memory of n * size bytes, or NULL on overflow or ENOMEM. */
void *oci_arena_calloc(struct oci_arena *a, size_t n, size_t size);
char *oci_arena_strdup(struct oci_arena *a, const char *s);
void oci_arena_free(struct oci_arena *a);

#endif
