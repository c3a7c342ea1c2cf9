/* Parsing of the virtio device options: comma-separated key=value lists, all checked. */
#include "devices/virtio/virtio_opts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool virtio_opts_is_key(const char *key)
{
	static const char *const keys[] = {"disk", "net", "vsock", "rng", "balloon", "hvc"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(key, keys[i]))
			return true;
	return false;
}

static int parse_bool(const char *what, const char *v, bool *out, struct cove_err *err)
{
	if (!*v || !strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no"))
		*out = false;
	else
		return cove_err_set(err, -EINVAL, "%s '%s': expected on or off", what, v);
	return 0;
}

static int parse_u64(const char *what, const char *v, uint64_t max, uint64_t *out,
		     struct cove_err *err)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (!*v || *end || errno || n > max || *v == '-')
		return cove_err_set(err, -EINVAL, "%s '%s': expected a number up to %llu", what, v,
				    (unsigned long long)max);
	*out = n;
	return 0;
}

static int parse_mac(const char *v, uint8_t mac[6], struct cove_err *err)
{
	unsigned b[6];
	char tail;
	if (sscanf(v, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6 ||
	    strlen(v) != 17)
		return cove_err_set(err, -EINVAL, "mac '%s': expected xx:xx:xx:xx:xx:xx", v);
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	if (mac[0] & 1)
		return cove_err_set(err, -EINVAL, "mac '%s': a multicast address", v);
	return 0;
}

static int dup_str(char **dst, const char *v, struct cove_err *err)
{
	char *s = strdup(v);
	if (!s)
		return cove_err_set(err, -ENOMEM, "out of memory");
	free(*dst);
	*dst = s;
	return 0;
}

/* One key=value of a --disk/--net/--vsock list. */
static int apply(struct virtio_opts *o, const char *dev, char *k, char *v, struct cove_err *err)
{
	uint64_t n;
	if (!strcmp(dev, "disk")) {
		struct virtio_disk_opts *d = &o->disk[o->ndisks];
		if (!strcmp(k, "path"))
			return dup_str(&d->path, v, err);
		if (!strcmp(k, "readonly"))
			return parse_bool("readonly", v, &d->readonly, err);
		if (!strcmp(k, "format")) {
			if (blk_format_parse(v, &d->format))
				return cove_err_set(err, -EINVAL,
						    "format '%s': expected raw or qcow2", v);
			return 0;
		}
		if (!strcmp(k, "id")) {
			if (strlen(v) > 20)
				return cove_err_set(err, -EINVAL, "id '%s': at most 20 bytes", v);
			snprintf(d->id, sizeof(d->id), "%s", v);
			return 0;
		}
		if (!strcmp(k, "cache")) {
			if (!strcmp(v, "none") || !strcmp(v, "direct"))
				d->direct = true;
			else if (!strcmp(v, "writeback"))
				d->direct = false;
			else
				return cove_err_set(err, -EINVAL,
						    "cache '%s': expected none or writeback", v);
			return 0;
		}
		if (!strcmp(k, "queues")) {
			int r = parse_u64("queues", v, 8, &n, err);
			if (!r && n == 0)
				r = cove_err_set(err, -EINVAL, "queues: at least 1");
			d->queues = (unsigned)n;
			return r;
		}
		if (!strcmp(k, "aio")) {
			if (!strcmp(v, "io_uring"))
				d->sync_io = false;
			else if (!strcmp(v, "sync"))
				d->sync_io = true;
			else
				return cove_err_set(err, -EINVAL,
						    "aio '%s': expected io_uring or sync", v);
			return 0;
		}
		if (!strcmp(k, "bps"))
			return parse_u64("bps", v, UINT64_MAX / 2, &d->bps, err);
		if (!strcmp(k, "iops"))
			return parse_u64("iops", v, UINT64_MAX / 2, &d->iops, err);
	} else if (!strcmp(dev, "net")) {
		struct virtio_net_opts *t = &o->net[o->nnics];
		if (!strcmp(k, "tap")) {
			if (!*v || strlen(v) >= 16)
				return cove_err_set(err, -EINVAL, "tap '%s': 1 to 15 bytes", v);
			return dup_str(&t->tap, v, err);
		}
		if (!strcmp(k, "mac")) {
			t->mac_set = true;
			return parse_mac(v, t->mac, err);
		}
		if (!strcmp(k, "queues")) {
			int r = parse_u64("queues", v, VIRTIO_NET_MAX_PAIRS, &n, err);
			if (!r && n == 0)
				r = cove_err_set(err, -EINVAL, "queues: at least 1");
			t->queues = (unsigned)n;
			return r;
		}
		if (!strcmp(k, "bps"))
			return parse_u64("bps", v, UINT64_MAX / 2, &t->bps, err);
		if (!strcmp(k, "pps"))
			return parse_u64("pps", v, UINT64_MAX / 2, &t->pps, err);
		if (!strcmp(k, "rx_bps"))
			return parse_u64("rx_bps", v, UINT64_MAX / 2, &t->rx_bps, err);
		if (!strcmp(k, "rx_pps"))
			return parse_u64("rx_pps", v, UINT64_MAX / 2, &t->rx_pps, err);
	} else if (!strcmp(dev, "balloon")) {
		struct virtio_balloon_opts *b = &o->balloon_opts;
		if (!strcmp(k, "amount_mib")) {
			int r = parse_u64("amount_mib", v, 1024 * 1024, &n, err);
			b->amount_mib = (uint32_t)n;
			return r;
		}
		if (!strcmp(k, "deflate_on_oom"))
			return parse_bool("deflate_on_oom", v, &b->deflate_on_oom, err);
		if (!strcmp(k, "stats_polling_interval_s")) {
			int r = parse_u64("stats_polling_interval_s", v, 86400, &n, err);
			b->stats_interval_s = (uint32_t)n;
			return r;
		}
	} else if (!strcmp(dev, "hvc")) {
		if (!strcmp(k, "uds"))
			return dup_str(&o->hvc_uds, v, err);
		if (!strcmp(k, "file"))
			return dup_str(&o->hvc_file, v, err);
		if (!strcmp(k, "drop_after_ms")) {
			int r = parse_u64("drop_after_ms", v, 3600000, &n, err);
			if (!r && n == 0)
				r = cove_err_set(err, -EINVAL, "drop_after_ms: at least 1");
			if (!r)
				o->hvc_drop_after_ms = (uint32_t)n;
			return r;
		}
	} else {
		if (!strcmp(k, "cid")) {
			int r = parse_u64("cid", v, 0xFFFFFFFEu, &n, err);
			if (!r && n < 3)
				r = cove_err_set(err, -EINVAL, "cid %llu: must be 3 or more",
						 (unsigned long long)n);
			o->vsock_cid = (uint32_t)n;
			return r;
		}
		if (!strcmp(k, "uds"))
			return dup_str(&o->vsock_uds, v, err);
	}
	return cove_err_set(err, -EINVAL, "unknown %s option '%s'", dev, k);
}

int virtio_opts_set(struct virtio_opts *o, const char *key, const char *value, struct cove_err *err)
{
	if (!strcmp(key, "rng"))
		return parse_bool("rng", value, &o->rng, err);
	bool balloon = !strcmp(key, "balloon");
	if (balloon) {
		/* A plain switch, or the balloon's settings (which switch it on). */
		o->balloon_opts = (struct virtio_balloon_opts){.deflate_on_oom = true};
		if (!strchr(value, '='))
			return parse_bool("balloon", value, &o->balloon, err);
	}
	bool disk = !strcmp(key, "disk"), net = !strcmp(key, "net"), hvc = !strcmp(key, "hvc");
	if (!disk && !net && !hvc && !balloon && strcmp(key, "vsock"))
		return cove_err_set(err, -EINVAL, "unknown setting '%s'", key);
	if (disk && o->ndisks == VIRTIO_MAX_DISKS)
		return cove_err_set(err, -EINVAL, "at most %d disks", VIRTIO_MAX_DISKS);
	if (net && o->nnics == VIRTIO_MAX_NICS)
		return cove_err_set(err, -EINVAL, "at most %d network devices", VIRTIO_MAX_NICS);
	if (disk) { /* a slot left over by a failed parse starts clean */
		free(o->disk[o->ndisks].path);
		memset(&o->disk[o->ndisks], 0, sizeof(o->disk[0]));
	} else if (net) {
		free(o->net[o->nnics].tap);
		memset(&o->net[o->nnics], 0, sizeof(o->net[0]));
	}
	char *copy = strdup(value);
	if (!copy)
		return cove_err_set(err, -ENOMEM, "out of memory");
	int ret = 0;
	char *save = NULL;
	for (char *item = strtok_r(copy, ",", &save); item && !ret;
	     item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		if (!eq) {
			ret = cove_err_set(err, -EINVAL, "%s: '%s' is not key=value", key, item);
			break;
		}
		*eq = 0;
		ret = apply(o, key, item, eq + 1, err);
	}
	free(copy);
	if (!ret && disk) {
		struct virtio_disk_opts *d = &o->disk[o->ndisks];
		if (!d->path)
			ret = cove_err_set(err, -EINVAL, "disk: path= is required");
		else if (!d->queues)
			d->queues = 1;
		if (!ret && !d->id[0])
			snprintf(d->id, sizeof(d->id), "cove-disk%u", o->ndisks);
		if (!ret)
			o->ndisks++;
	} else if (!ret && net) {
		struct virtio_net_opts *t = &o->net[o->nnics];
		if (!t->tap) {
			ret = cove_err_set(err, -EINVAL, "net: tap= is required");
		} else {
			if (!t->mac_set) /* locally administered, unicast */
				memcpy(t->mac,
				       (uint8_t[]){0x52, 0x54, 0x00, 0xC0, 0x7E, (uint8_t)o->nnics},
				       6);
			if (!t->queues)
				t->queues = 1;
			o->nnics++;
		}
	} else if (!ret && balloon) {
		o->balloon = true;
	} else if (!ret && hvc) {
		if (!!o->hvc_uds == !!o->hvc_file)
			ret = cove_err_set(err, -EINVAL, "hvc: give one of uds=PATH or file=PATH");
		else
			o->hvc = true;
	} else if (!ret) {
		if (!o->vsock_cid || !o->vsock_uds)
			ret = cove_err_set(err, -EINVAL, "vsock: cid= and uds= are required");
		else
			o->vsock = true;
	}
	return ret;
}

void virtio_opts_free(struct virtio_opts *o)
{
	for (unsigned i = 0; i < VIRTIO_MAX_DISKS; i++)
		free(o->disk[i].path);
	for (unsigned i = 0; i < VIRTIO_MAX_NICS; i++)
		free(o->net[i].tap);
	free(o->vsock_uds);
	free(o->hvc_uds);
	free(o->hvc_file);
	memset(o, 0, sizeof(*o));
}
