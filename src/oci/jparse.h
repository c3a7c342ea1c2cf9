/* Typed, path-tracking accessors over json-c objects for the config parsers. */
#ifndef COVE_OCI_JPARSE_H
#define COVE_OCI_JPARSE_H

#include "oci/arena.h"
#include "oci/oci.h"

#include <json-c/json.h>

struct pctx {
	struct oci_config *cfg;
	struct cove_err *err;
	int flags;
	char path[256];
	size_t plen;
};

/* Appends ".key" (or "key" at the top) / "[i]" to the path; returns the old length. */
size_t jp_push(struct pctx *p, const char *key);
size_t jp_push_index(struct pctx *p, size_t i);
void jp_pop(struct pctx *p, size_t old);

/* Records "<path>: <what>" (at the field key under the current path if key != NULL). */
int jp_fail(struct pctx *p, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Unknown keys of obj (not in known, NULL-terminated): error when strict, else noted. */
int jp_check_keys(struct pctx *p, struct json_object *obj, const char *const *known);

/* Each getter: absent and !required → 0 with *out untouched; returns 0 or -EINVAL. */
int jp_obj(struct pctx *p, struct json_object *obj, const char *key, bool required,
	   struct json_object **out);
int jp_array(struct pctx *p, struct json_object *obj, const char *key, bool required,
	     struct json_object **out);
int jp_str(struct pctx *p, struct json_object *obj, const char *key, bool required,
	   const char **out);
int jp_bool(struct pctx *p, struct json_object *obj, const char *key, bool *out);
int jp_i64(struct pctx *p, struct json_object *obj, const char *key, bool required, int64_t *out,
	   bool *present);
int jp_u64(struct pctx *p, struct json_object *obj, const char *key, bool required, uint64_t *out,
	   bool *present);
int jp_u32(struct pctx *p, struct json_object *obj, const char *key, bool required, uint32_t *out,
	   bool *present);
/* An array of strings, NULL-terminated in the arena. */
int jp_strv(struct pctx *p, struct json_object *obj, const char *key, bool required, bool nonempty,
	    const char ***out, size_t *n);
/* An object of string values. */
int jp_kv(struct pctx *p, struct json_object *obj, const char *key, struct oci_kv **out, size_t *n);
void *jp_alloc(struct pctx *p, size_t n, size_t size);

/* Called for element i of an array of objects, with its zeroed slot (NULL when size is 0). */
typedef int (*jp_elem_fn)(struct pctx *p, struct json_object *e, void *slot, void *ctx);

/* The shared walk over an array of objects found at key: allocates n slots of size bytes
 * (*out, *n), and for each element, under the path "key[i]", checks that it is an object
 * holding only known keys and calls fn. Stops at the first error and returns it. */
int jp_objects(struct pctx *p, struct json_object *arr, const char *key, const char *const *known,
	       size_t size, jp_elem_fn fn, void *ctx, void **out, size_t *n);

int oci_parse_resources_obj(struct pctx *p, struct json_object *obj, struct oci_resources *r);
int oci_parse_seccomp_obj(struct pctx *p, struct json_object *obj, struct oci_seccomp *s);
int oci_parse_process_obj(struct pctx *p, struct json_object *obj, struct oci_process *pr);

#endif
