/* Shared helpers of the `cove img` subcommands (qemu-img compatible). */
#ifndef COVE_CLI_IMG_IMG_H
#define COVE_CLI_IMG_IMG_H

#include <cove/block.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Prints "cove img: <message>" on stderr. Returns 1 (the usual failure status). */
int img_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the error of a library call: the cove_err message, or strerror(-ret). */
int img_err_lib(const char *what, int ret, const struct cove_err *err);
/* Parses --output's argument, human or json. Returns 0, or 1 after an error message. */
int img_parse_output(const char *arg, bool *json);
/* Reports a bad option seen by getopt (opterr is 0). Returns 1. */
int img_opt_error(char **argv, const char *cmd);

/* qemu-img sizes: bytes, or k/K, M, G, T, P, E suffixes (binary). 0 or -errno. */
int img_parse_size(const char *text, uint64_t *out);
/* Parses -f/-O format names; prints the error. 0 or 1. */
int img_parse_format(const char *name, const char *path, enum blk_format *out);

/* -o option lists (key=value,...) for create, convert, amend, measure. */
enum {
	IMG_OPT_SIZE = 1u << 0,
	IMG_OPT_CLUSTER = 1u << 1,
	IMG_OPT_COMPRESSION = 1u << 2,
	IMG_OPT_BACKING = 1u << 3,
	IMG_OPT_BACKING_FMT = 1u << 4,
	IMG_OPT_PREALLOC = 1u << 5,
	IMG_OPT_LAZY = 1u << 6,
	IMG_OPT_EXTL2 = 1u << 7,
	IMG_OPT_REFBITS = 1u << 8,
	IMG_OPT_COMPAT = 1u << 9,
	IMG_OPT_DATA_FILE = 1u << 10,
};
struct img_opts {
	struct blk_create_opts c;
	unsigned set;  /* IMG_OPT_* given by the user */
	bool help;     /* "-o help" */
	char *strings; /* owns backing_file / backing_fmt / data_file text */
};
/* Adds the options in text (may be called for each -o). Prints the error. 0 or 1. */
int img_opts_parse(struct img_opts *o, const char *text, const char *path);
void img_opts_free(struct img_opts *o);
/* Prints the "-o help" list for a format. */
void img_opts_help(enum blk_format fmt);
/* Describes opts like qemu-img's "Formatting ..." line (without the file name). */
void img_opts_describe(const struct blk_create_opts *c, char *buf, size_t len);

/* COVE_TRUST_DATA_FILE=1: open qcow2 external data files wherever the image names them
 * (blk_open_opts.trust_data_file); by default only a plain name beside the image. */
bool img_trust_data_file(void);
/* Opens an image, printing "Could not open 'path': why" on failure. 0 or 1. */
int img_open(const char *path, enum blk_format fmt, bool readonly, bool no_backing,
	     struct blk **out);
/* The same with all of blk_open's options (trust_data_file is filled in). 0 or 1. */
int img_open_opts(const char *path, struct blk_open_opts *o, struct blk **out);
/* qemu-img's -t/-T cache modes: none and directsync open with O_DIRECT; unsafe never syncs;
 * writeback and writethrough sync once at the end. 0, or 1 after an error message. */
int img_parse_cache(const char *mode, bool *direct, bool *unsafe);

/* qemu's size_to_str: "1.25 MiB", "4 KiB", "0 B". */
void img_size_str(uint64_t val, char *buf, size_t len);

/* The progress bar qemu-img prints with -p: "    (12.34/100%)\r" on stderr. */
struct img_progress {
	bool on;
	int last; /* hundredths of a percent last printed, -1 at start */
};
void img_progress_init(struct img_progress *p, bool on);
void img_progress_update(struct img_progress *p, uint64_t done, uint64_t total);
void img_progress_end(struct img_progress *p);

/*
 * New files are made under a temporary name in the target's directory and renamed into
 * place once synced. img_tmp_begin picks the name (and removes it if the process is
 * interrupted; signals the caller ignores stay ignored) and returns 0, or 1 after an error
 * message (an existing target that is not a regular file is refused: the rename would
 * replace it); img_tmp_commit syncs (unless !sync: cache=unsafe) and renames (0 or -errno);
 * img_tmp_abort unlinks.
 */
int img_tmp_begin(const char *path, char *tmp, size_t len);
int img_tmp_commit(const char *tmp, const char *path, bool sync);
void img_tmp_abort(const char *tmp);

/* Joins a backing file name to the directory of the image that names it. */
void img_backing_path(const char *image, const char *backing, char *out, size_t len);

/* Snapshot table lines, as qemu-img prints them. */
void img_snapshot_header(FILE *out);
void img_snapshot_line(FILE *out, const struct blk_snapshot_info *sn);

/* Image sizes are whole 512-byte sectors, as in qemu-img (rounded up; v <= INT64_MAX). */
static inline uint64_t img_round_sector(uint64_t v)
{
	return (v + 511) & ~(uint64_t)511;
}

/* Buffer helpers. */
void *img_alloc(size_t len); /* page-aligned; NULL on failure */

int img_cmd_create(int argc, char **argv);
int img_cmd_info(int argc, char **argv);
int img_cmd_check(int argc, char **argv);
int img_cmd_convert(int argc, char **argv);
int img_cmd_compare(int argc, char **argv);
int img_cmd_map(int argc, char **argv);
int img_cmd_measure(int argc, char **argv);
int img_cmd_resize(int argc, char **argv);
int img_cmd_rebase(int argc, char **argv);
int img_cmd_commit(int argc, char **argv);
int img_cmd_snapshot(int argc, char **argv);
int img_cmd_amend(int argc, char **argv);
int img_cmd_bench(int argc, char **argv);

#endif
