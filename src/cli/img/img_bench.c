/* `cove img bench`: timed read or write requests through the block layer, as qemu-img bench. */
#include "cli/img/img.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bench {
	struct blk *b;
	bool write, random;
	unsigned count, depth, flush_interval;
	uint64_t size, step, offset, image_size;
	uint64_t submitted, completed, next_off;
	uint64_t rng;
	int err;
	struct bench_req **free_reqs; /* finished requests, ready to be sent again */
	unsigned nfree;
};

struct bench_req {
	struct blk_aio_req req;
	struct iovec iov;
	struct bench *bc;
};

static uint64_t next_offset(struct bench *bc)
{
	if (bc->random) {
		/* xorshift64*: reproducible offsets, aligned to the request size. */
		bc->rng ^= bc->rng >> 12;
		bc->rng ^= bc->rng << 25;
		bc->rng ^= bc->rng >> 27;
		uint64_t slots = (bc->image_size - bc->offset) / bc->size;
		return bc->offset + (bc->rng * 2685821657736338717ULL) % slots * bc->size;
	}
	uint64_t off = bc->next_off;
	bc->next_off += bc->step;
	if (bc->next_off + bc->size > bc->image_size)
		bc->next_off = bc->offset;
	return off;
}

static void bench_done(struct blk_aio_req *req, int ret)
{
	struct bench_req *r = req->opaque;
	r->bc->completed++;
	r->bc->free_reqs[r->bc->nfree++] = r;
	if (ret < 0 && !r->bc->err)
		r->bc->err = ret;
}

static int run_aio(struct bench *bc, struct bench_req *reqs)
{
	int r = blk_aio_setup(bc->b, bc->depth);
	if (r < 0)
		return r;
	int efd = blk_aio_event_fd(bc->b);
	unsigned since_flush = 0;
	for (unsigned i = 0; i < bc->depth && bc->submitted < bc->count; i++) {
		struct bench_req *q = &reqs[i];
		q->req.offset = next_offset(bc);
		if ((r = blk_aio_submit(bc->b, &q->req)) < 0)
			return r;
		bc->submitted++;
	}
	if ((r = blk_aio_flush_submissions(bc->b)) < 0)
		return r;
	while (bc->completed < bc->count && !bc->err) {
		struct pollfd p = {.fd = efd, .events = POLLIN};
		if (efd >= 0 && poll(&p, 1, 10000) < 0 && errno != EINTR)
			return -errno;
		uint64_t before = bc->completed;
		if ((r = blk_aio_complete(bc->b)) < 0)
			return r;
		uint64_t done = bc->completed - before;
		for (uint64_t k = 0; k < done && bc->nfree && bc->submitted < bc->count; k++) {
			struct bench_req *q = bc->free_reqs[--bc->nfree];
			q->req.offset = next_offset(bc);
			if ((r = blk_aio_submit(bc->b, &q->req)) < 0)
				return r;
			bc->submitted++;
			if (bc->write && bc->flush_interval &&
			    ++since_flush >= bc->flush_interval) {
				since_flush = 0;
				if ((r = blk_flush(bc->b)) < 0)
					return r;
			}
		}
		if (done && (r = blk_aio_flush_submissions(bc->b)) < 0)
			return r;
	}
	return bc->err;
}

int img_cmd_bench(int argc, char **argv)
{
	enum { OPT_PATTERN = 256, OPT_FLUSH, OPT_NO_DRAIN, OPT_RANDOM, OPT_OBJECT, OPT_IMAGE_OPTS };
	static const struct option longopts[] = {
	    {"pattern", required_argument, NULL, OPT_PATTERN},
	    {"flush-interval", required_argument, NULL, OPT_FLUSH},
	    {"no-drain", no_argument, NULL, OPT_NO_DRAIN},
	    {"random", no_argument, NULL, OPT_RANDOM},
	    {"force-share", no_argument, NULL, 'U'},
	    {"object", required_argument, NULL, OPT_OBJECT},
	    {"image-opts", no_argument, NULL, OPT_IMAGE_OPTS},
	    {NULL, 0, NULL, 0}};
	struct bench bc = {.count = 75000, .depth = 64, .size = 4096, .rng = 0x9e3779b97f4a7c15ULL};
	const char *fmt = NULL;
	bool quiet = false, direct = false, unsafe = false, step_set = false;
	int pattern = 0, c;
	unsigned long v;
	char *end;
	uint64_t n;

	while ((c = getopt_long(argc, argv, ":hc:d:f:ni:o:qs:S:t:wU", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
		case 'd':
		case OPT_FLUSH:
			errno = 0;
			v = strtoul(optarg, &end, 0);
			if (errno || *end || v == 0 || v > (c == 'd' ? 1024u : 1u << 30))
				return img_err("Invalid %s specified", c == 'c' ? "request count"
								       : c == 'd'
									   ? "queue depth"
									   : "flush interval");
			if (c == 'c')
				bc.count = (unsigned)v;
			else if (c == 'd')
				bc.depth = (unsigned)v;
			else
				bc.flush_interval = (unsigned)v;
			break;
		case 'f':
			fmt = optarg;
			break;
		case 'n':
		case 'U':
		case OPT_NO_DRAIN:
			break;
		case 'i':
			if (strcmp(optarg, "io_uring") && strcmp(optarg, "native") &&
			    strcmp(optarg, "threads"))
				return img_err("Invalid aio option: %s", optarg);
			break;
		case 'o':
			if (img_parse_size(optarg, &bc.offset) < 0)
				return img_err("Invalid offset specified");
			break;
		case 'q':
			quiet = true;
			break;
		case 's':
		case 'S':
			if (img_parse_size(optarg, &n) < 0 || n == 0 || n > (1u << 30))
				return img_err("Invalid %s specified",
					       c == 's' ? "buffer size" : "step size");
			if (c == 's')
				bc.size = n;
			else {
				bc.step = n;
				step_set = true;
			}
			break;
		case 't':
			if (img_parse_cache(optarg, &direct, &unsafe))
				return 1;
			break;
		case 'w':
			bc.write = true;
			break;
		case OPT_PATTERN:
			errno = 0;
			v = strtoul(optarg, &end, 0);
			if (errno || *end || v > 0xff)
				return img_err("Invalid pattern byte specified");
			pattern = (int)v;
			break;
		case OPT_RANDOM:
			bc.random = true;
			break;
		case OPT_OBJECT:
		case OPT_IMAGE_OPTS:
			return img_err("--object and --image-opts are not supported");
		default:
			return img_opt_error(argv, "bench");
		}
	}
	if (optind != argc - 1)
		return img_err("Expecting one image file name");
	const char *path = argv[optind];
	enum blk_format format = BLK_FMT_AUTO;
	if (fmt && img_parse_format(fmt, path, &format))
		return 1;
	if (!step_set)
		bc.step = bc.size;

	struct blk_open_opts oo = {
	    .format = format, .readonly = !bc.write, .direct = direct, .unsafe = unsafe};
	if (img_open_opts(path, &oo, &bc.b))
		return 1;
	bc.image_size = blk_size(bc.b);
	bc.next_off = bc.offset;
	int ret = 1;
	struct bench_req *reqs = calloc(bc.depth, sizeof(*reqs));
	uint8_t *bufs = img_alloc((size_t)bc.size * bc.depth);
	bc.free_reqs = calloc(bc.depth, sizeof(*bc.free_reqs));
	if (!reqs || !bufs || !bc.free_reqs) {
		img_err("out of memory");
		goto out;
	}
	if (bc.offset > bc.image_size || bc.size > bc.image_size - bc.offset) {
		img_err("Request of %llu bytes at offset %llu is past the end of the image",
			(unsigned long long)bc.size, (unsigned long long)bc.offset);
		goto out;
	}
	memset(bufs, pattern, (size_t)bc.size * bc.depth);
	for (unsigned i = 0; i < bc.depth; i++) {
		struct bench_req *q = &reqs[i];
		q->bc = &bc;
		q->iov.iov_base = bufs + (size_t)bc.size * i;
		q->iov.iov_len = bc.size;
		q->req.op = bc.write ? BLK_AIO_WRITE : BLK_AIO_READ;
		q->req.iov = &q->iov;
		q->req.iovcnt = 1;
		q->req.done = bench_done;
		q->req.opaque = q;
	}
	if (!quiet) {
		if (bc.random)
			printf("Sending %u %s requests, %llu bytes each, %u in parallel (random "
			       "offsets from %llu)\n",
			       bc.count, bc.write ? "write" : "read", (unsigned long long)bc.size,
			       bc.depth, (unsigned long long)bc.offset);
		else
			printf("Sending %u %s requests, %llu bytes each, %u in parallel (starting "
			       "at offset %llu, step size %llu)\n",
			       bc.count, bc.write ? "write" : "read", (unsigned long long)bc.size,
			       bc.depth, (unsigned long long)bc.offset,
			       (unsigned long long)bc.step);
		if (bc.flush_interval)
			printf("Sending flush every %u requests\n", bc.flush_interval);
		fflush(stdout);
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int r = run_aio(&bc, reqs);
	if (r == 0 && bc.write)
		r = blk_flush(bc.b);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r < 0) {
		img_err_lib("bench", r, NULL);
		goto out;
	}
	if (!quiet)
		printf("Run completed in %.3f seconds.\n",
		       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	ret = 0;
out:
	free(reqs);
	free(bufs);
	free(bc.free_reqs);
	blk_close(bc.b);
	return ret;
}
