/* The `cove` front end: dispatches to a subcommand by its first argument or by argv[0]. */
#include "cli/commands.h"
#include "util/log.h"

#include <stdio.h>
#include <string.h>

#ifndef COVE_VERSION
#define COVE_VERSION "unknown"
#endif

static void usage(FILE *out)
{
	fputs("usage: cove COMMAND [ARGS...]\n"
	      "\n"
	      "commands:\n"
	      "  run      boot a virtual machine (with no kernel: the built-in probe guest)\n"
	      "  img      create, inspect and convert disk images (qemu-img compatible)\n"
	      "  oci      run OCI containers (runc command-line contract)\n"
	      "  version  print the version\n"
	      "\n"
	      "'cove COMMAND --help' describes a command.\n",
	      out);
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

int main(int argc, char **argv)
{
	const char *self = argc > 0 ? base_name(argv[0]) : "cove";

	/* containerd runs the runtime as one binary with runc's arguments. */
	if (strcmp(self, "cove-runc") == 0) {
		log_set_prog("cove-runc");
		return cli_oci_main(argc, argv);
	}

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "run") == 0)
		return cli_run_main(argc - 1, argv + 1);
	if (strcmp(cmd, "img") == 0)
		return cli_img_main(argc - 1, argv + 1);
	if (strcmp(cmd, "oci") == 0)
		return cli_oci_main(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("cove %s\n", COVE_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "cove: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
