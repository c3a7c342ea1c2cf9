/*
 * A VM's own control socket: Firecracker's HTTP API (the subset Cove has) plus Cove's
 * routes (GET /stats, PUT /shutdown). The server parses and validates every request into
 * struct fc_vm_config and calls the VMM through struct vmm_api_ops; the VMM never sees
 * HTTP or JSON.
 *
 * Routes: GET /, GET /version, PUT /boot-source, GET|PUT|PATCH /machine-config,
 * PUT /drives/{id}, PATCH /drives/{id} (rate limits after boot), PUT|PATCH
 * /network-interfaces/{id} (PATCH: rate limiters after boot), PUT /vsock, GET|PUT|PATCH
 * /balloon (PATCH: the target after boot), GET|PATCH /balloon/statistics,
 * PUT /logger, PUT /metrics, PUT /actions (InstanceStart, SendCtrlAltDel, FlushMetrics),
 * PATCH /vm (Paused, Resumed), GET /vm/config, GET /stats, PUT /shutdown.
 * Status codes follow Firecracker: 204 on success, 400 + {"fault_message": ...} on bad
 * input or on a pre-boot-only change after InstanceStart.
 */
#ifndef COVE_API_FC_API_H
#define COVE_API_FC_API_H

#include <cove/error.h>

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FC_MAX_DRIVES 16
#define FC_MAX_NICS   8
#define FC_MAX_VCPUS  32
#define FC_ID_MAX     64   /* drive_id, iface_id: [A-Za-z0-9_-], 1..63 bytes */
#define FC_PATH_MAX   1024 /* host paths */
#define FC_ARGS_MAX   4096 /* kernel command line */

struct fc_token_bucket {
	bool set;
	uint64_t size, one_time_burst, refill_time; /* refill_time in ms */
};

struct fc_rate_limiter {
	bool set;
	struct fc_token_bucket bandwidth, ops;
};

struct fc_boot_source {
	bool set;
	char kernel_image_path[FC_PATH_MAX];
	char initrd_path[FC_PATH_MAX]; /* "" when none */
	char boot_args[FC_ARGS_MAX];   /* "" when none */
};

struct fc_machine_config {
	uint32_t vcpu_count;   /* 1..32; default 1 */
	uint32_t mem_size_mib; /* default 128 */
	bool smt;
	bool track_dirty_pages;
	char huge_pages[16];  /* "None", "Transparent", "2M" */
	char cpu_template[8]; /* "None" only (Cove has no templates) */
};

struct fc_drive {
	char drive_id[FC_ID_MAX];
	char path_on_host[FC_PATH_MAX];
	bool is_root_device;
	bool is_read_only;
	char partuuid[64];
	char cache_type[16]; /* "Unsafe", "Writeback" */
	char io_engine[8];   /* "Sync", "Async" */
	struct fc_rate_limiter rate_limiter;
};

/* PATCH /drives/{id} after boot: what changes (absent buckets keep their limits; a bucket
 * with size or refill_time 0 removes that limit, as in Firecracker). */
struct fc_drive_update {
	char drive_id[FC_ID_MAX];
	bool has_path; /* path_on_host given (Cove cannot swap a running disk's file) */
	char path_on_host[FC_PATH_MAX];
	struct fc_rate_limiter rate_limiter;
};

struct fc_net {
	char iface_id[FC_ID_MAX];
	char host_dev_name[16]; /* a tap device name (IFNAMSIZ) */
	char guest_mac[18];	/* "" or "aa:bb:cc:dd:ee:ff" */
	uint32_t mtu;		/* 0: not advertised */
	struct fc_rate_limiter rx_rate_limiter, tx_rate_limiter;
};

struct fc_vsock {
	bool set;
	uint32_t guest_cid; /* >= 3 */
	char uds_path[FC_PATH_MAX];
};

struct fc_balloon {
	bool set;
	uint32_t amount_mib;
	bool deflate_on_oom;
	uint32_t stats_polling_interval_s;
};

struct fc_logger {
	bool set;
	char log_path[FC_PATH_MAX];
	char level[16]; /* Error, Warning, Info, Debug, Trace, Off */
	bool show_level, show_log_origin;
	char module[128];
};

struct fc_metrics {
	bool set;
	char metrics_path[FC_PATH_MAX];
};

/* Everything a client configured before InstanceStart. */
struct fc_vm_config {
	struct fc_boot_source boot;
	struct fc_machine_config machine;
	struct fc_drive drives[FC_MAX_DRIVES];
	unsigned ndrives;
	struct fc_net nets[FC_MAX_NICS];
	unsigned nnets;
	struct fc_vsock vsock;
	struct fc_balloon balloon;
	struct fc_logger logger;
	struct fc_metrics metrics;
};

enum fc_action {
	FC_ACTION_INSTANCE_START,
	FC_ACTION_SEND_CTRL_ALT_DEL,
	FC_ACTION_FLUSH_METRICS,
};

enum fc_state {
	FC_STATE_NOT_STARTED,
	FC_STATE_RUNNING,
	FC_STATE_PAUSED,
	FC_STATE_STOPPED, /* the guest powered off; the process is about to exit */
};

/* PATCH /network-interfaces/{id}: the limiters given (set) replace the NIC's; within one,
 * a bucket given with size or refill_time 0 removes that limit, an absent one is kept. */
struct fc_net_update {
	char iface_id[FC_ID_MAX];
	struct fc_rate_limiter rx_rate_limiter, tx_rate_limiter;
};

/* GET /balloon/statistics. seen has bit t when the driver reported statistic t (virtio's
 * tags: 0 swap_in, 1 swap_out, 2 major_faults, 3 minor_faults, 4 free_memory,
 * 5 total_memory, 6 available_memory, 7 disk_caches, 8 hugetlb_allocations,
 * 9 hugetlb_failures); absent ones are left out of the answer. */
#define FC_BALLOON_NSTATS 10
struct fc_balloon_stats {
	uint32_t target_pages, actual_pages;
	uint32_t seen;
	uint64_t value[FC_BALLOON_NSTATS];
};

/* Counters for GET /stats (libvirt domstats names are made from them by coved). */
struct fc_vm_stats {
	uint64_t cpu_time_ns;
	uint64_t balloon_current_kib, balloon_maximum_kib;
	unsigned nblock;
	struct {
		char name[FC_ID_MAX];
		uint64_t rd_reqs, rd_bytes, wr_reqs, wr_bytes, fl_reqs;
		uint64_t errors; /* requests answered with an error status */
	} block[FC_MAX_DRIVES];
	unsigned nnet;
	struct {
		char name[FC_ID_MAX];
		uint64_t rx_bytes, rx_pkts, tx_bytes, tx_pkts, rx_drop, tx_drop;
	} net[FC_MAX_NICS];
};

/*
 * What the VMM provides. Each op runs on an HTTP connection thread with the server's
 * lock held (so ops never run concurrently with each other) and returns 0 or -errno
 * with err filled for the client. A NULL op answers 400 "not supported by this VMM".
 */
struct vmm_api_ops {
	/* Boots the guest from cfg (already validated). After success the state is Running. */
	int (*start)(void *opaque, const struct fc_vm_config *cfg, struct cove_err *err);
	int (*pause)(void *opaque, struct cove_err *err);
	int (*resume)(void *opaque, struct cove_err *err);
	int (*send_ctrl_alt_del)(void *opaque, struct cove_err *err);
	int (*flush_metrics)(void *opaque, struct cove_err *err);
	/* Cove: press the ACPI power button. */
	int (*shutdown)(void *opaque, struct cove_err *err);
	/* Cove: fill the counters. */
	int (*stats)(void *opaque, struct fc_vm_stats *out, struct cove_err *err);
	/* PATCH /balloon after boot. */
	int (*balloon_set)(void *opaque, uint32_t amount_mib, struct cove_err *err);
	/* GET /balloon/statistics and PATCH /balloon/statistics after boot. */
	int (*balloon_stats)(void *opaque, struct fc_balloon_stats *out, struct cove_err *err);
	int (*balloon_set_interval)(void *opaque, uint32_t seconds, struct cove_err *err);
	/* PATCH /network-interfaces/{id} after boot; index is the NIC's place in the list. */
	int (*net_update)(void *opaque, unsigned index, const struct fc_net_update *u,
			  struct cove_err *err);
	/* PATCH /drives/{id} after boot: new rate limits for the drive at index (its place in
	 * the configured drives), or -1 for a drive the API did not configure (found by id). */
	int (*drive_update)(void *opaque, int index, const struct fc_drive_update *u,
			    struct cove_err *err);
};

/* Defaults: 1 vCPU, 128 MiB, no devices (Firecracker's). */
void fc_config_init(struct fc_vm_config *cfg);

/*
 * Request body parsers: strict (unknown fields are 400 naming the field), bounded, and
 * pure (no I/O): they fill *out only on success. id is the {id} from the path, which must
 * equal the body's drive_id / iface_id.
 */
int fc_parse_boot_source(const char *body, size_t len, struct fc_boot_source *out,
			 struct cove_err *err);
/* partial: PATCH semantics (fields absent keep cur's values); PUT resets to defaults. */
int fc_parse_machine_config(const char *body, size_t len, bool partial,
			    const struct fc_machine_config *cur, struct fc_machine_config *out,
			    struct cove_err *err);
int fc_parse_drive(const char *id, const char *body, size_t len, struct fc_drive *out,
		   struct cove_err *err);
int fc_parse_drive_update(const char *id, const char *body, size_t len, struct fc_drive_update *out,
			  struct cove_err *err);
int fc_parse_net(const char *id, const char *body, size_t len, struct fc_net *out,
		 struct cove_err *err);
int fc_parse_vsock(const char *body, size_t len, struct fc_vsock *out, struct cove_err *err);
int fc_parse_balloon(const char *body, size_t len, struct fc_balloon *out, struct cove_err *err);
int fc_parse_balloon_update(const char *body, size_t len, uint32_t *amount_mib,
			    struct cove_err *err);
int fc_parse_balloon_stats_update(const char *body, size_t len, uint32_t *interval_s,
				  struct cove_err *err);
int fc_parse_net_update(const char *id, const char *body, size_t len, struct fc_net_update *out,
			struct cove_err *err);
/* Bytes (or operations) per second of a token bucket: size per refill_time ms; 0 when the
 * bucket is unset or says no limit (size or refill_time 0). */
uint64_t fc_bucket_rate(const struct fc_token_bucket *b);
int fc_parse_logger(const char *body, size_t len, struct fc_logger *out, struct cove_err *err);
int fc_parse_metrics(const char *body, size_t len, struct fc_metrics *out, struct cove_err *err);
int fc_parse_action(const char *body, size_t len, enum fc_action *out, struct cove_err *err);
/* PATCH /vm: sets *pause to true for "Paused", false for "Resumed". */
int fc_parse_vm_state(const char *body, size_t len, bool *pause, struct cove_err *err);

/*
 * Firecracker's --config-file format (the body of GET /vm/config: "boot-source",
 * "machine-config", "drives", "network-interfaces", "vsock", "balloon", "logger",
 * "metrics"). Starts from defaults. Used by `cove run --config`.
 */
int fc_parse_full_config(const char *body, size_t len, struct fc_vm_config *out,
			 struct cove_err *err);

/* Adds or replaces a drive / NIC by id; -E2BIG when full, -EEXIST for a second root. */
int fc_config_put_drive(struct fc_vm_config *cfg, const struct fc_drive *d, struct cove_err *err);
int fc_config_put_net(struct fc_vm_config *cfg, const struct fc_net *n, struct cove_err *err);

/* GET /vm/config's body. Returns a new reference. */
json_object *fc_config_to_json(const struct fc_vm_config *cfg);

/* "Not started", "Running", "Paused", "Stopped". */
const char *fc_state_name(enum fc_state s);

struct fc_api_server;

/*
 * Serves the API on the Unix socket sock_path (mode 0600) until fc_api_stop(). ops and
 * opaque must outlive the server. Returns 0 or -errno (and logs why).
 */
int fc_api_serve(const char *sock_path, const struct vmm_api_ops *ops, void *opaque,
		 struct fc_api_server **out);

/*
 * For a VMM that booted from its command line: records cfg (for GET /vm/config) and the
 * state Running, so pre-boot-only requests get 400 from then on.
 */
void fc_api_set_started(struct fc_api_server *s, const struct fc_vm_config *cfg);

/* The VMM reports state changes it made by itself (guest powered off: STOPPED). */
void fc_api_set_state(struct fc_api_server *s, enum fc_state state);
enum fc_state fc_api_get_state(struct fc_api_server *s);

/* Stops serving and removes the socket. NULL is allowed. */
void fc_api_stop(struct fc_api_server *s);

#endif
