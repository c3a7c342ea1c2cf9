/* libmicrohttpd's entry points, loaded when the first HTTP server starts. */
#ifndef COVE_API_MHD_LOAD_H
#define COVE_API_MHD_LOAD_H

#include "cove/error.h"

#include <microhttpd.h>

/*
 * A VMM without an API socket never maps libmicrohttpd, nor the TLS libraries it pulls in
 * (gnutls, nettle, gmp, p11-kit: about 2.4 MiB of resident memory and a millisecond of start
 * time). Each field has the type of the library function of the same name.
 */
struct mhd_api {
	__typeof__(MHD_start_daemon) *start_daemon;
	__typeof__(MHD_stop_daemon) *stop_daemon;
	__typeof__(MHD_is_feature_supported) *is_feature_supported;
	__typeof__(MHD_lookup_connection_value) *lookup_connection_value;
	__typeof__(MHD_get_connection_info) *get_connection_info;
	__typeof__(MHD_queue_response) *queue_response;
	__typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
	__typeof__(MHD_create_response_from_callback) *create_response_from_callback;
	__typeof__(MHD_create_response_for_upgrade) *create_response_for_upgrade;
	__typeof__(MHD_add_response_header) *add_response_header;
	__typeof__(MHD_destroy_response) *destroy_response;
	__typeof__(MHD_upgrade_action) *upgrade_action;
};

/* Filled by mhd_load(); read only after it returned 0. */
extern struct mhd_api mhd;

/*
 * Loads the library once (thread-safe; later calls only report the first result). Call it
 * before a sandbox forbids opening files or mapping code. Returns 0 or -ENOENT with err set.
 */
int mhd_load(struct cove_err *err);

#endif
