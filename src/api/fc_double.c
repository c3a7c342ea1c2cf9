/* The VMM test double: ops that count calls and log them, for fc_api's tests. */
#include "api/fc_double.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void fc_double_init(struct fc_double *d)
{
	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
}

static void note(struct fc_double *d, const char *what)
{
	if (d->log) {
		fprintf(d->log, "%s\n", what);
		fflush(d->log);
	}
}

static int d_start(void *opaque, const struct fc_vm_config *cfg, struct cove_err *err)
{
	struct fc_double *d = opaque;
	pthread_mutex_lock(&d->lock);
	int rc = d->fail_start;
	if (rc) {
		pthread_mutex_unlock(&d->lock);
		return cove_err_set(err, rc, "the double was told to fail");
	}
	d->starts++;
	d->started = *cfg;
	if (d->log) {
		fprintf(d->log, "start kernel=%s cpus=%u mem=%u drives=%u nics=%u\n",
			cfg->boot.kernel_image_path, cfg->machine.vcpu_count,
			cfg->machine.mem_size_mib, cfg->ndrives, cfg->nnets);
		fflush(d->log);
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
}

#define COUNTER_OP(name, field)                             \
	static int name(void *opaque, struct cove_err *err) \
	{                                                   \
		(void)err;                                  \
		struct fc_double *d = opaque;               \
		pthread_mutex_lock(&d->lock);               \
		d->field++;                                 \
		note(d, #field);                            \
		pthread_mutex_unlock(&d->lock);             \
		return 0;                                   \
	}

COUNTER_OP(d_pause, pauses)
COUNTER_OP(d_resume, resumes)
COUNTER_OP(d_cad, ctrl_alt_dels)
COUNTER_OP(d_flush, flushes)
COUNTER_OP(d_shutdown, shutdowns)

static int d_stats(void *opaque, struct fc_vm_stats *out, struct cove_err *err)
{
	(void)err;
	struct fc_double *d = opaque;
	pthread_mutex_lock(&d->lock);
	out->cpu_time_ns = 1000000;
	out->balloon_maximum_kib = (uint64_t)d->started.machine.mem_size_mib * 1024;
	out->balloon_current_kib = out->balloon_maximum_kib;
	out->nblock = d->started.ndrives;
	for (unsigned i = 0; i < out->nblock; i++) {
		snprintf(out->block[i].name, sizeof(out->block[i].name), "%s",
			 d->started.drives[i].drive_id);
		out->block[i].rd_bytes = 4096 * (i + 1);
		out->block[i].rd_reqs = i + 1;
	}
	out->nnet = d->started.nnets;
	for (unsigned i = 0; i < out->nnet; i++)
		snprintf(out->net[i].name, sizeof(out->net[i].name), "%s",
			 d->started.nets[i].iface_id);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int d_balloon(void *opaque, uint32_t amount, struct cove_err *err)
{
	(void)err;
	struct fc_double *d = opaque;
	pthread_mutex_lock(&d->lock);
	d->balloon_sets++;
	d->balloon_mib = amount;
	note(d, "balloon_set");
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* A guest that holds what was asked and reports free memory (tag 4) only. */
static int d_balloon_stats(void *opaque, struct fc_balloon_stats *out, struct cove_err *err)
{
	(void)err;
	struct fc_double *d = opaque;
	pthread_mutex_lock(&d->lock);
	out->target_pages = out->actual_pages = d->balloon_mib * 256;
	out->seen = 1u << 4;
	out->value[4] = 12345;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int d_balloon_interval(void *opaque, uint32_t seconds, struct cove_err *err)
{
	(void)err;
	struct fc_double *d = opaque;
	pthread_mutex_lock(&d->lock);
	d->balloon_interval = seconds;
	note(d, "balloon_set_interval");
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int d_net_update(void *opaque, unsigned index, const struct fc_net_update *u,
			struct cove_err *err)
{
	(void)err;
	struct fc_double *d = opaque;
	pthread_mutex_lock(&d->lock);
	d->net_updates++;
	d->net_index = index;
	d->net_update = *u;
	note(d, "net_update");
	pthread_mutex_unlock(&d->lock);
	return 0;
}

const struct vmm_api_ops fc_double_ops = {
    .start = d_start,
    .pause = d_pause,
    .resume = d_resume,
    .send_ctrl_alt_del = d_cad,
    .flush_metrics = d_flush,
    .shutdown = d_shutdown,
    .stats = d_stats,
    .balloon_set = d_balloon,
    .balloon_stats = d_balloon_stats,
    .balloon_set_interval = d_balloon_interval,
    .net_update = d_net_update,
};
