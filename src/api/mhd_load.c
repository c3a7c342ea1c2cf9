/* libmicrohttpd's entry points, loaded when the first HTTP server starts. */
#include "api/mhd_load.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#ifndef COVE_MHD_SONAME
#define COVE_MHD_SONAME "libmicrohttpd.so.12"
#endif

struct mhd_api mhd;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[256];

static void load(void)
{
	struct {
		const char *name;
		void **slot;
	} entries[] = {
	    {"MHD_start_daemon", (void **)&mhd.start_daemon},
	    {"MHD_stop_daemon", (void **)&mhd.stop_daemon},
	    {"MHD_is_feature_supported", (void **)&mhd.is_feature_supported},
	    {"MHD_lookup_connection_value", (void **)&mhd.lookup_connection_value},
	    {"MHD_get_connection_info", (void **)&mhd.get_connection_info},
	    {"MHD_queue_response", (void **)&mhd.queue_response},
	    {"MHD_create_response_from_buffer", (void **)&mhd.create_response_from_buffer},
	    {"MHD_create_response_from_callback", (void **)&mhd.create_response_from_callback},
	    {"MHD_create_response_for_upgrade", (void **)&mhd.create_response_for_upgrade},
	    {"MHD_add_response_header", (void **)&mhd.add_response_header},
	    {"MHD_destroy_response", (void **)&mhd.destroy_response},
	    {"MHD_upgrade_action", (void **)&mhd.upgrade_action},
	};
	/* Never unloaded: its threads may run until the process exits. */
	void *lib = dlopen(COVE_MHD_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(load_error, sizeof(load_error), "%s", dlerror());
		return;
	}
	for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
		*entries[i].slot = dlsym(lib, entries[i].name);
		if (!*entries[i].slot) {
			snprintf(load_error, sizeof(load_error), "%s: no %s", COVE_MHD_SONAME,
				 entries[i].name);
			return;
		}
	}
}

int mhd_load(struct cove_err *err)
{
	pthread_once(&load_once, load);
	if (load_error[0])
		return cove_err_set(err, -ENOENT,
				    "cannot load libmicrohttpd (%s): install libmicrohttpd12",
				    load_error);
	return 0;
}
