/* Helpers shared by the `cove img` subcommands: errors, sizes, -o lists, temp files. */
#include "cli/img/img.h"
#include "util/size.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int img_err(const char *fmt, ...)
{
	va_list ap;
	fputs("cove img: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int img_parse_output(const char *arg, bool *json)
{
	if (!strcmp(arg, "json"))
		*json = true;
	else if (!strcmp(arg, "human"))
		*json = false;
	else
		return img_err("--output must be used with human or json as argument.");
	return 0;
}

int img_err_lib(const char *what, int ret, const struct cove_err *err)
{
	if (err && err->code && err->msg[0])
		return img_err("%s: %s", what, err->msg);
	return img_err("%s: %s", what, strerror(ret < 0 ? -ret : EIO));
}

int img_parse_size(const char *text, uint64_t *out)
{
	uint64_t v;
	int ret = size_parse(text, 1, &v);
	if (ret < 0)
		return ret;
	if (v > (uint64_t)INT64_MAX)
		return -ERANGE;
	*out = v;
	return 0;
}

int img_parse_format(const char *name, const char *path, enum blk_format *out)
{
	if (blk_format_parse(name, out) < 0)
		return img_err("%s: Unknown file format '%s'", path ? path : "", name);
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no")) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

/* Keeps a copy of a string option in o->strings (a list of NUL-separated texts). */
static const char *keep(struct img_opts *o, const char *v)
{
	/* Each kept string is its own allocation chained through a pointer prefix. */
	size_t n = strlen(v);
	char *blk = malloc(sizeof(char *) + n + 1);
	if (!blk)
		return NULL;
	memcpy(blk, &o->strings, sizeof(char *));
	memcpy(blk + sizeof(char *), v, n + 1);
	o->strings = blk;
	return blk + sizeof(char *);
}

void img_opts_free(struct img_opts *o)
{
	char *p = o->strings;
	while (p) {
		char *next;
		memcpy(&next, p, sizeof(char *));
		free(p);
		p = next;
	}
	o->strings = NULL;
}

/* An -o error, prefixed with the image name when it is known. */
static int opt_err(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int opt_err(const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (path && path[0])
		return img_err("%s: %s", path, msg);
	return img_err("%s", msg);
}

static int set_opt(struct img_opts *o, const char *key, const char *val, const char *path)
{
	struct blk_create_opts *c = &o->c;
	uint64_t n;
	bool b;

	if (!strcmp(key, "help") && !val) {
		o->help = true;
		return 0;
	}
	if (!val)
		return opt_err(path, "Invalid parameter '%s'", key);
	if (!strcmp(key, "size")) {
		if (img_parse_size(val, &n) < 0)
			return opt_err(path, "Invalid image size '%s'", val);
		c->size = n;
		o->set |= IMG_OPT_SIZE;
	} else if (!strcmp(key, "cluster_size")) {
		if (img_parse_size(val, &n) < 0 || n < 512 || n > (2u << 20) || (n & (n - 1)))
			return opt_err(path, "Cluster size must be a power of two between 512 and "
					     "2048k");
		c->cluster_size = (uint32_t)n;
		o->set |= IMG_OPT_CLUSTER;
	} else if (!strcmp(key, "compression_type")) {
		if (!strcmp(val, "zlib") || !strcmp(val, "deflate"))
			c->compression = BLK_COMPRESS_DEFLATE;
		else if (!strcmp(val, "zstd"))
			c->compression = BLK_COMPRESS_ZSTD;
		else
			return opt_err(path, "Invalid compression_type '%s' (zlib or zstd)", val);
		o->set |= IMG_OPT_COMPRESSION;
	} else if (!strcmp(key, "backing_file")) {
		if (!(c->backing_file = keep(o, val)))
			return img_err("out of memory");
		o->set |= IMG_OPT_BACKING;
	} else if (!strcmp(key, "backing_fmt")) {
		enum blk_format f;
		if (blk_format_parse(val, &f) < 0)
			return opt_err(path, "Unknown backing format '%s'", val);
		if (!(c->backing_fmt = keep(o, val)))
			return img_err("out of memory");
		o->set |= IMG_OPT_BACKING_FMT;
	} else if (!strcmp(key, "data_file")) {
		if (!(c->data_file = keep(o, val)))
			return img_err("out of memory");
		o->set |= IMG_OPT_DATA_FILE;
	} else if (!strcmp(key, "preallocation")) {
		if (blk_prealloc_parse(val, &c->prealloc) < 0)
			return opt_err(path,
				       "Invalid preallocation mode '%s' (off, metadata, "
				       "falloc, full)",
				       val);
		o->set |= IMG_OPT_PREALLOC;
	} else if (!strcmp(key, "lazy_refcounts")) {
		if (parse_bool(val, &b) < 0)
			return opt_err(path, "Parameter 'lazy_refcounts' expects 'on' or 'off'");
		c->lazy_refcounts = b;
		o->set |= IMG_OPT_LAZY;
	} else if (!strcmp(key, "extended_l2")) {
		if (parse_bool(val, &b) < 0)
			return opt_err(path, "Parameter 'extended_l2' expects 'on' or 'off'");
		c->extended_l2 = b;
		o->set |= IMG_OPT_EXTL2;
	} else if (!strcmp(key, "refcount_bits")) {
		char *end;
		errno = 0;
		unsigned long v = strtoul(val, &end, 10);
		if (errno || *end || v == 0 || v > 64 || (v & (v - 1)))
			return opt_err(path, "Refcount width must be a power of two and may not "
					     "exceed 64 bits");
		c->refcount_bits = (unsigned)v;
		o->set |= IMG_OPT_REFBITS;
	} else if (!strcmp(key, "compat")) {
		if (!strcmp(val, "0.10") || !strcmp(val, "v2"))
			c->compat_v2 = true;
		else if (!strcmp(val, "1.1") || !strcmp(val, "v3"))
			c->compat_v2 = false;
		else
			return opt_err(path,
				       "Invalid parameter value for 'compat': '%s' (0.10, "
				       "1.1, v2 or v3)",
				       val);
		o->set |= IMG_OPT_COMPAT;
	} else {
		return opt_err(path, "Invalid parameter '%s'", key);
	}
	return 0;
}

int img_opts_parse(struct img_opts *o, const char *text, const char *path)
{
	char *copy = strdup(text);
	if (!copy)
		return img_err("out of memory");
	int ret = 0;
	char *save = NULL;
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		if (eq)
			*eq = '\0';
		ret = set_opt(o, item, eq ? eq + 1 : NULL, path ? path : "");
		if (ret)
			break;
	}
	free(copy);
	return ret;
}

void img_opts_help(enum blk_format fmt)
{
	if (fmt == BLK_FMT_QCOW2) {
		puts("Supported qcow2 options:\n"
		     "  backing_file=<str>     - File name of a base image\n"
		     "  backing_fmt=<str>      - Image format of the base image\n"
		     "  cluster_size=<size>    - qcow2 cluster size\n"
		     "  compat=<str>           - Compatibility level (v2 [0.10] or v3 [1.1])\n"
		     "  compression_type=<str> - Compression method used for image cluster "
		     "compression\n"
		     "  data_file=<str>        - File name of an external data file\n"
		     "  extended_l2=<bool (on/off)> - Extended L2 tables\n"
		     "  lazy_refcounts=<bool (on/off)> - Postpone refcount updates\n"
		     "  preallocation=<str>    - Preallocation mode (allowed values: off, "
		     "metadata, falloc, full)\n"
		     "  refcount_bits=<num>    - Width of a reference count entry in bits\n"
		     "  size=<size>            - Virtual disk size");
	} else {
		puts("Supported raw options:\n"
		     "  preallocation=<str>    - Preallocation mode (allowed values: off, "
		     "falloc, full)\n"
		     "  size=<size>            - Virtual disk size");
	}
}

static const char *prealloc_name(enum blk_prealloc p)
{
	static const char *const names[] = {"off", "metadata", "falloc", "full"};
	return (unsigned)p < 4 ? names[p] : "off";
}

void img_opts_describe(const struct blk_create_opts *c, char *buf, size_t len)
{
	int n;
	if (c->format != BLK_FMT_QCOW2) {
		n = snprintf(buf, len, "fmt=raw size=%llu", (unsigned long long)c->size);
		if (c->prealloc != BLK_PREALLOC_OFF && n > 0 && (size_t)n < len)
			snprintf(buf + n, len - (size_t)n, " preallocation=%s",
				 prealloc_name(c->prealloc));
		return;
	}
	/* The order qemu-img prints them in. */
	n = snprintf(buf, len, "fmt=qcow2 cluster_size=%u extended_l2=%s",
		     c->cluster_size ? c->cluster_size : 65536, c->extended_l2 ? "on" : "off");
	if (c->prealloc != BLK_PREALLOC_OFF && n > 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, " preallocation=%s",
			      prealloc_name(c->prealloc));
	if (n > 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, " compression_type=%s size=%llu",
			      c->compression == BLK_COMPRESS_ZSTD ? "zstd" : "zlib",
			      (unsigned long long)c->size);
	if (c->compat_v2 && n > 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, " compat=0.10");
	if (c->backing_file && n > 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, " backing_file=%s", c->backing_file);
	if (c->backing_fmt && n > 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, " backing_fmt=%s", c->backing_fmt);
	if (n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, " lazy_refcounts=%s refcount_bits=%u",
			 c->lazy_refcounts ? "on" : "off",
			 c->refcount_bits ? c->refcount_bits : 16);
}

bool img_trust_data_file(void)
{
	const char *v = getenv("COVE_TRUST_DATA_FILE");
	return v && !strcmp(v, "1");
}

int img_open(const char *path, enum blk_format fmt, bool readonly, bool no_backing,
	     struct blk **out)
{
	struct blk_open_opts o = {.format = fmt, .readonly = readonly, .no_backing = no_backing};
	return img_open_opts(path, &o, out);
}

int img_parse_cache(const char *mode, bool *direct, bool *unsafe)
{
	*direct = !strcmp(mode, "none") || !strcmp(mode, "directsync");
	*unsafe = !strcmp(mode, "unsafe");
	if (*direct || *unsafe || !strcmp(mode, "writeback") || !strcmp(mode, "writethrough"))
		return 0;
	return img_err("Invalid cache option: %s", mode);
}

int img_open_opts(const char *path, struct blk_open_opts *o, struct blk **out)
{
	o->trust_data_file = img_trust_data_file();
	struct cove_err err = {0};
	int ret = blk_open(path, o, out, &err);
	if (ret < 0) {
		if (err.code && err.msg[0])
			return img_err("Could not open '%s': %s", path, err.msg);
		return img_err("Could not open '%s': %s", path, strerror(-ret));
	}
	return 0;
}

void img_size_str(uint64_t val, char *buf, size_t len)
{
	static const char *const suffix[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
	/* As qemu: switch to the next unit once the value reaches 1000 of this one. */
	long double x = (long double)val * 1.024L;
	int i = 0;
	while (i < 6 && x >= (long double)(1ULL << (10 * (i + 1))))
		i++;
	double v = (double)((long double)val / (long double)(1ULL << (10 * i)));
	snprintf(buf, len, "%0.3g %sB", v, suffix[i]);
}

void img_progress_init(struct img_progress *p, bool on)
{
	p->on = on;
	p->last = -1;
	if (on)
		img_progress_update(p, 0, 1);
}

void img_progress_update(struct img_progress *p, uint64_t done, uint64_t total)
{
	if (!p->on)
		return;
	int hund = total ? (int)((long double)done * 10000.0L / (long double)total) : 10000;
	if (hund > 10000)
		hund = 10000;
	if (p->last >= 0 && hund < p->last + 100 && hund != 10000)
		return;
	if (hund == p->last)
		return;
	p->last = hund;
	fprintf(stderr, "    (%d.%02d/100%%)\r", hund / 100, hund % 100);
	fflush(stderr);
}

void img_progress_end(struct img_progress *p)
{
	if (!p->on)
		return;
	img_progress_update(p, 1, 1);
	fputc('\n', stderr);
}

/* The temporary file to remove if a signal ends the process. */
static char tmp_pending[PATH_MAX];
static volatile sig_atomic_t tmp_armed;

static void tmp_on_signal(int sig)
{
	if (tmp_armed)
		unlink(tmp_pending);
	signal(sig, SIG_DFL);
	raise(sig);
}

int img_tmp_begin(const char *path, char *tmp, size_t len)
{
	struct stat st;
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return img_err("%s: not a regular file: cove img writes a new image under a "
			       "temporary name and renames it over the target, which would "
			       "replace %s (use convert -n to write into an existing device)",
			       path,
			       S_ISDIR(st.st_mode)    ? "a directory"
			       : S_ISFIFO(st.st_mode) ? "the FIFO"
						      : "the device node");
	const char *slash = strrchr(path, '/');
	int dirlen = slash ? (int)(slash - path + 1) : 0;
	const char *base = slash ? slash + 1 : path;
	uint32_t rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint32_t)getpid() * 2654435761u;
	int n = snprintf(tmp, len, "%.*s.%s.cove-%08x", dirlen, path, base, rnd);
	if (n < 0 || (size_t)n >= len || (size_t)n >= sizeof(tmp_pending))
		return img_err("%s: %s", path, strerror(ENAMETOOLONG));
	memcpy(tmp_pending, tmp, (size_t)n + 1);
	tmp_armed = 1;
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		/* A signal the caller ignores (nohup, a background job) stays ignored. */
		struct sigaction old;
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
			continue;
		struct sigaction sa = {.sa_handler = tmp_on_signal};
		sigemptyset(&sa.sa_mask);
		sigaction(sigs[i], &sa, NULL);
	}
	return 0;
}

static int fsync_path(const char *path, bool dir)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | (dir ? O_DIRECTORY : 0));
	if (fd < 0)
		return -errno;
	int ret = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

int img_tmp_commit(const char *tmp, const char *path, bool sync)
{
	int ret = sync ? fsync_path(tmp, false) : 0;
	if (ret < 0)
		return ret;
	if (rename(tmp, path) < 0)
		return -errno;
	tmp_armed = 0;
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (slash) {
		size_t n = (size_t)(slash - path);
		if (n >= sizeof(dir))
			return 0;
		memcpy(dir, path, n ? n : 1);
		dir[n ? n : 1] = '\0';
	} else {
		strcpy(dir, ".");
	}
	if (sync)
		fsync_path(dir, true); /* best effort: the data itself is synced */
	return 0;
}

void img_tmp_abort(const char *tmp)
{
	unlink(tmp);
	tmp_armed = 0;
}

void img_backing_path(const char *image, const char *backing, char *out, size_t len)
{
	const char *slash = strrchr(image, '/');
	if (backing[0] == '/' || !slash || strstr(backing, "://")) {
		snprintf(out, len, "%s", backing);
		return;
	}
	snprintf(out, len, "%.*s%s", (int)(slash - image + 1), image, backing);
}

void img_snapshot_header(FILE *out)
{
	fprintf(out, "%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK",
		"ICOUNT");
}

void img_snapshot_line(FILE *out, const struct blk_snapshot_info *sn)
{
	char date[64] = "", clock[64], size[32], icount[32] = "";
	time_t t = (time_t)sn->date_sec;
	struct tm tm;
	if (localtime_r(&t, &tm))
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
	uint64_t secs = sn->vm_clock_nsec / 1000000000ULL;
	snprintf(clock, sizeof(clock), "%02d:%02d:%02d.%03d", (int)(secs / 3600),
		 (int)((secs / 60) % 60), (int)(secs % 60),
		 (int)((sn->vm_clock_nsec / 1000000) % 1000));
	img_size_str(sn->vm_state_size, size, sizeof(size));
	if (sn->icount != UINT64_MAX)
		snprintf(icount, sizeof(icount), "%llu", (unsigned long long)sn->icount);
	fprintf(out, "%-9s %-16s %8s%20s%13s%11s\n", sn->id, sn->name, size, date, clock, icount);
}

void *img_alloc(size_t len)
{
	void *p = NULL;
	if (posix_memalign(&p, 4096, len ? len : 4096))
		return NULL;
	return p;
}

int img_opt_error(char **argv, const char *cmd)
{
	const char *bad = argv[optind - 1];
	if (optopt && bad && bad[0] == '-' && bad[1] != '-')
		img_err("invalid option or missing argument -- '%c'", optopt);
	else
		img_err("unrecognized option or missing argument '%s'", bad ? bad : "?");
	fprintf(stderr, "Try 'cove img %s --help' for more information\n", cmd);
	return 1;
}
