/* Settings of the virtio devices of a machine (--disk, --net, --vsock, --rng, --balloon). */
#ifndef COVE_DEVICES_VIRTIO_VIRTIO_OPTS_H
#define COVE_DEVICES_VIRTIO_VIRTIO_OPTS_H

#include <cove/block.h>
#include <cove/error.h>
#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_MAX_DISKS     8
#define VIRTIO_MAX_NICS	     4
#define VIRTIO_NET_MAX_PAIRS 16 /* queue pairs of one NIC (2 * 16 + 1 virtqueues) */
/* How long hvc0's host side may take none of the guest's pending output before the device
 * drops it (hvc drop_after_ms= overrides it): Linux's hvc console spins, a lock held, until the
 * device returns each buffer, so a client that stops reading must not stop the guest. */
#define VIRTIO_HVC_DROP_AFTER_MS 2000u

struct virtio_disk_opts {
	char *path;
	char id[21]; /* VIRTIO_BLK_ID_BYTES (20) + NUL */
	bool readonly;
	bool direct;		/* cache=none: O_DIRECT */
	unsigned queues;	/* 1..8 */
	uint64_t bps, iops;	/* rate limits (0: none) */
	bool sync_io;		/* aio=sync: the block layer's synchronous calls, no io_uring */
	enum blk_format format; /* format=raw|qcow2; BLK_FMT_AUTO probes the image */
};

struct virtio_net_opts {
	char *tap;
	uint8_t mac[6];
	bool mac_set;
	uint64_t bps, pps;	 /* transmit (guest to host) limits (0: none) */
	uint64_t rx_bps, rx_pps; /* receive (host to guest) limits (0: none) */
	unsigned queues;	 /* queue pairs, one tap queue each: 1..VIRTIO_NET_MAX_PAIRS */
};

struct virtio_balloon_opts {
	uint32_t amount_mib;	   /* the target at boot */
	bool deflate_on_oom;	   /* offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM */
	uint32_t stats_interval_s; /* hand the statistics buffer back this often (0: never) */
};

struct virtio_opts {
	struct virtio_disk_opts disk[VIRTIO_MAX_DISKS];
	unsigned ndisks;
	struct virtio_net_opts net[VIRTIO_MAX_NICS];
	unsigned nnics;
	bool rng;
	bool balloon;
	struct virtio_balloon_opts balloon_opts;
	bool vsock;
	uint32_t vsock_cid;
	char *vsock_uds;
	bool hvc;		    /* virtio-console (hvc0) */
	char *hvc_uds;		    /* its host side: a Unix socket to connect to... */
	char *hvc_file;		    /* ...or a file that gets the guest's output */
	uint32_t hvc_drop_after_ms; /* 0: VIRTIO_HVC_DROP_AFTER_MS */
};

/* True when key is one of disk, net, vsock, rng, balloon, hvc. */
bool virtio_opts_is_key(const char *key);
/*
 * Applies one setting: disk "path=P[,format=raw|qcow2][,readonly=on|off][,id=S]
 * [,cache=none|writeback][,queues=N][,bps=N][,iops=N][,aio=io_uring|sync]", net
 * "tap=NAME[,mac=xx:..][,queues=N][,bps=N][,pps=N][,rx_bps=N][,rx_pps=N]", vsock
 * "cid=N,uds=PATH", hvc "uds=PATH|file=PATH[,drop_after_ms=N]", rng "on|off|true|false"
 * (empty: on), balloon the same or
 * "amount_mib=N[,deflate_on_oom=on|off][,stats_polling_interval_s=N]" (deflate_on_oom
 * defaults to on). Returns 0 or -EINVAL with err set.
 */
int virtio_opts_set(struct virtio_opts *o, const char *key, const char *value,
		    struct cove_err *err);
void virtio_opts_free(struct virtio_opts *o);

#endif
