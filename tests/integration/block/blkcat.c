/* blkcat: a small tool for the block layer's integration tests.
 *   blkcat cat IMAGE [OUT]                 dump the virtual disk (raw) to OUT or stdout
 *   blkcat stress IMAGE REF SEED N [OPS]   N random operations on IMAGE through the block layer,
 *                                          mirrored into the raw file REF (OPS: letters w write,
 *                                          z zeroes, u zeroes+unmap, d discard, c compressed,
 *                                          f flush; default "wzudcf")
 *   blkcat create FMT IMAGE SIZE [k=v...]  blk_create (cluster_size, refcount_bits, compat,
 *                                          lazy_refcounts, extended_l2, compression_type,
 *                                          backing_file, backing_fmt, preallocation)
 *   blkcat snap IMAGE c|a|d|l [NAME]       snapshots
 *   blkcat check IMAGE [leaks|all]         blk_check; exit 0 clean, 2 corrupt, 3 leaks
 *   blkcat resize IMAGE SIZE [shrink]
 *   blkcat info IMAGE                      a few blk_get_info fields
 *   blkcat map IMAGE                       block status runs
 *   blkcat amend IMAGE [k=v...]
 *   blkcat measure FMT [IMAGE|SIZE] [k=v...]
 *   blkcat aio IMAGE REF SEED N [direct]   random async reads/writes/zeroes, verified
 *   blkcat hold IMAGE REF SEED N [OPS]     N random async requests (w write, z zeroes, u zeroes
 *                                          +unmap, d discard, f flush, p: a pause of 150 ms;
 *                                          default "wwwzud": never a flush) mirrored into REF;
 *                                          then prints "ready" and serves completions as a
 *                                          VMM's event loop does, until killed
 *   blkcat write IMAGE OFF LEN BYTE         one write of LEN bytes of value BYTE
 *   blkcat rebase IMAGE BACKING [FMT]       blk_set_backing (header only; "" removes it)
 *   blkcat copy SRC DST [c]                 copy SRC into the existing image DST, skipping zero
 *                                          ranges (c: compressed clusters)
 *   blkcat bench IMAGE COUNT DEPTH SIZE STEP r|w [direct]
 *                                          requests as `qemu-img bench` issues them (offset
 *                                          advances by STEP, modulo the image size)
 * With BLKCAT_JOURNAL=FILE BLKCAT_JOURNAL_IMAGE=IMAGE, every write and sync to IMAGE is
 * recorded in FILE (journal.c) for the power-cut test. */
#include <cove/block.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int usage(void)
{
	fprintf(stderr, "usage: see the comment at the top of blkcat.c\n");
	return 2;
}

static struct blk *open_or_die(const char *path, bool ro)
{
	/* BLKCAT_DIRECT=1 runs everything with O_DIRECT */
	struct blk_open_opts o = {.readonly = ro, .direct = getenv("BLKCAT_DIRECT") != NULL};
	struct blk *b;
	struct cove_err err = {0};
	if (blk_open(path, &o, &b, &err)) {
		fprintf(stderr, "blkcat: %s\n", err.msg);
		exit(1);
	}
	return b;
}

static int cmd_cat(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	struct blk *b = open_or_die(argv[2], true);
	int fd = argc > 3 ? open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644) : 1;
	if (fd < 0) {
		perror(argv[3]);
		return 1;
	}
	uint64_t size = blk_size(b), chunk = 4 << 20;
	char *buf = malloc(chunk);
	int status = buf ? 0 : 1;
	for (uint64_t off = 0; off < size && !status; off += chunk) {
		uint64_t n = size - off < chunk ? size - off : chunk;
		int ret = blk_pread(b, buf, n, off);
		if (ret) {
			fprintf(stderr, "blkcat: read at %llu: %s\n", (unsigned long long)off,
				strerror(-ret));
			status = 1;
		} else if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n) {
			perror("write");
			status = 1;
		}
	}
	struct stat st;
	if (!status && fd != 1 && !fstat(fd, &st) && S_ISREG(st.st_mode) &&
	    ftruncate(fd, (off_t)size))
		status = 1;
	/* Free everything on every path: LeakSanitizer runs this tool in the ASan pass. */
	free(buf);
	blk_close(b);
	if (fd != 1)
		close(fd);
	return status;
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int fail(const char *what, int ret)
{
	fprintf(stderr, "blkcat: %s: %s\n", what, strerror(-ret));
	return 1;
}

static int cmd_stress(int argc, char **argv)
{
	if (argc < 6)
		return usage();
	struct blk *b = open_or_die(argv[2], false);
	int ref = open(argv[3], O_RDWR);
	if (ref < 0) {
		perror(argv[3]);
		return 1;
	}
	rng_state = strtoull(argv[4], NULL, 0) * 2654435761u + 1;
	long n = atol(argv[5]);
	const char *ops = argc > 6 ? argv[6] : "wzudcf";
	size_t nops = strlen(ops);
	uint64_t size = blk_size(b), cs = blk_cluster_size(b);
	uint8_t *buf = malloc(4 << 20), *zero = calloc(1, 4 << 20);
	for (long i = 0; i < n; i++) {
		char op = ops[rnd() % nops];
		uint64_t len = 1 + rnd() % (rnd() % 4 ? 16384 : (1 << 20));
		if (len > size)
			len = size;
		uint64_t off = rnd() % (size - len + 1);
		if (rnd() % 2)
			off &= ~511ull;
		int ret = 0;
		switch (op) {
		case 'w': {
			uint8_t v = (uint8_t)rnd();
			for (uint64_t j = 0; j < len; j++)
				buf[j] = (uint8_t)(v + j / 512 + (j % 7 == 0 ? j : 0));
			ret = blk_pwrite(b, buf, len, off);
			if (ret)
				return fail("write", ret);
			if (pwrite(ref, buf, len, (off_t)off) != (ssize_t)len)
				return 1;
			break;
		}
		case 'z':
		case 'u':
			ret = blk_write_zeroes(b, off, len, op == 'u' ? BLK_ZERO_MAY_UNMAP : 0);
			if (ret)
				return fail("write_zeroes", ret);
			if (pwrite(ref, zero, len, (off_t)off) != (ssize_t)len)
				return 1;
			break;
		case 'd': {
			/* whole clusters only, so that the result is defined */
			uint64_t a = (off + cs - 1) / cs * cs, e = (off + len) / cs * cs;
			if (e <= a)
				break;
			ret = blk_discard(b, a, e - a);
			if (ret)
				return fail("discard", ret);
			if (pwrite(ref, zero, e - a, (off_t)a) != (ssize_t)(e - a))
				return 1;
			break;
		}
		case 'c': {
			if (blk_get_format(b) != BLK_FMT_QCOW2)
				break;
			uint64_t c = (off / cs) * cs, l = size - c < cs ? size - c : cs;
			uint8_t v = (uint8_t)rnd();
			for (uint64_t j = 0; j < l; j++)
				buf[j] = (uint8_t)(j % 64 < 8 ? v : j / 1000);
			ret = blk_write_compressed(b, buf, l, c);
			if (ret)
				return fail("write_compressed", ret);
			if (pwrite(ref, buf, l, (off_t)c) != (ssize_t)l)
				return 1;
			break;
		}
		case 'f':
			ret = blk_flush(b);
			if (ret)
				return fail("flush", ret);
			break;
		}
	}
	free(buf);
	free(zero);
	close(ref);
	blk_close(b);
	return 0;
}

static int parse_kv(struct blk_create_opts *o, const char *kv)
{
	const char *eq = strchr(kv, '=');
	if (!eq)
		return -1;
	const char *v = eq + 1;
	size_t kl = (size_t)(eq - kv);
#define K(s) (kl == strlen(s) && !strncmp(kv, s, kl))
	if (K("cluster_size"))
		o->cluster_size = (uint32_t)strtoul(v, NULL, 0);
	else if (K("refcount_bits"))
		o->refcount_bits = (unsigned)atoi(v);
	else if (K("compat"))
		o->compat_v2 = !strcmp(v, "0.10");
	else if (K("lazy_refcounts"))
		o->lazy_refcounts = !strcmp(v, "on");
	else if (K("extended_l2"))
		o->extended_l2 = !strcmp(v, "on");
	else if (K("compression_type"))
		o->compression = !strcmp(v, "zstd") ? BLK_COMPRESS_ZSTD : BLK_COMPRESS_DEFLATE;
	else if (K("backing_file"))
		o->backing_file = v;
	else if (K("backing_fmt"))
		o->backing_fmt = v;
	else if (K("preallocation"))
		return blk_prealloc_parse(v, &o->prealloc);
	else
		return -1;
	return 0;
#undef K
}

static int cmd_create(int argc, char **argv)
{
	if (argc < 5)
		return usage();
	struct blk_create_opts o = {0};
	if (blk_format_parse(argv[2], &o.format))
		return usage();
	o.size = strtoull(argv[4], NULL, 0);
	for (int i = 5; i < argc; i++)
		if (parse_kv(&o, argv[i]))
			return usage();
	struct cove_err err = {0};
	if (blk_create(argv[3], &o, true, &err)) {
		fprintf(stderr, "blkcat: %s\n", err.msg);
		return 1;
	}
	return 0;
}

static int cmd_snap(int argc, char **argv)
{
	if (argc < 4)
		return usage();
	struct blk *b = open_or_die(argv[2], argv[3][0] == 'l');
	struct cove_err err = {0};
	int ret = 0;
	switch (argv[3][0]) {
	case 'c':
		ret = blk_snapshot_create(b, argc > 4 ? argv[4] : "snap", &err);
		break;
	case 'a':
		ret = blk_snapshot_apply(b, argc > 4 ? argv[4] : "snap", &err);
		break;
	case 'd':
		ret = blk_snapshot_delete(b, argc > 4 ? argv[4] : "snap", &err);
		break;
	case 'l': {
		struct blk_snapshot_info *s;
		unsigned n;
		ret = blk_snapshot_list(b, &s, &n);
		for (unsigned i = 0; !ret && i < n; i++)
			printf("%s %s %llu\n", s[i].id, s[i].name,
			       (unsigned long long)s[i].disk_size);
		if (!ret)
			free(s);
		break;
	}
	default:
		return usage();
	}
	if (ret) {
		fprintf(stderr, "blkcat: %s\n", err.msg[0] ? err.msg : strerror(-ret));
		return 1;
	}
	blk_close(b);
	return 0;
}

static int cmd_check(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	unsigned fix = 0;
	if (argc > 3)
		fix = !strcmp(argv[3], "all") ? BLK_CHECK_FIX_LEAKS | BLK_CHECK_FIX_ERRORS
					      : BLK_CHECK_FIX_LEAKS;
	struct blk_open_opts o = {.readonly = !fix, .no_backing = true, .no_repair = true};
	struct blk *b;
	struct cove_err err = {0};
	if (blk_open(argv[2], &o, &b, &err)) {
		fprintf(stderr, "blkcat: %s\n", err.msg);
		return 1;
	}
	struct blk_check_result r;
	int ret = blk_check(b, fix, &r, &err);
	if (ret) {
		fprintf(stderr, "blkcat: check: %s\n", err.msg);
		return 1;
	}
	printf("corruptions=%llu leaks=%llu fixed_corruptions=%llu fixed_leaks=%llu "
	       "allocated=%llu compressed=%llu end=%llu%s%s\n",
	       (unsigned long long)r.corruptions, (unsigned long long)r.leaks,
	       (unsigned long long)r.corruptions_fixed, (unsigned long long)r.leaks_fixed,
	       (unsigned long long)r.allocated_clusters, (unsigned long long)r.compressed_clusters,
	       (unsigned long long)r.image_end_offset, r.first_problem[0] ? " first: " : "",
	       r.first_problem);
	blk_close(b);
	if (r.corruptions || r.check_errors)
		return 2;
	return r.leaks ? 3 : 0;
}

static int cmd_resize(int argc, char **argv)
{
	if (argc < 4)
		return usage();
	struct blk *b = open_or_die(argv[2], false);
	struct cove_err err = {0};
	if (blk_resize(b, strtoull(argv[3], NULL, 0), argc > 4, BLK_PREALLOC_OFF, &err)) {
		fprintf(stderr, "blkcat: %s\n", err.msg);
		return 1;
	}
	blk_close(b);
	return 0;
}

static int cmd_info(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	struct blk *b = open_or_die(argv[2], true);
	struct blk_info i;
	if (blk_get_info(b, &i))
		return 1;
	printf("format=%s size=%llu cluster_size=%u version=%u refcount_bits=%u lazy=%d extl2=%d "
	       "compression=%d backing=%s backing_fmt=%s snapshots=%u dirty=%d corrupt=%d\n",
	       blk_format_name(i.format), (unsigned long long)i.virtual_size, i.cluster_size,
	       i.version, i.refcount_bits, i.lazy_refcounts, i.extended_l2, i.compression,
	       i.backing_file, i.backing_fmt, i.nb_snapshots, i.dirty, i.corrupt);
	free(i.snapshots);
	blk_close(b);
	return 0;
}

static int cmd_map(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	struct blk *b = open_or_die(argv[2], true);
	uint64_t size = blk_size(b);
	for (uint64_t off = 0; off < size;) {
		struct blk_status st;
		int ret = blk_block_status(b, off, size - off, &st);
		if (ret)
			return fail("block status", ret);
		printf("%llu %llu flags=%u depth=%d off=%llu\n", (unsigned long long)off,
		       (unsigned long long)st.len, st.flags, st.depth,
		       (unsigned long long)st.file_offset);
		off += st.len;
	}
	blk_close(b);
	return 0;
}

static int cmd_amend(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	struct blk *b = open_or_die(argv[2], false);
	struct blk_info i;
	if (blk_get_info(b, &i))
		return 1;
	free(i.snapshots);
	struct blk_create_opts o = {.format = BLK_FMT_QCOW2,
				    .cluster_size = i.cluster_size,
				    .refcount_bits = i.refcount_bits,
				    .compat_v2 = i.version == 2,
				    .lazy_refcounts = i.lazy_refcounts,
				    .extended_l2 = i.extended_l2,
				    .compression = i.compression};
	for (int k = 3; k < argc; k++)
		if (parse_kv(&o, argv[k]))
			return usage();
	struct cove_err err = {0};
	if (blk_amend(b, &o, &err)) {
		fprintf(stderr, "blkcat: %s\n", err.msg);
		return 1;
	}
	blk_close(b);
	return 0;
}

static int cmd_measure(int argc, char **argv)
{
	if (argc < 4)
		return usage();
	struct blk_create_opts o = {0};
	if (blk_format_parse(argv[2], &o.format))
		return usage();
	struct blk *src = NULL;
	if (argv[3][0] >= '0' && argv[3][0] <= '9')
		o.size = strtoull(argv[3], NULL, 0);
	else
		src = open_or_die(argv[3], true);
	for (int k = 4; k < argc; k++)
		if (parse_kv(&o, argv[k]))
			return usage();
	struct blk_measure m;
	struct cove_err err = {0};
	if (blk_measure(&o, src, &m, &err)) {
		fprintf(stderr, "blkcat: %s\n", err.msg);
		return 1;
	}
	printf("required size: %llu\nfully allocated size: %llu\n", (unsigned long long)m.required,
	       (unsigned long long)m.fully_allocated);
	blk_close(src);
	return 0;
}

int cmd_aio(int argc, char **argv);
int cmd_hold(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_copy(int argc, char **argv);

static int cmd_write(int argc, char **argv)
{
	if (argc < 6)
		return usage();
	struct blk *b = open_or_die(argv[2], false);
	uint64_t off = strtoull(argv[3], NULL, 0), len = strtoull(argv[4], NULL, 0);
	uint8_t *buf = malloc(len ? len : 1);
	memset(buf, (int)strtoul(argv[5], NULL, 0), len);
	int ret = blk_pwrite(b, buf, len, off);
	free(buf);
	blk_close(b);
	return ret ? fail("write", ret) : 0;
}

static int cmd_rebase(int argc, char **argv)
{
	if (argc < 4)
		return usage();
	struct blk *b = open_or_die(argv[2], false);
	struct cove_err err = {0};
	if (blk_set_backing(b, argv[3][0] ? argv[3] : NULL, argc > 4 ? argv[4] : NULL, &err)) {
		fprintf(stderr, "blkcat: %s\n", err.msg);
		return 1;
	}
	blk_close(b);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "cat"))
		return cmd_cat(argc, argv);
	if (!strcmp(argv[1], "stress"))
		return cmd_stress(argc, argv);
	if (!strcmp(argv[1], "create"))
		return cmd_create(argc, argv);
	if (!strcmp(argv[1], "snap"))
		return cmd_snap(argc, argv);
	if (!strcmp(argv[1], "check"))
		return cmd_check(argc, argv);
	if (!strcmp(argv[1], "resize"))
		return cmd_resize(argc, argv);
	if (!strcmp(argv[1], "info"))
		return cmd_info(argc, argv);
	if (!strcmp(argv[1], "map"))
		return cmd_map(argc, argv);
	if (!strcmp(argv[1], "amend"))
		return cmd_amend(argc, argv);
	if (!strcmp(argv[1], "measure"))
		return cmd_measure(argc, argv);
	if (!strcmp(argv[1], "aio"))
		return cmd_aio(argc, argv);
	if (!strcmp(argv[1], "hold"))
		return cmd_hold(argc, argv);
	if (!strcmp(argv[1], "write"))
		return cmd_write(argc, argv);
	if (!strcmp(argv[1], "rebase"))
		return cmd_rebase(argc, argv);
	if (!strcmp(argv[1], "copy"))
		return cmd_copy(argc, argv);
	if (!strcmp(argv[1], "bench"))
		return cmd_bench(argc, argv);
	return usage();
}

struct aio_slot {
	struct blk_aio_req req;
	struct iovec iov;
	uint8_t *buf;
	int ret;
	bool fin;
};

static void aio_done(struct blk_aio_req *r, int ret)
{
	struct aio_slot *s = r->opaque;
	s->ret = ret;
	s->fin = true;
}

int cmd_aio(int argc, char **argv)
{
	if (argc < 6)
		return usage();
	struct blk_open_opts oo = {.direct = argc > 6 && !strcmp(argv[6], "direct")};
	struct blk *b;
	struct cove_err err = {0};
	if (blk_open(argv[2], &oo, &b, &err)) {
		fprintf(stderr, "blkcat: %s\n", err.msg);
		return 1;
	}
	int ref = open(argv[3], O_RDWR);
	if (ref < 0)
		return 1;
	rng_state = strtoull(argv[4], NULL, 0) * 2654435761u + 1;
	long rounds = atol(argv[5]);
	enum { Q = 32, BS = 4096 };
	if (blk_aio_setup(b, Q))
		return fail("aio setup", -EINVAL);
	struct aio_slot slot[Q];
	uint8_t *check = malloc(BS);
	for (int i = 0; i < Q; i++)
		if (posix_memalign((void **)&slot[i].buf, 4096, BS))
			return 1;
	uint64_t nblk = blk_size(b) / BS;
	for (long r = 0; r < rounds; r++) {
		uint64_t used[Q];
		for (int i = 0; i < Q; i++) {
			uint64_t blkno;
			bool dup;
			do {
				blkno = rnd() % nblk;
				dup = false;
				for (int j = 0; j < i; j++)
					dup |= used[j] == blkno;
			} while (dup);
			used[i] = blkno;
			struct aio_slot *s = &slot[i];
			unsigned kind = (unsigned)(rnd() % 8);
			bool wr = kind < 3, zero = kind == 3;
			if (wr)
				for (int j = 0; j < BS; j++)
					s->buf[j] = (uint8_t)(rnd() >> 7);
			if (zero)
				memset(s->buf, 0, BS);
			s->iov = (struct iovec){s->buf, BS};
			s->req = (struct blk_aio_req){.op = zero ? BLK_AIO_WRITE_ZEROES
							    : wr ? BLK_AIO_WRITE
								 : BLK_AIO_READ,
						      .iov = &s->iov,
						      .iovcnt = 1,
						      .offset = blkno * BS,
						      .len = BS,
						      .done = aio_done,
						      .opaque = s};
			s->fin = false;
			int ret = blk_aio_submit(b, &s->req);
			if (ret)
				return fail("aio submit", ret);
		}
		blk_aio_flush_submissions(b);
		int left = Q;
		while (left > 0) {
			int n = blk_aio_complete(b);
			if (n < 0)
				return fail("aio complete", n);
			left -= n;
		}
		for (int i = 0; i < Q; i++) {
			struct aio_slot *s = &slot[i];
			if (!s->fin || s->ret)
				return fail("aio request", s->ret ? s->ret : -EIO);
			if (s->req.op != BLK_AIO_READ) {
				if (pwrite(ref, s->buf, BS, (off_t)s->req.offset) != BS)
					return 1;
			} else {
				if (pread(ref, check, BS, (off_t)s->req.offset) != BS)
					return 1;
				if (memcmp(check, s->buf, BS)) {
					fprintf(stderr, "blkcat: aio read mismatch at %llu\n",
						(unsigned long long)s->req.offset);
					return 1;
				}
			}
		}
	}
	struct aio_slot *s = &slot[0];
	s->req = (struct blk_aio_req){.op = BLK_AIO_FLUSH, .done = aio_done, .opaque = s};
	s->fin = false;
	if (blk_aio_submit(b, &s->req))
		return 1;
	blk_aio_flush_submissions(b);
	while (!s->fin)
		if (blk_aio_complete(b) < 0)
			return 1;
	if (s->ret)
		return fail("aio flush", s->ret);
	for (int i = 0; i < Q; i++)
		free(slot[i].buf);
	free(check);
	blk_close(b);
	close(ref);
	return 0;
}

/* For the kill test (kill.sh): the requests a guest makes without flushing, then the idle
 * event loop of a VMM, which is where it is killed. */
enum { HOLD_Q = 8, HOLD_MAX = 1 << 20 };

/* Serves completions as an event loop does, for ms milliseconds (-1: for ever). */
static int hold_serve(struct blk *b, int ms)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int left = -1;
		if (ms >= 0) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			long el =
			    (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
			if (el >= ms)
				return 0;
			left = (int)(ms - el);
		}
		struct pollfd p = {.fd = blk_aio_event_fd(b), .events = POLLIN};
		if (poll(&p, 1, left) < 0 && errno != EINTR)
			return fail("poll", -errno);
		int ret = blk_aio_complete(b);
		if (ret < 0)
			return fail("aio complete", ret);
	}
}

struct hold_slot {
	struct aio_slot s;
	uint64_t off, len;
	char op;
};

static int hold_round(struct blk *b, int ref, struct hold_slot *h, int n, const uint8_t *zero)
{
	for (int i = 0; i < n; i++) {
		struct hold_slot *x = &h[i];
		x->s.iov = (struct iovec){x->s.buf, x->len};
		x->s.req = (struct blk_aio_req){.op = x->op == 'w'   ? BLK_AIO_WRITE
						      : x->op == 'd' ? BLK_AIO_DISCARD
						      : x->op == 'f' ? BLK_AIO_FLUSH
								     : BLK_AIO_WRITE_ZEROES,
						.iov = &x->s.iov,
						.iovcnt = 1,
						.offset = x->off,
						.len = x->len,
						.flags = x->op == 'u' ? BLK_ZERO_MAY_UNMAP : 0,
						.done = aio_done,
						.opaque = &x->s};
		x->s.fin = false;
		int ret = blk_aio_submit(b, &x->s.req);
		if (ret)
			return fail("aio submit", ret);
	}
	blk_aio_flush_submissions(b);
	for (int left = n; left > 0;) {
		struct pollfd p = {.fd = blk_aio_event_fd(b), .events = POLLIN};
		poll(&p, 1, 100);
		int got = blk_aio_complete(b);
		if (got < 0)
			return fail("aio complete", got);
		left -= got;
	}
	for (int i = 0; i < n; i++) {
		struct hold_slot *x = &h[i];
		if (!x->s.fin || x->s.ret)
			return fail("aio request", x->s.ret ? x->s.ret : -EIO);
		if (x->op == 'f')
			continue;
		const void *src = x->op == 'w' ? x->s.buf : zero;
		if (pwrite(ref, src, x->len, (off_t)x->off) != (ssize_t)x->len)
			return 1;
	}
	return 0;
}

int cmd_hold(int argc, char **argv)
{
	if (argc < 6)
		return usage();
	struct blk *b = open_or_die(argv[2], false);
	int ref = open(argv[3], O_RDWR);
	if (ref < 0) {
		perror(argv[3]);
		return 1;
	}
	rng_state = strtoull(argv[4], NULL, 0) * 2654435761u + 1;
	long n = atol(argv[5]);
	const char *ops = argc > 6 ? argv[6] : "wwwzud";
	size_t nops = strlen(ops);
	uint64_t size = blk_size(b), cs = blk_cluster_size(b);
	if (blk_aio_setup(b, HOLD_Q))
		return fail("aio setup", -EINVAL);
	struct hold_slot h[HOLD_Q];
	uint8_t *zero = calloc(1, HOLD_MAX);
	for (int i = 0; i < HOLD_Q; i++)
		if (posix_memalign((void **)&h[i].s.buf, 4096, HOLD_MAX))
			return 1;
	for (long done = 0; done < n;) {
		/* Up to HOLD_Q requests on disjoint ranges, so that REF's order does not matter. */
		int k = 0, want = 1 + (int)(rnd() % HOLD_Q);
		bool pause = false;
		for (int tries = 0; k < want && tries < 4 * HOLD_Q && done + k < n; tries++) {
			struct hold_slot *x = &h[k];
			x->op = ops[rnd() % nops];
			if (x->op == 'p') {
				pause = true;
				continue;
			}
			x->len = 1 + rnd() % (rnd() % 4 ? 65536 : HOLD_MAX);
			if (x->len > size)
				x->len = size;
			x->off = rnd() % (size - x->len + 1);
			if (rnd() % 2)
				x->off &= ~511ull;
			if (x->op == 'd') {
				/* whole clusters only, so that the result is defined */
				uint64_t a = (x->off + cs - 1) / cs * cs,
					 e = (x->off + x->len) / cs * cs;
				if (e <= a)
					continue;
				x->off = a;
				x->len = e - a;
			}
			if (x->op == 'f')
				x->off = x->len = 0;
			bool overlap = false;
			for (int j = 0; j < k; j++)
				overlap |=
				    x->off < h[j].off + h[j].len && h[j].off < x->off + x->len;
			if (overlap)
				continue;
			if (x->op == 'w') {
				uint8_t v = (uint8_t)rnd();
				for (uint64_t j = 0; j < x->len; j++)
					x->s.buf[j] = (uint8_t)(v + j / 512 + (j % 7 == 0 ? j : 0));
			}
			k++;
		}
		if (hold_round(b, ref, h, k, zero))
			return 1;
		done += k;
		if (pause && hold_serve(b, 150))
			return 1;
	}
	printf("ready\n");
	fflush(stdout);
	return hold_serve(b, -1);
}

struct bench_slot {
	struct blk_aio_req req;
	struct iovec iov;
	bool busy;
};

static int bench_fails;
static void bench_done(struct blk_aio_req *r, int ret)
{
	struct bench_slot *s = r->opaque;
	s->busy = false;
	if (ret)
		bench_fails++;
}

int cmd_bench(int argc, char **argv)
{
	if (argc < 8)
		return usage();
	struct blk_open_opts o = {.direct = argc > 8 && !strcmp(argv[8], "direct")};
	struct blk *b;
	struct cove_err err = {0};
	if (blk_open(argv[2], &o, &b, &err)) {
		fprintf(stderr, "blkcat: %s\n", err.msg);
		return 1;
	}
	long count = atol(argv[3]);
	unsigned depth = (unsigned)atoi(argv[4]);
	uint64_t bs = strtoull(argv[5], NULL, 0), step = strtoull(argv[6], NULL, 0);
	bool wr = argv[7][0] == 'w';
	uint64_t size = blk_size(b);
	if (!depth || depth > 256 || !bs || bs > size || blk_aio_setup(b, depth))
		return usage();
	struct bench_slot *slot = calloc(depth, sizeof(*slot));
	uint8_t *bufs;
	if (posix_memalign((void **)&bufs, 4096, depth * bs))
		return 1;
	memset(bufs, 0xa5, depth * bs);
	uint64_t off = 0;
	long issued = 0, finished = 0;
	while (finished < count) {
		for (unsigned i = 0; i < depth && issued < count; i++) {
			struct bench_slot *s = &slot[i];
			if (s->busy)
				continue;
			if (off + bs > size)
				off = 0;
			s->iov = (struct iovec){bufs + i * bs, bs};
			s->req = (struct blk_aio_req){.op = wr ? BLK_AIO_WRITE : BLK_AIO_READ,
						      .iov = &s->iov,
						      .iovcnt = 1,
						      .offset = off,
						      .done = bench_done,
						      .opaque = s};
			if (blk_aio_submit(b, &s->req))
				break;
			s->busy = true;
			issued++;
			off = (off + step) % size;
		}
		blk_aio_flush_submissions(b);
		int n = blk_aio_complete(b);
		if (n < 0)
			return fail("aio", n);
		if (n == 0) {
			/* Wait as an event loop would. */
			struct pollfd pfd = {.fd = blk_aio_event_fd(b), .events = POLLIN};
			poll(&pfd, 1, 100);
		}
		finished += n;
	}
	if (wr)
		blk_flush(b);
	blk_close(b);
	free(slot);
	free(bufs);
	return bench_fails ? 1 : 0;
}

int cmd_copy(int argc, char **argv)
{
	if (argc < 4)
		return usage();
	struct blk *src = open_or_die(argv[2], true), *dst;
	bool comp = argc > 4 && argv[4][0] == 'c';
	struct blk_open_opts o = {.unsafe = true};
	struct cove_err err = {0};
	if (blk_open(argv[3], &o, &dst, &err)) {
		fprintf(stderr, "blkcat: %s\n", err.msg);
		return 1;
	}
	uint64_t size = blk_size(src), chunk = 2 << 20, cs = blk_cluster_size(dst);
	if (blk_size(dst) < size)
		return usage();
	uint8_t *buf = malloc(chunk);
	for (uint64_t off = 0; off < size;) {
		struct blk_status st;
		int ret = blk_block_status(src, off, size - off < chunk ? size - off : chunk, &st);
		if (ret)
			return fail("block status", ret);
		uint64_t n = st.len;
		if (!(st.flags & BLK_STATUS_ZERO)) {
			if ((ret = blk_pread(src, buf, n, off)))
				return fail("read", ret);
			if (comp) {
				for (uint64_t c = 0; c < n; c += cs) {
					uint64_t l = n - c < cs ? n - c : cs;
					if ((ret = blk_write_compressed(dst, buf + c, l, off + c)))
						return fail("write", ret);
				}
			} else if ((ret = blk_pwrite(dst, buf, n, off))) {
				return fail("write", ret);
			}
		}
		off += n;
	}
	free(buf);
	blk_close(src);
	blk_close(dst);
	return 0;
}
