/* Strict JSON request parsing: bounded input, no trailing data, unknown fields named. */
#ifndef COVE_API_JSON_H
#define COVE_API_JSON_H

#include <cove/error.h>

#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_JSON_MAX_DEPTH 16

/*
 * Parses body[0..len) as exactly one JSON value (whitespace may follow). Fails with
 * -EINVAL and a message naming the position when the text is not JSON, is empty, nests
 * deeper than API_JSON_MAX_DEPTH or has data after the value. On success *out is a new
 * reference the caller puts.
 */
int api_json_parse(const char *body, size_t len, json_object **out, struct cove_err *err);

/* Like api_json_parse, and the value must be an object. */
int api_json_parse_object(const char *body, size_t len, json_object **out, struct cove_err *err);

/*
 * Checks that obj is an object whose keys are all in allowed (NULL-terminated). The
 * first unknown key gives -EINVAL "unknown field 'KEY'" (what is the object's name).
 */
int api_json_check_fields(json_object *obj, const char *what, const char *const *allowed,
			  struct cove_err *err);

/*
 * Typed getters. A missing field gives -ENOENT (with a message when required is true)
 * and leaves *out alone; a field of the wrong type gives -EINVAL. Strings are borrowed
 * from obj. Integers must be whole numbers within [min, max].
 */
int api_json_get_str(json_object *obj, const char *key, bool required, size_t maxlen,
		     const char **out, struct cove_err *err);
int api_json_get_u64(json_object *obj, const char *key, bool required, uint64_t min, uint64_t max,
		     uint64_t *out, struct cove_err *err);
int api_json_get_bool(json_object *obj, const char *key, bool required, bool *out,
		      struct cove_err *err);

/* Returns 0 when an optional field is absent, else the getter's result. */
static inline int api_json_opt(int rc)
{
	return rc == -ENOENT ? 0 : rc;
}

/* Serializes obj (compact). The result is owned by obj (valid while obj lives). */
const char *api_json_text(json_object *obj, size_t *len);

#endif
