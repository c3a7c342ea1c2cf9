/* `cove img`: placeholder until its component lands. */
#include "cli/commands.h"

#include <stdio.h>

int cli_img_main(int argc, char **argv)
{
	fprintf(stderr, "cove: 'img' is not built yet\n");
	return 1;
}
