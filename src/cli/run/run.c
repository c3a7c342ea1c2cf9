/* `cove run`: placeholder until its component lands. */
#include "cli/commands.h"

#include <stdio.h>

int cli_run_main(int argc, char **argv)
{
	fprintf(stderr, "cove: 'run' is not built yet\n");
	return 1;
}
