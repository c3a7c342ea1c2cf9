/*
 * `cove img convert`: copies an image into a new (or, with -n, existing) one.
 *
 * The main thread walks the source's block status and plans jobs (data ranges to read,
 * zero ranges to skip or zero); worker threads, each with its own read-only handle on the
 * source, read the data and classify it (zero / data / incompressible) so that the main
 * thread, the only one that touches the target, writes it in order (or as it comes, -W).
 */
#include "cli/img/img.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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

/* True when data will not shrink under compression (random or already compressed). */
static bool incompressible(struct conv_worker *w, const void *buf, size_t len)
{
	if (!w->zc || len < 4096)
		return false;
	/* Cheap first look: text, tables and code use few distinct byte values in a sample;
	 * random or compressed data uses nearly all 256. Only those go on to the real test. */
	bool seen[256] = {false};
	unsigned distinct = 0;
	const uint8_t *p = buf;
	for (size_t i = 0; i < len; i += 61) {
		if (!seen[p[i]]) {
			seen[p[i]] = true;
			distinct++;
		}
	}
	size_t samples = (len + 60) / 61;
	if (distinct < (samples < 1024 ? samples / 5 : 200))
		return false;
	size_t cap = len - len / 64;
	size_t r = ZSTD_compressCCtx(w->zc, w->zbuf, cap, buf, len, 1);
	return ZSTD_isError(r);
}

/* Classifies each unit of a read job; with precompression, compresses the data units. */
static int classify(struct conv_worker *w, struct conv_job *j)
{
	struct conv *cv = w->cv;
	if (!cv->unit_len)
		return 0;
	uint64_t nunits = (j->len + cv->unit_len - 1) / cv->unit_len;
	uint32_t cpos = 0;
	for (uint64_t u = 0; u < nunits; u++) {
		uint64_t o = u * cv->unit_len;
		size_t n = (size_t)(j->len - o < cv->unit_len ? j->len - o : cv->unit_len);
		const uint8_t *p = j->buf + o;
		if (img_is_zero(p, n)) {
			j->unit[u] = UNIT_ZERO;
		} else if (cv->compress && incompressible(w, p, n)) {
			j->unit[u] = UNIT_RAW;
		} else {
			j->unit[u] = UNIT_DATA;
			if (!cv->precompress)
				continue;
			/* Each result is shorter than its cluster, so cbuf (chunk bytes) holds
			 * them all. */
			long c = blk_compress_cluster(cv->dst, p, n, j->cbuf + cpos, n);
			if (c == -ENOSPC) {
				j->unit[u] = UNIT_RAW;
			} else if (c < 0) {
				return (int)c;
			} else {
				j->coff[u] = cpos;
				j->clen[u] = (uint32_t)c;
				cpos += (uint32_t)c;
			}
		}
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct conv_worker *w = arg;
	struct conv *cv = w->cv;

	pthread_mutex_lock(&cv->lock);
	for (;;) {
		struct conv_job *j = NULL;
		while (!cv->stop) {
			for (unsigned i = 0; i < cv->njobs; i++) {
				struct conv_job *c = &cv->jobs[i];
				if (c->state == JS_QUEUED && (!j || c->seq < j->seq))
					j = c;
			}
			if (j)
				break;
			pthread_cond_wait(&cv->work_cv, &cv->lock);
		}
		if (cv->stop)
			break;
		j->state = JS_BUSY;
		pthread_mutex_unlock(&cv->lock);

		j->ret = blk_pread(w->src, j->buf, j->len, j->off);
		if (j->ret == 0)
			j->ret = classify(w, j);

		pthread_mutex_lock(&cv->lock);
		j->state = JS_DONE;
		pthread_cond_broadcast(&cv->done_cv);
	}
	pthread_mutex_unlock(&cv->lock);
	return NULL;
}

static void *wb_main(void *arg)
{
	struct conv *cv = arg;
	pthread_mutex_lock(&cv->wb_lock);
	for (;;) {
		while (!cv->wb_kicked && !cv->wb_stop)
			pthread_cond_wait(&cv->wb_cv, &cv->wb_lock);
		if (cv->wb_stop)
			break;
		cv->wb_kicked = false;
		pthread_mutex_unlock(&cv->wb_lock);
		sync_file_range(cv->wb_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		pthread_mutex_lock(&cv->wb_lock);
	}
	pthread_mutex_unlock(&cv->wb_lock);
	return NULL;
}

static void wb_kick(struct conv *cv)
{
	pthread_mutex_lock(&cv->wb_lock);
	cv->wb_kicked = true;
	pthread_cond_signal(&cv->wb_cv);
	pthread_mutex_unlock(&cv->wb_lock);
}

static void wb_start(struct conv *cv)
{
	if (cv->wb_fd >= 0 && !pthread_create(&cv->wb_thread, NULL, wb_main, cv))
		cv->wb_started = true;
}

static void wb_stop(struct conv *cv)
{
	if (!cv->wb_started)
		return;
	pthread_mutex_lock(&cv->wb_lock);
	cv->wb_stop = true;
	pthread_cond_signal(&cv->wb_cv);
	pthread_mutex_unlock(&cv->wb_lock);
	pthread_join(cv->wb_thread, NULL);
	cv->wb_started = false;
}

static uint64_t round_down(uint64_t v, uint64_t a)
{
	return v - v % a;
}

/* Fills job j with the next range of the source. Returns 0, 1 at the end, or -errno. */
static int plan(struct conv *cv, struct conv_job *j)
{
	uint64_t pos = cv->plan_pos;
	if (pos >= cv->size)
		return 1;
	uint64_t left = cv->size - pos;
	uint64_t align = cv->unit_len ? cv->unit_len : 512;
	struct blk_status st = {0};
	int ret = blk_block_status(cv->src, pos, left, &st);
	if (ret < 0)
		return ret;
	if (st.len == 0 || st.len > left)
		st.len = left;

	bool zero = (st.flags & BLK_STATUS_ZERO) && !(st.flags & BLK_STATUS_DATA);
	bool skip = cv->skip_unallocated && !(st.flags & BLK_STATUS_ALLOCATED);
	if (cv->sparse == 0 && !skip)
		zero = false; /* -S 0: everything is written */
	if (skip || zero) {
		/* Whole units only: a unit that is partly data is read as data. */
		uint64_t end = pos + st.len;
		if (end < cv->size)
			end = round_down(end, align);
		if (end > pos) {
			j->kind = skip ? JOB_SKIP : JOB_ZERO;
			j->off = pos;
			j->len = end - pos;
			cv->plan_pos = end;
			return 0;
		}
	}
	uint64_t end = pos + (st.len < cv->chunk ? st.len : cv->chunk);
	/* Data extents that follow each other (qcow2 reports one per run of contiguous host
	 * clusters) make one job: fewer, larger reads and writes. */
	while (end < cv->size && end < pos + cv->chunk) {
		struct blk_status nx = {0};
		if (blk_block_status(cv->src, end, cv->size - end, &nx) < 0 || nx.len == 0)
			break;
		bool nzero = (nx.flags & BLK_STATUS_ZERO) && !(nx.flags & BLK_STATUS_DATA);
		bool nskip = cv->skip_unallocated && !(nx.flags & BLK_STATUS_ALLOCATED);
		if (nskip || (nzero && cv->sparse))
			break;
		uint64_t room = pos + cv->chunk - end;
		end += nx.len < room ? nx.len : room;
	}
	if (end < cv->size) {
		uint64_t up = round_down(end + align - 1, align);
		end = up > pos + cv->chunk ? round_down(pos + cv->chunk, align) : up;
	}
	if (end > cv->size)
		end = cv->size;
	j->kind = JOB_DATA;
	j->off = pos;
	j->len = end - pos;
	cv->plan_pos = end;
	return 0;
}

static int write_zero_range(struct conv *cv, uint64_t off, uint64_t len)
{
	if (cv->zero_init || len == 0)
		return 0;
	return blk_write_zeroes(cv->dst, off, len, cv->zero_flags);
}

/* Writes a finished data job to the target. */
static int write_job(struct conv *cv, struct conv_job *j)
{
	if (j->kind == JOB_SKIP)
		return 0;
	if (j->kind == JOB_ZERO)
		return write_zero_range(cv, j->off, j->len);
	if (!cv->unit_len)
		return blk_pwrite(cv->dst, j->buf, j->len, j->off);

	uint64_t nunits = (j->len + cv->unit_len - 1) / cv->unit_len;
	int ret = 0;
	if (cv->compress) {
		for (uint64_t u = 0; u < nunits && ret == 0;) {
			uint64_t o = u * cv->unit_len;
			uint64_t n = j->len - o < cv->unit_len ? j->len - o : cv->unit_len;
			if (j->unit[u] == UNIT_DATA) {
				if (cv->precompress)
					ret = blk_write_precompressed(cv->dst, j->cbuf + j->coff[u],
								      j->clen[u], j->off + o);
				else
					ret = blk_write_compressed(cv->dst, j->buf + o, n,
								   j->off + o);
				u++;
				continue;
			}
			/* Zero and incompressible clusters: one request per run. */
			uint64_t v = u + 1;
			while (v < nunits && j->unit[v] == j->unit[u])
				v++;
			uint64_t e = v * cv->unit_len < j->len ? v * cv->unit_len : j->len;
			if (j->unit[u] == UNIT_ZERO)
				ret = write_zero_range(cv, j->off + o, e - o);
			else
				ret = blk_pwrite(cv->dst, j->buf + o, e - o, j->off + o);
			u = v;
		}
		return ret;
	}
	/* Runs of units of one class become one write. */
	for (uint64_t u = 0; u < nunits && ret == 0;) {
		uint64_t v = u + 1;
		while (v < nunits && j->unit[v] == j->unit[u])
			v++;
		uint64_t o = u * cv->unit_len;
		uint64_t e = v * cv->unit_len < j->len ? v * cv->unit_len : j->len;
		if (j->unit[u] == UNIT_ZERO)
			ret = write_zero_range(cv, j->off + o, e - o);
		else
			ret = blk_pwrite(cv->dst, j->buf + o, e - o, j->off + o);
		u = v;
	}
	return ret;
}

static void conv_stop(struct conv *cv)
{
	pthread_mutex_lock(&cv->lock);
	cv->stop = true;
	pthread_cond_broadcast(&cv->work_cv);
	pthread_mutex_unlock(&cv->lock);
	for (unsigned i = 0; i < cv->nworkers; i++)
		if (cv->workers[i].started)
			pthread_join(cv->workers[i].thread, NULL);
	wb_stop(cv);
}

/* Runs the copy. Returns 0 or -errno; *where names the failing side. */
static int conv_run(struct conv *cv, struct img_progress *prog, const char **where)
{
	uint64_t write_seq = 0, written = 0;
	bool planned_all = false;
	int ret = 0;

	pthread_mutex_lock(&cv->lock);
	for (;;) {
		/* Plan into free slots (workers never touch free slots). */
		while (!planned_all) {
			struct conv_job *j = NULL;
			for (unsigned i = 0; i < cv->njobs && !j; i++)
				if (cv->jobs[i].state == JS_FREE)
					j = &cv->jobs[i];
			if (!j)
				break;
			pthread_mutex_unlock(&cv->lock);
			int r = plan(cv, j);
			pthread_mutex_lock(&cv->lock);
			if (r < 0) {
				*where = "source";
				ret = r;
				goto out;
			}
			if (r == 1) {
				planned_all = true;
				break;
			}
			j->seq = cv->next_seq++;
			j->ret = 0;
			if (j->kind == JOB_DATA) {
				j->state = JS_QUEUED;
				pthread_cond_signal(&cv->work_cv);
			} else {
				j->state = JS_DONE;
			}
		}
		/* Pick the job to write: the next in sequence, or any finished one (-W). */
		struct conv_job *w = NULL;
		bool pending = false;
		for (unsigned i = 0; i < cv->njobs; i++) {
			struct conv_job *c = &cv->jobs[i];
			if (c->state == JS_FREE)
				continue;
			pending = true;
			if (c->state != JS_DONE)
				continue;
			if (cv->in_order ? c->seq == write_seq : (!w || c->seq < w->seq))
				w = c;
		}
		if (!pending && planned_all)
			break;
		if (!w) {
			pthread_cond_wait(&cv->done_cv, &cv->lock);
			continue;
		}
		pthread_mutex_unlock(&cv->lock);
		int r = w->ret;
		if (r < 0) {
			*where = "source";
		} else {
			r = write_job(cv, w);
			if (r < 0)
				*where = "target";
		}
		written += w->len;
		img_progress_update(prog, written, cv->size);
		if (w->kind == JOB_DATA && cv->wb_started &&
		    (cv->wb_pending += w->len) >= CONV_WB) {
			wb_kick(cv);
			cv->wb_pending = 0;
		}
		pthread_mutex_lock(&cv->lock);
		w->state = JS_FREE;
		write_seq++;
		if (r < 0) {
			ret = r;
			goto out;
		}
	}
out:
	pthread_mutex_unlock(&cv->lock);
	return ret;
}

/* Whether the block layer can compress outside the writer (blk_compress_cluster). */
static bool precompress_works(struct blk *dst, uint32_t cluster)
{
	uint8_t *in = calloc(1, cluster), *out = malloc(cluster);
	long r = in && out ? blk_compress_cluster(dst, in, cluster, out, cluster) : -ENOMEM;
	free(in);
	free(out);
	return r >= 0 || r == -ENOSPC;
}

/* A sparse raw file, for when the block layer cannot create images yet. */
static int create_raw(const char *path, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int ret = ftruncate(fd, (off_t)size) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

struct conv_args {
	const char *src_fmt, *dst_fmt, *backing, *backing_fmt;
	struct img_opts opts;
	bool compress, no_create, progress, quiet, out_of_order;
	uint64_t sparse;
	unsigned workers;
};

static void conv_free(struct conv *cv)
{
	if (cv->workers) {
		for (unsigned i = 0; i < cv->nworkers; i++) {
			blk_close(cv->workers[i].src);
			ZSTD_freeCCtx(cv->workers[i].zc);
			free(cv->workers[i].zbuf);
		}
		free(cv->workers);
	}
	if (cv->jobs) {
		for (unsigned i = 0; i < cv->njobs; i++) {
			free(cv->jobs[i].buf);
			free(cv->jobs[i].unit);
			free(cv->jobs[i].cbuf);
			free(cv->jobs[i].clen);
			free(cv->jobs[i].coff);
		}
		free(cv->jobs);
	}
	pthread_mutex_destroy(&cv->lock);
	pthread_mutex_destroy(&cv->wb_lock);
	pthread_cond_destroy(&cv->wb_cv);
	pthread_cond_destroy(&cv->work_cv);
	pthread_cond_destroy(&cv->done_cv);
}

static int conv_setup(struct conv *cv, const struct conv_args *a, const char *src_path,
		      enum blk_format sfmt)
{
	/* -m bounds the jobs in flight; threads beyond one per CPU (plus one while the main
	 * thread waits on the target) only add switches. */
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned maxthreads = ncpu > 0 && ncpu < CONV_MAX_WORKERS ? (unsigned)ncpu + 1 : 4;
	cv->nworkers = a->workers < maxthreads ? a->workers : maxthreads;
	cv->njobs = 2 * a->workers + 2;
	cv->chunk = CONV_CHUNK;
	if (cv->unit_len > cv->chunk)
		cv->chunk = cv->unit_len;
	cv->jobs = calloc(cv->njobs, sizeof(*cv->jobs));
	cv->workers = calloc(cv->nworkers, sizeof(*cv->workers));
	if (!cv->jobs || !cv->workers)
		return img_err("out of memory");
	uint64_t maxunits = cv->unit_len ? cv->chunk / cv->unit_len + 1 : 1;
	for (unsigned i = 0; i < cv->njobs; i++) {
		cv->jobs[i].buf = img_alloc(cv->chunk);
		cv->jobs[i].unit = calloc(maxunits, 1);
		if (!cv->jobs[i].buf || !cv->jobs[i].unit)
			return img_err("out of memory");
		if (cv->precompress) {
			cv->jobs[i].cbuf = malloc(cv->chunk);
			cv->jobs[i].clen = calloc(maxunits, sizeof(uint32_t));
			cv->jobs[i].coff = calloc(maxunits, sizeof(uint32_t));
			if (!cv->jobs[i].cbuf || !cv->jobs[i].clen || !cv->jobs[i].coff)
				return img_err("out of memory");
		}
	}
	for (unsigned i = 0; i < cv->nworkers; i++) {
		struct conv_worker *w = &cv->workers[i];
		w->cv = cv;
		if (img_open(src_path, sfmt, true, cv->skip_unallocated, &w->src))
			return 1;
		if (cv->compress) {
			w->zc = ZSTD_createCCtx();
			w->zbuf = malloc(cv->unit_len);
			if (!w->zc || !w->zbuf)
				return img_err("out of memory");
		}
	}
	for (unsigned i = 0; i < cv->nworkers; i++) {
		if (pthread_create(&cv->workers[i].thread, NULL, worker_main, &cv->workers[i]))
			return img_err("cannot start a worker thread");
		cv->workers[i].started = true;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct conv_args *a)
{
	enum { OPT_TARGET_ZERO = 256, OPT_OBJECT, OPT_IMAGE_OPTS, OPT_SALVAGE, OPT_BITMAPS };
	static const struct option longopts[] = {
	    {"force-share", no_argument, NULL, 'U'},
	    {"object", required_argument, NULL, OPT_OBJECT},
	    {"image-opts", no_argument, NULL, OPT_IMAGE_OPTS},
	    {"target-image-opts", no_argument, NULL, OPT_IMAGE_OPTS},
	    {"target-is-zero", no_argument, NULL, OPT_TARGET_ZERO},
	    {"salvage", no_argument, NULL, OPT_SALVAGE},
	    {"bitmaps", no_argument, NULL, OPT_BITMAPS},
	    {NULL, 0, NULL, 0}};
	int c;
	char *end;
	unsigned long v;

	while ((c = getopt_long(argc, argv, ":hf:O:B:CcF:o:l:S:pt:T:qnm:WUr:", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'f':
			a->src_fmt = optarg;
			break;
		case 'O':
			a->dst_fmt = optarg;
			break;
		case 'B':
			a->backing = optarg;
			break;
		case 'F':
			a->backing_fmt = optarg;
			break;
		case 'c':
			a->compress = true;
			break;
		case 'o':
			if (img_opts_parse(&a->opts, optarg, ""))
				return 1;
			break;
		case 'S': {
			uint64_t s;
			if (img_parse_size(optarg, &s) < 0 || s % 512 || s > CONV_MAX_SPARSE)
				return img_err(
				    "Invalid buffer size for sparse output specified. "
				    "Valid sizes are multiples of 512 up to %u. Select 0 "
				    "to disable sparse detection (fully allocates output).",
				    CONV_MAX_SPARSE);
			a->sparse = s;
			break;
		}
		case 'p':
			a->progress = true;
			break;
		case 'q':
			a->quiet = true;
			break;
		case 'n':
			a->no_create = true;
			break;
		case 'm':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || v < 1 || v > CONV_MAX_WORKERS)
				return img_err("Invalid number of coroutines. Allowed number of "
					       "coroutines is between 1 and %d",
					       CONV_MAX_WORKERS);
			a->workers = (unsigned)v;
			break;
		case 'W':
			a->out_of_order = true;
			break;
		case 'C':
		case 't':
		case 'T':
		case 'U':
		case 'r':
			break;
		case 'l':
			return img_err("converting from an internal snapshot (-l) is not "
				       "supported");
		case OPT_OBJECT:
		case OPT_IMAGE_OPTS:
		case OPT_TARGET_ZERO:
		case OPT_SALVAGE:
		case OPT_BITMAPS:
			return img_err("option '%s' is not supported", argv[optind - 1]);
		default:
			return img_opt_error(argv, "convert");
		}
	}
	return 0;
}

int img_cmd_convert(int argc, char **argv)
{
	struct conv_args a = {.sparse = 4096, .workers = 8};
	struct conv cv = {0};
	struct blk *src = NULL, *dst = NULL;
	char tmp[PATH_MAX] = "";
	int ret = 1;

	cv.wb_fd = -1;
	pthread_mutex_init(&cv.lock, NULL);
	pthread_mutex_init(&cv.wb_lock, NULL);
	pthread_cond_init(&cv.wb_cv, NULL);
	pthread_cond_init(&cv.work_cv, NULL);
	pthread_cond_init(&cv.done_cv, NULL);
	if (parse_args(argc, argv, &a))
		goto out;
	if (a.quiet)
		a.progress = false;
	if (argc - optind != 2) {
		img_err(argc - optind < 2 ? "Expecting a source and a target file name"
					  : "only one source image is supported");
		goto out;
	}
	const char *src_path = argv[optind], *dst_path = argv[optind + 1];
	enum blk_format sfmt = BLK_FMT_AUTO, dfmt = BLK_FMT_RAW;
	if (a.src_fmt && img_parse_format(a.src_fmt, src_path, &sfmt))
		goto out;
	if (a.dst_fmt && img_parse_format(a.dst_fmt, dst_path, &dfmt))
		goto out;
	if (a.opts.help) {
		img_opts_help(dfmt);
		ret = 0;
		goto out;
	}
	if (a.backing && (a.opts.set & IMG_OPT_BACKING)) {
		img_err("-B and -o backing_file cannot be used together");
		goto out;
	}
	if (a.backing) {
		a.opts.c.backing_file = a.backing;
		a.opts.set |= IMG_OPT_BACKING;
	}
	if (a.backing_fmt) {
		a.opts.c.backing_fmt = a.backing_fmt;
		a.opts.set |= IMG_OPT_BACKING_FMT;
	}
	const char *bfile = a.opts.c.backing_file;
	if (bfile && !a.opts.c.backing_fmt) {
		img_err("Use of backing file requires explicit backing format");
		goto out;
	}
	if (dfmt == BLK_FMT_RAW && (a.compress || bfile)) {
		img_err(a.compress ? "Compression not supported for this file format"
				   : "The raw format has no backing file");
		goto out;
	}
	if (a.compress && a.opts.c.prealloc != BLK_PREALLOC_OFF) {
		img_err("Compression and preallocation not supported at the same time");
		goto out;
	}
	if (a.no_create && (a.opts.set || bfile)) {
		img_err("-n and -o/-B cannot be used together");
		goto out;
	}

	/* With -B the source's unallocated ranges are left to the target's backing file. */
	cv.skip_unallocated = bfile != NULL;
	if (img_open(src_path, sfmt, true, false, &src))
		goto out;
	sfmt = blk_get_format(src);
	cv.src = src;
	cv.size = blk_size(src);

	if (a.no_create) {
		if (img_open(dst_path, a.dst_fmt ? dfmt : BLK_FMT_AUTO, false, false, &dst))
			goto out;
		if (blk_size(dst) < cv.size) {
			img_err("Target image is smaller than the source (%llu < %llu bytes)",
				(unsigned long long)blk_size(dst), (unsigned long long)cv.size);
			goto out;
		}
		dfmt = blk_get_format(dst);
		if (a.compress && dfmt != BLK_FMT_QCOW2) {
			img_err("Compression not supported for this file format");
			goto out;
		}
	} else {
		struct blk_create_opts co = a.opts.c;
		co.format = dfmt;
		co.size = img_round_sector(cv.size);
		if (dfmt == BLK_FMT_RAW && (a.opts.set & ~(IMG_OPT_SIZE | IMG_OPT_PREALLOC))) {
			img_err("%s: this option is not supported by the raw format", dst_path);
			goto out;
		}
		int r = img_tmp_begin(dst_path, tmp, sizeof(tmp));
		if (r < 0) {
			img_err_lib(dst_path, r, NULL);
			tmp[0] = '\0';
			goto out;
		}
		struct cove_err err = {0};
		r = blk_create(tmp, &co, false, &err);
		if (img_unsupported(r) && dfmt == BLK_FMT_RAW && co.prealloc == BLK_PREALLOC_OFF)
			r = create_raw(tmp, cv.size);
		if (r < 0) {
			img_err_lib(dst_path, r, &err);
			goto out;
		}
		/* No syncs while the file is still private: img_tmp_commit syncs it once,
		 * before the rename that makes it visible. */
		struct blk_open_opts oo = {.format = dfmt, .no_backing = true, .unsafe = true};
		cove_err_clear(&err);
		r = blk_open(tmp, &oo, &dst, &err);
		if (r < 0) {
			img_err_lib(dst_path, r, &err);
			goto out;
		}
		if (blk_size(dst) < cv.size) {
			img_err("%s: the new image is smaller than the source", dst_path);
			goto out;
		}
		cv.wb_fd = open(tmp, O_RDONLY | O_CLOEXEC);
	}
	cv.dst = dst;
	cv.compress = a.compress;
	cv.sparse = a.sparse;
	cv.zero_init = !a.no_create && !bfile;
	cv.zero_flags = bfile || (a.no_create && blk_backing(dst)) ? 0 : BLK_ZERO_MAY_UNMAP;
	cv.in_order = !a.out_of_order || a.compress;
	if (a.compress) {
		cv.unit_len = blk_cluster_size(dst);
		if (cv.unit_len < 512 || cv.unit_len > (2u << 20)) {
			img_err("%s: unexpected cluster size %u", dst_path, cv.unit_len);
			goto out;
		}
		cv.precompress = precompress_works(dst, cv.unit_len);
	} else {
		cv.unit_len = (uint32_t)a.sparse;
		/* Whole clusters: the zeroes around data are in the buffer already, and a full
		 * cluster write spares the target a partial-cluster fill. */
		uint32_t cl = blk_cluster_size(dst);
		if (cv.unit_len && dfmt == BLK_FMT_QCOW2 && cl > cv.unit_len && cl <= CONV_CHUNK)
			cv.unit_len = cl;
	}
	if (conv_setup(&cv, &a, src_path, sfmt))
		goto out_stop;
	wb_start(&cv);

	struct img_progress prog;
	img_progress_init(&prog, a.progress);
	const char *where = "target";
	int r = conv_run(&cv, &prog, &where);
	if (r == 0) {
		r = blk_flush(dst);
		where = "target";
	}
	if (r < 0) {
		if (a.progress)
			fputc('\n', stderr);
		if (img_unsupported(r))
			img_err_lib(where[0] == 's' ? "reading the source" : "writing the target",
				    r, NULL);
		else
			img_err("error while %s: %s",
				where[0] == 's' ? "reading the source" : "writing the target",
				strerror(-r));
		goto out_stop;
	}
	img_progress_end(&prog);
	ret = 0;
out_stop:
	conv_stop(&cv);
out:
	conv_free(&cv);
	if (cv.wb_fd >= 0)
		close(cv.wb_fd);
	blk_close(src);
	blk_close(dst);
	if (tmp[0]) {
		if (ret == 0) {
			int cr = img_tmp_commit(tmp, dst_path);
			if (cr < 0) {
				img_err("%s: %s", dst_path, strerror(-cr));
				img_tmp_abort(tmp);
				ret = 1;
			}
		} else {
			img_tmp_abort(tmp);
		}
	}
	img_opts_free(&a.opts);
	return ret;
}
