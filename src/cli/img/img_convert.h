/* The copy pipeline of `cove img convert`: planner, reader/compressor threads, writer. */
#ifndef COVE_CLI_IMG_CONVERT_H
#define COVE_CLI_IMG_CONVERT_H

#include "cli/img/img.h"

#include <pthread.h>
#include <zstd.h>

#define CONV_CHUNK	 (4u << 20) /* bytes per data job */
#define CONV_MAX_SPARSE	 (16u << 20)
#define CONV_MAX_WORKERS 16
#define CONV_WB		 (32u << 20) /* start writeback of the new file every 32 MiB */

enum job_kind { JOB_DATA, JOB_ZERO, JOB_SKIP };
enum job_state { JS_FREE, JS_QUEUED, JS_BUSY, JS_DONE };
enum unit_class { UNIT_ZERO = 0, UNIT_DATA = 1, UNIT_RAW = 2 };

struct conv_job {
	enum job_kind kind;
	enum job_state state;
	uint64_t seq;
	uint64_t off, len;
	uint8_t *buf;  /* chunk bytes */
	uint8_t *unit; /* class of each unit of unit_len bytes */
	/* -c with precompression: each UNIT_DATA cluster's compressed bytes in cbuf. */
	uint8_t *cbuf;
	uint32_t *clen, *coff;
	int ret;
};

struct conv {
	/* Configuration. */
	struct blk *src; /* main handle: block status */
	struct blk *dst;
	uint64_t size;
	uint64_t sparse;       /* -S: 0 disables sparse detection */
	uint32_t unit_len;     /* classification granularity: sparse size or cluster */
	uint32_t chunk;	       /* max data job length */
	bool compress;	       /* -c */
	bool precompress;      /* -c: workers compress (blk_compress_cluster) */
	bool zero_init;	       /* the target reads zero everywhere before we write */
	bool skip_unallocated; /* -B: leave what the source's backing has to the target's */
	bool in_order;	       /* not -W */
	unsigned zero_flags;   /* flags for blk_write_zeroes */
	/* Writeback of the new file is started early by a flusher thread, so that the final
	 * sync has little left to do and the writer never waits for it. */
	int wb_fd; /* the new target file, or -1 */
	uint64_t wb_pending;
	pthread_t wb_thread;
	bool wb_started, wb_kicked, wb_stop;
	pthread_mutex_t wb_lock;
	pthread_cond_t wb_cv;
	/* Job ring, shared with the workers under lock. */
	struct conv_job *jobs;
	unsigned njobs;
	pthread_mutex_t lock;
	pthread_cond_t work_cv, done_cv;
	bool stop;
	/* Planner. */
	uint64_t plan_pos;
	uint64_t next_seq;
	/* Workers. */
	unsigned nworkers;
	struct conv_worker *workers;
};

struct conv_worker {
	struct conv *cv;
	struct blk *src; /* this worker's own read-only handle */
	ZSTD_CCtx *zc;	 /* for the incompressibility test (-c) */
	void *zbuf;
	pthread_t thread;
	bool started;
};

/* Initialises cv's locks; cv is zeroed by the caller. */
void img_conv_init(struct conv *cv);
/*
 * Allocates the job ring and starts the reader threads (at most `workers`, each with its
 * own read-only handle on src_path). cv's configuration fields must be set. 0 or 1
 * (error printed).
 */
int img_conv_setup(struct conv *cv, unsigned workers, const char *src_path, enum blk_format sfmt);
/* Starts the flusher thread that begins writeback of cv->wb_fd as data is written. */
void img_conv_writeback_start(struct conv *cv);
/* Copies everything. Returns 0 or -errno; *where says "source" or "target". */
int img_conv_run(struct conv *cv, struct img_progress *prog, const char **where);
/* Stops and joins every thread. */
void img_conv_stop(struct conv *cv);
/* Frees what img_conv_setup allocated (after img_conv_stop). */
void img_conv_free(struct conv *cv);
/* Whether the block layer can compress outside the writer (blk_compress_cluster). */
bool img_conv_precompress_works(struct blk *dst, uint32_t cluster);

#endif
