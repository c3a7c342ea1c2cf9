/* The settings of `cove run`, from a JSON file and from command-line options (which win). */
#ifndef COVE_VMM_CONFIG_H
#define COVE_VMM_CONFIG_H

#include "devices/virtio/virtio_opts.h"
#include "vmm/loader.h"
#include "vmm/sandbox.h"

#include <cove/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum console_kind {
	CONSOLE_STDIO = 0,
	CONSOLE_NONE,
	CONSOLE_FILE,
};

enum on_reboot {
	ON_REBOOT_EXIT = 0,
	ON_REBOOT_RESTART,
};

#define RUN_CONFIG_DEFAULT_MEM (256ULL << 20)

struct run_config {
	char *kernel; /* NULL: the built-in probe guest */
	char *initrd;
	char *cmdline;
	enum boot_choice boot; /* --boot auto|linux|pvh */
	unsigned cpus;
	uint64_t memory; /* bytes */
	enum console_kind console;
	char *console_path; /* CONSOLE_FILE */
	enum on_reboot on_reboot;
	int log_level; /* enum log_level, -1: unset */
	bool hugepages;
	struct sandbox_opts sandbox; /* --sandbox, --sandbox-uid/gid, --jail-dir, --seccomp-log */
	struct virtio_opts virtio;   /* disk, net, vsock, rng, balloon */
};

void run_config_init(struct run_config *c);
void run_config_free(struct run_config *c);

/*
 * Sets one setting from text, as the option --KEY VALUE would (keys: kernel, initrd,
 * cmdline, boot, cpus, memory, console, on-reboot, log-level, hugepages). Values are checked:
 * cpus 1..255, memory 16 MiB..1 TiB ("512M", "4G"; a bare number is MiB).
 * Returns 0 or -EINVAL with a one-line message in err.
 */
int run_config_set(struct run_config *c, const char *key, const char *value, struct cove_err *err);

/*
 * Applies a JSON object ({"kernel": "...", "cpus": 2, "memory": "1G", ...}; keys may use
 * '-' or '_'). Malformed JSON is reported with its line and column, a bad field by name.
 * Returns 0 or -EINVAL with the message in err.
 */
int run_config_parse_json(struct run_config *c, const char *text, size_t len, struct cove_err *err);

#endif
