/* `cove run --api-sock`: the Firecracker-compatible API socket connected to the live VMM. */
#ifndef COVE_CLI_RUN_API_GLUE_H
#define COVE_CLI_RUN_API_GLUE_H

#include "vmm/config.h"
#include "vmm/machine.h"

#include <cove/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct api_glue;

/*
 * Serves the API on sock_path. cfg is the command line's configuration: InstanceStart
 * fills it (main thread blocked in api_glue_wait_start meanwhile). start_ns is when cove
 * started (uptime). Returns 0 or -errno (and logs why).
 */
int api_glue_start(const char *sock_path, struct run_config *cfg, uint64_t start_ns,
		   struct api_glue **out);

/*
 * No kernel on the command line: waits until a client's InstanceStart has filled cfg
 * (returns 0) or until SIGINT/SIGTERM/SIGHUP (blocked by the caller) arrives (returns the
 * signal number). Returns -errno on failure.
 */
int api_glue_wait_start(struct api_glue *g);

/* Booted from the command line: the API reports Running and cfg's settings. */
void api_glue_booted(struct api_glue *g, const struct run_config *cfg);

/*
 * --config FILE in Firecracker's --config-file format (it has "boot-source"): mapped onto
 * cfg as InstanceStart would map it. Returns 0 or -errno with err set.
 */
bool api_glue_is_fc_config(const char *text, size_t len);
int api_glue_load_fc_config(struct run_config *cfg, const char *text, size_t len,
			    struct cove_err *err);

/* The machine runs (attach) / is about to be destroyed (detach). g may be NULL. */
void api_glue_attach(struct api_glue *g, struct machine *m, int console_fd);
void api_glue_detach(struct api_glue *g);

/* The guest is gone for good: the API reports Stopped. g may be NULL. */
void api_glue_stopped(struct api_glue *g);

/* Stops serving and removes the socket; frees a loaded Firecracker config. g may be NULL. */
void api_glue_free(struct api_glue *g);

#endif
