/* A VM definition as coved stores it: parsed strictly from JSON, printed back to JSON. */
#ifndef COVE_DAEMON_VMDEF_H
#define COVE_DAEMON_VMDEF_H

#include <cove/error.h>

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMDEF_NAME_MAX	64
#define VMDEF_PATH_MAX	1024
#define VMDEF_MAX_DISKS 16
#define VMDEF_MAX_NICS	8

struct vmdef_disk {
	char path[VMDEF_PATH_MAX];
	bool readonly;
	char format[8]; /* "raw", "qcow2", or "" (the VMM probes the image) */
};

struct vmdef_nic {
	char network[VMDEF_NAME_MAX]; /* a coved network ("default"), or "" */
	char tap[16];		      /* an existing tap device, or "" */
	char mac[18];		      /* "" : generated at start */
};

struct vmdef {
	char name[VMDEF_NAME_MAX];
	char kernel[VMDEF_PATH_MAX]; /* "" : the built-in probe guest */
	char initrd[VMDEF_PATH_MAX];
	char cmdline[4096];
	uint32_t cpus;	     /* 1..32 */
	uint64_t memory_mib; /* 16 .. 1 TiB */
	struct vmdef_disk disks[VMDEF_MAX_DISKS];
	unsigned ndisks;
	struct vmdef_nic nics[VMDEF_MAX_NICS];
	unsigned nnics;
	char console[8]; /* "log" (default: kept and attachable) or "none" */
	bool autostart;
};

/* Names: 1..63 of [A-Za-z0-9_.-], not starting with '.' or '-'. */
bool vmdef_name_valid(const char *name);

/*
 * Parses a definition. Unknown fields, wrong types and impossible values fail with
 * -EINVAL and a message naming the field. On success *out is a new definition the
 * caller frees with vmdef_free().
 */
int vmdef_parse(const char *body, size_t len, struct vmdef **out, struct cove_err *err);

/* Same, from an already parsed object. */
int vmdef_from_json(json_object *o, struct vmdef **out, struct cove_err *err);

/* Returns a new reference: the definition with defaults filled in. */
json_object *vmdef_to_json(const struct vmdef *d);

void vmdef_free(struct vmdef *d);

#endif
