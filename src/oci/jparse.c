/* Typed json-c accessors that name the offending field path in their errors. */
#include "oci/jparse.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

size_t jp_push(struct pctx *p, const char *key)
{
	size_t old = p->plen;
	int n =
	    snprintf(p->path + p->plen, sizeof(p->path) - p->plen, "%s%s", p->plen ? "." : "", key);
	if (n > 0)
		p->plen += (size_t)n < sizeof(p->path) - p->plen ? (size_t)n
								 : sizeof(p->path) - p->plen - 1;
	return old;
}

size_t jp_push_index(struct pctx *p, size_t i)
{
	size_t old = p->plen;
	int n = snprintf(p->path + p->plen, sizeof(p->path) - p->plen, "[%zu]", i);
	if (n > 0)
		p->plen += (size_t)n < sizeof(p->path) - p->plen ? (size_t)n
								 : sizeof(p->path) - p->plen - 1;
	return old;
}

void jp_pop(struct pctx *p, size_t old)
{
	p->plen = old;
	p->path[old] = '\0';
}

int jp_fail(struct pctx *p, const char *key, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	size_t old = key ? jp_push(p, key) : p->plen;
	cove_err_set(p->err, -EINVAL, "%s: %s", p->plen ? p->path : "config", what);
	jp_pop(p, old);
	return -EINVAL;
}

void *jp_alloc(struct pctx *p, size_t n, size_t size)
{
	void *m = oci_arena_calloc(p->cfg->arena, n ? n : 1, size);
	if (!m)
		cove_err_set(p->err, -ENOMEM, "%s: out of memory", p->path);
	return m;
}

int jp_objects(struct pctx *p, struct json_object *arr, const char *key, const char *const *known,
	       size_t size, jp_elem_fn fn, void *ctx, void **out, size_t *n)
{
	size_t count = json_object_array_length(arr);
	char *slots = NULL;
	if (size) {
		slots = jp_alloc(p, count, size);
		if (!slots)
			return -ENOMEM;
	}
	if (out)
		*out = slots;
	if (n)
		*n = count;
	size_t old = jp_push(p, key);
	int r = 0;
	for (size_t i = 0; i < count && !r; i++) {
		struct json_object *e = json_object_array_get_idx(arr, i);
		size_t o2 = jp_push_index(p, i);
		if (!json_object_is_type(e, json_type_object))
			r = jp_fail(p, NULL, "must be an object");
		if (!r)
			r = jp_check_keys(p, e, known);
		if (!r)
			r = fn(p, e, slots ? slots + i * size : NULL, ctx);
		jp_pop(p, o2);
	}
	jp_pop(p, old);
	return r;
}

int jp_check_keys(struct pctx *p, struct json_object *obj, const char *const *known)
{
	json_object_object_foreach(obj, key, val)
	{
		(void)val;
		bool found = false;
		for (const char *const *k = known; *k; k++) {
			if (strcmp(*k, key) == 0) {
				found = true;
				break;
			}
		}
		if (found)
			continue;
		if (p->flags & OCI_PARSE_STRICT)
			return jp_fail(p, key, "unknown field");
		struct oci_config *c = p->cfg;
		if (c->n_unknown < sizeof(c->unknown) / sizeof(c->unknown[0])) {
			size_t old = jp_push(p, key);
			c->unknown[c->n_unknown] = oci_arena_strdup(c->arena, p->path);
			jp_pop(p, old);
		}
		c->n_unknown++;
	}
	return 0;
}

static struct json_object *get(struct json_object *obj, const char *key)
{
	struct json_object *v = NULL;
	if (!json_object_object_get_ex(obj, key, &v))
		return NULL;
	return v;
}

static int typed(struct pctx *p, struct json_object *obj, const char *key, bool required,
		 enum json_type type, const char *what, struct json_object **out)
{
	struct json_object *v = get(obj, key);
	if (!v) {
		if (required)
			return jp_fail(p, key, "required field is missing (%s)", what);
		*out = NULL;
		return 0;
	}
	if (!json_object_is_type(v, type))
		return jp_fail(p, key, "must be %s", what);
	*out = v;
	return 0;
}

int jp_obj(struct pctx *p, struct json_object *obj, const char *key, bool required,
	   struct json_object **out)
{
	return typed(p, obj, key, required, json_type_object, "an object", out);
}

int jp_array(struct pctx *p, struct json_object *obj, const char *key, bool required,
	     struct json_object **out)
{
	return typed(p, obj, key, required, json_type_array, "an array", out);
}

int jp_str(struct pctx *p, struct json_object *obj, const char *key, bool required,
	   const char **out)
{
	struct json_object *v;
	int r = typed(p, obj, key, required, json_type_string, "a string", &v);
	if (r == 0 && v) {
		const char *s = json_object_get_string(v);
		if ((size_t)json_object_get_string_len(v) != strlen(s))
			return jp_fail(p, key, "must not contain NUL characters");
		*out = s;
	}
	return r;
}

int jp_bool(struct pctx *p, struct json_object *obj, const char *key, bool *out)
{
	struct json_object *v;
	int r = typed(p, obj, key, false, json_type_boolean, "a boolean", &v);
	if (r == 0 && v)
		*out = json_object_get_boolean(v);
	return r;
}

int jp_i64(struct pctx *p, struct json_object *obj, const char *key, bool required, int64_t *out,
	   bool *present)
{
	struct json_object *v;
	int r = typed(p, obj, key, required, json_type_int, "an integer", &v);
	if (r || !v)
		return r;
	int64_t x = json_object_get_int64(v);
	if (x == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX)
		return jp_fail(p, key, "is out of range");
	*out = x;
	if (present)
		*present = true;
	return 0;
}

int jp_u64(struct pctx *p, struct json_object *obj, const char *key, bool required, uint64_t *out,
	   bool *present)
{
	struct json_object *v;
	int r = typed(p, obj, key, required, json_type_int, "a non-negative integer", &v);
	if (r || !v)
		return r;
	if (json_object_get_int64(v) < 0)
		return jp_fail(p, key, "must be a non-negative integer");
	*out = json_object_get_uint64(v);
	if (present)
		*present = true;
	return 0;
}

int jp_u32(struct pctx *p, struct json_object *obj, const char *key, bool required, uint32_t *out,
	   bool *present)
{
	uint64_t x = 0;
	bool have = false;
	int r = jp_u64(p, obj, key, required, &x, &have);
	if (r || !have)
		return r;
	if (x > UINT32_MAX)
		return jp_fail(p, key, "must fit in 32 bits");
	*out = (uint32_t)x;
	if (present)
		*present = true;
	return 0;
}

int jp_strv(struct pctx *p, struct json_object *obj, const char *key, bool required, bool nonempty,
	    const char ***out, size_t *n)
{
	const char *what = nonempty ? "a non-empty array of strings" : "an array of strings";
	struct json_object *v = get(obj, key);
	if (!v) {
		if (required)
			return jp_fail(p, key, "required field is missing (%s)", what);
		return 0;
	}
	if (!json_object_is_type(v, json_type_array))
		return jp_fail(p, key, "must be %s", what);
	size_t len = json_object_array_length(v);
	if (nonempty && len == 0)
		return jp_fail(p, key, "must be %s", what);
	const char **arr = jp_alloc(p, len + 1, sizeof(char *));
	if (!arr)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		if (!json_object_is_type(e, json_type_string))
			return jp_fail(p, key, "must be %s", what);
		const char *s = json_object_get_string(e);
		if ((size_t)json_object_get_string_len(e) != strlen(s))
			return jp_fail(p, key, "must not contain NUL characters");
		arr[i] = s;
	}
	*out = arr;
	if (n)
		*n = len;
	return 0;
}

int jp_kv(struct pctx *p, struct json_object *obj, const char *key, struct oci_kv **out, size_t *n)
{
	struct json_object *v;
	int r = jp_obj(p, obj, key, false, &v);
	if (r || !v)
		return r;
	size_t len = (size_t)json_object_object_length(v), i = 0;
	struct oci_kv *kv = jp_alloc(p, len, sizeof(*kv));
	if (!kv)
		return -ENOMEM;
	json_object_object_foreach(v, k, val)
	{
		if (!json_object_is_type(val, json_type_string)) {
			size_t old = jp_push(p, key);
			r = jp_fail(p, k, "must be a string");
			jp_pop(p, old);
			return r;
		}
		kv[i].key = k;
		kv[i].value = json_object_get_string(val);
		i++;
	}
	*out = kv;
	*n = i;
	return 0;
}
