/* Strict JSON request parsing on top of json-c: bounds, types and unknown fields. */
#include "api/json.h"

#include <errno.h>
#include <string.h>

int api_json_parse(const char *body, size_t len, json_object **out, struct cove_err *err)
{
	if (!body || len == 0)
		return cove_err_set(err, -EINVAL, "empty request body (expected JSON)");
	if (len > INT32_MAX)
		return cove_err_set(err, -EINVAL, "request body too large");
	/* json-c accepts 'single-quoted' strings even in strict mode; JSON does not. */
	bool in_str = false;
	for (size_t i = 0; i < len; i++) {
		if (in_str && body[i] == '\\')
			i++;
		else if (body[i] == '"')
			in_str = !in_str;
		else if (!in_str && body[i] == '\'')
			return cove_err_set(
			    err, -EINVAL, "malformed JSON at byte %zu: single quotes are not JSON",
			    i);
	}
	json_tokener *tok = json_tokener_new_ex(API_JSON_MAX_DEPTH);
	if (!tok)
		return cove_err_set(err, -ENOMEM, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	json_object *obj = json_tokener_parse_ex(tok, body, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (jerr == json_tokener_continue)
		return cove_err_set(err, -EINVAL, "malformed JSON: unexpected end of input");
	if (jerr != json_tokener_success) {
		json_object_put(obj);
		return cove_err_set(err, -EINVAL, "malformed JSON at byte %zu: %s", used,
				    json_tokener_error_desc(jerr));
	}
	for (size_t i = used; i < len; i++) {
		char c = body[i];
		if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
			json_object_put(obj);
			return cove_err_set(err, -EINVAL,
					    "malformed JSON: unexpected data after the value at "
					    "byte %zu",
					    i);
		}
	}
	*out = obj;
	return 0;
}

int api_json_parse_object(const char *body, size_t len, json_object **out, struct cove_err *err)
{
	json_object *obj = NULL;
	int rc = api_json_parse(body, len, &obj, err);
	if (rc)
		return rc;
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return cove_err_set(err, -EINVAL, "the request body must be a JSON object");
	}
	*out = obj;
	return 0;
}

int api_json_check_fields(json_object *obj, const char *what, const char *const *allowed,
			  struct cove_err *err)
{
	if (!json_object_is_type(obj, json_type_object))
		return cove_err_set(err, -EINVAL, "%s must be a JSON object", what);
	json_object_object_foreach(obj, key, val)
	{
		(void)val;
		bool ok = false;
		for (const char *const *a = allowed; *a; a++) {
			if (strcmp(*a, key) == 0) {
				ok = true;
				break;
			}
		}
		if (!ok)
			return cove_err_set(err, -EINVAL, "%s: unknown field '%.64s'", what, key);
	}
	return 0;
}

static int get_field(json_object *obj, const char *key, bool required, json_object **val,
		     struct cove_err *err)
{
	if (!json_object_object_get_ex(obj, key, val) || !*val) {
		if (required)
			return cove_err_set(err, -ENOENT, "missing field '%s'", key);
		return -ENOENT;
	}
	return 0;
}

int api_json_get_str(json_object *obj, const char *key, bool required, size_t maxlen,
		     const char **out, struct cove_err *err)
{
	json_object *v;
	int rc = get_field(obj, key, required, &v, err);
	if (rc)
		return rc;
	if (!json_object_is_type(v, json_type_string))
		return cove_err_set(err, -EINVAL, "field '%s' must be a string", key);
	size_t n = (size_t)json_object_get_string_len(v);
	const char *s = json_object_get_string(v);
	if (n > maxlen)
		return cove_err_set(err, -EINVAL, "field '%s' is longer than %zu bytes", key,
				    maxlen);
	if (strlen(s) != n)
		return cove_err_set(err, -EINVAL, "field '%s' contains a NUL byte", key);
	*out = s;
	return 0;
}

int api_json_get_u64(json_object *obj, const char *key, bool required, uint64_t min, uint64_t max,
		     uint64_t *out, struct cove_err *err)
{
	json_object *v;
	int rc = get_field(obj, key, required, &v, err);
	if (rc)
		return rc;
	if (!json_object_is_type(v, json_type_int))
		return cove_err_set(err, -EINVAL, "field '%s' must be an integer", key);
	errno = 0;
	uint64_t u;
	if (json_object_get_int64(v) < 0) {
		return cove_err_set(err, -EINVAL, "field '%s' must not be negative", key);
	} else {
		u = json_object_get_uint64(v);
	}
	if (errno == ERANGE)
		return cove_err_set(err, -EINVAL, "field '%s' is out of range", key);
	if (u < min || u > max)
		return cove_err_set(
		    err, -EINVAL, "field '%s' must be between %llu and %llu (got %llu)", key,
		    (unsigned long long)min, (unsigned long long)max, (unsigned long long)u);
	*out = u;
	return 0;
}

int api_json_get_bool(json_object *obj, const char *key, bool required, bool *out,
		      struct cove_err *err)
{
	json_object *v;
	int rc = get_field(obj, key, required, &v, err);
	if (rc)
		return rc;
	if (!json_object_is_type(v, json_type_boolean))
		return cove_err_set(err, -EINVAL, "field '%s' must be true or false", key);
	*out = json_object_get_boolean(v);
	return 0;
}

const char *api_json_text(json_object *obj, size_t *len)
{
	return json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, len);
}
