/* `cove img`: dispatches to the qemu-img compatible subcommands. */
#include "cli/img/img.h"
#include "cli/commands.h"

#include <getopt.h>
#include <string.h>

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *synopsis;
} cmds[] = {
    {"amend", img_cmd_amend, "amend [-f FMT] -o OPTIONS FILENAME"},
    {"bench", img_cmd_bench,
     "bench [-c COUNT] [-d DEPTH] [-f FMT] [-i aio|io_uring] [-n] [-o OFFSET] [-s SIZE] "
     "[-S STEP] [-t CACHE] [-w [--pattern=N]] [--random] [--flush-interval=N] FILENAME"},
    {"check", img_cmd_check,
     "check [-f FMT] [--output human|json] [-r leaks|all] [-U] [-q] FILENAME"},
    {"commit", img_cmd_commit, "commit [-f FMT] [-d] [-p] [-q] FILENAME"},
    {"compare", img_cmd_compare, "compare [-f FMT] [-F FMT] [-p] [-q] [-s] [-U] FILE1 FILE2"},
    {"convert", img_cmd_convert,
     "convert [-c] [-f FMT] [-O FMT] [-o OPTIONS] [-B BACKING] [-n] [-S SIZE] [-m N] [-W] "
     "[-t CACHE] [-T SRC_CACHE] [-p] [-q] [-U] SOURCE TARGET"},
    {"create", img_cmd_create,
     "create [-f FMT] [-o OPTIONS] [-b BACKING [-F BACKING_FMT]] [-u] [-q] FILENAME [SIZE]"},
    {"info", img_cmd_info, "info [-f FMT] [--output human|json] [--backing-chain] [-U] FILENAME"},
    {"map", img_cmd_map,
     "map [-f FMT] [--output human|json] [--start-offset OFF] "
     "[--max-length LEN] [-U] FILENAME"},
    {"measure", img_cmd_measure,
     "measure [--output human|json] [-O FMT] [-o OPTIONS] (--size SIZE | [-f FMT] FILENAME)"},
    {"rebase", img_cmd_rebase,
     "rebase [-f FMT] [-u] [-p] [-q] -b BACKING [-F BACKING_FMT] FILENAME"},
    {"resize", img_cmd_resize,
     "resize [-f FMT] [--preallocation MODE] [--shrink] [-q] FILENAME [+|-]SIZE"},
    {"snapshot", img_cmd_snapshot, "snapshot [-l | -c NAME | -a NAME | -d NAME] [-q] FILENAME"},
};

static void usage(FILE *out)
{
	fputs("usage: cove img COMMAND [OPTIONS...]\n\n"
	      "Creates, inspects and converts disk images (raw, qcow2), like qemu-img.\n\n"
	      "commands:\n",
	      out);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(out, "  %s\n", cmds[i].synopsis);
	fputs("\nSizes take k, M, G, T, P, E suffixes. See docs/img.md.\n", out);
}

int cli_img_main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(cmd, cmds[i].name))
			continue;
		for (int a = 2; a < argc; a++) {
			if (!strcmp(argv[a], "--"))
				break;
			if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
				printf("usage: cove img %s\n", cmds[i].synopsis);
				return 0;
			}
		}
		optind = 0; /* full getopt reinitialisation (glibc) */
		opterr = 0;
		return cmds[i].fn(argc - 1, argv + 1);
	}
	img_err("Command not found: %s", cmd);
	usage(stderr);
	return 1;
}
