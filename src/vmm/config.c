/* `cove run` settings: validation shared by the options and the JSON file (json-c). */
#include "vmm/config.h"
#include "util/log.h"
#include "util/size.h"
#include "vmm/guest_mem.h"
#include "vmm/vm.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void run_config_init(struct run_config *c)
{
	memset(c, 0, sizeof(*c));
	c->cpus = 1;
	c->memory = RUN_CONFIG_DEFAULT_MEM;
	c->log_level = -1;
}

void run_config_free(struct run_config *c)
{
	free(c->kernel);
	free(c->initrd);
	free(c->cmdline);
	free(c->console_path);
	sandbox_opts_free(&c->sandbox);
	virtio_opts_free(&c->virtio);
	memset(c, 0, sizeof(*c));
}

static int set_str(char **dst, const char *value, struct cove_err *err)
{
	char *s = strdup(value);
	if (!s)
		return cove_err_set(err, -ENOMEM, "out of memory");
	free(*dst);
	*dst = s;
	return 0;
}

static int parse_cpus(const char *value, unsigned *out, struct cove_err *err)
{
	char *end;
	errno = 0;
	long long n = strtoll(value, &end, 10);
	if (errno || end == value || *end)
		return cove_err_set(err, -EINVAL, "cpus '%s': not a number", value);
	if (n < 1 || n > VM_MAX_CPUS)
		return cove_err_set(err, -EINVAL, "cpus %lld: out of range (1 to %d)", n,
				    VM_MAX_CPUS);
	*out = (unsigned)n;
	return 0;
}

static int parse_memory(const char *value, uint64_t *out, struct cove_err *err)
{
	uint64_t bytes;
	int r = size_parse(value, 1ULL << 20, &bytes);
	if (r == -ERANGE || (r == 0 && (bytes < GUEST_MEM_MIN || bytes > GUEST_MEM_MAX)))
		return cove_err_set(err, -EINVAL,
				    "memory '%s': out of range (16M to 1T; a bare number is MiB)",
				    value);
	if (r)
		return cove_err_set(err, -EINVAL, "memory '%s': not a size (like 512M or 4G)",
				    value);
	if (bytes % 4096)
		return cove_err_set(err, -EINVAL, "memory '%s': not a whole number of 4 KiB pages",
				    value);
	*out = bytes;
	return 0;
}

static int parse_bool(const char *key, const char *value, bool *out, struct cove_err *err)
{
	if (!strcmp(value, "true") || !strcmp(value, "on") || !strcmp(value, "1") ||
	    !strcmp(value, "yes")) {
		*out = true;
		return 0;
	}
	if (!strcmp(value, "false") || !strcmp(value, "off") || !strcmp(value, "0") ||
	    !strcmp(value, "no")) {
		*out = false;
		return 0;
	}
	return cove_err_set(err, -EINVAL, "%s '%s': expected true or false", key, value);
}

/* "on_reboot" and "on-reboot" are the same key. */
static bool key_is(const char *key, const char *name)
{
	for (; *key && *name; key++, name++) {
		char a = *key == '_' ? '-' : *key;
		if (a != *name)
			return false;
	}
	return *key == *name;
}

int run_config_set(struct run_config *c, const char *key, const char *value, struct cove_err *err)
{
	if (sandbox_opts_is_key(key)) /* sandbox */
		return sandbox_opts_set(&c->sandbox, key, value, err);
	if (key_is(key, "kernel"))
		return set_str(&c->kernel, value, err);
	if (key_is(key, "initrd"))
		return set_str(&c->initrd, value, err);
	if (key_is(key, "cmdline"))
		return set_str(&c->cmdline, value, err);
	if (key_is(key, "boot")) {
		if (boot_choice_parse(value, &c->boot))
			return cove_err_set(err, -EINVAL, "boot '%s': expected auto, linux or pvh",
					    value);
		return 0;
	}
	if (key_is(key, "cpus"))
		return parse_cpus(value, &c->cpus, err);
	if (key_is(key, "memory"))
		return parse_memory(value, &c->memory, err);
	if (key_is(key, "hugepages"))
		return parse_bool(key, value, &c->hugepages, err);
	if (key_is(key, "console")) {
		if (!strcmp(value, "stdio")) {
			c->console = CONSOLE_STDIO;
		} else if (!strcmp(value, "none")) {
			c->console = CONSOLE_NONE;
		} else if (!strncmp(value, "file:", 5) && value[5]) {
			c->console = CONSOLE_FILE;
			return set_str(&c->console_path, value + 5, err);
		} else {
			return cove_err_set(
			    err, -EINVAL, "console '%s': expected stdio, none or file:PATH", value);
		}
		return 0;
	}
	if (key_is(key, "on-reboot")) {
		if (!strcmp(value, "exit"))
			c->on_reboot = ON_REBOOT_EXIT;
		else if (!strcmp(value, "restart"))
			c->on_reboot = ON_REBOOT_RESTART;
		else
			return cove_err_set(err, -EINVAL,
					    "on-reboot '%s': expected exit or restart", value);
		return 0;
	}
	if (key_is(key, "log-level")) {
		enum log_level lvl;
		if (log_parse_level(value, &lvl))
			return cove_err_set(err, -EINVAL,
					    "log-level '%s': expected error, warn, info or debug",
					    value);
		c->log_level = (int)lvl;
		return 0;
	}
	if (virtio_opts_is_key(key))
		return virtio_opts_set(&c->virtio, key, value, err);
	return cove_err_set(err, -EINVAL, "unknown setting '%s'", key);
}

/* Line and column (1-based) of byte offset off in text. */
static void position(const char *text, size_t len, size_t off, unsigned *line, unsigned *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && i < len; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static int apply_field(struct run_config *c, const char *key, struct json_object *v,
		       struct cove_err *err)
{
	static const char *const known[] = {"kernel",	 "initrd",   "cmdline", "boot",
					    "cpus",	 "memory",   "console", "on-reboot",
					    "log-level", "hugepages"};
	bool ok = virtio_opts_is_key(key); /* virtio */
	for (unsigned i = 0; i < sizeof(known) / sizeof(known[0]) && !ok; i++)
		ok = key_is(key, known[i]);
	bool sb = sandbox_opts_is_key(key); /* sandbox: flags are booleans, ids may be numbers */
	bool sb_flag =
	    sb && (key_is(key, "sandbox") || key_is(key, "seccomp") || key_is(key, "seccomp-log"));
	bool sb_id = key_is(key, "sandbox-uid") || key_is(key, "sandbox-gid");
	ok = ok || sb;
	if (!ok)
		return cove_err_set(err, -EINVAL, "unknown setting '%s'", key);
	char buf[32];
	const char *text;
	switch (json_object_get_type(v)) {
	case json_type_string:
		text = json_object_get_string(v);
		if (strlen(text) != (size_t)json_object_get_string_len(v))
			return cove_err_set(err, -EINVAL, "field '%s': contains a NUL byte", key);
		break;
	case json_type_int:
		if (!key_is(key, "cpus") && !key_is(key, "memory") && !sb_id)
			return cove_err_set(err, -EINVAL, "field '%s': expected a %s", key,
					    sb_flag ? "boolean" : "string");
		snprintf(buf, sizeof(buf), "%lld", (long long)json_object_get_int64(v));
		text = buf;
		break;
	case json_type_boolean:
		if (!key_is(key, "hugepages") && !sb_flag && !key_is(key, "rng") &&
		    !key_is(key, "balloon"))
			return cove_err_set(err, -EINVAL, "field '%s': expected a %s", key,
					    key_is(key, "cpus") ? "number" : "string");
		text = json_object_get_boolean(v) ? "true" : "false";
		break;
	case json_type_array: /* virtio: "disk": ["path=a", "path=b"] */
		if (virtio_opts_is_key(key)) {
			for (size_t i = 0; i < json_object_array_length(v); i++) {
				int r = apply_field(c, key, json_object_array_get_idx(v, i), err);
				if (r)
					return r;
			}
			return 0;
		}
		__attribute__((fallthrough));
	default:
		return cove_err_set(err, -EINVAL, "field '%s': expected a %s", key,
				    key_is(key, "cpus")			  ? "number"
				    : key_is(key, "hugepages") || sb_flag ? "boolean"
									  : "string");
	}
	int ret = run_config_set(c, key, text, err);
	if (ret)
		cove_err_prefix(err, "field '%s'", key);
	return ret;
}

int run_config_parse_json(struct run_config *c, const char *text, size_t len, struct cove_err *err)
{
	if (len > (1 << 20))
		return cove_err_set(err, -EINVAL, "config file too big (over 1 MiB)");
	if (memchr(text, '\0', len))
		return cove_err_set(err, -EINVAL, "config contains a NUL byte");
	struct json_tokener *tok = json_tokener_new_ex(32);
	if (!tok)
		return cove_err_set(err, -ENOMEM, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	struct json_object *root = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	int ret = 0;
	if (!root || jerr != json_tokener_success) {
		unsigned line, col;
		position(text, len, end, &line, &col);
		ret = cove_err_set(err, -EINVAL, "malformed JSON at line %u, column %u: %s", line,
				   col,
				   jerr == json_tokener_continue ? "unexpected end of input"
								 : json_tokener_error_desc(jerr));
		goto out;
	}
	/* Only whitespace may follow the object. */
	for (size_t i = end; i < len; i++) {
		if (!strchr(" \t\r\n", text[i])) {
			unsigned line, col;
			position(text, len, i, &line, &col);
			ret = cove_err_set(err, -EINVAL,
					   "malformed JSON at line %u, column %u: text after the "
					   "object",
					   line, col);
			goto out;
		}
	}
	if (!json_object_is_type(root, json_type_object)) {
		ret = cove_err_set(err, -EINVAL, "config must be a JSON object");
		goto out;
	}
	json_object_object_foreach(root, key, val)
	{
		if ((ret = apply_field(c, key, val, err)))
			goto out;
	}
out:
	json_object_put(root);
	json_tokener_free(tok);
	return ret;
}
