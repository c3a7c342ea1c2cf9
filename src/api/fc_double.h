/* A test double of the VMM behind fc_api: records which ops ran, with what config. */
#ifndef COVE_API_FC_DOUBLE_H
#define COVE_API_FC_DOUBLE_H

#include "api/fc_api.h"

#include <pthread.h>
#include <stdio.h>

struct fc_double {
	pthread_mutex_t lock;
	unsigned starts, pauses, resumes, ctrl_alt_dels, flushes, shutdowns, balloon_sets;
	uint32_t balloon_mib, balloon_interval; /* the last balloon_set / set_interval */
	unsigned net_updates, net_index;	/* the last net_update's NIC and limiters */
	struct fc_net_update net_update;
	int fail_start;		     /* when nonzero, start fails with this -errno */
	struct fc_vm_config started; /* the config InstanceStart passed */
	FILE *log;		     /* when set, one line per op ("start kernel=/k cpus=2") */
};

extern const struct vmm_api_ops fc_double_ops;

void fc_double_init(struct fc_double *d);

#endif
