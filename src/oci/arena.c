/* A bump allocator in chunks: one free() releases a whole parsed config. */
#include "oci/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct chunk {
	struct chunk *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

struct oci_arena {
	struct chunk *head;
};

struct oci_arena *oci_arena_new(void)
{
	return calloc(1, sizeof(struct oci_arena));
}

void *oci_arena_calloc(struct oci_arena *a, size_t n, size_t size)
{
	if (!a || (size && n > SIZE_MAX / size))
		return NULL;
	size_t len = n * size;
	if (len > SIZE_MAX - 32)
		return NULL;
	len = (len + 15) & ~(size_t)15;
	if (len == 0)
		len = 16;
	struct chunk *c = a->head;
	if (!c || c->cap - c->used < len) {
		size_t cap = len > 16384 ? len : 16384;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = a->head;
		a->head = c;
	}
	void *p = c->data + c->used;
	c->used += len;
	memset(p, 0, len);
	return p;
}

char *oci_arena_strdup(struct oci_arena *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = oci_arena_calloc(a, n, 1);
	if (p)
		memcpy(p, s, n);
	return p;
}

void oci_arena_free(struct oci_arena *a)
{
	if (!a)
		return;
	struct chunk *c = a->head;
	while (c) {
		struct chunk *next = c->next;
		free(c);
		c = next;
	}
	free(a);
}
