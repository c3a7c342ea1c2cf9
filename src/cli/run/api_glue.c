/* `cove run --api-sock`: struct vmm_api_ops for a live machine, and the wait for InstanceStart. */
#include "cli/run/api_glue.h"
#include "api/fc_api.h"
#include "devices/acpi_pm.h"
#include "devices/virtio/virtio_devices.h"
#include "devices/virtio/virtio_machine.h"
#include "util/log.h"
#include "vmm/loader.h"

#include <cove/block.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAUSE_TIMEOUT_MS  2000
#define ATTACH_TIMEOUT_MS 3000

struct api_glue {
	pthread_mutex_t lock; /* guards m, console_fd */
	pthread_cond_t cond;  /* signalled on attach */
	struct fc_api_server *srv;
	struct run_config *cfg;
	uint64_t start_ns;
	int startfd; /* eventfd: InstanceStart filled cfg */
	struct machine *m;
	int console_fd;
	bool paused;
	struct fc_metrics metrics;
	/* The drives' API ids in disk order (GET /stats names them so). */
	char drive_ids[FC_MAX_DRIVES][FC_ID_MAX];
	unsigned ndrive_ids;
};

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* --- InstanceStart: fc_vm_config onto struct run_config --- */

static int set(struct run_config *c, const char *key, struct cove_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int set(struct run_config *c, const char *key, struct cove_err *err, const char *fmt, ...)
{
	char value[FC_PATH_MAX + FC_ARGS_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(value))
		return cove_err_set(err, -EINVAL, "%s: value too long", key);
	int r = run_config_set(c, key, value, err);
	if (r && !strncmp(err->msg, "unknown", 7))
		cove_err_prefix(err, "this Cove has no %s devices yet", key);
	return r;
}

/* A file the VMM will read: it must exist and be a regular file (a drive: or a block
 * device) now. */
static int check_file(const char *what, const char *path, struct cove_err *err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return cove_err_set(err, -errno, "%s %s: %s", what, path, strerror(errno));
	if (!S_ISREG(st.st_mode) && !(S_ISBLK(st.st_mode) && !strcmp(what, "drive")))
		return cove_err_set(err, -EINVAL, "%s %s: not a regular file", what, path);
	if (access(path, R_OK) < 0)
		return cove_err_set(err, -errno, "%s %s: %s", what, path, strerror(errno));
	return 0;
}

/* A drive's image (and its backing chain) must open now, so that InstanceStart can answer
 * 400 for a corrupt or incomplete qcow2 file. */
static int check_image(const char *path, struct cove_err *err)
{
	struct blk_open_opts o = {.readonly = true};
	struct blk *b;
	int r = blk_open(path, &o, &b, err);
	if (r)
		return cove_err_prefix(err, "drive");
	blk_close(b);
	return 0;
}

/* The kernel is parsed now (mapped, not read), so that InstanceStart can answer 400. */
static int check_kernel(const char *path, struct cove_err *err)
{
	int r = check_file("kernel", path, err);
	if (r)
		return r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cove_err_set(err, -errno, "kernel %s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size <= 0) {
		close(fd);
		return cove_err_set(err, -ENOEXEC, "kernel %s: an empty file", path);
	}
	size_t len = (size_t)st.st_size;
	void *img = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (img == MAP_FAILED)
		return cove_err_set(err, -errno, "kernel %s: %s", path, strerror(errno));
	struct bzimage_info bz;
	struct pvh_info pvh;
	switch (kernel_detect(img, len)) {
	case KERNEL_BZIMAGE:
		r = bzimage_parse(img, len, &bz, err);
		break;
	case KERNEL_ELF:
		r = pvh_parse(img, len, &pvh, err);
		break;
	default:
		r = cove_err_set(
		    err, -ENOEXEC,
		    "not a kernel (neither a bzImage nor an ELF file with a PVH note)");
		break;
	}
	munmap(img, len);
	if (r)
		cove_err_prefix(err, "kernel %s", path);
	return r;
}

static void keep_drive_ids(struct api_glue *g, const struct fc_vm_config *fc)
{
	g->ndrive_ids = fc->ndrives;
	for (unsigned i = 0; i < fc->ndrives; i++)
		memcpy(g->drive_ids[i], fc->drives[i].drive_id, FC_ID_MAX);
}

static int map_devices(struct run_config *c, const struct fc_vm_config *fc, struct cove_err *err)
{
	int r = 0;
	for (unsigned i = 0; i < fc->ndrives && !r; i++) {
		const struct fc_drive *d = &fc->drives[i];
		char extra[96] = "";
		size_t o = 0;
		if (d->is_read_only)
			o += (size_t)snprintf(extra + o, sizeof(extra) - o, ",readonly=on");
		if (strlen(d->drive_id) <= 20)
			o += (size_t)snprintf(extra + o, sizeof(extra) - o, ",id=%s", d->drive_id);
		uint64_t bps = fc_bucket_rate(&d->rate_limiter.bandwidth);
		uint64_t iops = fc_bucket_rate(&d->rate_limiter.ops);
		if (bps && o < sizeof(extra))
			o += (size_t)snprintf(extra + o, sizeof(extra) - o, ",bps=%llu",
					      (unsigned long long)bps);
		if (iops && o < sizeof(extra))
			snprintf(extra + o, sizeof(extra) - o, ",iops=%llu",
				 (unsigned long long)iops);
		r = check_file("drive", d->path_on_host, err);
		if (!r)
			r = check_image(d->path_on_host, err);
		if (!r)
			r = set(c, "disk", err, "path=%s%s", d->path_on_host, extra);
	}
	for (unsigned i = 0; i < fc->nnets && !r; i++) {
		const struct fc_net *n = &fc->nets[i];
		r = set(c, "net", err, "tap=%s%s%s,bps=%llu,pps=%llu,rx_bps=%llu,rx_pps=%llu",
			n->host_dev_name, n->guest_mac[0] ? ",mac=" : "", n->guest_mac,
			(unsigned long long)fc_bucket_rate(&n->tx_rate_limiter.bandwidth),
			(unsigned long long)fc_bucket_rate(&n->tx_rate_limiter.ops),
			(unsigned long long)fc_bucket_rate(&n->rx_rate_limiter.bandwidth),
			(unsigned long long)fc_bucket_rate(&n->rx_rate_limiter.ops));
	}
	if (!r && fc->vsock.set)
		r = set(c, "vsock", err, "cid=%u,uds=%s", fc->vsock.guest_cid, fc->vsock.uds_path);
	if (!r && fc->balloon.set && fc->balloon.amount_mib > fc->machine.mem_size_mib)
		r = cove_err_set(err, -EINVAL,
				 "balloon amount_mib %u: more than the guest's %u MiB of memory",
				 fc->balloon.amount_mib, fc->machine.mem_size_mib);
	if (!r && fc->balloon.set)
		r = set(c, "balloon", err,
			"amount_mib=%u,deflate_on_oom=%s,stats_polling_interval_s=%u",
			fc->balloon.amount_mib, fc->balloon.deflate_on_oom ? "on" : "off",
			fc->balloon.stats_polling_interval_s);
	return r;
}

static const char *console_setting(const struct run_config *c, char *buf, size_t len)
{
	switch (c->console) {
	case CONSOLE_NONE:
		return "none";
	case CONSOLE_FILE:
		snprintf(buf, len, "file:%s", c->console_path);
		return buf;
	default:
		return "stdio";
	}
}

/* Builds a whole new run_config from fc and the command line's console and reboot settings. */
static int map_config(const struct run_config *base, const struct fc_vm_config *fc,
		      struct run_config *c, struct cove_err *err)
{
	char con[FC_PATH_MAX + 8];
	run_config_init(c);
	c->on_reboot = base->on_reboot;
	c->boot = base->boot;
	c->log_level = base->log_level;
	c->hugepages = base->hugepages || !strcmp(fc->machine.huge_pages, "2M");
	int r = set(c, "console", err, "%s", console_setting(base, con, sizeof(con)));
	if (!r)
		r = check_kernel(fc->boot.kernel_image_path, err);
	if (!r)
		r = set(c, "kernel", err, "%s", fc->boot.kernel_image_path);
	if (!r && fc->boot.initrd_path[0] && !(r = check_file("initrd", fc->boot.initrd_path, err)))
		r = set(c, "initrd", err, "%s", fc->boot.initrd_path);
	if (!r && fc->boot.boot_args[0])
		r = set(c, "cmdline", err, "%s", fc->boot.boot_args);
	if (!r)
		r = set(c, "cpus", err, "%u", fc->machine.vcpu_count);
	if (!r)
		r = set(c, "memory", err, "%uM", fc->machine.mem_size_mib);
	if (!r)
		r = map_devices(c, fc, err);
	if (r)
		run_config_free(c);
	return r;
}

/* PUT /logger: the level, and the log file takes what cove writes to stderr. */
static int apply_logger(const struct fc_logger *l, struct cove_err *err)
{
	if (!l->set)
		return 0;
	static const struct {
		const char *name;
		enum log_level level;
	} levels[] = {
	    {"Error", LOG_LEVEL_ERROR}, {"Warning", LOG_LEVEL_WARN}, {"Info", LOG_LEVEL_INFO},
	    {"Debug", LOG_LEVEL_DEBUG}, {"Trace", LOG_LEVEL_DEBUG},  {"Off", LOG_LEVEL_ERROR},
	};
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (!strcmp(l->level, levels[i].name))
			log_set_level(levels[i].level);
	if (!l->log_path[0])
		return 0;
	int fd = open(l->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0600);
	if (fd < 0)
		return cove_err_set(err, -errno, "log_path %s: %s", l->log_path, strerror(errno));
	dup2(fd, STDERR_FILENO);
	close(fd);
	return 0;
}

static int op_start(void *opaque, const struct fc_vm_config *fc, struct cove_err *err)
{
	struct api_glue *g = opaque;
	struct run_config c;
	int r = map_config(g->cfg, fc, &c, err);
	if (r)
		return r;
	if ((r = apply_logger(&fc->logger, err))) {
		run_config_free(&c);
		return r;
	}
	run_config_free(g->cfg);
	*g->cfg = c;
	g->metrics = fc->metrics;
	keep_drive_ids(g, fc);
	uint64_t one = 1;
	if (write(g->startfd, &one, sizeof(one)) < 0)
		return cove_err_set(err, -errno, "cannot wake the VMM: %s", strerror(errno));
	return 0;
}

/* --- runtime ops: the machine, once the main thread has attached it --- */

/* Returns the machine with g->lock held, or NULL (err set, lock released). */
static struct machine *get_machine(struct api_glue *g, struct cove_err *err)
{
	pthread_mutex_lock(&g->lock);
	struct timespec end;
	clock_gettime(CLOCK_REALTIME, &end);
	end.tv_sec += ATTACH_TIMEOUT_MS / 1000;
	while (!g->m)
		if (pthread_cond_timedwait(&g->cond, &g->lock, &end) == ETIMEDOUT)
			break;
	if (g->m)
		return g->m;
	pthread_mutex_unlock(&g->lock);
	cove_err_set(err, -EAGAIN, "the machine is not running (starting, restarting or stopped)");
	return NULL;
}

static int op_pause(void *opaque, struct cove_err *err)
{
	struct api_glue *g = opaque;
	struct machine *m = get_machine(g, err);
	if (!m)
		return err->code;
	int r = g->paused ? 0 : vm_pause(&m->vm, PAUSE_TIMEOUT_MS);
	if (r == 0)
		g->paused = true;
	pthread_mutex_unlock(&g->lock);
	if (r)
		return cove_err_set(err, r, "cannot pause: %s",
				    r == -ETIMEDOUT ? "the vCPUs did not stop in time"
						    : "the machine is stopping");
	return 0;
}

static int op_resume(void *opaque, struct cove_err *err)
{
	struct api_glue *g = opaque;
	struct machine *m = get_machine(g, err);
	if (!m)
		return err->code;
	vm_resume(&m->vm);
	g->paused = false;
	pthread_mutex_unlock(&g->lock);
	return 0;
}

/*
 * Queues bytes in the i8042's output buffer as keystrokes. The i8042 has no call for it
 * yet, so this goes through its saved-state format (version 1: magic u32, version u16,
 * 9 register bytes, count u8, count x {byte, aux}) with the vCPUs paused.
 */
static int i8042_inject(struct device *kbd, bool set1, struct cove_err *err)
{
	static const uint8_t set1_keys[] = {0x1D, 0x38, 0xE0, 0x53, 0xE0, 0xD3, 0xB8, 0x9D};
	static const uint8_t set2_keys[] = {0x14, 0x11, 0xE0, 0x71, 0xE0, 0xF0,
					    0x71, 0xF0, 0x11, 0xF0, 0x14};
	const uint8_t *keys = set1 ? set1_keys : set2_keys;
	size_t nkeys = set1 ? sizeof(set1_keys) : sizeof(set2_keys);
	struct state_buf b = {0};
	int r = kbd->ops->save ? kbd->ops->save(kbd, &b) : -ENOTSUP;
	enum { HDR = 4 + 2 + 9, QUEUE = 16 };
	if (!r && (b.len < HDR + 1 || b.data[4] != 1 || b.data[5] != 0 ||
		   b.len != HDR + 1 + 2 * (size_t)b.data[HDR]))
		r = -EPROTO;
	if (!r && b.data[HDR] + nkeys > QUEUE)
		r = -EBUSY;
	uint8_t out[HDR + 1 + 2 * QUEUE];
	if (!r) {
		memcpy(out, b.data, b.len);
		size_t o = b.len;
		for (size_t i = 0; i < nkeys; i++) {
			out[o++] = keys[i];
			out[o++] = 0;
		}
		out[HDR] = (uint8_t)(out[HDR] + nkeys);
		r = kbd->ops->restore(kbd, out, o);
	}
	state_buf_free(&b);
	if (r)
		return cove_err_set(err, r, "cannot queue Ctrl-Alt-Del in the i8042: %s",
				    r == -EBUSY ? "its buffer is full (the guest is not reading)"
						: strerror(-r));
	return 0;
}

static int op_ctrl_alt_del(void *opaque, struct cove_err *err)
{
	struct api_glue *g = opaque;
	struct machine *m = get_machine(g, err);
	if (!m)
		return err->code;
	int r = g->paused ? 0 : vm_pause(&m->vm, PAUSE_TIMEOUT_MS);
	if (r) {
		pthread_mutex_unlock(&g->lock);
		return cove_err_set(err, r, "cannot stop the vCPUs to press the keys");
	}
	/* The guest reads set 1 when the controller translates (command byte bit 6). */
	struct state_buf b = {0};
	bool set1 = true;
	if (m->i8042->ops->save && m->i8042->ops->save(m->i8042, &b) == 0 && b.len > 6)
		set1 = (b.data[6] & 0x40) != 0;
	state_buf_free(&b);
	r = i8042_inject(m->i8042, set1, err);
	if (!g->paused)
		vm_resume(&m->vm);
	pthread_mutex_unlock(&g->lock);
	return r;
}

static int op_shutdown(void *opaque, struct cove_err *err)
{
	struct api_glue *g = opaque;
	struct machine *m = get_machine(g, err);
	if (!m)
		return err->code;
	acpi_pm_power_button(m->pm);
	log_info("api: ACPI power button pressed");
	pthread_mutex_unlock(&g->lock);
	return 0;
}

static uint64_t rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "re");
	unsigned long long size = 0, rss = 0;
	if (f) {
		if (fscanf(f, "%llu %llu", &size, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (uint64_t)sysconf(_SC_PAGESIZE) / 1024;
}

/* The machine's n-th virtio device of this id, with g->lock held; NULL (lock released, err
 * set) when the machine is not running or has no such device. */
static struct virtio_pci *get_virtio(struct api_glue *g, uint16_t id, unsigned n, const char *what,
				     struct cove_err *err)
{
	struct machine *m = get_machine(g, err);
	if (!m)
		return NULL;
	struct virtio_pci *vp = virtio_machine_find(m->virtio, id, n);
	if (!vp) {
		pthread_mutex_unlock(&g->lock);
		cove_err_set(err, -ENODEV, "the machine has no %s", what);
	}
	return vp;
}

static int op_balloon_set(void *opaque, uint32_t amount_mib, struct cove_err *err)
{
	struct api_glue *g = opaque;
	struct virtio_pci *vp = get_virtio(g, VIRTIO_ID_BALLOON, 0, "balloon device", err);
	if (!vp)
		return err->code;
	int r = virtio_balloon_set_target(vp, amount_mib, err);
	pthread_mutex_unlock(&g->lock);
	return r;
}

static int op_balloon_stats(void *opaque, struct fc_balloon_stats *out, struct cove_err *err)
{
	struct api_glue *g = opaque;
	struct virtio_pci *vp = get_virtio(g, VIRTIO_ID_BALLOON, 0, "balloon device", err);
	if (!vp)
		return err->code;
	struct virtio_balloon_info bi;
	virtio_balloon_info(vp, &bi);
	pthread_mutex_unlock(&g->lock);
	out->target_pages = bi.target_pages;
	out->actual_pages = bi.actual_pages;
	out->seen = bi.stats_seen & ((1u << FC_BALLOON_NSTATS) - 1);
	for (unsigned i = 0; i < FC_BALLOON_NSTATS && i < VIRTIO_BALLOON_NSTATS; i++)
		out->value[i] = bi.stats[i];
	return 0;
}

static int op_balloon_set_interval(void *opaque, uint32_t seconds, struct cove_err *err)
{
	struct api_glue *g = opaque;
	struct virtio_pci *vp = get_virtio(g, VIRTIO_ID_BALLOON, 0, "balloon device", err);
	if (!vp)
		return err->code;
	int r = virtio_balloon_set_interval(vp, seconds);
	pthread_mutex_unlock(&g->lock);
	if (r)
		return cove_err_set(err, r, "Cannot enable or disable statistics after boot.");
	return 0;
}

/* One direction of a PATCH: a rate for each bucket given (0: none), KEEP for the others. */
static void update_dir(const struct fc_rate_limiter *l, uint64_t *bps, uint64_t *pps)
{
	*bps = *pps = VIRTIO_NET_KEEP;
	if (!l->set)
		return;
	if (l->bandwidth.set)
		*bps = fc_bucket_rate(&l->bandwidth);
	if (l->ops.set)
		*pps = fc_bucket_rate(&l->ops);
}

static int op_net_update(void *opaque, unsigned index, const struct fc_net_update *u,
			 struct cove_err *err)
{
	struct api_glue *g = opaque;
	char what[48];
	snprintf(what, sizeof(what), "network interface number %u", index + 1);
	struct virtio_pci *vp = get_virtio(g, VIRTIO_ID_NET, index, what, err);
	if (!vp)
		return err->code;
	struct virtio_net_limits l;
	update_dir(&u->rx_rate_limiter, &l.rx_bps, &l.rx_pps);
	update_dir(&u->tx_rate_limiter, &l.tx_bps, &l.tx_pps);
	virtio_net_set_limits(vp, &l);
	pthread_mutex_unlock(&g->lock);
	log_info("api: %s: limits changed", u->iface_id);
	return 0;
}

static int op_stats(void *opaque, struct fc_vm_stats *out, struct cove_err *err)
{
	struct api_glue *g = opaque;
	(void)err;
	out->cpu_time_ns = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	pthread_mutex_lock(&g->lock); /* no wait for the machine: GET /stats answers at once */
	struct machine *m = g->m;
	if (!m) {
		pthread_mutex_unlock(&g->lock);
		return 0; /* not running: the CPU time alone */
	}
	/* libvirt's balloon.current: the memory the guest has, less what its balloon holds. */
	uint64_t ram_kib = (m->vm.mem.low_size + m->vm.mem.high_size) >> 10;
	struct virtio_pci *vp = virtio_machine_find(m->virtio, VIRTIO_ID_BALLOON, 0);
	uint64_t held_kib = 0;
	if (vp) {
		struct virtio_balloon_info bi;
		virtio_balloon_info(vp, &bi);
		held_kib = (uint64_t)bi.actual_pages * 4;
	}
	out->balloon_maximum_kib = ram_kib;
	out->balloon_current_kib = held_kib < ram_kib ? ram_kib - held_kib : 0;
	struct virtio_pci *d;
	for (unsigned i = 0;
	     i < FC_MAX_DRIVES && (d = virtio_machine_find(m->virtio, VIRTIO_ID_BLOCK, i)) != NULL;
	     i++) {
		struct virtio_blk_stats s;
		if (virtio_blk_stats(d, &s))
			break;
		snprintf(out->block[i].name, sizeof(out->block[i].name), "%s",
			 i < g->ndrive_ids ? g->drive_ids[i] : s.id);
		out->block[i].rd_reqs = s.rd_reqs;
		out->block[i].rd_bytes = s.rd_bytes;
		out->block[i].wr_reqs = s.wr_reqs;
		out->block[i].wr_bytes = s.wr_bytes;
		out->block[i].fl_reqs = s.fl_reqs;
		out->block[i].errors = s.errors;
		out->nblock = i + 1;
	}
	pthread_mutex_unlock(&g->lock);
	return 0;
}

/* PATCH /drives/{id}: the disk at index (API drives), else the one whose id is drive_id. */
static int op_drive_update(void *opaque, int index, const struct fc_drive_update *u,
			   struct cove_err *err)
{
	struct api_glue *g = opaque;
	struct machine *m = get_machine(g, err);
	if (!m)
		return err->code;
	struct virtio_pci *d = NULL;
	struct virtio_blk_stats s;
	if (index >= 0) {
		d = virtio_machine_find(m->virtio, VIRTIO_ID_BLOCK, (unsigned)index);
	} else {
		for (unsigned i = 0;
		     (d = virtio_machine_find(m->virtio, VIRTIO_ID_BLOCK, i)) != NULL; i++)
			if (!virtio_blk_stats(d, &s) && !strcmp(s.id, u->drive_id))
				break;
	}
	int r = 0;
	if (!d || virtio_blk_stats(d, &s)) {
		r = cove_err_set(err, -ENOENT, "drive '%s' not found", u->drive_id);
	} else if (u->rate_limiter.set) {
		const struct fc_token_bucket *bw = &u->rate_limiter.bandwidth;
		const struct fc_token_bucket *ops = &u->rate_limiter.ops;
		uint64_t bps = bw->set ? fc_bucket_rate(bw) : s.bps;
		uint64_t iops = ops->set ? fc_bucket_rate(ops) : s.iops;
		virtio_blk_set_limits(d, bps, iops);
		log_info("api: drive '%s': limits now %llu bytes/s, %llu requests/s (0: none)",
			 u->drive_id, (unsigned long long)bps, (unsigned long long)iops);
	}
	pthread_mutex_unlock(&g->lock);
	return r;
}

/* FlushMetrics: one JSON line of counters appended to metrics_path. */
static int op_flush_metrics(void *opaque, struct cove_err *err)
{
	struct api_glue *g = opaque;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "utc_timestamp_ms",
			       json_object_new_uint64(clock_ns(CLOCK_REALTIME) / 1000000));
	json_object *c = json_object_new_object();
	json_object_object_add(
	    c, "uptime_ms",
	    json_object_new_uint64((clock_ns(CLOCK_MONOTONIC) - g->start_ns) / 1000000));
	json_object_object_add(c, "state",
			       json_object_new_string(fc_state_name(fc_api_get_state(g->srv))));
	json_object_object_add(c, "cpu_time_ns",
			       json_object_new_uint64(clock_ns(CLOCK_PROCESS_CPUTIME_ID)));
	json_object_object_add(c, "rss_kib", json_object_new_uint64(rss_kib()));
	pthread_mutex_lock(&g->lock);
	struct machine *m = g->m;
	if (m) {
		json_object *ex = json_object_new_array();
		for (unsigned i = 0; i < m->vm.ncpus; i++)
			json_object_array_add(ex, json_object_new_uint64(__atomic_load_n(
						      &m->vm.vcpus[i].io_exits, __ATOMIC_RELAXED)));
		json_object_object_add(c, "vcpu_io_exits", ex);
		json_object_object_add(c, "io_exits", json_object_new_uint64(vm_io_exits(&m->vm)));
		json_object_object_add(c, "unclaimed_accesses",
				       json_object_new_uint64(bus_unclaimed_count(m->vm.pio) +
							      bus_unclaimed_count(m->vm.mmio)));
		uint16_t sts = 0;
		m->pm->ops->read(m->pm, 0, &sts, 2); /* PM1a_STS, as the guest reads it */
		json_object_object_add(c, "acpi_pm1_status", json_object_new_int(sts));
		struct stat st;
		if (g->console_fd >= 0 && fstat(g->console_fd, &st) == 0 && S_ISREG(st.st_mode))
			json_object_object_add(c, "console_bytes",
					       json_object_new_uint64((uint64_t)st.st_size));
	}
	pthread_mutex_unlock(&g->lock);
	json_object_object_add(o, "cove", c);
	const char *line = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	int ret = 0;
	int fd = open(g->metrics.metrics_path,
		      O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0600);
	if (fd < 0) {
		ret = cove_err_set(err, -errno, "metrics_path %s: %s", g->metrics.metrics_path,
				   strerror(errno));
	} else {
		size_t len = strlen(line);
		char *buf = malloc(len + 1);
		if (buf) {
			memcpy(buf, line, len);
			buf[len] = '\n';
			if (write(fd, buf, len + 1) != (ssize_t)(len + 1))
				ret = cove_err_set(err, -EIO, "metrics_path %s: short write",
						   g->metrics.metrics_path);
			free(buf);
		}
		close(fd);
	}
	json_object_put(o);
	return ret;
}

static const struct vmm_api_ops ops = {
    .start = op_start,
    .pause = op_pause,
    .resume = op_resume,
    .send_ctrl_alt_del = op_ctrl_alt_del,
    .flush_metrics = op_flush_metrics,
    .shutdown = op_shutdown,
    .stats = op_stats,
    .balloon_set = op_balloon_set,
    .balloon_stats = op_balloon_stats,
    .balloon_set_interval = op_balloon_set_interval,
    .net_update = op_net_update,
    .drive_update = op_drive_update,
};

/* --- the main thread's side --- */

/* A Firecracker config file loaded by --config: reported by GET /vm/config when booted. */
static struct fc_vm_config *file_config;

bool api_glue_is_fc_config(const char *text, size_t len)
{
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return false;
	json_object *o = len <= INT32_MAX ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
	json_tokener_free(tok);
	bool fc = o && json_object_is_type(o, json_type_object) &&
		  json_object_object_get_ex(o, "boot-source", NULL);
	json_object_put(o);
	return fc;
}

int api_glue_load_fc_config(struct run_config *cfg, const char *text, size_t len,
			    struct cove_err *err)
{
	struct fc_vm_config *fc = calloc(1, sizeof(*fc));
	if (!fc)
		return cove_err_set(err, -ENOMEM, "out of memory");
	struct run_config c;
	int r = fc_parse_full_config(text, len, fc, err);
	if (!r && !fc->boot.set)
		r = cove_err_set(err, -EINVAL, "boot-source: missing");
	if (!r)
		r = map_config(cfg, fc, &c, err);
	if (!r && (r = apply_logger(&fc->logger, err)))
		run_config_free(&c);
	if (r) {
		free(fc);
		return r;
	}
	run_config_free(cfg);
	*cfg = c;
	free(file_config);
	file_config = fc;
	return 0;
}

int api_glue_start(const char *sock_path, struct run_config *cfg, uint64_t start_ns,
		   struct api_glue **out)
{
	struct api_glue *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	g->cfg = cfg;
	g->start_ns = start_ns;
	g->console_fd = -1;
	g->startfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (g->startfd < 0) {
		int r = -errno;
		free(g);
		log_error("api socket: eventfd: %s", strerror(-r));
		return r;
	}
	int r = fc_api_serve(sock_path, &ops, g, &g->srv);
	if (r) { /* fc_api_serve has logged why */
		close(g->startfd);
		free(g);
		return r;
	}
	*out = g;
	return 0;
}

int api_glue_wait_start(struct api_glue *g)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		return -errno;
	log_info("api: waiting for configuration and InstanceStart");
	int ret = 0;
	for (;;) {
		struct pollfd p[2] = {{.fd = g->startfd, .events = POLLIN},
				      {.fd = sfd, .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		struct signalfd_siginfo si;
		if ((p[1].revents & POLLIN) && read(sfd, &si, sizeof(si)) == sizeof(si)) {
			ret = (int)si.ssi_signo;
			break;
		}
		uint64_t v;
		if ((p[0].revents & POLLIN) && read(g->startfd, &v, sizeof(v)) == sizeof(v))
			break;
	}
	close(sfd);
	return ret;
}

/* The command line's settings in Firecracker's terms, for GET /vm/config. */
void api_glue_booted(struct api_glue *g, const struct run_config *cfg)
{
	if (!g)
		return;
	struct fc_vm_config *fc = calloc(1, sizeof(*fc));
	if (!fc)
		return;
	if (file_config) {
		*fc = *file_config;
		g->metrics = fc->metrics;
		keep_drive_ids(g, fc);
	} else {
		fc_config_init(fc);
	}
	fc->boot.set = true;
	snprintf(fc->boot.kernel_image_path, sizeof(fc->boot.kernel_image_path), "%s",
		 cfg->kernel ? cfg->kernel : "(built-in probe guest)");
	snprintf(fc->boot.initrd_path, sizeof(fc->boot.initrd_path), "%s",
		 cfg->initrd ? cfg->initrd : "");
	snprintf(fc->boot.boot_args, sizeof(fc->boot.boot_args), "%s",
		 cfg->cmdline ? cfg->cmdline : "");
	if (!file_config) { /* the command line's devices, so that PATCH finds them by id */
		const struct virtio_opts *v = &cfg->virtio;
		for (unsigned i = 0; i < v->nnics && i < FC_MAX_NICS; i++) {
			struct fc_net *n = &fc->nets[fc->nnets++];
			snprintf(n->iface_id, sizeof(n->iface_id), "net%u", i);
			snprintf(n->host_dev_name, sizeof(n->host_dev_name), "%s", v->net[i].tap);
		}
		if (v->balloon)
			fc->balloon = (struct fc_balloon){
			    .set = true,
			    .amount_mib = v->balloon_opts.amount_mib,
			    .deflate_on_oom = v->balloon_opts.deflate_on_oom,
			    .stats_polling_interval_s = v->balloon_opts.stats_interval_s,
			};
	}
	fc->machine.vcpu_count = cfg->cpus;
	fc->machine.mem_size_mib = (uint32_t)(cfg->memory >> 20);
	if (cfg->hugepages && strcmp(fc->machine.huge_pages, "2M"))
		snprintf(fc->machine.huge_pages, sizeof(fc->machine.huge_pages), "2M");
	fc_api_set_started(g->srv, fc);
	free(fc);
}

void api_glue_attach(struct api_glue *g, struct machine *m, int console_fd)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->m = m;
	g->console_fd = console_fd;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

void api_glue_detach(struct api_glue *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->m = NULL;
	pthread_mutex_unlock(&g->lock);
}

void api_glue_stopped(struct api_glue *g)
{
	if (g)
		fc_api_set_state(g->srv, FC_STATE_STOPPED);
}

void api_glue_free(struct api_glue *g)
{
	free(file_config);
	file_config = NULL;
	if (!g)
		return;
	fc_api_stop(g->srv);
	close(g->startfd);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cond);
	free(g);
}
