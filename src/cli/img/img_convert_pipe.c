/*
 * The copy pipeline of `cove img convert`. The main thread walks the source's block status
 * and plans jobs (data ranges to read, zero ranges to skip or zero); worker threads, each
 * with its own read-only handle on the source, read the data, classify it (zero / data /
 * incompressible) and compress it with -c, so that the main thread, the only one that
 * touches the target, writes it in order (or as it comes, -W).
 */
#include "cli/img/img_convert.h"
#include "util/zero.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
		if (mem_is_zero(p, n)) {
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

void img_conv_writeback_start(struct conv *cv)
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

void img_conv_stop(struct conv *cv)
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
int img_conv_run(struct conv *cv, struct img_progress *prog, const char **where)
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

bool img_conv_precompress_works(struct blk *dst, uint32_t cluster)
{
	uint8_t *in = calloc(1, cluster), *out = malloc(cluster);
	long r = in && out ? blk_compress_cluster(dst, in, cluster, out, cluster) : -ENOMEM;
	free(in);
	free(out);
	return r >= 0 || r == -ENOSPC;
}

void img_conv_free(struct conv *cv)
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

int img_conv_setup(struct conv *cv, unsigned workers, const char *src_path, enum blk_format sfmt)
{
	/* -m bounds the jobs in flight. Copying is bound by memory and I/O: threads beyond one
	 * per CPU (plus one while the main thread waits on the target) only add switches.
	 * Compressing is bound by CPU: one thread per request in flight, as qemu-img. */
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned maxthreads = ncpu > 0 && ncpu < CONV_MAX_WORKERS ? (unsigned)ncpu + 1 : 4;
	if (cv->compress)
		maxthreads = CONV_MAX_WORKERS;
	cv->nworkers = workers < maxthreads ? workers : maxthreads;
	cv->njobs = 2 * workers + 2;
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

void img_conv_init(struct conv *cv)
{
	cv->wb_fd = -1;
	pthread_mutex_init(&cv->lock, NULL);
	pthread_cond_init(&cv->work_cv, NULL);
	pthread_cond_init(&cv->done_cv, NULL);
	pthread_mutex_init(&cv->wb_lock, NULL);
	pthread_cond_init(&cv->wb_cv, NULL);
}
